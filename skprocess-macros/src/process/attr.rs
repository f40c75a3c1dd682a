//! `#[skprocess(..)]` arguments.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;

use crate::ctxt::Ctxt;
use crate::lit;
use crate::symbol::*;

/// Keys accepted on the struct.
const STRUCT_KEYS: &[Symbol] = &[RUNS, JOIN_IN, LIVES, TIMEOUTS, TIMER_WINDOW, NAME, CRATE];
/// Sections accepted in `timeouts(..)`.
const SECTIONS: &[Symbol] = &[PRERUN, RUN, POSTRUN, ONFINISH, RESULT, ERROR];

/// One attribute value, remembering where it was written (for duplicate errors).
pub(crate) struct Attr<T> {
    name: Symbol,
    value: Option<(proc_macro2::Span, T)>,
}

impl<T> Attr<T> {
    fn none(name: Symbol) -> Self {
        Attr { name, value: None }
    }

    /// Sets the value, or records a duplicate error at the second key.
    fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>, what: &str, value: Option<T>) {
        if self.value.is_some() {
            cx.syn_error(syn::Error::new(
                meta.path.span(),
                format!("duplicate {what} attribute `{}`", self.name),
            ));
        } else if let Some(value) = value {
            self.value = Some((meta.path.span(), value));
        }
    }

    pub(crate) fn get(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }
}

/// The struct's configuration defaults and options.
pub(crate) struct StructAttrs {
    pub(crate) runs: Option<u64>,
    pub(crate) join_in: Option<f64>,
    pub(crate) lives: Option<u64>,
    /// `(section, seconds)` for each `timeouts(..)` entry.
    pub(crate) timeouts: Vec<(Symbol, f64)>,
    pub(crate) timer_window: Option<u64>,
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) krate: Option<syn::Path>,
}

impl StructAttrs {
    /// No configuration keys, only where the crate is (the stand-in for a struct whose
    /// attributes had errors).
    pub(crate) fn without_keys(krate: Option<syn::Path>) -> StructAttrs {
        StructAttrs {
            runs: None,
            join_in: None,
            lives: None,
            timeouts: Vec::new(),
            timer_window: None,
            name: None,
            krate,
        }
    }

