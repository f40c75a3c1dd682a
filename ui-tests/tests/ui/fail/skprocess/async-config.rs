use skprocess::prelude::*;

#[skprocess]
struct Worker;

#[skprocess]
impl Worker {
    async fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(1);
    }

    fn __run__(&mut self) {}
}

fn main() {}
