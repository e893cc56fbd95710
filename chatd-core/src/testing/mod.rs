//! Test support shared by every backend (feature `testing`).
//!
//! - [`store`]: the store conformance suite. Every `ChatStore` implementation runs it
//!   through [`store_conformance_tests!`](crate::store_conformance_tests), which expands one
//!   named test per scenario plus a completeness check.

pub mod store;
