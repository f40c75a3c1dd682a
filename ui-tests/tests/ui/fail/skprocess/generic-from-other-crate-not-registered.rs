use generic_lib::Echo;
use skprocess::Skprocess;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Point {
    x: i32,
    y: i32,
}

fn main() {
    let _ = Skprocess::new(Echo {
        value: Point { x: 1, y: 2 },
    });
}
