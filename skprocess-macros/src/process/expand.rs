//! Code generation for `#[skprocess]`. Infallible: every user error was found before.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{ArgRole, Hook, HookKind, ProcessImpl, ProcessStruct, ReturnShape};
use super::attr::StructAttrs;
use crate::path::Root;

/// The struct, with serde derives and its configuration defaults.
pub(crate) fn struct_tokens(model: &ProcessStruct<'_>) -> TokenStream {
    let root = Root::new(model.attrs.krate.clone());
    let private = root.private();
    let original = model.original;
    let ident = &original.ident;
    let (impl_generics, ty_generics, where_clause) = original.generics.split_for_impl();

    let serde_crate = format!("{}::serde", quote!(#private)).replace(' ', "");
    let mut derives = Vec::new();
    if !model.derives_serialize {
        derives.push(quote!(#private::serde::Serialize));
    }
    if !model.derives_deserialize {
        derives.push(quote!(#private::serde::Deserialize));
    }
    let serde_attrs = if derives.is_empty() {
        quote!()
    } else {
        quote! {
            #[derive(#(#derives),*)]
            #[serde(crate = #serde_crate)]
        }
    };

    // Each field through `CrossField`: one error at a field that cannot cross, not serde's.
    let checked;
    let mut shared_pointer = false;
    let original = if derives.len() == 2 && original.generics.params.is_empty() {
        checked = with_cross_checks(original, &private);
        shared_pointer = checked.1;
        &checked.0
    } else {
        original
    };
    // An `Rc` field is already one error at the field (`CrossShared`, implemented for no type),
    // and rustc would add three more ("`Rc` cannot be sent between threads") at the struct and
    // its impl block. Claiming `Send` keeps them out. This is sound only because the build is
    // certain to fail: serde's derive names the field's `serialize_with` path whenever the
    // struct has no container attribute of its own (`into`, `from` and the like make serde
    // skip the fields) and the field none either (checked in `with_cross_checks`).
    let container_attrs = original
        .attrs
        .iter()
        .any(|a| a.path().is_ident("serde") || a.path().is_ident("cfg_attr"));
    let no_send_cascade = (shared_pointer && !container_attrs).then(|| {
        quote! {
            #[doc(hidden)]
            // SAFETY: never part of a program that builds: the `Rc`/`Arc` field's
            // `<_ as CrossShared>::serialize` is named by serde's derive, and `CrossShared` has
            // no implementations.
            unsafe impl #impl_generics ::core::marker::Send for #ident #ty_generics #where_clause {}
        }
    });

    let attrs = &model.attrs;
    let mut settings = Vec::new();
    if let Some(runs) = attrs.runs {
        let runs = runs as usize;
        settings.push(quote!(__sk_config.runs = #private::Some(#runs);));
    }
    if let Some(secs) = attrs.join_in {
        settings.push(
            quote!(__sk_config.join_in = #private::Some(#private::Duration::from_secs_f64(#secs));),
        );
    }
    if let Some(lives) = attrs.lives {
        let lives = lives as u32;
        settings.push(quote!(__sk_config.lives = #lives;));
    }
    if let Some(window) = attrs.timer_window {
        let window = window as usize;
        settings.push(quote!(__sk_config.timer_window = #window;));
    }
    for (section, secs) in &attrs.timeouts {
        let field = syn::Ident::new(section.0, proc_macro2::Span::call_site());
        settings.push(quote!(
            __sk_config.timeouts.#field = #private::Some(#private::Duration::from_secs_f64(#secs));
        ));
    }
    let config_param = if settings.is_empty() {
        quote!(_: &mut #private::ProcessConfig)
    } else {
        quote!(__sk_config: &mut #private::ProcessConfig)
    };

    let name = match &attrs.name {
        Some(name) => quote!(#private::Some(#name)),
        None => quote!(#private::None),
    };

    let connect_fields = model
        .autoreconnect
        .as_ref()
        .map(|ar| crate::autoreconnect::connect_fields_tokens(&private, original, ar));

    quote! {
        #serde_attrs
        #original
        #no_send_cascade

        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #private::ProcessStruct for #ident #ty_generics #where_clause {
                const NAME: #private::Option<&'static str> = #name;

                fn apply_attributes(#config_param) {
                    #(#settings)*
                }

                #connect_fields
            }
        };
    }
}

/// The struct with `#[serde(serialize_with, deserialize_with)]` on every field that has no
/// `#[serde]` attribute of its own, through `CrossField` (or `CrossShared` for an `Rc`/`Arc`),
/// spanned at the field's type. The functions are the field type's own serde implementations,
/// so the bytes are the same; a type without them is one error at the field, saying what to do.
/// (rustc reports the serialize and deserialize obligations once: same span, same message.)
///
/// Also returns whether some field is an `Rc` or an `Arc` (an error for certain).
fn with_cross_checks(original: &syn::ItemStruct, private: &TokenStream) -> (syn::ItemStruct, bool) {
    let mut item = original.clone();
    let mut shared_pointer = false;
    let private_text = quote!(#private).to_string().replace(' ', "");
    for field in item.fields.iter_mut() {
        // The field's own serde attributes (maybe behind a `cfg_attr`, not expanded yet) say
        // how it crosses; leave it to them.
        if field
            .attrs
            .iter()
            .any(|a| a.path().is_ident("serde") || a.path().is_ident("cfg_attr"))
        {
            continue;
        }
        let ty = &field.ty;
        let ty_text = quote!(#ty).to_string();
        // A type that means something else inside serde's generated code (`Self`), or that a
        // string cannot name (`$crate` from a `macro_rules!`): left to serde's own errors.
        if ty_text.contains("$crate") || mentions_self(quote!(#ty)) {
            continue;
        }
        let trait_name = if is_shared_pointer(ty) {
            shared_pointer = true;
            "CrossShared"
        } else {
            "CrossField"
        };
        // The type's name (`File` in `std::fs::File`): where the error points.
        let span = match ty {
            syn::Type::Path(p) if p.qself.is_none() => p
                .path
                .segments
                .last()
                .map_or_else(|| ty.span(), |s| s.ident.span()),
            _ => ty.span(),
        };
        let ser = syn::LitStr::new(
            &format!("<{ty_text} as {private_text}::{trait_name}>::serialize"),
            span,
        );
        let de = syn::LitStr::new(
            &format!("<{ty_text} as {private_text}::{trait_name}>::deserialize"),
            span,
        );
        field
            .attrs
            .push(syn::parse_quote!(#[serde(serialize_with = #ser, deserialize_with = #de)]));
    }
    (item, shared_pointer)
}

/// Whether a field's type is written as the standard `Rc` or `Arc`: `Rc<..>`/`Arc<..>` as
/// imported, or through `std::rc`, `std::sync`, `alloc::rc`, `alloc::sync`. A type of your own
/// named `Arc` is written with its path (`geometry::Arc`) to pass as an ordinary field.
fn is_shared_pointer(ty: &syn::Type) -> bool {
    let syn::Type::Path(p) = ty else {
        return false;
    };
    if p.qself.is_some() {
        return false;
    }
    let names: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    matches!(
        names.as_slice(),
        ["Rc" | "Arc"] | ["std" | "alloc", "rc", "Rc"] | ["std" | "alloc", "sync", "Arc"]
    )
}

/// Whether the tokens name `Self` anywhere (inside generic arguments too).
fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        proc_macro2::TokenTree::Ident(ident) => ident == "Self",
        proc_macro2::TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}

/// What a struct whose attributes had errors still gets: the serde derives and a configuration
/// without keys, so that its impl block expands as usual and the user sees the attribute errors,
/// not a cascade of "`Worker: Serialize` is not satisfied".
pub(crate) fn fallback_struct_tokens(
    original: &syn::ItemStruct,
    krate: Option<syn::Path>,
) -> TokenStream {
    struct_tokens(&ProcessStruct::from_syn(
        original,
        StructAttrs::without_keys(krate),
    ))
}

/// The user's impl block, unchanged, and the `Lifecycle` implementation built from it.
pub(crate) fn impl_tokens(model: &ProcessImpl<'_>) -> TokenStream {
    let root = Root::new(model.attrs.krate.clone());
    let private = root.private();
    let original = model.original;
    let self_ty = &original.self_ty;
    let (impl_generics, _, where_clause) = original.generics.split_for_impl();

    let defined = |kind| model.hook(kind).is_some();
    let (prerun, postrun, onfinish, error) = (
        defined(HookKind::Prerun),
        defined(HookKind::Postrun),
        defined(HookKind::Onfinish),
        defined(HookKind::Error),
    );

    let output = match model.hook(HookKind::Result) {
        None => quote!(()),
        Some(hook) => match &hook.ret {
            ReturnShape::Unit => quote!(()),
            ReturnShape::Plain(ty) => quote!(#ty),
            ReturnShape::Fallible(ty) => {
                quote_spanned!(hook.ret_span()=> <#ty as #private::FallibleReturn>::Value)
            }
        },
    };

    let configure = model.hook(HookKind::Config).map(|hook| {
        let call = call(hook, &private);
        quote!(#call;)
    });

    let unit_hook = |kind: HookKind, trait_fn: &str| {
        let trait_fn = syn::Ident::new(trait_fn, proc_macro2::Span::call_site());
        model.hook(kind).map(|hook| {
            let wrapped = value_of(hook, &private, &quote!(timed_out), |value| {
                quote_spanned! {hook.ret_span()=>
                    <_ as #private::HookReturn<()>>::into_hook_result(#value)
                }
            });
            quote! {
                fn #trait_fn(
                    &mut self,
                    __sk_cx: &mut #private::Context,
                ) -> #private::Result<(), #private::Failure> {
                    #wrapped
                }
            }
        })
    };
    let prerun_fn = unit_hook(HookKind::Prerun, "prerun");
    let run_fn = unit_hook(HookKind::Run, "run");
    let postrun_fn = unit_hook(HookKind::Postrun, "postrun");
    let onfinish_fn = unit_hook(HookKind::Onfinish, "onfinish");

    let result_body = match model.hook(HookKind::Result) {
        None => quote!(#private::Ok(())),
        Some(hook) => value_of(hook, &private, &quote!(timed_out), |value| {
            match &hook.ret {
                ReturnShape::Unit => quote!({ #value; #private::Ok(()) }),
                ReturnShape::Plain(_) => quote!(#private::Ok(#value)),
                ReturnShape::Fallible(_) => quote_spanned! {hook.ret_span()=>
                    <_ as #private::HookReturn<Self::Output>>::into_hook_result(#value)
                },
            }
        }),
    };

    let error_fn = model.hook(HookKind::Error).map(|hook| {
        let takes_error = hook.args.iter().any(|a| matches!(a, ArgRole::Error { .. }));
        let discard = (!takes_error).then(|| quote!(let _ = __sk_error;));
        let body = value_of(
            hook,
            &private,
            &quote!(timed_out_error),
            |value| match &hook.ret {
                ReturnShape::Fallible(_) => quote_spanned!(hook.ret_span()=> #value),
                ReturnShape::Plain(_) | ReturnShape::Unit => {
                    quote_spanned!(hook.ret_span()=> #private::Ok(#value))
                }
            },
        );
        quote! {
            fn error(
                &mut self,
                __sk_cx: &mut #private::Context,
                __sk_error: #private::ProcessError,
            ) -> #private::Result<Self::Output, #private::ProcessError> {
                #discard
                #body
            }
        }
    });

    // The paths carry the type's span (a missing `#[skprocess]` on the struct is reported
    // there); the arguments keep the call site's, so that a type named by a `macro_rules!`
    // still sees this function's parameters.
    let apply_attributes_fn = quote_spanned! {self_ty.span()=>
        <Self as #private::ProcessStruct>::apply_attributes
    };
    let apply_attributes = quote!(#apply_attributes_fn(__sk_config););
    let connect_fields_fn = quote_spanned! {self_ty.span()=>
        <Self as #private::ProcessStruct>::connect_fields
    };
    let connect_fields = quote!(#connect_fields_fn(self));
    let registration = registration(&private, original);

    let asyncs = model
        .hooks
        .iter()
        .filter(|hook| hook.asyncness.is_some())
        .filter_map(|hook| {
            let section = match hook.kind {
                HookKind::Config => return None,
                HookKind::Prerun => quote!(Prerun),
                HookKind::Run => quote!(Run),
                HookKind::Postrun => quote!(Postrun),
                HookKind::Onfinish => quote!(Onfinish),
                HookKind::Result => quote!(Result),
                HookKind::Error => quote!(Error),
            };
            Some(quote!(.with_async(#private::Section::#section)))
        });

    let output_span = model
        .hook(HookKind::Result)
        .map_or_else(proc_macro2::Span::call_site, Hook::ret_span);
    let output_decl = quote_spanned!(output_span=> type Output = #output;);

    quote! {
        #original

        #[automatically_derived]
        #[allow(unused_qualifications, clippy::used_underscore_items)]
        impl #impl_generics #private::Lifecycle for #self_ty #where_clause {
            #output_decl

            const HOOKS: #private::Hooks =
                #private::Hooks::new(#prerun, #postrun, #onfinish, #error)#(#asyncs)*;

            fn configure(&self, __sk_config: &mut #private::ProcessConfig) {
                #apply_attributes
                #configure
            }

            fn connect_fields(&mut self) -> #private::Result<(), #private::ConnectError> {
                #connect_fields
            }

            #prerun_fn
            #run_fn
            #postrun_fn
            #onfinish_fn

            fn result(
                &mut self,
                __sk_cx: &mut #private::Context,
            ) -> #private::Result<Self::Output, #private::Failure> {
                let _ = &__sk_cx;
                #result_body
            }

            #error_fn
        }

        #registration
    }
}

/// For an impl block without generics: the type's entry in the registry and its `Registered`
/// implementation. (Generic types are registered per instantiation with `register!`.)
fn registration(private: &TokenStream, original: &syn::ItemImpl) -> TokenStream {
    if !original.generics.params.is_empty() {
        return quote!();
    }
    let self_ty = &original.self_ty;
    let linkme_crate = quote!(#private::linkme);
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[#private::linkme::distributed_slice(#private::PROCESSES)]
            #[linkme(crate = #linkme_crate)]
            static __SK_ENTRY: #private::ProcessEntry =
                <#self_ty as #private::Registered>::ENTRY;

            #[automatically_derived]
            impl #private::Registered for #self_ty {
                const NAME: &'static str =
                    match <#self_ty as #private::ProcessStruct>::NAME {
                        #private::Some(__sk_name) => __sk_name,
                        #private::None => ::core::concat!(
                            ::core::module_path!(), "::", ::core::stringify!(#self_ty),
                            "@", ::core::file!(), ":", ::core::line!(), ":", ::core::column!()
                        ),
                    };

                fn entry() -> &'static #private::ProcessEntry {
                    &__SK_ENTRY
                }
            }
        };
    }
}

/// What an impl block that failed to expand still gets: `Lifecycle` and `Registered`
/// implementations that are never called (the program does not compile), so that the user sees
/// the macro's errors and not a cascade of "`Worker` is not a process type".
pub(crate) fn fallback_impl_tokens(
    original: &syn::ItemImpl,
    krate: Option<syn::Path>,
) -> TokenStream {
    if original.trait_.is_some() {
        return quote!();
    }
    let private = Root::new(krate).private();
    let self_ty = &original.self_ty;
    let (impl_generics, _, where_clause) = original.generics.split_for_impl();
    let output = original
        .items
        .iter()
        .find_map(|item| match item {
            syn::ImplItem::Fn(f) if f.sig.ident == "__result__" => match &f.sig.output {
                syn::ReturnType::Type(_, ty) if !is_result(ty) => Some(quote!(#ty)),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| quote!(()));
    let registered = original.generics.params.is_empty().then(|| {
        quote! {
            #[automatically_derived]
            impl #private::Registered for #self_ty {
                const NAME: &'static str = "";
                fn entry() -> &'static #private::ProcessEntry {
                    ::core::unreachable!()
                }
            }
        }
    });
    quote! {
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #private::Lifecycle for #self_ty #where_clause {
                type Output = #output;
                fn run(&mut self, _: &mut #private::Context) -> #private::Result<(), #private::Failure> {
                    ::core::unreachable!()
                }
                fn result(&mut self, _: &mut #private::Context) -> #private::Result<Self::Output, #private::Failure> {
                    ::core::unreachable!()
                }
            }
            #registered
        };
    }
}

fn is_result(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Result"))
}

/// The hook's value, handed to `convert`: the call's, or for an `async fn`, its future's, run
/// on the process's runtime until it completes or its section's deadline passes at an await
/// point (then the hook returns `Err(AsyncSection::<on_timeout>())`, which the engine reports
/// as the section's timeout). Requiring the `tokio` feature is spanned at the `async` keyword.
fn value_of(
    hook: &Hook<'_>,
    private: &TokenStream,
    on_timeout: &TokenStream,
    convert: impl FnOnce(TokenStream) -> TokenStream,
) -> TokenStream {
    let call = call(hook, private);
    let Some(asyncness) = &hook.asyncness else {
        return convert(call);
    };
    let section = quote_spanned!(asyncness.span=> #private::AsyncSection::of(__sk_cx));
    let value = convert(quote!(__sk_value));
    quote! {{
        let __sk_async = #section;
        match __sk_async.block_on(#call) {
            #private::Some(__sk_value) => #value,
            #private::None => #private::Err(__sk_async.#on_timeout()),
        }
    }}
}

/// `Self::__hook__(self, args..)` with the arguments the user's signature asks for, spanned on
/// the hook's return type so that type errors land there.
fn call(hook: &Hook<'_>, _private: &TokenStream) -> TokenStream {
    let name = &hook.original.sig.ident;
    let args = hook.args.iter().map(|role| match role {
        ArgRole::Context => quote!(__sk_cx),
        ArgRole::Error { by_ref: false } => quote!(__sk_error),
        ArgRole::Error { by_ref: true } => quote!(&__sk_error),
        ArgRole::Config => quote!(__sk_config),
    });
    quote_spanned!(hook.ret_span()=> Self::#name(self, #(#args),*))
}
