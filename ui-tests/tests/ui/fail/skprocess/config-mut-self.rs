use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    fn __config__(&mut self, config: &mut ProcessConfig) {
        config.runs = Some(1);
    }
    fn __run__(&mut self) {}
}

fn main() {}
