//! `#[autoreconnect(...)]` on a `#[skprocess]` struct: the credentials of its connection fields.
//!
//! The work happens inside `#[skprocess]`'s expansion of the struct, which finds this attribute
//! among the struct's attributes ([`take_from`]), checks it against the fields ([`check`]) and
//! generates `ProcessStruct::connect_fields` ([`connect_fields_tokens`]). When
//! `#[autoreconnect]` is written above `#[skprocess]` it expands first, with nothing to work on
//! yet: [`expand`] only moves itself below `#[skprocess]`.
//!
//! ```text
//! #[autoreconnect(
//!     start_threads = false,
//!     Postgres = { "*": "default_pass", analytics_db: env("ANALYTICS_PASSWORD") },
//!     Redis = { "*": "redis_secret" },
//! )]
//! ```

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, ItemStruct, LitStr, Token};

use crate::ctxt::Ctxt;

/// The parsed attribute.
pub(crate) struct AutoReconnect {
    pub(crate) types: Vec<TypeCredentials>,
    /// The attribute's path as written (`autoreconnect`, `skprocess::autoreconnect`): named
    /// again in the expansion so that the user's import of it counts as used.
    pub(crate) path: syn::Path,
}

/// `Type = { ... }`: the credentials for the fields of one connection type.
pub(crate) struct TypeCredentials {
    pub(crate) ty: syn::Path,
    pub(crate) entries: Vec<Entry>,
}

/// `"*": value` (`field: None`) or `field: value`.
pub(crate) struct Entry {
    pub(crate) field: Option<syn::Ident>,
    pub(crate) source: Source,
}

/// Where the secret comes from.
pub(crate) enum Source {
    Literal(LitStr),
    Env(LitStr),
}

/// Whether an attribute is `#[autoreconnect]` (by its last path segment).
fn is_autoreconnect(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "autoreconnect")
}

/// Whether an attribute is `#[skprocess]` (by its last path segment).
fn is_skprocess(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "skprocess")
}

/// Removes `#[autoreconnect(..)]` from the struct's attributes and parses it.
pub(crate) fn take_from(cx: &Ctxt, item: &mut ItemStruct) -> Option<AutoReconnect> {
    let mut found: Option<AutoReconnect> = None;
    let mut kept = Vec::with_capacity(item.attrs.len());
    for attr in std::mem::take(&mut item.attrs) {
        if !is_autoreconnect(&attr) {
            kept.push(attr);
            continue;
        }
        let args = match &attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(nv) => {
                cx.error_spanned_by(nv, "write `#[autoreconnect(...)]` or `#[autoreconnect]`");
                continue;
            }
        };
        if found.is_some() {
            cx.error_spanned_by(attr, "duplicate `#[autoreconnect]` attribute");
            continue;
        }
        let mut parsed = parse_args(cx, args);
        parsed.path = attr.path().clone();
        found = Some(parsed);
    }
    item.attrs = kept;
    found
}

