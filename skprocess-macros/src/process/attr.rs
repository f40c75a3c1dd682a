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
                let v = lit::string(cx, NAME, &meta)?;
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
