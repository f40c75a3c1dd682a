use skprocess::prelude::*;

// `skprocess::pool-worker` is the runtime's own pool worker: every pool would break.
#[skprocess(runs = 1, name = "skprocess::pool-worker")]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {
    let _ = Skprocess::new(Worker).run();
}
