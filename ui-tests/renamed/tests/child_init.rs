//! `#[child_init(crate = "sk")]` and `sk::register_child_init!` where the runtime is a dependency
//! renamed to `sk`: every generated path must start with `sk`.

#[sk::child_init(crate = "sk")]
fn first() {}

#[sk::child_init(crate = "sk", order = 5)]
fn second() -> Result<(), String> {
    Ok(())
}

fn third() {}

sk::register_child_init!(third, order = 9);

#[test]
fn renamed_crate_hooks_are_registered_in_order() {
    assert_eq!(
        sk::child_init_hooks(),
        [
            "child_init::first",
            "child_init::second",
            "child_init::third"
        ]
    );
    first();
    second().unwrap();
    third();
}
