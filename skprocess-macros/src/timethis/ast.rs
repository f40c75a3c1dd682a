//! The item `#[timethis]` is applied to: a function or method with a body.

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Item, ItemFn, ReturnType, Type};

use crate::ctxt::Ctxt;

const NOT_A_FUNCTION: &str = "#[timethis] can only be applied to functions and methods";

/// A function to time.
pub(crate) struct TimedFn<'a> {
    pub(crate) original: &'a ItemFn,
    /// The function's name without `r#`: `match` for `fn r#match`.
    pub(crate) name: String,
    /// Whether the function is certainly an associated item (it has a receiver or mentions
    /// `Self`), so its accessor is reached as `Self::name_timer`.
    pub(crate) in_impl: bool,
}

impl<'a> TimedFn<'a> {
    /// The function in `item`, or `None` (and an error in `cx`) for any other kind of item.
    pub(crate) fn from_item(cx: &Ctxt, item: &'a Item) -> Option<TimedFn<'a>> {
        let original = match item {
            Item::Fn(function) => function,
            other => {
                not_a_function(cx, other);
                return None;
            }
        };
        let sig = &original.sig;
        let in_impl = sig.receiver().is_some()
            || mentions_self(sig.inputs.to_token_stream())
            || mentions_self(sig.output.to_token_stream())
            || mentions_self(sig.generics.to_token_stream())
            || mentions_self(sig.generics.where_clause.to_token_stream());
        Some(TimedFn {
            original,
            name: sig.ident.unraw().to_string(),
            in_impl,
        })
    }

    pub(crate) fn is_async(&self) -> bool {
        self.original.sig.asyncness.is_some()
    }

    /// The declared return type, if it can be written in a `let` (no `impl Trait` in it).
    pub(crate) fn nameable_return_type(&self) -> Option<TokenStream> {
        match &self.original.sig.output {
            ReturnType::Default => Some(quote!(())),
            ReturnType::Type(_, ty) if !mentions_impl(ty) => Some(ty.to_token_stream()),
            ReturnType::Type(..) => None,
        }
    }
}

/// Reports an item that is not a function, pointed at its keyword and name.
fn not_a_function(cx: &Ctxt, item: &Item) {
    if let Item::Verbatim(tokens) = item {
        // A function without a body (a trait method declaration) lands here.
        if let Ok(method) = syn::parse2::<syn::TraitItemFn>(tokens.clone()) {
            cx.error_spanned_by(
                &method.sig,
                "#[timethis] needs a function body to time; \
                 put it on the implementations of this method instead",
            );
            return;
        }
    }
    cx.error_spanned_by(crate::item::head(item), NOT_A_FUNCTION);
}

/// Whether `tokens` contain the `Self` type.
fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "Self",
        TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}

/// Whether a type contains `impl Trait`, which cannot be named in a `let`.
fn mentions_impl(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn timed(item: Item) -> (bool, Option<String>) {
        let cx = Ctxt::new();
        let function = TimedFn::from_item(&cx, &item)
            .map(|f| (f.in_impl, f.nameable_return_type().map(|t| t.to_string())));
        cx.check().expect("a function");
        function.expect("a function")
    }

    #[test]
    fn impl_detection() {
        assert!(
            !timed(parse_quote!(
                fn f() {}
            ))
            .0
        );
        assert!(
            timed(parse_quote!(
                fn f(&self) {}
            ))
            .0
        );
        assert!(
            timed(parse_quote!(
                fn f(self: Box<Self>) {}
            ))
            .0
        );
        assert!(
            timed(parse_quote!(
                fn new() -> Self {
                    todo!()
                }
            ))
            .0
        );
        assert!(
            timed(parse_quote!(
                fn f(v: Vec<Self>) {}
            ))
            .0
        );
        assert!(
            timed(parse_quote!(
                fn f<T>()
                where
                    T: From<Self>,
                {
                }
            ))
            .0
        );
    }

    #[test]
    fn nameable_return_types() {
        assert_eq!(
            timed(parse_quote!(
                fn f() {}
            ))
            .1
            .as_deref(),
            Some("()")
        );
        assert_eq!(
            timed(parse_quote!(
                fn f() -> u8 {
                    0
                }
            ))
            .1
            .as_deref(),
            Some("u8")
        );
        assert_eq!(
            timed(parse_quote!(
                fn f() -> impl Copy {
                    0
                }
            ))
            .1,
            None
        );
        assert_eq!(
            timed(parse_quote!(
                fn f() -> Box<impl Copy> {
                    todo!()
                }
            ))
            .1,
            None
        );
    }

    #[test]
    fn other_items_are_errors() {
        for item in [
            parse_quote!(
                struct S;
            ),
            parse_quote!(
                enum E {}
            ),
            parse_quote!(impl S {}),
            parse_quote!(
                const C: u8 = 0;
            ),
            parse_quote!(
                mod m {}
            ),
            parse_quote!(
                fn declared_only(&self);
            ),
        ] {
            let cx = Ctxt::new();
            assert!(TimedFn::from_item(&cx, &item).is_none());
            assert!(cx.check().is_err());
        }
    }
}
