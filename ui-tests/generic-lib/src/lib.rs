//! A generic process type defined in a library, for the ui tests. A program that uses it with a
//! type of its own registers that instantiation itself:
//! `skprocess::register!(generic_lib::Echo<MyType>);`.

use skprocess::prelude::*;

/// Runs once and hands its value back as the result.
#[skprocess(runs = 1)]
#[derive(Debug, Clone)]
pub struct Echo<T> {
    /// What the process returns.
    pub value: T,
}

#[skprocess]
impl<T> Echo<T>
where
    T: skprocess::Transferable + Clone,
{
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> T {
        self.value.clone()
    }
}
