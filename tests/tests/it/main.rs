//! chatd's cross-crate integration tests, one module per area, in one test binary (one link
//! instead of one per file). Tests that own process-wide state — the global metrics recorder
//! (`telemetry`), the global tracing subscriber (`no_leak`), the process's memory
//! (`tool_memory`) — or orchestrate worker processes with timing bounds (`crash`,
//! `spend_race`) stay binaries of their own beside this one.
//!
//! Run one area with `cargo test -p chatd-tests --test it turn::`.

mod support;

mod agents;
mod approvals;
mod approvals_property;
mod attachments;
mod authz;
mod compaction;
mod constants;
mod diff;
mod embedded_workers;
mod hostile_tools;
mod live;
mod mcp;
mod readme_embed;
mod resume;
mod sandbox_attacks;
mod service;
mod streams;
mod turn;
mod turn_bounds;
mod turn_http;
mod typed_tools;
mod usage;
mod worker;
