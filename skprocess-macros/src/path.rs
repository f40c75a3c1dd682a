//! The path generated code uses to reach the runtime: `::skprocess`, or the user's
//! `crate = "..."`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// The root of every path in generated code.
#[derive(Clone)]
pub(crate) struct Root(Option<syn::Path>);

impl Root {
    /// `::skprocess`, or the path the user gave with `crate = "..."`.
    pub(crate) fn new(custom: Option<syn::Path>) -> Self {
        Root(custom)
    }

    /// `<root>::__private`: the only module generated code names.
    pub(crate) fn private(&self) -> TokenStream {
        quote!(#self::__private)
    }
}

impl ToTokens for Root {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match &self.0 {
            Some(path) => path.to_tokens(tokens),
            None => tokens.extend(quote!(::skprocess)),
        }
    }
}
