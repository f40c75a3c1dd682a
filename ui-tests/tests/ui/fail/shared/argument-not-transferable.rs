use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    fn add(&mut self, amount: std::rc::Rc<i64>) {
        self.value += *amount;
    }

    fn file(&self) -> std::fs::File {
        unimplemented!()
    }
}

fn main() {}
