//! Procedural macros for [skprocess](https://docs.rs/skprocess-runtime).
//!
//! Do not depend on this crate directly: depend on `skprocess-runtime` (imported as `skprocess`),
//! which re-exports every macro here with its documentation. Generated code names only
//! `::skprocess::__private`, so users need no other dependency.

mod ctxt;
mod path;
mod symbol;
mod timethis;

use proc_macro::TokenStream;

/// Times every call of a function or method in an [`Sktimer`].
///
/// See the documentation of `skprocess::timethis` for the options and generated items.
///
/// [`Sktimer`]: https://docs.rs/skprocess-runtime/latest/skprocess/timing/struct.Sktimer.html
#[proc_macro_attribute]
pub fn timethis(args: TokenStream, input: TokenStream) -> TokenStream {
    timethis::expand(args.into(), input.into()).into()
}
