use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

#[shared]
impl Counter {
    fn label(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.value)
    }

    fn values(&mut self, all: Vec<&i64>) {
        self.value = all.len() as i64;
    }
}

fn main() {}
