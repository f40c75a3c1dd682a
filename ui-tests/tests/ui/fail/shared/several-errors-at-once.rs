use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    async fn fetch(&self) -> i64 {
        self.value
    }

    unsafe fn poke(&mut self) {}

    fn boxed(self: Box<Self>) {}
}

fn main() {}
