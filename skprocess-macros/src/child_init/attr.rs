//! The arguments of `#[child_init(..)]`: `order`, `crate`.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

use crate::ctxt::Ctxt;
use crate::lit;
use crate::symbol::{CRATE, ORDER, Symbol};

/// Every key `#[child_init]` accepts, for "expected one of" messages.
const KEYS: &[Symbol] = &[ORDER, CRATE];

/// The parsed options. Invalid values were reported to the `Ctxt` and left unset.
#[derive(Default)]
pub(crate) struct Options {
    /// `order = N`: where the hook runs among the others (lower first; default 0).
    pub(crate) order: Option<i32>,
    /// `crate = "path"`.
    pub(crate) crate_path: Option<syn::Path>,
}

impl Options {
    /// Parses the attribute's arguments, recording every error in `cx`.
    pub(crate) fn from_args(cx: &Ctxt, args: TokenStream) -> Options {
        let mut options = Options::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let Some(key) = KEYS.iter().copied().find(|key| meta.path == *key) else {
                lit::unknown(cx, "child_init", &meta, KEYS);
                return lit::skip_value(&meta);
            };
            let store = !seen.contains(&key.0);
            if !store {
                cx.error_spanned_by(
                    &meta.path,
                    format!("duplicate child_init attribute `{key}`"),
                );
            }
            seen.push(key.0);
            if !meta.input.peek(syn::Token![=]) {
                cx.error_spanned_by(&meta.path, expected(key));
                return lit::skip_value(&meta);
            }
            if key.0 == ORDER.0 {
                let order = order(cx, &meta)?;
                if store {
                    options.order = order;
                }
            } else {
                let path = lit::crate_path(cx, key, &meta)?;
                if store {
                    options.crate_path = path;
                }
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        options
    }
}

/// What a key expects, as an error message.
fn expected(key: Symbol) -> String {
    if key.0 == ORDER.0 {
        "`order` expects an integer (an `i32`), such as `order = -10`; lower runs first".to_owned()
    } else {
        format!("`{key}` expects a path in a string, such as `{key} = \"my_skprocess\"`")
    }
}

/// `order = N`: an integer literal, possibly negative, that fits an `i32`.
fn order(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<i32>> {
    let expr: Expr = meta.value()?.parse()?;
    let value = match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<i32>().ok(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => match &**inner {
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => i
                .base10_parse::<i64>()
                .ok()
                .and_then(|v| i32::try_from(-v).ok()),
            _ => None,
        },
        _ => None,
    };
    if value.is_none() {
        cx.error_spanned_by(&expr, expected(ORDER));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(args: TokenStream) -> (Options, Vec<String>) {
        let cx = Ctxt::new();
        let options = Options::from_args(&cx, args);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        };
        (options, errors)
    }

    #[test]
    fn all_options() {
        let (o, errors) = parse(quote!(order = -2147483648, crate = "sk"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(o.order, Some(i32::MIN));
        assert!(o.crate_path.unwrap().is_ident("sk"));
        let (o, errors) = parse(quote!(order = 7));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(o.order, Some(7));
    }

    #[test]
    fn every_error_at_once() {
        let (_, errors) = parse(quote!(
            first,
            order = 1.5,
            order = 3,
            crate = sk,
            order = 2147483648
        ));
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("unknown child_init attribute `first`; expected one of"));
        assert!(errors[1].starts_with("`order` expects an integer"));
        assert_eq!(errors[2], "duplicate child_init attribute `order`");
        assert!(errors[3].starts_with("`crate` expects"));
        assert_eq!(errors[4], "duplicate child_init attribute `order`");
        assert!(errors[5].starts_with("`order` expects an integer"));
    }

    #[test]
    fn a_key_without_a_value() {
        let (_, errors) = parse(quote!(order));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("`order` expects"));
    }
}
