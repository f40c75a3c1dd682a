//! What `#[child_init]` generates: the function, unchanged, and its entry in the registry of
//! start hooks.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::ReturnType;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use super::ast::Hook;
use super::attr::Options;
use crate::path::Root;

/// Generates the output for one hook.
pub(crate) struct Generator<'a> {
    hook: &'a Hook<'a>,
    order: i32,
    root: Root,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(hook: &'a Hook<'a>, options: &Options) -> Self {
        Generator {
            hook,
            order: options.order.unwrap_or(0),
            root: Root::new(options.crate_path.clone()),
        }
    }

    /// Calls the hook and converts what it returned, with the conversion spanned at the
    /// declared return type (so a wrong one is reported there).
    fn call(&self) -> TokenStream {
        let private = self.root.private();
        let ident = &self.hook.original.sig.ident;
        match &self.hook.original.sig.output {
            ReturnType::Default => quote! {
                #ident();
                #private::Result::Ok(())
            },
            ReturnType::Type(_, ty) => {
                let convert = quote_spanned! {ty.span()=>
                    #private::ChildInitReturn::into_result(__sk_returned)
                };
                quote! {
                    let __sk_returned = #ident();
                    #convert
                }
            }
        }
    }

    /// The registry entry, in an anonymous const so that nothing is added to the user's
    /// namespace.
    fn registration(&self) -> TokenStream {
        let private = self.root.private();
        let name = self.hook.original.sig.ident.unraw().to_string();
        let order = self.order;
        let call = self.call();
        quote! {
            const _: () = {
                #[#private::linkme::distributed_slice(#private::CHILD_INITS)]
                #[linkme(crate = #private::linkme)]
                static __SK_CHILD_INIT: #private::ChildInit = #private::ChildInit::new(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    #order,
                    ::core::concat!(::core::file!(), ":", ::core::line!(), ":", ::core::column!()),
                    __sk_child_init,
                );
                fn __sk_child_init() -> #private::Result<(), #private::Failure> {
                    #call
                }
            };
        }
    }
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.hook.original.to_tokens(tokens);
        tokens.extend(self.registration());
    }
}
