//! Where to point an error about the kind of an item: its keyword and name.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Item;

/// The tokens that name `item`'s kind: `struct Name`, `impl`, `mod name`, ... (the whole item
/// when it has no such head).
pub(crate) fn head(item: &Item) -> TokenStream {
    match item {
        Item::Const(i) => {
            let (kw, ident) = (&i.const_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Enum(i) => {
            let (kw, ident) = (&i.enum_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::ExternCrate(i) => {
            let (kw, ident) = (&i.extern_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Impl(i) => i.impl_token.to_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        Item::Mod(i) => {
            let (kw, ident) = (&i.mod_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Static(i) => {
            let (kw, ident) = (&i.static_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Struct(i) => {
            let (kw, ident) = (&i.struct_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Trait(i) => {
            let (kw, ident) = (&i.trait_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::TraitAlias(i) => {
            let (kw, ident) = (&i.trait_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Type(i) => {
            let (kw, ident) = (&i.type_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Union(i) => {
            let (kw, ident) = (&i.union_token, &i.ident);
            quote!(#kw #ident)
        }
        Item::Use(i) => i.use_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}
