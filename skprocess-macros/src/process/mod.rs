//! `#[skprocess]`: on a struct (serde, configuration defaults, registration) and on its impl
//! block (the lifecycle).
//!
//! Pipeline: parse (`syn`) → attributes ([`attr`]) → model ([`ast`]) → rules ([`check`]) →
//! generation ([`expand`], infallible). All user errors are found before generation and
//! reported together; on error the user's item is emitted unchanged next to them.

mod ast;
mod attr;
mod check;
mod expand;

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::Item;

use crate::ctxt::Ctxt;

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args.clone(), input.clone()) {
        Ok(out) => out,
        Err(err) => {
            // Keep the rest of the program type-checking: stand-ins for what the item would have
            // generated, so the user sees these errors and not a cascade.
            let mut out = match syn::parse2::<Item>(input.clone()) {
                Ok(Item::Impl(original)) => {
                    let krate = attr::ImplAttrs::from_args(&Ctxt::quiet(), args).krate;
                    let mut out = input;
                    out.extend(expand::fallback_impl_tokens(&original, krate));
                    out
                }
                Ok(Item::Struct(mut original)) => {
                    let krate = attr::StructAttrs::from_args(&Ctxt::quiet(), args).krate;
                    let taken = crate::autoreconnect::take_from(&Ctxt::quiet(), &mut original);
                    let mut out = expand::fallback_struct_tokens(&original, krate);
                    if let Some(taken) = &taken {
                        out.extend(crate::autoreconnect::use_path(taken));
                    }
                    out
                }
                _ => input,
            };
            out.extend(err.into_compile_error());
            out
        }
    }
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let item: Item = syn::parse2(input)?;
    let cx = Ctxt::new();
    let out = match &item {
        Item::Struct(original) => {
            let attrs = attr::StructAttrs::from_args(&cx, args);
            let mut original = original.clone();
            let autoreconnect = crate::autoreconnect::take_from(&cx, &mut original);
            if let Some(autoreconnect) = &autoreconnect {
                crate::autoreconnect::check(&cx, &original, autoreconnect);
            }
            let mut model = ast::ProcessStruct::from_syn(&original, attrs);
            model.autoreconnect = autoreconnect;
            check::check_struct(&cx, &model);
            cx.check()?;
            expand::struct_tokens(&model)
        }
        Item::Impl(original) => {
            let attrs = attr::ImplAttrs::from_args(&cx, args);
            let model = ast::ProcessImpl::from_syn(&cx, original, attrs);
            if let Some(model) = &model {
                check::check_impl(&cx, model);
            }
            cx.check()?;
            expand::impl_tokens(&model.expect("a model exists when there are no errors"))
        }
        other => {
            cx.syn_error(syn::Error::new_spanned(
                item_keyword(other),
                "#[skprocess] applies to a struct and to an impl block of that struct",
            ));
            cx.check()?;
            unreachable!("an error was recorded")
        }
    };
    Ok(out)
}

/// The tokens that name an item's kind (`enum`, `fn`, `trait` ...), for "wrong item" errors.
pub(crate) fn item_keyword(item: &Item) -> TokenStream {
    match item {
        Item::Enum(i) => i.enum_token.into_token_stream(),
        Item::Union(i) => i.union_token.into_token_stream(),
        Item::Trait(i) => i.trait_token.into_token_stream(),
        Item::Fn(i) => i.sig.fn_token.into_token_stream(),
        Item::Mod(i) => i.mod_token.into_token_stream(),
        Item::Type(i) => i.type_token.into_token_stream(),
        Item::Const(i) => i.const_token.into_token_stream(),
        Item::Static(i) => i.static_token.into_token_stream(),
        other => other.into_token_stream(),
    }
}
