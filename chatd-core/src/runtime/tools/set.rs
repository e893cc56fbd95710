//! Running a step's tool calls.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Tool, ToolContext};
use crate::part::Part;
use crate::provider::ToolDefinition;

/// The tools offered to the model for a chat.
#[derive(Clone, Default)]
pub struct ToolSet {
    tools: Vec<Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.iter().map(|t| t.name())).finish()
    }
}

impl ToolSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a tool with the same name is replaced.
    #[must_use]
    pub fn with(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.retain(|t| t.name() != tool.name());
        self.tools.push(tool);
        self
    }

    /// The tools' names, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Adds every tool of `other` (replacing tools of the same name).
    #[must_use]
    pub fn merge(self, other: ToolSet) -> Self {
        other.tools.into_iter().fold(self, ToolSet::with)
    }

    /// The definitions sent to the model.
    #[must_use]
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.definitions_for(false)
    }

    /// The definitions offered to a root chat, or to a child (`is_child`: without the
    /// root-only tools).
    #[must_use]
    pub fn definitions_for(&self, is_child: bool) -> Vec<ToolDefinition> {
        self.tools
            .iter()
            .filter(|t| !(is_child && t.root_only()))
            .map(|t| ToolDefinition {
                name: t.name().to_owned(),
                description: t.description().to_owned(),
                input_schema: t.input_schema(),
            })
            .collect()
    }

    /// Runs every local tool call in `calls` concurrently and returns one result part per
    /// call, in the calls' order. An unknown tool gives `Tool not found: NAME`, a panic
    /// `tool panicked: ...`, a tool error its message — all as error results.
    pub async fn run_calls(&self, ctx: &ToolContext, calls: &[Part]) -> Vec<Part> {
        let mut running = Vec::new();
        for call in calls {
            let Part::ToolCall { tool_call_id, tool_name, args, provider_executed: false, .. } =
                call
            else {
                continue;
            };
            let tool = self.tools.iter().find(|t| t.name() == tool_name).cloned();
            let (ctx, args) = (ctx.clone(), args.clone());
            let handle = tool.map(|tool| tokio::spawn(async move { tool.run(&ctx, args).await }));
            running.push((tool_call_id.clone(), tool_name.clone(), handle));
        }
        let mut results = Vec::with_capacity(running.len());
        for (id, name, handle) in running {
            let (value, is_error) = match handle {
                None => (Value::String(format!("Tool not found: {name}")), true),
                Some(handle) => match handle.await {
                    Ok(Ok(value)) => (value, false),
                    Ok(Err(err)) => (json!({"error": err.0}), true),
                    Err(join) if join.is_panic() => {
                        let payload = join.into_panic();
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown panic".to_owned());
                        (Value::String(format!("tool panicked: {message}")), true)
                    }
                    Err(_) => (Value::String("tool was cancelled".to_owned()), true),
                },
            };
            results.push(Part::tool_result(id, name, value, is_error));
        }
        results
    }
}
