//! Rules that span the whole impl block. One `check_*` per rule, all called from `check_impl`.

use super::ast::{HookKind, ProcessImpl, ProcessStruct};
use crate::ctxt::Ctxt;

pub(crate) fn check_struct(cx: &Ctxt, model: &ProcessStruct<'_>) {
    check_name_on_generic(cx, model);
}

/// A generic type has one registration per instantiation, each with its own name.
fn check_name_on_generic(cx: &Ctxt, model: &ProcessStruct<'_>) {
    if let Some(name) = &model.attrs.name
        && !model.original.generics.params.is_empty()
    {
        cx.error_spanned_by(
            name,
            "`name` cannot be set on a generic process type: each instantiation is registered \
             with `skprocess::register!(..)` under a name of its own",
        );
    }
}

pub(crate) fn check_impl(cx: &Ctxt, model: &ProcessImpl<'_>) {
    check_run_defined(cx, model);
    check_unknown_dunders(cx, model);
}

/// A process type must define `__run__`.
fn check_run_defined(cx: &Ctxt, model: &ProcessImpl<'_>) {
    let defines_run = model
        .original
        .items
        .iter()
        .any(|item| matches!(item, syn::ImplItem::Fn(f) if f.sig.ident == "__run__"));
    if !defines_run {
        cx.error_spanned_by(
            &model.original.self_ty,
            "missing `__run__`: a process type must define `fn __run__(&mut self)`, the work of \
             one iteration",
        );
    }
}

/// `__runn__` and friends are almost certainly typos of lifecycle methods.
fn check_unknown_dunders(cx: &Ctxt, model: &ProcessImpl<'_>) {
    let known = HookKind::ALL
        .iter()
        .map(|(_, name)| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    for method in &model.unknown_dunders {
        cx.error_spanned_by(
            &method.sig.ident,
            format!(
                "unknown lifecycle method `{}`; expected one of {known} (rename it if it is a \
                 helper)",
                method.sig.ident
            ),
        );
    }
}
