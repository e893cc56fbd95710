//! Cross-crate integration tests for chatd live in `tests/tests/`. This library compiles
//! and runs the README's Rust example as a doctest (so the README cannot drift from the
//! API) and holds what several tests share: [`pg`] (a fresh database per test) and
//! [`resume`] (the resume property, run against each store).

#![doc = include_str!("../../README.md")]

pub mod pg;
pub mod resume;
