//! Cross-crate integration tests for chatd live in `tests/tests/`. This library only
//! compiles and runs the README's Rust example as a doctest, so the README cannot drift
//! from the API.

#![doc = include_str!("../../README.md")]
