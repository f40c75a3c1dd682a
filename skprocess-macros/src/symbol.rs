//! Every attribute keyword the macros accept, in one place.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// An attribute keyword, compared against parsed idents and paths.
#[derive(Copy, Clone)]
pub(crate) struct Symbol(pub(crate) &'static str);

// #[timethis(..)]
pub(crate) const TIMER: Symbol = Symbol("timer");
pub(crate) const THRESHOLD: Symbol = Symbol("threshold");
pub(crate) const MAX_TIMES: Symbol = Symbol("max_times");

// #[skprocess(..)] on a struct
pub(crate) const RUNS: Symbol = Symbol("runs");
pub(crate) const JOIN_IN: Symbol = Symbol("join_in");
pub(crate) const LIVES: Symbol = Symbol("lives");
pub(crate) const TIMEOUTS: Symbol = Symbol("timeouts");
pub(crate) const TIMER_WINDOW: Symbol = Symbol("timer_window");
pub(crate) const NAME: Symbol = Symbol("name");

// timeouts(..) sections
pub(crate) const PRERUN: Symbol = Symbol("prerun");
pub(crate) const RUN: Symbol = Symbol("run");
pub(crate) const POSTRUN: Symbol = Symbol("postrun");
pub(crate) const ONFINISH: Symbol = Symbol("onfinish");
pub(crate) const RESULT: Symbol = Symbol("result");
pub(crate) const ERROR: Symbol = Symbol("error");

// #[child_init(..)]
pub(crate) const ORDER: Symbol = Symbol("order");

// #[shared(skip)] on a method
pub(crate) const SKIP: Symbol = Symbol("skip");

// shared by every macro
pub(crate) const CRATE: Symbol = Symbol("crate");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0)
    }
}

/// Formats a list of keywords for "expected one of" messages: `` `a`, `b`, `c` ``.
pub(crate) fn one_of(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
