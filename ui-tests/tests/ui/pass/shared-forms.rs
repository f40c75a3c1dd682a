//! Every accepted form of `#[shared]`, under strict lints.
#![deny(missing_docs, unreachable_pub, missing_debug_implementations, unused)]

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// A type whose methods take every accepted form.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(crate = "skprocess::serde")]
pub struct Forms {
    values: Vec<i64>,
}

#[shared]
impl Forms {
    /// A constructor: not proxied.
    pub fn new() -> Self {
        Forms::default()
    }

    /// `&mut self`, several arguments, a tuple pattern.
    pub fn push(&mut self, value: i64, (times, _unused): (usize, u8)) {
        for _ in 0..times {
            self.values.push(value);
        }
    }

    /// `&self`, `Self` in the return type.
    pub fn copy(&self) -> Self {
        Forms {
            values: self.values.clone(),
        }
    }

    /// A fallible method.
    pub(crate) fn last(&self) -> Result<i64, String> {
        self.values.last().copied().ok_or_else(|| "empty".to_owned())
    }

    /// `Self` in an argument, and `'static` data.
    fn merge(&mut self, other: Self, _tag: std::borrow::Cow<'static, str>) -> usize {
        self.values.extend(other.values);
        self.values.len()
    }

    /// Left off the proxy: it takes a reference.
    #[shared(skip)]
    pub fn peek(&self) -> &[i64] {
        &self.values
    }

    /// A cfg'd method.
    #[cfg(any())]
    pub fn never(&self) {}
}

/// A type without proxied methods.
#[derive(Serialize, Deserialize, Debug)]
#[serde(crate = "skprocess::serde")]
pub struct Empty;

#[shared]
impl Empty {}

fn main() -> Result<(), ShareError> {
    let share = Share::new()?;
    let forms = share.insert("forms", Forms::new())?;
    forms.push(3, (2, 0))?;
    assert_eq!(forms.copy()?.peek(), [3, 3]);
    assert_eq!(forms.last()?, Ok(3));
    assert_eq!(forms.merge(Forms { values: vec![1] }, "x".into())?, 3);
    let _proxy: &FormsProxy = &forms;
    share.insert("empty", Empty)?;
    let _empty: Shared<Empty> = share.get("empty")?;
    Ok(())
}
