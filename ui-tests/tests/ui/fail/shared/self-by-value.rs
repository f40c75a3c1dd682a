use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    fn take(self) -> i64 {
        self.value
    }
}

fn main() {}
