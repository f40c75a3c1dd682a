//! `#[shared]` on an impl block: the request enum, the dispatch `match` and the proxy of a type
//! whose methods other processes call through a Share.
//!
//! Pipeline: parse → attributes → model (one [`Method`] per proxied method, every rule checked
//! as it is built, all errors reported together) → generation. On error the user's impl block
//! is emitted unchanged next to the errors.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type, Visibility,
};

use crate::ctxt::Ctxt;
use crate::lit;
use crate::path::Root;
use crate::symbol::{CRATE, SKIP};

/// Methods of `Shared<T>` itself: a proxied method of the same name would be hidden by them.
const RESERVED: &[&str] = &["within", "share", "entry_name"];

pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(out) => out,
        Err(err) => {
            // Keep the user's impl (without our helper attributes) so the rest type-checks.
            let mut out = match syn::parse2::<ItemImpl>(input.clone()) {
                Ok(mut original) => {
                    strip_skip_attributes(&mut original);
                    original.into_token_stream()
                }
                Err(_) => input,
            };
            out.extend(err.into_compile_error());
            out
        }
    }
}

/// One proxied method.
struct Method {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    mutable: bool,
    /// (name used in the proxy, type with `Self` replaced)
    args: Vec<(Ident, Type)>,
    output: Type,
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let krate = crate_arg(&cx, args);
    let item: syn::Item = syn::parse2(input)?;
    let syn::Item::Impl(mut item) = item else {
        cx.error_spanned_by(
            crate::process::item_keyword(&item),
            "#[shared] applies to an impl block of a struct or enum: `#[shared] impl Counter { .. }`",
        );
        cx.check()?;
        unreachable!("an error was recorded")
    };
    if let Some((trait_path, _)) = &item.trait_ {
        cx.error_spanned_by(
            trait_path,
            "#[shared] applies to an inherent impl block, not a trait impl: put the methods other \
             processes call in `impl Type { .. }`",
        );
    }
    for lifetime in item.generics.lifetimes() {
        cx.error_spanned_by(
            lifetime,
            "a shared type cannot borrow: it lives on the coordinator and crosses processes; \
             make it own its data (`'static`)",
        );
    }
    let self_ty = (*item.self_ty).clone();
    let methods = collect_methods(&cx, &item, &self_ty);
    cx.check()?;
    strip_skip_attributes(&mut item);
    let root = Root::new(krate);
    Ok(generate(&root, &item, &self_ty, &methods))
}

fn crate_arg(cx: &Ctxt, args: TokenStream) -> Option<syn::Path> {
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path == CRATE {
            if krate.is_some() {
                cx.error_spanned_by(&meta.path, "duplicate `crate` option");
            }
            krate = lit::crate_path(cx, CRATE, &meta)?;
        } else {
            lit::unknown(cx, "shared", &meta, &[CRATE]);
            lit::skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(err) = syn::parse::Parser::parse2(parser, args) {
        cx.syn_error(err);
    }
    krate
}

/// Whether a method carries `#[shared(skip)]`; other uses of `#[shared]` on a method are
/// reported.
fn is_skipped(cx: &Ctxt, attrs: &[Attribute]) -> bool {
    let mut skip = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("shared")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path == SKIP {
                skip = true;
                Ok(())
            } else {
                Err(meta.error("expected `#[shared(skip)]` on a method"))
            }
        });
        if let Err(err) = parsed {
            cx.syn_error(err);
        }
    }
    skip
}

fn strip_skip_attributes(item: &mut ItemImpl) {
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            method.attrs.retain(|a| !a.path().is_ident("shared"));
        }
    }
}

fn collect_methods(cx: &Ctxt, item: &ItemImpl, self_ty: &Type) -> Vec<Method> {
    let mut methods = Vec::new();
    for impl_item in &item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        if is_skipped(cx, &method.attrs) {
            continue;
        }
        // Associated functions (constructors and helpers) stay on the type only.
        let Some(FnArg::Receiver(receiver)) = method.sig.inputs.first() else {
            continue;
        };
        if let Some(model) = method_model(cx, method, receiver, self_ty) {
            methods.push(model);
        }
    }
    methods
}

