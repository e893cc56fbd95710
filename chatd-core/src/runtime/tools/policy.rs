//! Tool policies ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): per call, run it, ask a person first, or refuse it.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::chat::Chat;

/// What a policy decides for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyDecision {
    /// Run it.
    Auto,
    /// Wait for a person's approval (`requires_action`).
    Ask,
    /// Never run it; the model gets `tool call denied: <reason>`.
    Deny(String),
}

/// The call a policy decides on.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallView<'a> {
    /// The chat (its owner is `chat.owner_id`).
    pub chat: &'a Chat,
    /// The tool called.
    pub tool_name: &'a str,
    /// The model's arguments.
    pub args: &'a Value,
}

/// Decides, per call, whether it runs, waits for a person, or is refused. Called once per
/// local call when the model's step ends, before anything runs; a client tool's calls always
/// wait for the client and are not shown to the policy.
#[async_trait]
pub trait ToolPolicy: Send + Sync + 'static {
    /// The decision for `call`.
    async fn decide(&self, call: CallView<'_>) -> PolicyDecision;
}

/// A policy by tool name: a decision per tool, and one for every other tool (default
/// [`PolicyDecision::Auto`]).
///
/// ```
/// use chatd_core::runtime::tools::{PolicyDecision, ToolRules};
///
/// let rules = ToolRules::new()
///     .ask("execute")
///     .ask("write_file")
///     .deny("spawn_agent", "sub-agents are disabled here");
/// assert_eq!(rules.rule("execute"), &PolicyDecision::Ask);
/// assert_eq!(rules.rule("read_file"), &PolicyDecision::Auto);
/// ```
#[derive(Debug, Clone)]
pub struct ToolRules {
    otherwise: PolicyDecision,
    by_tool: HashMap<String, PolicyDecision>,
}

impl Default for ToolRules {
    fn default() -> Self {
        ToolRules { otherwise: PolicyDecision::Auto, by_tool: HashMap::new() }
    }
}

impl ToolRules {
    /// Every tool runs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every tool not named by a rule asks first.
    #[must_use]
    pub fn ask_by_default() -> Self {
        ToolRules { otherwise: PolicyDecision::Ask, by_tool: HashMap::new() }
    }

    /// Calls of `tool` run without asking.
    #[must_use]
    pub fn auto(self, tool: impl Into<String>) -> Self {
        self.with(tool, PolicyDecision::Auto)
    }

    /// Calls of `tool` wait for a person's approval.
    #[must_use]
    pub fn ask(self, tool: impl Into<String>) -> Self {
        self.with(tool, PolicyDecision::Ask)
    }

    /// Calls of `tool` are refused with `reason`.
    #[must_use]
    pub fn deny(self, tool: impl Into<String>, reason: impl Into<String>) -> Self {
        self.with(tool, PolicyDecision::Deny(reason.into()))
    }

    /// Sets the decision for `tool`.
    #[must_use]
    pub fn with(mut self, tool: impl Into<String>, decision: PolicyDecision) -> Self {
        self.by_tool.insert(tool.into(), decision);
        self
    }

    /// The decision for calls of `tool`.
    #[must_use]
    pub fn rule(&self, tool: &str) -> &PolicyDecision {
        self.by_tool.get(tool).unwrap_or(&self.otherwise)
    }
}

#[async_trait]
impl ToolPolicy for ToolRules {
    async fn decide(&self, call: CallView<'_>) -> PolicyDecision {
        self.rule(call.tool_name).clone()
    }
}
