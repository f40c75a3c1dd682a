#![no_implicit_prelude]

#[::skprocess::child_init]
fn plain() {}

#[::skprocess::child_init(order = 1)]
fn fallible() -> ::std::result::Result<(), ::std::string::String> {
    ::std::result::Result::Ok(())
}

fn elsewhere() {}

::skprocess::register_child_init!(elsewhere);

fn main() {
    plain();
    let _ = fallible();
    elsewhere();
}
