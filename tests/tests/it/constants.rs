//! BEHAVIOUR §15: every constant has a documented, configurable default — and the defaults are
//! what docs/BEHAVIOUR.md §15 says. (Each setter is exercised by the tests of its component.)

use std::time::Duration;

use chatd_core::runtime::compaction::Compactor;
use chatd_core::runtime::retry::RetryPolicy;
use chatd_core::runtime::title::TitleOptions;
use chatd_core::runtime::tools::AgentOptions;
use chatd_core::runtime::worker::WorkerConfig;
use chatd_core::store::Limits;
use chatd_core::testing::pinned::DEFAULT_COMPRESSION_THRESHOLD;
use chatd_core::testing::pinned::DEFAULT_MAX_OUTPUT_TOKENS;
use chatd_core::testing::pinned::FLUSH_INTERVAL;
use chatd_core::testing::pinned::MAX_STEPS;
use chatd_core::testing::pinned::{
    EXECUTE_TIMEOUT, MAX_CONCURRENT_CALLS, MAX_EXECUTE_TIMEOUT, MAX_OUTPUT_BYTES, MAX_REENTRIES,
    READ_WINDOW_BYTES,
};
use chatd_providers::HttpLimits;

const MIB: u64 = 1024 * 1024;

#[test]
fn the_defaults_are_the_specs() {
    let worker = WorkerConfig::default();
    assert_eq!(worker.poll, Duration::from_secs(1), "acquire poll 1 s");
    assert_eq!(worker.heartbeat, Duration::from_secs(30), "heartbeat 30 s");
    assert_eq!(worker.stale_after, Duration::from_secs(300), "stale after 5 min");
    assert_eq!(worker.sweep, worker.stale_after / 5, "sweep every stale/5");
    assert_eq!(MAX_STEPS, 1200, "max steps");
    assert_eq!(DEFAULT_MAX_OUTPUT_TOKENS, 32_000, "max output tokens");
    assert_eq!(DEFAULT_COMPRESSION_THRESHOLD, 70, "compaction threshold");
    assert_eq!(Compactor::new().timeout(), Duration::from_secs(90), "summary timeout");
    assert_eq!(MAX_REENTRIES, 3, "compaction re-entries");
    assert_eq!(Limits::default().max_queued_messages, 20, "queue cap");
    let retry = RetryPolicy::default();
    assert_eq!(
        (retry.base, retry.max_delay, retry.max_retries),
        (Duration::from_secs(1), Duration::from_secs(60), 25)
    );
    let titles = TitleOptions::default();
    assert_eq!(
        (titles.timeout, titles.max_chars),
        (Duration::from_secs(10), 80),
        "title timeout, length"
    );
    assert_eq!(
        (EXECUTE_TIMEOUT, MAX_EXECUTE_TIMEOUT),
        (Duration::from_secs(10), Duration::from_secs(600))
    );
    assert_eq!(MAX_OUTPUT_BYTES, 32 * 1024, "execute output");
    assert_eq!(READ_WINDOW_BYTES, 256 * 1024, "read_file window");
    assert_eq!(MAX_CONCURRENT_CALLS, 8, "tool calls at once");
    let agents = AgentOptions::default();
    assert_eq!(agents.max_children, 16, "sub-agents per root");
    assert_eq!(
        (agents.wait_timeout, agents.max_wait_timeout, agents.poll),
        (Duration::from_secs(300), Duration::from_secs(3600), Duration::from_millis(200)),
        "wait_agent 5 min (max 1 h), poll 200 ms"
    );
    assert_eq!(chatd_core::testing::pinned::DIFF_TTL, Duration::from_secs(120), "diff status TTL");
    assert_eq!(FLUSH_INTERVAL, Duration::from_millis(50), "part flush");
    let http = HttpLimits::default();
    assert_eq!(http.connect_timeout, Duration::from_secs(30));
    assert_eq!(http.first_byte_timeout, Duration::from_secs(300));
    assert_eq!(http.idle_timeout, Duration::from_secs(120));
    assert_eq!(http.max_step_bytes, 64 * MIB);
    assert_eq!(http.max_event_bytes as u64, 16 * MIB);
    assert_eq!(http.max_error_body_bytes, 64 * 1024);
}

#[test]
fn options_types_can_be_built_from_another_crate() {
    let retry = RetryPolicy::default()
        .with_max_retries(3)
        .with_base(Duration::from_millis(10))
        .with_max_delay(Duration::from_secs(1))
        .with_max_retry_after(Duration::from_secs(5));
    assert_eq!(
        (retry.max_retries, retry.base, retry.max_delay),
        (3, Duration::from_millis(10), Duration::from_secs(1))
    );
    let worker =
        WorkerConfig::default().with_stale_after(Duration::from_secs(10)).with_max_turns(0);
    assert_eq!((worker.sweep, worker.max_turns), (Duration::from_secs(2), 1));
    let options = chatd_core::CallOptions::default()
        .with_max_output_tokens(1000)
        .with_temperature(0.2)
        .with_top_k(40);
    assert_eq!(options.max_output_tokens_or_default(), 1000);
    assert!(options.validate().is_ok());
    assert!(
        chatd_core::CallOptions::default().with_temperature(5.0).validate().is_err(),
        "setters do not skip validation"
    );
}