fn method_model(
    cx: &Ctxt,
    method: &ImplItemFn,
    receiver: &syn::Receiver,
    self_ty: &Type,
) -> Option<Method> {
    let sig = &method.sig;
    let name = &sig.ident;
    let mut ok = true;
    let mut fail = |tokens: &dyn ToTokens, message: String| {
        cx.error_spanned_by(tokens.to_token_stream(), message);
        ok = false;
    };
    let mutable = match &receiver.kind {
        syn::ReceiverKind::Reference(_, _, mutability) => Some(mutability.is_some()),
        _ => None,
    };
    if matches!(receiver.kind, syn::ReceiverKind::Value) {
        fail(
            receiver,
            format!(
                "`{name}` takes `self` by value and cannot be called through a Share: the object \
                 stays on the coordinator; take `&self` or `&mut self`, or mark the method \
                 `#[shared(skip)]`"
            ),
        );
    } else if mutable.is_none() {
        fail(
            receiver,
            format!("`{name}`: only `&self` and `&mut self` receivers can be shared"),
        );
    }
    if !sig.generics.params.is_empty() {
        fail(
            &sig.generics,
            format!(
                "`{name}` is generic and cannot be called through a Share: the coordinator must \
                 know every argument type; use concrete types, or mark the method \
                 `#[shared(skip)]`"
            ),
        );
    }
    if let Some(asyncness) = &sig.asyncness {
        fail(
            asyncness,
            format!(
                "`{name}` is async: shared methods run to the end on the coordinator; make it a plain `fn`, or mark it `#[shared(skip)]`"
            ),
        );
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        fail(
            unsafety,
            format!(
                "`{name}` is unsafe and cannot be called through a Share; mark it `#[shared(skip)]`"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            variadic,
            format!("`{name}` is variadic and cannot be shared"),
        );
    }
    if RESERVED.contains(&name.to_string().as_str()) {
        fail(
            name,
            format!(
                "a shared method cannot be named `{name}`: `Shared<T>` has a method of that name, \
                 which would hide it; rename it, or mark it `#[shared(skip)]`"
            ),
        );
    }
    let mut args = Vec::new();
    for (index, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        if let Some(problem) = unsendable(&typed.ty) {
            fail(
                &typed.ty,
                format!(
                    "`{name}` takes {problem}, which cannot cross to the coordinator: take an \
                     owned value (`String` for `&str`, `Vec<T>` for `&[T]`), or mark the method \
                     `#[shared(skip)]`"
                ),
            );
        }
        let arg_name = match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => pat.ident.clone(),
            _ => format_ident!("__arg{}", index),
        };
        args.push((arg_name, replace_self(&typed.ty, self_ty)));
    }
    let output = match &sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => {
            if let Some(problem) = unsendable(ty) {
                fail(
                    ty,
                    format!(
                        "`{name}` returns {problem}, which cannot come back from the coordinator: \
                         return an owned value, or mark the method `#[shared(skip)]`"
                    ),
                );
            }
            replace_self(ty, self_ty)
        }
    };
    ok.then(|| Method {
        attrs: method
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg"))
            .cloned()
            .collect(),
        vis: method.vis.clone(),
        name: name.clone(),
        mutable: mutable.unwrap_or(false),
        args,
        output,
    })
}

/// What in a type cannot cross processes: a reference, a borrowed lifetime, `impl Trait`.
fn unsendable(ty: &Type) -> Option<&'static str> {
    match ty {
        Type::Reference(_) => Some("a reference"),
        Type::ImplTrait(_) => Some("an `impl Trait`"),
        Type::Ptr(_) => Some("a raw pointer"),
        Type::FnPtr(_) => Some("a function pointer"),
        Type::TraitObject(_) => Some("a trait object"),
        _ => tokens_unsendable(ty.to_token_stream()),
    }
}

/// Looks inside a type's tokens for a nested reference, lifetime or `impl`.
fn tokens_unsendable(tokens: TokenStream) -> Option<&'static str> {
    let mut previous_lt = false;
    for tree in tokens {
        match tree {
            TokenTree::Punct(p) if p.as_char() == '&' => return Some("a reference"),
            TokenTree::Punct(p) if p.as_char() == '\'' => previous_lt = true,
            TokenTree::Ident(ident) if previous_lt => {
                previous_lt = false;
                if ident != "static" {
                    return Some("a borrowed value (a lifetime)");
                }
            }
            TokenTree::Ident(ident) if ident == "impl" => return Some("an `impl Trait`"),
            TokenTree::Ident(ident) if ident == "dyn" => return Some("a trait object"),
            TokenTree::Group(group) => {
                if let Some(problem) = tokens_unsendable(group.stream()) {
                    return Some(problem);
                }
            }
            _ => previous_lt = false,
        }
    }
    None
}

