//! `#[timethis]`: parse → model → check → generate.

mod ast;
mod attr;
mod check;
mod expand;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ctxt::Ctxt;

/// Expands `#[timethis(args)]` on `input`. On any error, the user's item comes back unchanged
/// with the errors, so that one mistake gives one message.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(output) => output,
        Err(err) => {
            let mut output = input;
            output.extend(err.into_compile_error());
            output
        }
    }
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let item: syn::Item = syn::parse2(input)?; // 1. syntax (fatal)
    let cx = Ctxt::new();
    let options = attr::Options::from_args(&cx, args); // 2. attributes (collected)
    let function = ast::TimedFn::from_item(&cx, &item); // 3. model
    if let Some(function) = &function {
        check::check(&cx, function); // 4. rules
    }
    cx.check()?; //    every error at once
    let Some(function) = function else {
        // `from_item` reports an error whenever it returns `None`.
        unreachable!("a non-function item without an error");
    };
    Ok(expand::Generator::new(&function, &options).into_token_stream()) // 5. codegen
}
