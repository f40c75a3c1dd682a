use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    fn add<T: Into<i64>>(&mut self, amount: T) {
        self.value += amount.into();
    }
}

fn main() {}
