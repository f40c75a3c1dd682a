//! Rules about the function itself, one `check_*` per rule.

use super::ast::TimedFn;
use crate::ctxt::Ctxt;

/// Runs every rule, recording each violation in `cx`.
pub(crate) fn check(cx: &Ctxt, function: &TimedFn<'_>) {
    check_not_const(cx, function);
}

/// A `const fn` may run at compile time, where there is no clock to read.
fn check_not_const(cx: &Ctxt, function: &TimedFn<'_>) {
    if let Some(constness) = &function.original.sig.constness {
        cx.error_spanned_by(
            constness,
            "#[timethis] cannot be applied to a `const fn`: it may run at compile time, where \
             there is no clock; remove `const` or the attribute",
        );
    }
}
