//! Client tools ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): a name, a description and a schema, but no body. The model
//! calls them like any tool; the turn then waits (`requires_action`) until the client sends
//! the call's result with [`Chatd::resolve_tool_calls`](crate::Chatd::resolve_tool_calls).

use async_trait::async_trait;
use serde_json::Value;

use super::{Tool, ToolContext, ToolError};

/// A tool the client runs: reading the user's location, opening a file picker, asking the
/// user a question.
///
/// ```
/// use chatd_core::runtime::tools::{ClientTool, ToolSet};
/// use serde_json::json;
/// use std::sync::Arc;
///
/// let ask = ClientTool::new(
///     "ask_user",
///     "Ask the user a question and wait for the answer.",
///     json!({"type": "object", "properties": {"question": {"type": "string"}},
///            "required": ["question"]}),
/// );
/// let tools = ToolSet::new().with(Arc::new(ask));
/// assert_eq!(tools.names(), ["ask_user"]);
/// ```
#[derive(Debug, Clone)]
pub struct ClientTool {
    name: String,
    description: String,
    schema: Value,
}

impl ClientTool {
    /// A client tool with its arguments' JSON schema (an object schema).
    #[must_use]
    pub fn new(name: impl Into<String>, description: impl Into<String>, schema: Value) -> Self {
        ClientTool { name: name.into(), description: description.into(), schema }
    }
}

#[async_trait]
impl Tool for ClientTool {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn input_schema(&self) -> Value {
        self.schema.clone()
    }
    fn runs_on_client(&self) -> bool {
        true
    }
    async fn run(&self, _ctx: &ToolContext, _args: Value) -> Result<Value, ToolError> {
        // The turn never runs a client tool: its calls wait for the client's result.
        Err(ToolError::new(format!("{} runs in the client, not on the server", self.name)))
    }
}
