//! `#[skprocess]` with the runtime renamed to `sk`: `::skprocess` does not resolve in this
//! crate, so every generated path must go through `crate = "sk"`.

// ANCHOR: renamed
// Cargo.toml: sk = { package = "skprocess-runtime", ... }
#[sk::skprocess(runs = 3, crate = "sk")]
struct Counter {
    count: u32,
}

#[sk::skprocess(crate = "sk")]
impl Counter {
    fn __run__(&mut self, cx: &mut sk::Context) {
        self.count += 1 + cx.current_run() as u32;
    }

    fn __result__(&mut self) -> u32 {
        self.count
    }
}
// ANCHOR_END: renamed

#[test]
fn a_process_runs_with_a_renamed_crate() {
    assert_eq!(sk::Skprocess::new(Counter { count: 0 }).run().unwrap(), 6);
}