    pub(crate) fn from_args(cx: &Ctxt, args: TokenStream) -> StructAttrs {
        let mut runs = Attr::none(RUNS);
        let mut join_in = Attr::none(JOIN_IN);
        let mut lives = Attr::none(LIVES);
        let mut timeouts = Attr::none(TIMEOUTS);
        let mut timer_window = Attr::none(TIMER_WINDOW);
        let mut name = Attr::none(NAME);
        let mut krate = Attr::none(CRATE);
        const WHAT: &str = "skprocess";
        let parser = syn::meta::parser(|meta| {
            if meta.path == RUNS {
                let v = lit::integer(cx, RUNS, &meta, 0, u64::MAX)?;
                runs.set(cx, &meta, WHAT, v);
            } else if meta.path == JOIN_IN {
                let v = lit::seconds(cx, JOIN_IN, &meta, false)?;
                join_in.set(cx, &meta, WHAT, v);
            } else if meta.path == LIVES {
                let v = lit::integer(cx, LIVES, &meta, 1, u64::from(u32::MAX))?;
                lives.set(cx, &meta, WHAT, v);
            } else if meta.path == TIMER_WINDOW {
                let v = lit::integer(cx, TIMER_WINDOW, &meta, 1, u64::from(u32::MAX))?;
                timer_window.set(cx, &meta, WHAT, v);
            } else if meta.path == NAME {
                let v = process_name(cx, &meta)?;
                name.set(cx, &meta, WHAT, v);
            } else if meta.path == CRATE {
                let v = lit::crate_path(cx, CRATE, &meta)?;
                krate.set(cx, &meta, WHAT, v);
            } else if meta.path == TIMEOUTS {
                if !meta.input.peek(syn::token::Paren) {
                    cx.syn_error(meta.error(
                        "`timeouts` expects a list of sections, such as `timeouts(run = 2.0)`",
                    ));
                    lit::skip_value(&meta)?;
                    return Ok(());
                }
                let v = parse_timeouts(cx, &meta)?;
                timeouts.set(cx, &meta, WHAT, Some(v));
            } else {
                lit::unknown(cx, WHAT, &meta, STRUCT_KEYS);
                lit::skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        StructAttrs {
            runs: runs.get(),
            join_in: join_in.get(),
            lives: lives.get(),
            timeouts: timeouts.get().unwrap_or_default(),
            timer_window: timer_window.get(),
            name: name.get(),
            krate: krate.get(),
        }
    }
}

/// The prefix of the runtime's own registry entries (`skprocess::pool-worker`,
/// `skprocess::self-check`): a process type registered under such a name would clash with them.
const RESERVED_NAME_PREFIX: &str = "skprocess::";

/// `name = "..."`: a string literal, not empty and outside the runtime's own namespace.
fn process_name(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<syn::LitStr>> {
    let expr: syn::Expr = meta.value()?.parse()?;
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(lit),
        ..
    }) = &expr
    else {
        cx.error_spanned_by(
            &expr,
            "`name` expects a string literal, such as `name = \"my-app::worker\"`",
        );
        return Ok(None);
    };
    let value = lit.value();
    if value.is_empty() {
        cx.error_spanned_by(
            lit,
            "`name` cannot be empty; choose a name such as `name = \"my-app::worker\"`, or leave \
             `name` out to use the default",
        );
        Ok(None)
    } else if value.starts_with(RESERVED_NAME_PREFIX) {
        cx.error_spanned_by(
            lit,
            format!(
                "names starting with `{RESERVED_NAME_PREFIX}` are reserved for the runtime's own \
                 entries; choose another name"
            ),
        );
        Ok(None)
    } else {
        Ok(Some(lit.clone()))
    }
}

fn parse_timeouts(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<(Symbol, f64)>> {
    let mut sections: Vec<Attr<f64>> = SECTIONS.iter().map(|s| Attr::none(*s)).collect();
    meta.parse_nested_meta(|inner| {
        match SECTIONS.iter().position(|s| inner.path == *s) {
            Some(i) => {
                let key = SECTIONS[i];
                let v = lit::seconds(cx, key, &inner, false)?;
                sections[i].set(cx, &inner, "skprocess timeouts", v);
            }
            None => {
                let name = inner
                    .path
                    .get_ident()
                    .map_or_else(String::new, ToString::to_string);
                cx.syn_error(syn::Error::new(
                    inner.path.span(),
                    format!(
                        "unknown section `{name}` in `timeouts`; expected one of {}",
                        one_of(SECTIONS)
                    ),
                ));
                lit::skip_value(&inner)?;
            }
        }
        Ok(())
    })?;
    Ok(SECTIONS
        .iter()
        .zip(sections)
        .filter_map(|(s, attr)| attr.get().map(|v| (*s, v)))
        .collect())
}

/// The impl block's options: only `crate`.
pub(crate) struct ImplAttrs {
    pub(crate) krate: Option<syn::Path>,
}

impl ImplAttrs {
    pub(crate) fn from_args(cx: &Ctxt, args: TokenStream) -> ImplAttrs {
        let mut krate = Attr::none(CRATE);
        let parser = syn::meta::parser(|meta| {
            if meta.path == CRATE {
                let v = lit::crate_path(cx, CRATE, &meta)?;
                krate.set(cx, &meta, "skprocess", v);
            } else if STRUCT_KEYS.iter().any(|k| meta.path == *k) {
                let name = meta
                    .path
                    .get_ident()
                    .map_or_else(String::new, ToString::to_string);
                cx.syn_error(syn::Error::new(
                    meta.path.span(),
                    format!(
                        "`{name}` configures the process and belongs on the struct: put \
                         `#[skprocess({name} = ...)]` on the struct definition, or set it in \
                         `__config__`"
                    ),
                ));
                lit::skip_value(&meta)?;
            } else {
                lit::unknown(cx, "skprocess", &meta, &[CRATE]);
                lit::skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = parser.parse2(args) {
            cx.syn_error(err);
        }
        ImplAttrs { krate: krate.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(args: TokenStream) -> (StructAttrs, Vec<String>) {
        let cx = Ctxt::new();
        let attrs = StructAttrs::from_args(&cx, args);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
        };
        (attrs, errors)
    }

    #[test]
    fn names() {
        let (attrs, errors) = parse(quote!(name = "my-app::worker"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(attrs.name.unwrap().value(), "my-app::worker");

        // Only the exact prefix is reserved.
        let (attrs, errors) = parse(quote!(name = "skprocess-worker"));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(attrs.name.is_some());
    }

    #[test]
    fn reserved_and_empty_names() {
        for (args, expected) in [
            (quote!(name = "skprocess::pool-worker"), "are reserved"),
            (quote!(name = "skprocess::"), "are reserved"),
            (quote!(name = ""), "cannot be empty"),
            (quote!(name = 3), "expects a string literal"),
        ] {
            let (attrs, errors) = parse(args);
            assert!(attrs.name.is_none());
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(expected), "{errors:?}");
        }
    }

    #[test]
    fn every_error_at_once() {
        let (_, errors) = parse(quote!(name = "", lives = 0, name = "skprocess::x"));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
