//! `#[child_init]`: parse → model → check → generate.

mod ast;
mod attr;
mod expand;

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ctxt::Ctxt;

/// Expands `#[child_init(args)]` on `input`. On any error, the user's item comes back unchanged
/// with the errors (and is not registered), so that one mistake gives one message.
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
    let hook = ast::Hook::from_item(&cx, &item); // 3. model, with its rules
    cx.check()?; //    every error at once
    let Some(hook) = hook else {
        // `from_item` reports an error whenever it returns `None`.
        unreachable!("a non-function item without an error");
    };
    Ok(expand::Generator::new(&hook, &options).into_token_stream()) // 4. codegen
}
