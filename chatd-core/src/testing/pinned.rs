//! The crate's internal defaults and fixed texts, exposed for tests that pin them to
//! BEHAVIOUR (§15 for the defaults; §7, §11 and §16 for the texts a model sees).
//!
//! They are not part of the embedding API: a host configures the knobs through the
//! options types (`WorkerConfig`, `AgentOptions`, `TitleOptions`, `Limits`, …) and never
//! needs the texts. Each constant here is defined as the internal one, so a test that pins
//! it pins what the library uses.

use std::time::Duration;

/// Steps in one turn before it ends (BEHAVIOUR §15).
pub const MAX_STEPS: usize = crate::runtime::turn::MAX_STEPS;
/// The result stored for a call a stop or crash interrupted (§7).
pub const INTERRUPTED_TOOL_RESULT: &str = crate::runtime::turn::INTERRUPTED_TOOL_RESULT;
/// The result stored for a non-idempotent call found in doubt after a crash (§16).
pub const IN_DOUBT_TOOL_RESULT: &str = crate::runtime::turn::IN_DOUBT_TOOL_RESULT;
/// What `last_error` says when the store failed mid-turn (§11).
pub const STORE_FAILURE: &str = crate::runtime::turn::STORE_FAILURE;
/// The system instruction of a title request (§14).
pub const TITLE_INSTRUCTION: &str = crate::runtime::title::TITLE_INSTRUCTION;
/// How long a diff status stays fresh (§15).
pub const DIFF_TTL: Duration = crate::runtime::diff::DIFF_TTL;
/// Tool calls of one step running at once (§15).
pub const MAX_CONCURRENT_CALLS: usize = crate::runtime::tools::MAX_CONCURRENT_CALLS;
/// `execute`'s default timeout (§15).
pub const EXECUTE_TIMEOUT: Duration = crate::runtime::tools::EXECUTE_TIMEOUT;
/// `execute`'s largest timeout (§15).
pub const MAX_EXECUTE_TIMEOUT: Duration = crate::runtime::tools::MAX_EXECUTE_TIMEOUT;
/// Output bytes `execute` keeps (§15).
pub const MAX_OUTPUT_BYTES: usize = crate::runtime::tools::MAX_OUTPUT_BYTES;
/// Bytes one `read_file` call returns (§15).
pub const READ_WINDOW_BYTES: usize = crate::runtime::tools::READ_WINDOW_BYTES;
/// What `spawn_agent` answers in a child chat (§10).
pub const CHILD_CANNOT_SPAWN: &str = crate::runtime::tools::CHILD_CANNOT_SPAWN;
/// Children one root chat may have (§15).
pub const MAX_SUB_AGENTS: usize = crate::runtime::tools::MAX_SUB_AGENTS;
/// How long a command has between TERM and KILL (§13).
#[cfg(feature = "local-workspace")]
pub const TERM_GRACE: Duration = crate::runtime::tools::TERM_GRACE;
/// Compactions one step may re-enter (§8).
pub const MAX_REENTRIES: usize = crate::runtime::compaction::MAX_REENTRIES;
/// The synthetic tool a compaction writes (§8).
pub const COMPACTION_TOOL: &str = crate::runtime::compaction::COMPACTION_TOOL;
/// The instruction of a summary request (§8).
pub const SUMMARY_INSTRUCTION: &str = crate::runtime::compaction::SUMMARY_INSTRUCTION;
/// The text before a summary in the continued history (§8).
pub const CONTINUATION_PREAMBLE: &str = crate::runtime::compaction::CONTINUATION_PREAMBLE;
/// Output tokens a request asks for when its config says nothing (§15).
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = crate::call_options::DEFAULT_MAX_OUTPUT_TOKENS;
/// A new config's compaction threshold, in percent (§15).
pub const DEFAULT_COMPRESSION_THRESHOLD: i32 = crate::model_config::DEFAULT_COMPRESSION_THRESHOLD;
/// How often streamed parts are flushed to the store (§15).
pub const FLUSH_INTERVAL: Duration = crate::runtime::live::FLUSH_INTERVAL;
/// The result of a call whose approval deadline passed (§16).
pub const APPROVAL_EXPIRED: &str = crate::tool_call::APPROVAL_EXPIRED;
/// The result of a call found in doubt (§16).
pub const IN_DOUBT_RESULT: &str = crate::tool_call::IN_DOUBT_RESULT;

/// The Landlock ABI this kernel offers (0 when it has none), so a sandbox test can print
/// what it ran with.
#[cfg(feature = "local-workspace")]
#[must_use]
pub fn landlock_abi() -> i32 {
    crate::runtime::tools::landlock_abi()
}
