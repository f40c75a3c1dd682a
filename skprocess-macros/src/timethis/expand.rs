//! Code generation for `#[timethis]`. Infallible: every user error was found before.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute};

use super::ast::TimedFn;
use super::attr::Options;
use crate::path::Root;

/// Emits the timed function, and the accessor of its own timer when it has one.
pub(crate) struct Generator<'a> {
    function: &'a TimedFn<'a>,
    options: &'a Options,
    root: Root,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(function: &'a TimedFn<'a>, options: &'a Options) -> Self {
        Generator {
            function,
            options,
            root: Root::new(options.crate_path.clone()),
        }
    }

    /// A generated local: `mixed_site` hygiene keeps it invisible to the user's code.
    fn local(name: &str) -> Ident {
        Ident::new(name, Span::mixed_site())
    }

    /// `name_timer`, spanned on the user's function name so that clashes point there.
    fn accessor_ident(&self) -> Ident {
        let ident = &self.function.original.sig.ident;
        format_ident!("{}_timer", self.function.name, span = ident.span())
    }

    /// The user's attributes that also apply to the accessor: `cfg`, `allow` and
    /// `doc(hidden)`.
    fn forwarded_attrs(&self) -> impl Iterator<Item = &'a Attribute> {
        self.function.original.attrs.iter().filter(|attr| {
            matches!(attr.style, AttrStyle::Outer)
                && (attr.path().is_ident("cfg")
                    || attr.path().is_ident("allow")
                    || (attr.path().is_ident("doc")
                        && attr.parse_args::<Ident>().is_ok_and(|arg| arg == "hidden")))
        })
    }

    /// Without `timer = ...`: the function's own timer, a `static` registered in the global
    /// list, returned by `fn name_timer()`.
    fn accessor(&self) -> TokenStream {
        let root = &self.root;
        let private = root.private();
        let original = self.function.original;
        let vis = &original.vis;
        let ident = self.accessor_ident();
        let forwarded = self.forwarded_attrs();
        let name = &self.function.name;
        let raw = original.sig.ident.to_string().starts_with("r#");
        let doc = if raw {
            // Intra-doc links cannot name raw identifiers.
            format!("The timer of `{name}`, filled by `#[timethis]`.")
        } else if self.function.in_impl {
            format!("The timer of [`{name}`](Self::{name}), filled by `#[timethis]`.")
        } else {
            format!("The timer of [`{name}`], filled by `#[timethis]`.")
        };
        let constructor = match self.options.max_times {
            Some(max) => {
                let max = Literal::usize_suffixed(max);
                quote!(with_max_times(#max))
            }
            None => quote!(new()),
        };
        // Located at the user's function name (with the macro's hygiene), so that errors about
        // the accessor as a whole, such as "not a member of trait", point there.
        let span = Span::call_site().located_at(original.sig.ident.span());
        quote_spanned! {span=>
            #(#forwarded)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis fn #ident() -> &'static #root::timing::Sktimer {
                static __SK_TIMER: #root::timing::Sktimer = #root::timing::Sktimer::#constructor;
                #[#private::linkme::distributed_slice(#private::GLOBAL_TIMERS)]
                #[linkme(crate = #private::linkme)]
                static __SK_GLOBAL: #private::GlobalTimer = #private::GlobalTimer::new(
                    ::core::concat!(::core::module_path!(), "::", #name),
                    &__SK_TIMER,
                );
                &__SK_TIMER
            }
        }
    }

    /// Statements binding the timer to record into (`__sk_timer`) and applying `max_times`.
    fn bind_timer(&self) -> TokenStream {
        let root = &self.root;
        let private = root.private();
        let timer = Self::local("__sk_timer");
        let Some(expr) = &self.options.timer else {
            let accessor = self.accessor_ident();
            let call = if self.function.in_impl {
                quote!(Self::#accessor())
            } else {
                quote!(#accessor())
            };
            return quote! {
                let #timer: &'static #root::timing::Sktimer = #call;
            };
        };
        // Spanned on the user's expression: a wrong type is reported there.
        let reference = quote_spanned!(expr.span()=> &(#expr));
        let max_times = self.options.max_times.map(|max| {
            let max = Literal::usize_suffixed(max);
            let once = Self::local("__SK_MAX_TIMES");
            quote! {
                static #once: #private::MaxTimesOnce = #private::MaxTimesOnce::new();
                #once.apply(#timer, #max);
            }
        });
        quote! {
            let #timer: &#root::timing::Sktimer = #reference;
            #max_times
        }
    }

    fn threshold(&self) -> Literal {
        Literal::f64_suffixed(self.options.threshold.unwrap_or(0.0))
    }

    /// A sync body: a guard first, recording on drop (unless unwinding), then the user's
    /// statements, untouched.
    fn sync_prologue(&self) -> TokenStream {
        let private = self.root.private();
        let bind = self.bind_timer();
        let timer = Self::local("__sk_timer");
        let guard = Self::local("__sk_guard");
        let threshold = self.threshold();
        quote! {
            #bind
            let #guard = #private::TimedGuard::start(#timer, #threshold);
        }
    }

    /// An async body: the user's statements run in an inner `async move` block, and the time is
    /// recorded only once it completes (a future dropped early records nothing).
    fn async_body(&self, stmts: &[syn::Stmt]) -> TokenStream {
        let private = self.root.private();
        let bind = self.bind_timer();
        let timer = Self::local("__sk_timer");
        let span = Self::local("__sk_span");
        let output = Self::local("__sk_output");
        let threshold = self.threshold();
        // A dead `return` of the declared type fixes the inner block's output type before its
        // body is checked, so `?` and `return` infer as in the original function, and a wrong
        // tail expression is reported at the user's line (the trick tracing's #[instrument]
        // uses). Not possible when the type contains `impl Trait`.
        let fake_return = self.function.nameable_return_type().map(|ty| {
            let ty_span = match &self.function.original.sig.output {
                syn::ReturnType::Type(_, ty) => ty.span(),
                syn::ReturnType::Default => Span::call_site(),
            };
            // At the return type, so that "return type inferred here" points there.
            let ret = Ident::new("__sk_return", ty_span.resolved_at(Span::mixed_site()));
            quote_spanned! {ty_span=>
                #[allow(
                    unknown_lints,
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::let_unit_value,
                    clippy::needless_return,
                    clippy::unreachable
                )]
                if false {
                    let #ret: #ty = loop {};
                    return #ret;
                }
            }
        });
        quote! {
            #bind
            let #span = #private::TimedSpan::start(#timer, #threshold);
            let #output = async move {
                #fake_return
                #(#stmts)*
            }
            .await;
            #span.finish();
            #output
        }
    }

    /// The user's function with a timed body; signature and attributes unchanged.
    fn function(&self) -> TokenStream {
        let original = self.function.original;
        let outer = original
            .attrs
            .iter()
            .filter(|attr| matches!(attr.style, AttrStyle::Outer));
        let inner = original
            .attrs
            .iter()
            .filter(|attr| matches!(attr.style, AttrStyle::Inner(_)));
        let vis = &original.vis;
        let sig = &original.sig;
        let stmts = &original.block.stmts;
        let body = if self.function.is_async() {
            self.async_body(stmts)
        } else {
            let prologue = self.sync_prologue();
            quote!(#prologue #(#stmts)*)
        };
        let mut tokens = quote!(#(#outer)* #vis #sig);
        original.block.brace_token.surround(&mut tokens, |tokens| {
            tokens.extend(quote!(#(#inner)* #body));
        });
        tokens
    }
}

impl ToTokens for Generator<'_> {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        if self.options.timer.is_none() {
            tokens.extend(self.accessor());
        }
        tokens.extend(self.function());
    }
}