/// `ty` with every `Self` replaced by the impl's type (generated items live outside the impl).
fn replace_self(ty: &Type, self_ty: &Type) -> Type {
    fn walk(tokens: TokenStream, self_ty: &Type) -> TokenStream {
        tokens
            .into_iter()
            .map(|tree| match tree {
                TokenTree::Ident(ident) if ident == "Self" => {
                    let mut out = TokenStream::new();
                    // Spanned like the `Self` it replaces.
                    out.extend(quote_spanned!(ident.span()=> #self_ty));
                    TokenTree::Group(proc_macro2::Group::new(proc_macro2::Delimiter::None, out))
                }
                TokenTree::Group(group) => {
                    let mut new =
                        proc_macro2::Group::new(group.delimiter(), walk(group.stream(), self_ty));
                    new.set_span(group.span());
                    TokenTree::Group(new)
                }
                other => other,
            })
            .collect()
    }
    syn::parse2(walk(ty.to_token_stream(), self_ty)).unwrap_or_else(|_| ty.clone())
}

/// The last path segment of the type, for naming generated items.
fn type_ident(self_ty: &Type) -> Ident {
    match self_ty {
        Type::Path(path) => path.path.segments.last().map_or_else(
            || Ident::new("Shared", Span::call_site()),
            |s| s.ident.clone(),
        ),
        _ => Ident::new("Shared", Span::call_site()),
    }
}

fn generate(root: &Root, item: &ItemImpl, self_ty: &Type, methods: &[Method]) -> TokenStream {
    let private = root.private();
    let ident = type_ident(self_ty);
    let call = format_ident!("__{}SharedCall", ident);
    let proxy = format_ident!("{}Proxy", ident);
    let serde_crate = format!("{}::serde", quote!(#private)).replace(' ', "");
    let type_doc = format!("`{}`", self_ty.to_token_stream()).replace(' ', "");

    // Generic types: the generated items take the impl's parameters; unused type parameters
    // are held by a variant that can never exist. Generic types are not registered (a value
    // of one can only be inserted by the owner).
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let type_params: Vec<&Ident> = item.generics.type_params().map(|p| &p.ident).collect();
    let decl_params = item.generics.params.iter().map(|param| match param {
        syn::GenericParam::Type(t) => t.ident.to_token_stream(),
        other => other.to_token_stream(),
    });
    let decl_generics = if item.generics.params.is_empty() {
        quote!()
    } else {
        quote!(<#(#decl_params),*>)
    };
    let phantom_ty = quote!(::core::marker::PhantomData<fn() -> (#(#type_params,)*)>);
    let (phantom_variant, phantom_arm, phantom_field, phantom_value) = if type_params.is_empty() {
        (quote!(), quote!(), quote!(), quote!())
    } else {
        (
            quote! {
                #[serde(skip)]
                #[doc(hidden)]
                __Phantom(#phantom_ty, ::core::convert::Infallible),
            },
            quote!(#call::__Phantom(_, never) => match *never {},),
            quote!(, #phantom_ty),
            quote!(, ::core::marker::PhantomData),
        )
    };
    let registration = if item.generics.params.is_empty() {
        quote! {
            #[#private::linkme::distributed_slice(#private::SHARED_TYPES)]
            #[linkme(crate = #private::linkme)]
            static __SK_SHARED_ENTRY: #private::SharedTypeEntry = #private::SharedTypeEntry {
                type_name: ::core::any::type_name::<#self_ty>,
                build: #private::build_object::<#self_ty>,
            };
        }
    } else {
        quote!()
    };
    let proxy_name = proxy.to_string();
    let phantom_arm_owned = if type_params.is_empty() {
        quote!()
    } else {
        quote!(#call::__Phantom(_, never) => match never {},)
    };

    let variants = methods.iter().map(|m| {
        let name = &m.name;
        let types = m.args.iter().map(|(_, ty)| ty);
        let cfgs = m.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        quote!(#(#cfgs)* #name(#(#types),*))
    });
    let arm = |m: &Method, body: TokenStream| {
        let name = &m.name;
        let cfgs = m.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        quote!(#(#cfgs)* #call::#name(..) => #body,)
    };
    let is_mut_arms = methods.iter().map(|m| {
        let mutable = m.mutable;
        arm(m, quote!(#mutable))
    });
    let method_arms = methods.iter().map(|m| {
        let name = m.name.to_string();
        arm(m, quote!(#name))
    });
    let dispatch_arm = |m: &Method| {
        let name = &m.name;
        let bindings: Vec<Ident> = (0..m.args.len())
            .map(|i| format_ident!("__a{}", i))
            .collect();
        let cfgs = m.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        quote! {
            #(#cfgs)* #call::#name(#(#bindings),*) =>
                #private::encode_reply(&<#self_ty>::#name(self, #(#bindings),*)),
        }
    };
    let ref_arms = methods.iter().filter(|m| !m.mutable).map(dispatch_arm);
    let mut_arms = methods.iter().map(dispatch_arm);
    let (is_mut_body, method_body, ref_body, mut_body) =
        if methods.is_empty() && type_params.is_empty() {
            (
                quote!(match *call {}),
                quote!(match *call {}),
                quote!(match call {}),
                quote!(match call {}),
            )
        } else {
            (
                quote!(match call { #(#is_mut_arms)* #phantom_arm }),
                quote!(match call { #(#method_arms)* #phantom_arm }),
                quote! {
                    #[allow(unreachable_patterns)]
                    match call {
                        #(#ref_arms)*
                        _ => #private::Err(::core::convert::From::from(
                            "a `&mut self` method was sent to the shared-lock path",
                        )),
                    }
                },
                quote!(match call { #(#mut_arms)* #phantom_arm_owned }),
            )
        };

    let proxy_methods = methods.iter().map(|m| {
        let name = &m.name;
        let vis = &m.vis;
        let attrs = &m.attrs;
        let output = &m.output;
        let names: Vec<&Ident> = m.args.iter().map(|(n, _)| n).collect();
        let types: Vec<&Type> = m.args.iter().map(|(_, t)| t).collect();
        let name_str = name.to_string();
        let (invoke, this) = if m.mutable {
            (quote!(__invoke_mut), quote!(&mut #self_ty))
        } else {
            (quote!(__invoke_ref), quote!(&#self_ty))
        };
        let doc = format!(
            "Calls [`{}::{name}`] on the coordinator and returns what it returned.",
            type_doc.trim_matches('`')
        );
        quote! {
            #(#attrs)*
            #[doc = #doc]
            #vis fn #name(&self, #(#names: #types),*)
                -> #private::Result<#output, #private::ShareError>
            {
                self.0.#invoke::<#self_ty, (#(#types,)*), #output>(
                    #name_str,
                    (#(#names,)*),
                    |__this: #this, (#(#names,)*): (#(#types,)*)| <#self_ty>::#name(__this, #(#names),*),
                    |(#(#names,)*): (#(#types,)*)| #call::#name(#(#names),*),
                )
            }
        }
    });

    // Each argument and return type is checked where it is written.
    let checks = methods.iter().flat_map(|m| {
        m.args
            .iter()
            .map(|(_, ty)| ty)
            .chain(std::iter::once(&m.output))
            .map(|ty| quote_spanned!(ty.span()=> #private::assert_transferable::<#ty>();))
            .collect::<Vec<_>>()
    });

    let proxy_doc = format!(
        "The proxy of {type_doc} in a Share: each method runs the method of the same name on \
         the Share's coordinator (generated by `#[shared]`)."
    );
    let call_doc = format!("The calls of {type_doc}'s shared methods (generated by `#[shared]`).");
    quote! {
        #item

        #[doc = #call_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, unreachable_pub, missing_docs, private_interfaces)]
        #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        pub enum #call #decl_generics {
            #(#variants,)*
            #phantom_variant
        }

        #[doc = #proxy_doc]
        #[allow(unreachable_pub)]
        pub struct #proxy #decl_generics (#private::Handle #phantom_field) #where_clause;

        impl #impl_generics ::core::fmt::Debug for #proxy #ty_generics #where_clause {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_tuple(#proxy_name).field(&self.0).finish()
            }
        }

        impl #impl_generics #private::Proxy for #proxy #ty_generics #where_clause {
            fn __from_handle(handle: #private::Handle) -> Self {
                #proxy(handle #phantom_value)
            }
            fn __handle(&self) -> &#private::Handle {
                &self.0
            }
        }

        #[allow(clippy::unused_unit, clippy::too_many_arguments)]
        impl #impl_generics #proxy #ty_generics #where_clause {
            #(#proxy_methods)*
        }

        impl #impl_generics #private::SharedObject for #self_ty #where_clause {
            type Call = #call #ty_generics;

            fn __is_mut(call: &Self::Call) -> bool {
                #is_mut_body
            }

            fn __method(call: &Self::Call) -> &'static str {
                #method_body
            }

            fn __dispatch_ref(&self, call: Self::Call) -> #private::Result<::std::vec::Vec<u8>, ::std::string::String> {
                #ref_body
            }

            fn __dispatch_mut(&mut self, call: Self::Call) -> #private::Result<::std::vec::Vec<u8>, ::std::string::String> {
                #mut_body
            }
        }

        impl #impl_generics #private::Shareable for #self_ty #where_clause {
            type Proxy = #proxy #ty_generics;

            fn __expect() -> #private::ValueKind {
                #private::object_kind::<Self>()
            }

            fn __into_stored(self) -> #private::StoredValue {
                #private::object_stored(self)
            }

            fn __encode(&self) -> #private::Result<#private::EncodedValue, ::std::string::String> {
                #private::object_encoded(self)
            }
        }

        const _: () = {
            #registration

            #[allow(dead_code)]
            fn __sk_check_types #impl_generics () #where_clause {
                #(#checks)*
            }
        };
    }
}
