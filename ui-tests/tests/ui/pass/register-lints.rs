#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    non_local_definitions,
    unreachable_pub,
    unused_qualifications,
    unused_extern_crates
)]
#![forbid(unsafe_code)]
//! `skprocess::register!` at module level, in a module with its own lint levels and in a
//! function body expands without a warning under strict lints.

use skprocess::Skprocess;
use skprocess::prelude::*;
use skprocess::serde::{Serialize, de::DeserializeOwned};

/// A generic process type.
#[skprocess(runs = 1)]
#[derive(Debug)]
pub struct Repeat<T> {
    value: T,
}

#[skprocess]
impl<T> Repeat<T>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> T {
        self.value.clone()
    }
}

skprocess::register!(Repeat<u8>);

/// Registrations in a public module with its own lint levels.
pub mod registrations {
    #![deny(warnings, missing_docs, non_local_definitions)]
    #![forbid(unsafe_code)]

    skprocess::register!(super::Repeat<u16>);
    skprocess::register!(crate::Repeat<(u32, u32)>,);
}

fn main() {
    skprocess::register!(Repeat<String>);

    assert_eq!(Skprocess::new(Repeat { value: 7u8 }).run().unwrap(), 7);
    assert_eq!(Skprocess::new(Repeat { value: 8u16 }).run().unwrap(), 8);
    assert_eq!(
        Skprocess::new(Repeat {
            value: (1u32, 2u32)
        })
        .run()
        .unwrap(),
        (1, 2)
    );
    let text = Skprocess::new(Repeat {
        value: "fn-local".to_owned(),
    })
    .run()
    .unwrap();
    assert_eq!(text, "fn-local");
    assert!(skprocess::registered_name::<Repeat<String>, _>().contains("Repeat<String>"));
}
