//! Fields the one-error-per-field check must leave alone: a type of one's own named `Arc`
//! written with its path, `Self` in a field's type, a type from a `macro_rules!` with `$crate`,
//! a field whose serde attribute sits behind `cfg_attr`, container attributes.

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

mod geometry {
    use skprocess::serde::{Deserialize, Serialize};

    /// A circular arc, not a shared pointer.
    #[derive(Serialize, Deserialize)]
    #[serde(crate = "skprocess::serde")]
    pub struct Arc {
        pub radius: f64,
        pub degrees: f64,
    }
}

#[skprocess]
struct Shapes {
    arc: geometry::Arc,
    next: Option<Box<Self>>,
    #[cfg_attr(all(), serde(default))]
    count: u32,
}

#[skprocess]
impl Shapes {
    fn __run__(&mut self) {}
}

#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
pub struct Point {
    x: i32,
}

macro_rules! process_with_point {
    ($name:ident) => {
        #[skprocess]
        struct $name {
            point: $crate::Point,
        }

        #[skprocess]
        impl $name {
            fn __run__(&mut self) {}
        }
    };
}

process_with_point!(FromMacro);

#[skprocess]
#[serde(rename_all = "camelCase")]
struct Renamed {
    some_value: u32,
}

#[skprocess]
impl Renamed {
    fn __run__(&mut self) {}
}

fn main() {
    let _ = |s: Shapes, m: FromMacro, r: Renamed| {
        let _ = (s.arc.radius, s.arc.degrees, s.next, s.count, m.point.x, r.some_value);
    };
}
