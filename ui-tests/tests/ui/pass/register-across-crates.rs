//! A generic process type from a library crate, instantiated with a type of this crate and
//! registered here: `impl Registered<Local> for Foreign<Local>` is allowed by the orphan rules.

use generic_lib::Echo;
use skprocess::Skprocess;
use skprocess::serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Point {
    x: i32,
    y: i32,
}

skprocess::register!(generic_lib::Echo<Point>);

fn main() {
    let point = Skprocess::new(Echo {
        value: Point { x: 1, y: 2 },
    })
    .run()
    .unwrap();
    assert_eq!(point, Point { x: 1, y: 2 });
}
