//! What a provider is asked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call_options::CallOptions;
use crate::message::Role;
use crate::part::Part;

/// One message of the prompt (core types; adapters convert them to their wire format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// Who wrote it (`system` rows after the leading block are allowed).
    pub role: Role,
    /// Its parts.
    pub content: Vec<Part>,
}

impl PromptMessage {
    /// A message.
    #[must_use]
    pub fn new(role: Role, content: Vec<Part>) -> Self {
        PromptMessage { role, content }
    }

    /// A one-part user text message.
    #[must_use]
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, vec![Part::text(text)])
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolDefinition {
    /// The name the model calls it by (what a tool call's `tool_name` says).
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// The JSON schema of its arguments (an object schema).
    pub input_schema: Value,
    /// The schema is in OpenAI's strict form and the provider may enforce it (OpenAI
    /// `strict: true`; other providers ignore it).
    #[serde(default)]
    pub strict: bool,
}

impl ToolDefinition {
    /// A tool with this name, description and argument schema (not strict).
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            input_schema,
            strict: false,
        }
    }

    /// Marks the schema as strict (it must already be in strict form: see
    /// [`schema::strict`](crate::runtime::tools::schema::strict)).
    #[must_use]
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

/// One model call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModelRequest {
    /// The provider's model name.
    pub model: String,
    /// The leading system block, in order.
    pub system: Vec<String>,
    /// The conversation.
    pub messages: Vec<PromptMessage>,
    /// Tools the model may call (empty: tools disabled).
    pub tools: Vec<ToolDefinition>,
    /// Call options of the model config.
    pub options: CallOptions,
}

impl ModelRequest {
    /// A request for `model` with `messages` and default options.
    #[must_use]
    pub fn new(model: impl Into<String>, messages: Vec<PromptMessage>) -> Self {
        ModelRequest {
            model: model.into(),
            system: Vec::new(),
            messages,
            tools: Vec::new(),
            options: CallOptions::default(),
        }
    }

    /// Adds a system instruction to the leading block.
    #[must_use]
    pub fn with_system(mut self, text: impl Into<String>) -> Self {
        self.system.push(text.into());
        self
    }

    /// Offers a tool.
    #[must_use]
    pub fn with_tool(mut self, tool: ToolDefinition) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets the call options.
    #[must_use]
    pub fn with_options(mut self, options: CallOptions) -> Self {
        self.options = options;
        self
    }
}
