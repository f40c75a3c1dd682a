#![deny(
    warnings,
    unused_qualifications,
    unused_results,
    missing_docs,
    unsafe_op_in_unsafe_fn
)]
#![deny(clippy::all, clippy::pedantic)]
//! Every form `#[child_init]` and `register_child_init!` accept, under strict lints, with the
//! prelude's names shadowed.

use skprocess::prelude::*;

#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Box;

#[child_init]
fn plain() {}

#[child_init(order = -3)]
pub(crate) fn fallible() -> std::result::Result<(), String> {
    std::result::Result::Ok(())
}

#[child_init(order = 2147483647)]
const fn constant() {}

#[child_init]
fn io() -> std::result::Result<(), std::io::Error> {
    std::result::Result::Ok(())
}

#[child_init]
fn boxed() -> std::result::Result<(), std::boxed::Box<dyn std::error::Error + Send + Sync>> {
    std::result::Result::Ok(())
}

#[child_init]
fn r#match() {}

/// A public hook keeps its docs.
#[skprocess::child_init(crate = "skprocess")]
pub fn documented() {}

fn elsewhere() -> std::result::Result<(), &'static str> {
    std::result::Result::Ok(())
}

skprocess::register_child_init!(elsewhere);
mod inner {
    pub(super) fn nested() {}
}

skprocess::register_child_init!(inner::nested, order = -1);

fn main() {
    #[child_init]
    fn local() {}

    let names = skprocess::child_init_hooks();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(names[0].ends_with("::fallible"));
    assert!(names.iter().any(|n| n.ends_with("::match")));
    plain();
    local();
}
