//! A generic `#[shared]` type, under strict lints.
#![deny(missing_docs, unreachable_pub, missing_debug_implementations, unused)]

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::Transferable;

/// A bag of values of any transferable type.
#[derive(Serialize, Deserialize, Debug)]
#[serde(crate = "skprocess::serde", bound = "")]
pub struct Bag<T: Transferable> {
    items: Vec<T>,
}

#[shared]
impl<T: Transferable + Sync + Clone> Bag<T> {
    /// Adds an item.
    pub fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    /// A copy of the items.
    pub fn items(&self) -> Vec<T> {
        self.items.clone()
    }
}

/// A type whose only parameter appears in no method.
#[derive(Serialize, Deserialize, Debug)]
#[serde(crate = "skprocess::serde")]
pub struct Tagged<T> {
    count: u32,
    #[serde(skip)]
    tag: std::marker::PhantomData<T>,
}

#[shared]
impl<T: Send + Sync + 'static> Tagged<T> {
    /// Counts.
    pub fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }
}

fn main() -> Result<(), ShareError> {
    let share = Share::new()?;
    let bag = share.insert("bag", Bag::<String> { items: vec![] })?;
    assert_eq!(bag.push("a".to_owned())?, 1);
    assert_eq!(bag.items()?, ["a"]);
    let tagged = share.insert(
        "tagged",
        Tagged::<u8> {
            count: 0,
            tag: std::marker::PhantomData,
        },
    )?;
    assert_eq!(tagged.bump()?, 1);
    Ok(())
}
