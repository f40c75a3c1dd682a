//! The item `#[child_init]` is applied to: a plain function with no arguments, and the rules
//! it must follow.

use syn::{Item, ItemFn};

use crate::ctxt::Ctxt;

/// A start hook.
pub(crate) struct Hook<'a> {
    pub(crate) original: &'a ItemFn,
}

impl<'a> Hook<'a> {
    /// The function in `item`, checked; `None` (and an error in `cx`) for any other kind of
    /// item. A function that breaks a rule is returned too, with the errors recorded.
    pub(crate) fn from_item(cx: &Ctxt, item: &'a Item) -> Option<Hook<'a>> {
        let Item::Fn(original) = item else {
            cx.error_spanned_by(
                crate::item::head(item),
                "#[child_init] can only be applied to a function (`fn setup() { .. }`)",
            );
            return None;
        };
        let sig = &original.sig;
        if let Some(asyncness) = &sig.asyncness {
            cx.error_spanned_by(
                asyncness,
                "a #[child_init] hook cannot be `async`: it runs before anything could poll it; \
                 block on the future inside a plain `fn` instead",
            );
        }
        if let syn::Safety::Unsafe(unsafety) = &sig.safety {
            cx.error_spanned_by(
                unsafety,
                "a #[child_init] hook cannot be `unsafe fn`: the runtime calls it without \
                 upholding anything; make it safe and put an `unsafe` block inside",
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            cx.error_spanned_by(
                &sig.generics,
                "a #[child_init] hook cannot be generic: the runtime calls it with no type \
                 arguments",
            );
        }
        if !sig.inputs.is_empty() || sig.variadic.is_some() {
            let inputs = &sig.inputs;
            let variadic = &sig.variadic;
            cx.error_spanned_by(
                quote::quote!(#inputs #variadic),
                "a #[child_init] hook takes no arguments: it runs before the child has any \
                 value; read what it needs from the environment, a file or a constant",
            );
        }
        Some(Hook { original })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn errors(item: Item) -> Vec<String> {
        let cx = Ctxt::new();
        let _ = Hook::from_item(&cx, &item);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn plain_functions_pass() {
        assert!(
            errors(parse_quote!(
                fn setup() {}
            ))
            .is_empty()
        );
        assert!(
            errors(parse_quote!(
                pub(crate) fn setup() -> Result<(), String> {
                    Ok(())
                }
            ))
            .is_empty()
        );
        assert!(
            errors(parse_quote!(
                const fn setup() {}
            ))
            .is_empty()
        );
    }

    #[test]
    fn every_rule_at_once() {
        let errors = errors(parse_quote!(
            async unsafe fn setup<T>(x: T) {}
        ));
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].contains("cannot be `async`"));
        assert!(errors[1].contains("cannot be `unsafe fn`"));
        assert!(errors[2].contains("cannot be generic"));
        assert!(errors[3].contains("takes no arguments"));
    }

    #[test]
    fn other_items_are_refused() {
        for item in [
            parse_quote!(
                struct S;
            ),
            parse_quote!(
                static S: u8 = 0;
            ),
            parse_quote!(
                impl S {}
            ),
        ] {
            let errors = errors(item);
            assert_eq!(errors.len(), 1);
            assert!(errors[0].starts_with("#[child_init] can only be applied to a function"));
        }
    }
}