fn parse_args(cx: &Ctxt, args: TokenStream) -> AutoReconnect {
    let mut types: Vec<TypeCredentials> = Vec::new();
    let mut start_threads_seen = false;
    let parser = |input: ParseStream<'_>| {
        while !input.is_empty() {
            if input.peek(LitStr) {
                let key: LitStr = input.parse()?;
                cx.error_spanned_by(
                    &key,
                    format!(
                        "connection types are named by their Rust type, not a string: \
                         `Postgres`, `Redis` or `Sqlite` from `skprocess::reconnect`, or your \
                         own `Conn<..>` type (\"{}\" is the Python spelling)",
                        key.value()
                    ),
                );
                skip_entry(input)?;
                continue;
            }
            let path: syn::Path = input.parse()?;
            input.parse::<Token![=]>()?;
            if path.is_ident("start_threads") {
                let value: syn::LitBool = input.parse()?;
                if std::mem::replace(&mut start_threads_seen, true) {
                    cx.error_spanned_by(&path, "duplicate `start_threads`");
                }
                if value.value {
                    cx.error_spanned_by(
                        &value,
                        "`start_threads = true` has nothing to start: threads never cross \
                         processes in skprocess (start them in `__prerun__`); remove it or \
                         write `start_threads = false`",
                    );
                }
            } else if !input.peek(syn::token::Brace) {
                cx.syn_error(input.error(format!(
                    "expected the credentials of `{}` as a map: `{} = {{ \"*\": \"password\", \
                     field: env(\"VAR\") }}`",
                    path_text(&path),
                    path_text(&path)
                )));
                skip_value(input)?;
            } else {
                let content;
                syn::braced!(content in input);
                let entries = parse_map(cx, &content)?;
                if let Some(earlier) = types.iter().find(|t| t.ty == path) {
                    let _ = earlier;
                    cx.error_spanned_by(
                        &path,
                        format!("duplicate credentials for `{}`", path_text(&path)),
                    );
                } else {
                    types.push(TypeCredentials { ty: path, entries });
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(err) = parser.parse2(args) {
        cx.syn_error(err);
    }
    AutoReconnect {
        types,
        path: syn::parse_quote!(autoreconnect),
    }
}

/// The inside of `{ "*": "pw", field: env("VAR") }`.
fn parse_map(cx: &Ctxt, input: ParseStream<'_>) -> syn::Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        let (field, key_text, key_span) = if input.peek(LitStr) {
            let key: LitStr = input.parse()?;
            if key.value() == "*" {
                (None, "*".to_owned(), key.span())
            } else {
                match syn::parse_str::<syn::Ident>(&key.value()) {
                    Ok(mut ident) => {
                        ident.set_span(key.span());
                        let text = ident.to_string();
                        (Some(ident), text, key.span())
                    }
                    Err(_) => {
                        cx.error_spanned_by(
                            &key,
                            "a credential's key is `\"*\"` (every field of this type) or a \
                             field's name",
                        );
                        (None, String::new(), key.span())
                    }
                }
            }
        } else if input.peek(syn::Ident) {
            let ident: syn::Ident = input.parse()?;
            let text = ident.to_string();
            let span = ident.span();
            (Some(ident), text, span)
        } else {
            return Err(input.error(
                "expected `\"*\"` (every field of this type) or a field's name, then `:` and \
                 the password",
            ));
        };
        input.parse::<Token![:]>()?;
        let source = parse_source(input)?;
        if !key_text.is_empty() {
            if seen.contains(&key_text) {
                cx.syn_error(syn::Error::new(
                    key_span,
                    format!("duplicate credential for `{key_text}`"),
                ));
            } else {
                seen.push(key_text);
                entries.push(Entry { field, source });
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(entries)
}

/// `"password"` or `env("VAR")`.
fn parse_source(input: ParseStream<'_>) -> syn::Result<Source> {
    const EXPECTED: &str = "expected the password as a string literal, or `env(\"VAR\")` to read it from the \
         environment when connecting";
    if input.peek(LitStr) {
        return Ok(Source::Literal(input.parse()?));
    }
    let expr: syn::Expr = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), EXPECTED))?;
    if let syn::Expr::Call(call) = &expr
        && let syn::Expr::Path(func) = &*call.func
        && func.path.is_ident("env")
        && call.args.len() == 1
        && let Some(syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(var),
            ..
        })) = call.args.first()
    {
        if var.value().is_empty() {
            return Err(syn::Error::new(var.span(), "the variable's name is empty"));
        }
        return Ok(Source::Env(var.clone()));
    }
    Err(syn::Error::new_spanned(expr, EXPECTED))
}

fn skip_entry(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![:]) || input.peek(Token![=]) {
        let _: proc_macro2::TokenTree = input.parse()?;
    }
    skip_value(input)
}

/// Skips tokens up to the next top-level comma.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        let _: proc_macro2::TokenTree = input.parse()?;
    }
    Ok(())
}

fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Every field named in the attribute exists.
pub(crate) fn check(cx: &Ctxt, item: &ItemStruct, model: &AutoReconnect) {
    let names: Vec<String> = match &item.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .filter_map(|f| f.ident.as_ref().map(ToString::to_string))
            .collect(),
        _ => Vec::new(),
    };
    for ty in &model.types {
        for entry in &ty.entries {
            if let Some(field) = &entry.field
                && !names.contains(&field.to_string())
            {
                let fields = if names.is_empty() {
                    "it has no named fields".to_owned()
                } else {
                    format!("its fields are {}", list(&names))
                };
                cx.error_spanned_by(
                    field,
                    format!("`{}` has no field `{field}`; {fields}", item.ident),
                );
            }
        }
    }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `fn connect_fields(&mut self)` for the `ProcessStruct` implementation.
