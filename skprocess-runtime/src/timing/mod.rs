//! Timing utilities. (Being written.)

/// A statistical timer. (Being written.)
#[derive(Debug, Default)]
pub struct Sktimer;

/// Times a scope. (Being written.)
#[derive(Debug)]
pub struct TimeThis;
