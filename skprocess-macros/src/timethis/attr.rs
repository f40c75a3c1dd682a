//! The arguments of `#[timethis(..)]`: `timer`, `threshold`, `max_times`, `crate`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Lit};

use crate::ctxt::Ctxt;
use crate::symbol::{self, CRATE, MAX_TIMES, Symbol, THRESHOLD, TIMER};

/// Every key `#[timethis]` accepts, for "expected one of" messages.
const KEYS: &[Symbol] = &[TIMER, THRESHOLD, MAX_TIMES, CRATE];

/// The parsed options. Invalid values were reported to the `Ctxt` and left unset.
#[derive(Default)]
pub(crate) struct Options {
    /// `timer = EXPR`: record into this timer instead of one of the function's own.
    pub(crate) timer: Option<Expr>,
    /// `threshold = SECS`, already checked finite and non-negative.
    pub(crate) threshold: Option<f64>,
    /// `max_times = N`, already checked to be at least 1.
    pub(crate) max_times: Option<usize>,
    /// `crate = "path"`.
    pub(crate) crate_path: Option<syn::Path>,
}

impl Options {
    /// Parses the attribute's arguments, recording every error in `cx`.
    pub(crate) fn from_args(cx: &Ctxt, args: TokenStream) -> Options {
        let mut options = Options::default();
        // Keys seen so far, valid or not, to report duplicates even of invalid values.
        let mut seen: Vec<&'static str> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let Some(key) = KEYS.iter().copied().find(|key| meta.path == *key) else {
                cx.error_spanned_by(
                    &meta.path,
                    format!(
                        "unknown timethis attribute `{}`; expected one of {}",
                        path_to_string(&meta.path),
                        symbol::one_of(KEYS)
                    ),
                );
                return skip_value(&meta);
            };
            if seen.contains(&key.0) {
                cx.error_spanned_by(&meta.path, format!("duplicate timethis attribute `{key}`"));
                // Still parse the value: its own mistakes are worth reporting too.
                return options.parse_value(cx, key, &meta, false);
            }
            seen.push(key.0);
            options.parse_value(cx, key, &meta, true)
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        options
    }

    /// Parses the value of one known key; stores it when `store` and valid.
    fn parse_value(
        &mut self,
        cx: &Ctxt,
        key: Symbol,
        meta: &ParseNestedMeta<'_>,
        store: bool,
    ) -> syn::Result<()> {
        let expected = expected(key);
        if !meta.input.peek(syn::Token![=]) {
            cx.error_spanned_by(&meta.path, expected);
            return skip_value(meta);
        }
        let value: Expr = meta.value()?.parse()?;
        let inner = ungroup(&value);
        if key.0 == TIMER.0 {
            if store {
                self.timer = Some(value);
            }
        } else if key.0 == THRESHOLD.0 {
            match seconds(inner) {
                Some(secs) if store => self.threshold = Some(secs),
                Some(_) => {}
                None => cx.error_spanned_by(&value, expected),
            }
        } else if key.0 == MAX_TIMES.0 {
            match count(inner) {
                Some(n) if store => self.max_times = Some(n),
                Some(_) => {}
                None => cx.error_spanned_by(&value, expected),
            }
        } else {
            match crate_path(inner) {
                Some(path) if store => self.crate_path = Some(path),
                Some(_) => {}
                None => cx.error_spanned_by(&value, expected),
            }
        }
        Ok(())
    }
}

/// What a key expects, as an error message.
fn expected(key: Symbol) -> String {
    match key.0 {
        "timer" => "`timer` expects an expression giving the timer to record into, such as \
                    `timer = MY_TIMER` or `timer = self.timer`"
            .to_owned(),
        "threshold" => {
            "`threshold` expects a number of seconds (zero or more), such as `threshold = 0.5`"
                .to_owned()
        }
        "max_times" => {
            "`max_times` expects an integer of at least 1, such as `max_times = 1000`".to_owned()
        }
        _ => format!("`{key}` expects a path in a string, such as `{key} = \"skprocess\"`"),
    }
}

/// Looks through the invisible groups `macro_rules!` wraps around fragments, and parentheses.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => ungroup(&group.expr),
        Expr::Paren(paren) => ungroup(&paren.expr),
        other => other,
    }
}

/// A finite, non-negative integer or float literal.
fn seconds(expr: &Expr) -> Option<f64> {
    let value = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok()?,
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>().ok()? as f64,
        // Negative numbers (`-1.0`, a unary minus) and anything else.
        _ => return None,
    };
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// An integer literal of at least 1 that fits a `usize`.
fn count(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<usize>().ok().filter(|&n| n > 0),
        _ => None,
    }
}

/// A string literal holding a module-style path (`"sk"`, `"::deps::skprocess"`).
fn crate_path(expr: &Expr) -> Option<syn::Path> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s.parse_with(syn::Path::parse_mod_style).ok(),
        _ => None,
    }
}

/// Consumes whatever follows a key that is unknown or lacks its `=`: `= expr` or `(...)`, so
/// that parsing goes on and every error is reported.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _: proc_macro2::TokenTree = meta.input.parse()?;
    }
    Ok(())
}

fn path_to_string(path: &syn::Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.to_string(),
        None => path.to_token_stream().to_string().replace(' ', ""),
    }
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
        let (o, errors) = parse(quote!(
            timer = self.t,
            threshold = 0.25,
            max_times = 10,
            crate = "sk"
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(o.timer.is_some());
        assert_eq!(o.threshold, Some(0.25));
        assert_eq!(o.max_times, Some(10));
        assert!(o.crate_path.unwrap().is_ident("sk"));
    }

    #[test]
    fn integer_threshold() {
        let (o, errors) = parse(quote!(threshold = 2));
        assert!(errors.is_empty());
        assert_eq!(o.threshold, Some(2.0));
    }

    #[test]
    fn every_error_at_once() {
        let (_, errors) = parse(quote!(
            retry = 3,
            threshold = -1.0,
            max_times = 0,
            crate = sk,
            timer = A,
            timer = B
        ));
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("unknown timethis attribute `retry`; expected one of"));
        assert!(errors[1].starts_with("`threshold` expects"));
        assert!(errors[2].starts_with("`max_times` expects"));
        assert!(errors[3].starts_with("`crate` expects"));
        assert_eq!(errors[4], "duplicate timethis attribute `timer`");
    }

    #[test]
    fn bad_values() {
        for args in [
            quote!(threshold = "fast"),
            quote!(threshold = 1e999),
            quote!(threshold),
            quote!(max_times = 1.5),
            quote!(max_times = -3),
            quote!(crate = "not a path"),
        ] {
            let (_, errors) = parse(args.clone());
            assert_eq!(errors.len(), 1, "{args}: {errors:?}");
        }
    }
}
