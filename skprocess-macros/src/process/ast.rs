//! The model of a process struct and of its lifecycle impl block. Each node keeps `original`,
//! the user's syntax, for spans.

use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ItemStruct, ReturnType, Type};

use super::attr::{ImplAttrs, StructAttrs};
use crate::ctxt::Ctxt;

/// `#[skprocess]` on a struct.
pub(crate) struct ProcessStruct<'a> {
    pub(crate) original: &'a ItemStruct,
    pub(crate) attrs: StructAttrs,
    /// The struct already derives `Serialize` / `Deserialize` itself.
    pub(crate) derives_serialize: bool,
    pub(crate) derives_deserialize: bool,
    /// Its `#[autoreconnect(..)]` attribute, taken off the struct.
    pub(crate) autoreconnect: Option<crate::autoreconnect::AutoReconnect>,
}

impl<'a> ProcessStruct<'a> {
    pub(crate) fn from_syn(original: &'a ItemStruct, attrs: StructAttrs) -> Self {
        let derived = derived_traits(original);
        ProcessStruct {
            original,
            attrs,
            derives_serialize: derived.iter().any(|d| d == "Serialize"),
            derives_deserialize: derived.iter().any(|d| d == "Deserialize"),
            autoreconnect: None,
        }
    }
}

/// The last path segments of every `#[derive(..)]` entry on the struct.
fn derived_traits(item: &ItemStruct) -> Vec<String> {
    let mut names = Vec::new();
    for attr in &item.attrs {
        if attr.path().is_ident("derive") {
            let _ = attr.parse_nested_meta(|meta| {
                if let Some(last) = meta.path.segments.last() {
                    names.push(last.ident.to_string());
                }
                Ok(())
            });
        }
    }
    names
}

/// The lifecycle methods, by their dunder names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum HookKind {
    Config,
    Prerun,
    Run,
    Postrun,
    Onfinish,
    Result,
    Error,
}

impl HookKind {
    pub(crate) const ALL: [(HookKind, &'static str); 7] = [
        (HookKind::Config, "__config__"),
        (HookKind::Prerun, "__prerun__"),
        (HookKind::Run, "__run__"),
        (HookKind::Postrun, "__postrun__"),
        (HookKind::Onfinish, "__onfinish__"),
        (HookKind::Result, "__result__"),
        (HookKind::Error, "__error__"),
    ];

    fn from_name(name: &str) -> Option<HookKind> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(kind, _)| *kind)
    }

    pub(crate) fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map(|(_, name)| *name)
            .expect("every kind is listed")
    }
}

/// What a hook parameter (after the receiver) is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum ArgRole {
    /// `cx: &mut Context` or `cx: &Context`.
    Context,
    /// `error: ProcessError` (`by_ref: false`) or `error: &ProcessError`.
    Error { by_ref: bool },
    /// `config: &mut ProcessConfig` (`__config__` only).
    Config,
}

/// How a hook returns.
pub(crate) enum ReturnShape<'a> {
    /// No return type.
    Unit,
    /// A type named `Result<..>` (any path ending in `Result`): fallible.
    Fallible(&'a Type),
    /// Any other type: the value itself.
    Plain(&'a Type),
}

/// One lifecycle method of the impl block.
pub(crate) struct Hook<'a> {
    /// `async fn`: its future runs on the process's tokio runtime.
    pub(crate) asyncness: Option<syn::Token![async]>,
    pub(crate) kind: HookKind,
    pub(crate) original: &'a ImplItemFn,
    pub(crate) args: Vec<ArgRole>,
    pub(crate) ret: ReturnShape<'a>,
}

/// `#[skprocess]` on an impl block.
pub(crate) struct ProcessImpl<'a> {
    pub(crate) original: &'a ItemImpl,
    pub(crate) attrs: ImplAttrs,
    pub(crate) hooks: Vec<Hook<'a>>,
    /// Methods whose names look like hooks but are not (`__runn__`), for a helpful error.
    pub(crate) unknown_dunders: Vec<&'a ImplItemFn>,
}

impl<'a> ProcessImpl<'a> {
    /// Builds the model, recording every malformed hook. `None` when the block cannot be a
    /// lifecycle at all (a trait impl).
    pub(crate) fn from_syn(cx: &Ctxt, original: &'a ItemImpl, attrs: ImplAttrs) -> Option<Self> {
        if let Some((trait_path, _)) = &original.trait_ {
            cx.error_spanned_by(
                trait_path,
                "#[skprocess] goes on an inherent impl block (`impl MyProcess { .. }`), not on a \
                 trait impl",
            );
            return None;
        }
        let mut hooks = Vec::new();
        let mut unknown_dunders = Vec::new();
        for item in &original.items {
            let ImplItem::Fn(method) = item else { continue };
            let name = method.sig.ident.to_string();
            match HookKind::from_name(&name) {
                Some(kind) => {
                    if let Some(hook) = Hook::from_syn(cx, kind, method) {
                        hooks.push(hook);
                    }
                }
                None if name.starts_with("__") && name.ends_with("__") && name.len() > 4 => {
                    unknown_dunders.push(method);
                }
                None => {}
            }
        }
        Some(ProcessImpl {
            original,
            attrs,
            hooks,
            unknown_dunders,
        })
    }

    pub(crate) fn hook(&self, kind: HookKind) -> Option<&Hook<'a>> {
        self.hooks.iter().find(|h| h.kind == kind)
    }
}

