use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Clone for Counter {
    fn clone(&self) -> Self {
        Counter { value: self.value }
    }
}

fn main() {}
