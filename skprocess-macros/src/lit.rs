//! Literal values in attribute arguments: seconds, positive integers, strings, paths.
//! Shared by every macro so that `threshold = 0.5` and `join_in = 0.5` parse the same way.

use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Lit, UnOp};

use crate::ctxt::Ctxt;
use crate::symbol::Symbol;

/// The largest number of seconds accepted (about 31,700 years): far beyond any real limit, and
/// well within what a `Duration` holds.
const MAX_SECONDS: f64 = 1e12;

/// Seconds: a non-negative integer or float literal (`2`, `0.3`, `1.5e-3`). With
/// `allow_zero = false`, zero is rejected too.
pub(crate) fn seconds(
    cx: &Ctxt,
    key: Symbol,
    meta: &ParseNestedMeta<'_>,
    allow_zero: bool,
) -> syn::Result<Option<f64>> {
    let expr: Expr = meta.value()?.parse()?;
    let expected = if allow_zero {
        format!("`{key}` expects a number of seconds (zero or more), such as `{key} = 0.5`")
    } else {
        format!("`{key}` expects a number of seconds greater than zero, such as `{key} = 0.5`")
    };
    let value = match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>().ok().map(|v| v as f64),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            cx.error_spanned_by(&expr, expected);
            return Ok(None);
        }
        _ => None,
    };
    match value {
        Some(v) if v > MAX_SECONDS => {
            cx.error_spanned_by(
                &expr,
                format!("`{key}` is too large; the limit is {MAX_SECONDS:e} seconds"),
            );
            Ok(None)
        }
        Some(v) if v.is_finite() && (v > 0.0 || (allow_zero && v == 0.0)) => Ok(Some(v)),
        _ => {
            cx.error_spanned_by(&expr, expected);
            Ok(None)
        }
    }
}

/// A positive integer literal (`min` or more).
pub(crate) fn integer(
    cx: &Ctxt,
    key: Symbol,
    meta: &ParseNestedMeta<'_>,
    min: u64,
    max: u64,
) -> syn::Result<Option<u64>> {
    let expr: Expr = meta.value()?.parse()?;
    let value = match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>().ok(),
        _ => None,
    };
    match value {
        Some(v) if v > max => {
            cx.error_spanned_by(&expr, format!("`{key}` is too large; the limit is {max}"));
            Ok(None)
        }
        Some(v) if v >= min => Ok(Some(v)),
        _ => {
            let message = if min == 0 {
                format!("`{key}` expects an integer literal, such as `{key} = 10`")
            } else {
                format!(
                    "`{key}` expects an integer of at least {min}, such as `{key} = {}`",
                    min.max(3)
                )
            };
            cx.error_spanned_by(&expr, message);
            Ok(None)
        }
    }
}

/// A non-empty string literal.
pub(crate) fn string(
    cx: &Ctxt,
    key: Symbol,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<syn::LitStr>> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) if !s.value().is_empty() => Ok(Some(s)),
        other => {
            cx.error_spanned_by(
                &other,
                format!("`{key}` expects a non-empty string literal, such as `{key} = \"...\"`"),
            );
            Ok(None)
        }
    }
}

/// `crate = "path"`: a string literal holding a path.
pub(crate) fn crate_path(
    cx: &Ctxt,
    key: Symbol,
    meta: &ParseNestedMeta<'_>,
) -> syn::Result<Option<syn::Path>> {
    let Some(lit) = string(cx, key, meta)? else {
        return Ok(None);
    };
    match lit.parse::<syn::Path>() {
        Ok(path) => Ok(Some(path)),
        Err(_) => {
            cx.error_spanned_by(
                &lit,
                format!("`{key}` expects a path in a string, such as `{key} = \"my_skprocess\"`"),
            );
            Ok(None)
        }
    }
}

/// Consumes whatever value follows an unknown key (`= expr` or `(...)`), so parsing can go on
/// and report every error.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// Records "unknown attribute" for `meta`'s path.
pub(crate) fn unknown(
    cx: &Ctxt,
    macro_name: &str,
    meta: &ParseNestedMeta<'_>,
    expected: &[Symbol],
) {
    let path = &meta.path;
    let name = path.get_ident().map_or_else(
        || quote::quote!(#path).to_string().replace(' ', ""),
        ToString::to_string,
    );
    cx.syn_error(syn::Error::new(
        meta.path.span(),
        format!(
            "unknown {macro_name} attribute `{name}`; expected one of {}",
            crate::symbol::one_of(expected)
        ),
    ));
}