impl<'a> Hook<'a> {
    fn from_syn(cx: &Ctxt, kind: HookKind, original: &'a ImplItemFn) -> Option<Self> {
        let sig = &original.sig;
        let name = kind.name();
        let mut ok = true;
        if let Some(asyncness) = &sig.asyncness
            && kind == HookKind::Config
        {
            cx.error_spanned_by(
                asyncness,
                "`__config__` cannot be `async`: it runs once, in the parent, when the handle is \
                 created (the other lifecycle methods can be `async fn`)",
            );
            ok = false;
        }
        if let Some(constness) = &sig.constness {
            cx.error_spanned_by(constness, format!("`{name}` cannot be `const`"));
            ok = false;
        }
        if !sig.generics.params.is_empty() {
            cx.error_spanned_by(
                &sig.generics.params,
                format!("`{name}` cannot have generic parameters"),
            );
            ok = false;
        }
        let expected_receiver = if kind == HookKind::Config {
            "`&self`"
        } else {
            "`&mut self` (or `&self`)"
        };
        match sig.inputs.first() {
            Some(FnArg::Receiver(receiver)) => {
                let bad = match &receiver.kind {
                    syn::ReceiverKind::Reference(_, _, mutable) => {
                        kind == HookKind::Config && mutable.is_some()
                    }
                    _ => true,
                };
                if bad {
                    cx.error_spanned_by(
                        receiver,
                        format!("`{name}` must take {expected_receiver} as its receiver"),
                    );
                    ok = false;
                }
            }
            _ => {
                cx.syn_error(syn::Error::new(
                    sig.ident.span(),
                    format!("`{name}` must be a method taking {expected_receiver}"),
                ));
                ok = false;
            }
        }
        let mut args = Vec::new();
        for arg in sig.inputs.iter().skip(1) {
            let FnArg::Typed(typed) = arg else { continue };
            match arg_role(kind, &typed.ty) {
                Some(role) if !args.contains(&role) && !same_family(&args, role) => args.push(role),
                Some(_) => {
                    cx.error_spanned_by(arg, format!("`{name}` takes this argument only once"));
                    ok = false;
                }
                None => {
                    cx.error_spanned_by(arg, unexpected_arg_message(kind));
                    ok = false;
                }
            }
        }
        if kind == HookKind::Config && !args.contains(&ArgRole::Config) {
            cx.syn_error(syn::Error::new(
                sig.paren_token.span.join(),
                "`__config__` takes the configuration to adjust: \
                 `fn __config__(&self, config: &mut ProcessConfig)`",
            ));
            ok = false;
        }
        let ret = match &sig.output {
            ReturnType::Default => ReturnShape::Unit,
            ReturnType::Type(_, ty) if is_result_type(ty) => ReturnShape::Fallible(ty),
            ReturnType::Type(_, ty) => ReturnShape::Plain(ty),
        };
        if kind == HookKind::Config && !matches!(ret, ReturnShape::Unit) {
            cx.error_spanned_by(&sig.output, "`__config__` returns nothing");
            ok = false;
        }
        ok.then_some(Hook {
            asyncness: sig.asyncness,
            kind,
            original,
            args,
            ret,
        })
    }

    /// The span of the method's name.
    pub(crate) fn name_span(&self) -> proc_macro2::Span {
        self.original.sig.ident.span()
    }

    /// The return type's span (or the name's, when there is none).
    pub(crate) fn ret_span(&self) -> proc_macro2::Span {
        match &self.original.sig.output {
            ReturnType::Default => self.name_span(),
            ReturnType::Type(_, ty) => ty.span(),
        }
    }
}

fn same_family(args: &[ArgRole], role: ArgRole) -> bool {
    matches!(role, ArgRole::Error { .. }) && args.iter().any(|a| matches!(a, ArgRole::Error { .. }))
}

fn unexpected_arg_message(kind: HookKind) -> String {
    match kind {
        HookKind::Config => {
            "`__config__` takes only `config: &mut ProcessConfig` after `&self`".to_owned()
        }
        HookKind::Error => "`__error__` takes only `cx: &mut Context` and \
                            `error: ProcessError` (or `&ProcessError`) after `&mut self`"
            .to_owned(),
        other => format!(
            "`{}` takes only `cx: &mut Context` (or `&Context`) after `&mut self`",
            other.name()
        ),
    }
}

/// The last segment's ident of a path type, looking through one reference.
fn type_name(ty: &Type) -> Option<(String, bool, bool)> {
    match ty {
        Type::Reference(r) => {
            let (name, _, _) = type_name(&r.elem)?;
            Some((name, true, r.mutability.is_some()))
        }
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .map(|s| (s.ident.to_string(), false, false)),
        Type::Paren(p) => type_name(&p.elem),
        Type::Group(g) => type_name(&g.elem),
        _ => None,
    }
}

fn arg_role(kind: HookKind, ty: &Type) -> Option<ArgRole> {
    let (name, by_ref, mutable) = type_name(ty)?;
    match (kind, name.as_str()) {
        (HookKind::Config, "ProcessConfig") if by_ref && mutable => Some(ArgRole::Config),
        (HookKind::Config, _) => None,
        (_, "Context") if by_ref => Some(ArgRole::Context),
        (HookKind::Error, "ProcessError") => Some(ArgRole::Error { by_ref }),
        _ => None,
    }
}

/// Whether a return type is a `Result` (by its last path segment: `Result`, `io::Result`,
/// `anyhow::Result`, a user alias named `Result`).
fn is_result_type(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().is_some_and(|s| s.ident == "Result")
        }
        Type::Paren(p) => is_result_type(&p.elem),
        Type::Group(g) => is_result_type(&g.elem),
        _ => false,
    }
}
