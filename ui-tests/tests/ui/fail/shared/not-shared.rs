use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Counter {
    value: i64,
}

impl Counter {
    fn value(&self) -> i64 {
        self.value
    }
}

fn main() -> Result<(), ShareError> {
    let share = Share::new()?;
    share.insert("counter", Counter { value: 0 })?;
    Ok(())
}
