use skprocess::prelude::*;

#[skprocess(runs = 1)]
struct Worker;

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

// `#[skprocess]` already registers a type without generic parameters.
skprocess::register!(Worker);

fn main() {
    let _ = Skprocess::new(Worker).run();
}