pub(crate) fn connect_fields_tokens(
    private: &TokenStream,
    item: &ItemStruct,
    model: &AutoReconnect,
) -> TokenStream {
    let mut credentials = Vec::new();
    let mut checks = Vec::new();
    for (index, creds) in model.types.iter().enumerate() {
        // Named once through an alias, so that a type that does not resolve is one error.
        let written = &creds.ty;
        let ty = syn::Ident::new(&format!("__SkConnection{index}"), written.span());
        checks.push(quote_spanned! {written.span()=>
            #[allow(non_camel_case_types)]
            type #ty = #written;
            const _: () = #private::assert_connection::<#ty>();
        });
        for entry in &creds.entries {
            let field = match &entry.field {
                Some(field) => {
                    let name = field.to_string();
                    // The field holds this type: a mismatch is reported at the field's name.
                    checks.push(quote_spanned! {field.span()=>
                        let _: fn(&Self) -> &#ty = |__sk_self| &__sk_self.#field;
                    });
                    quote!(#private::Some(#name))
                }
                None => quote!(#private::None),
            };
            let source = match &entry.source {
                Source::Literal(secret) => quote!(#private::SecretSource::Literal(#secret)),
                Source::Env(var) => quote!(#private::SecretSource::Env(#var)),
            };
            credentials.push(quote! {
                #private::Credential::new(#private::TypeId::of::<#ty>, #field, #source)
            });
        }
    }
    let opens = item.fields.iter().enumerate().map(|(index, field)| {
        let (member, name) = match &field.ident {
            Some(ident) => (quote!(#ident), ident.to_string()),
            None => {
                let index = syn::Index {
                    index: index as u32,
                    span: Span::call_site(),
                };
                (quote!(#index), index.index.to_string())
            }
        };
        quote! {
            if let #private::Some(__sk_open) = (&#private::Probe::of(&self.#member)).get() {
                __sk_open(&mut self.#member, #name, __SK_CREDENTIALS)?;
            }
        }
    });
    let path = &model.path;
    quote! {
        fn connect_fields(&mut self) -> #private::Result<(), #private::ConnectError> {
            #[allow(unused_imports)]
            use #private::{ProbeConnection as _, ProbeOther as _};
            #[allow(unused_imports)]
            use #path as _;
            #(#checks)*
            const __SK_CREDENTIALS: &[#private::Credential] = &[#(#credentials),*];
            #(#opens)*
            #private::Ok(())
        }
    }
}

/// Names the attribute's path, so that the user's import of it counts as used (for a struct
/// whose expansion failed, which has no `connect_fields`).
pub(crate) fn use_path(model: &AutoReconnect) -> TokenStream {
    let path = &model.path;
    quote! {
        const _: () = {
            #[allow(unused_imports)]
            use #path as _;
        };
    }
}

/// `#[autoreconnect]` itself. Written below `#[skprocess]`, it never expands (`#[skprocess]`
/// takes it). Written above, it moves itself below `#[skprocess]`.
pub(crate) fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    let mut item: ItemStruct = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let mut out = input;
            out.extend(
                syn::Error::new(
                    Span::call_site(),
                    "#[autoreconnect] applies to a struct that also has #[skprocess]",
                )
                .into_compile_error(),
            );
            return out;
        }
    };
    let Some(position) = item.attrs.iter().position(is_skprocess) else {
        let mut out = quote!(#item);
        out.extend(
            syn::Error::new(
                Span::call_site(),
                "#[autoreconnect] applies to a process struct: add #[skprocess] to it (the \
                 connections are opened in the process that runs the lifecycle)",
            )
            .into_compile_error(),
        );
        return out;
    };
    // Name this macro through the same crate root `#[skprocess]` is told to use.
    let root = crate_root(&item.attrs[position]);
    let moved: Attribute = syn::parse_quote!(#[#root::autoreconnect(#args)]);
    item.attrs.insert(position + 1, moved);
    quote!(#item)
}

/// `::skprocess`, or the `crate = "..."` given to `#[skprocess]`.
fn crate_root(skprocess: &Attribute) -> TokenStream {
    let mut root = quote!(::skprocess);
    if let syn::Meta::List(list) = &skprocess.meta {
        let parser = Punctuated::<syn::Meta, Token![,]>::parse_terminated;
        if let Ok(metas) = parser.parse2(list.tokens.clone()) {
            for meta in metas {
                if let syn::Meta::NameValue(nv) = meta
                    && nv.path.is_ident("crate")
                    && let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = &nv.value
                    && let Ok(path) = s.parse::<syn::Path>()
                {
                    root = quote!(#path);
                }
            }
        }
    }
    root
}
