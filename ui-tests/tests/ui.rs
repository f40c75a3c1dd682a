//! Compile-fail and compile-pass cases for the macros, checked by trybuild.
//!
//! `.stderr` files come only from the pinned toolchain; regenerate them with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and review the diff like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/**/*.rs");
    t.pass("tests/ui/pass/*.rs");
    // trybuild builds the cases with this crate's enabled features.
    if cfg!(feature = "tokio") {
        t.pass("tests/ui/pass-tokio/*.rs");
        t.compile_fail("tests/ui/fail-tokio/*.rs");
    } else {
        t.compile_fail("tests/ui/fail-without-tokio/*.rs");
    }
}
