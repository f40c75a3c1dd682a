//! Compiled only for its tests: see `tests/`.
