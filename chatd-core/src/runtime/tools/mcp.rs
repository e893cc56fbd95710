//! Tools from MCP servers (feature `mcp`, with the `rmcp` crate): [`McpTools::connect`]
//! starts a session with a server — a child process over stdio, or streamable HTTP — lists
//! its tools and exposes each as a [`Tool`] named `<prefix>__<tool>` (so two servers' tools
//! never collide with each other or with the built-ins). A call runs with a per-call
//! timeout and stops with the turn (dropping the request sends MCP's cancellation); a
//! failure of any kind — the server's `isError`, a protocol error, a timeout, a dead
//! server — is an error result the model sees, never a failed turn.
//!
//! A server is untrusted input: it may list at most [`McpServer::max_tools`] tools (default
//! `DEFAULT_MAX_TOOLS`; more is a connection error, found while paging, so a server cannot
//! make the client hold an endless list); a tool whose name is not `[A-Za-z0-9_-]` or whose
//! prefixed name exceeds `MAX_TOOL_NAME` characters (what providers accept), or whose
//! schema exceeds `MAX_SCHEMA_BYTES`, is left out and reported by [`McpTools::skipped`];
//! descriptions are cut to `MAX_DESCRIPTION_CHARS`.
//!
//! The child process starts from an empty environment plus `PATH` and what the host names
//! ([`McpServer::with_env`]): provider keys and database URLs of the host never reach it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, PaginatedRequestParams};
use rmcp::service::{RoleClient, RunningService, ServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;

use super::{Tool, ToolContext, ToolError};

/// The longest one MCP call may take by default.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most tools one server may list by default.
pub(crate) const DEFAULT_MAX_TOOLS: usize = 128;
/// The longest prefixed tool name (`<prefix>__<tool>`) providers accept.
pub(crate) const MAX_TOOL_NAME: usize = 64;
/// The largest input schema of one tool, as JSON.
pub(crate) const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// The longest tool description the model is shown.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 4096;

/// How to reach an MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpTransport {
    /// A child process speaking MCP over its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A streamable HTTP endpoint.
    Http {
        /// The endpoint's URL.
        url: String,
    },
}

/// One MCP server to take tools from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct McpServer {
    /// The prefix of its tools' names (`<prefix>__<tool>`): letters, digits, `_`, `-`.
    pub prefix: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// The longest one call may take (default `DEFAULT_CALL_TIMEOUT`).
    pub call_timeout: Duration,
    /// The most tools the server may list (default `DEFAULT_MAX_TOOLS`).
    pub max_tools: usize,
    /// Environment variables of a stdio server's process (besides `PATH`).
    pub env: BTreeMap<String, String>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Environment values may be credentials: names only.
        f.debug_struct("McpServer")
            .field("prefix", &self.prefix)
            .field("transport", &self.transport)
            .field("call_timeout", &self.call_timeout)
            .field("max_tools", &self.max_tools)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpServer {
    /// A server started as `command args…`, speaking over stdio.
    #[must_use]
    pub fn stdio(prefix: impl Into<String>, command: impl Into<String>, args: &[&str]) -> Self {
        McpServer {
            prefix: prefix.into(),
            transport: McpTransport::Stdio {
                command: command.into(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
            },
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_tools: DEFAULT_MAX_TOOLS,
            env: BTreeMap::new(),
        }
    }

    /// A server at a streamable HTTP `url`.
    #[must_use]
    pub fn http(prefix: impl Into<String>, url: impl Into<String>) -> Self {
        McpServer {
            prefix: prefix.into(),
            transport: McpTransport::Http { url: url.into() },
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_tools: DEFAULT_MAX_TOOLS,
            env: BTreeMap::new(),
        }
    }

    /// Bounds each call.
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Bounds how many tools the server may list.
    #[must_use]
    pub fn with_max_tools(mut self, max: usize) -> Self {
        self.max_tools = max;
        self
    }

    /// Adds an environment variable to a stdio server's process.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

/// Why an MCP server could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The prefix is empty or has characters a tool name cannot hold.
    #[error("invalid MCP tool prefix {0:?}: use letters, digits, '_' or '-'")]
    Prefix(String),
    /// The server could not be started or reached, or refused the session.
    #[error("MCP server {prefix:?} could not be reached: {reason}")]
    Connect {
        /// The server's prefix.
        prefix: String,
        /// Why.
        reason: String,
    },
    /// The server's tools could not be listed.
    #[error("MCP server {prefix:?} did not list its tools: {reason}")]
    List {
        /// The server's prefix.
        prefix: String,
        /// Why.
        reason: String,
    },
}

type Session = RunningService<RoleClient, ()>;

/// The tools of one connected MCP server. The session ends when the last clone of it (and
/// of its tools) is dropped; a stdio server's process is ended with it.
#[derive(Clone)]
pub struct McpTools {
    server: Arc<McpServer>,
    session: Arc<Session>,
    tools: Vec<rmcp::model::Tool>,
    skipped: Vec<SkippedTool>,
}

/// A tool the server listed that is not offered to the model, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedTool {
    /// The tool's name as listed (escaped, at most 100 characters).
    pub name: String,
    /// Why it was left out.
    pub reason: String,
}

impl std::fmt::Debug for McpTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTools")
            .field("server", &self.server)
            .field("tools", &self.tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>())
            .finish()
    }
}

impl McpTools {
    /// Connects to `server` and lists its tools.
    ///
    /// # Errors
    /// [`McpError`] when the prefix is invalid, the server cannot be started or reached, or
    /// does not list its tools.
    pub async fn connect(server: McpServer) -> Result<Self, McpError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if server.prefix.is_empty() || server.prefix.len() > 32 || !server.prefix.chars().all(valid)
        {
            return Err(McpError::Prefix(server.prefix));
        }
        let connect_error =
            |reason: String| McpError::Connect { prefix: server.prefix.clone(), reason };
        let session = match &server.transport {
            McpTransport::Stdio { command, args } => {
                let env = server.env.clone();
                let args = args.clone();
                let process = TokioChildProcess::new(
                    tokio::process::Command::new(command).configure(|cmd| {
                        cmd.env_clear();
                        if let Ok(path) = std::env::var("PATH") {
                            cmd.env("PATH", path);
                        }
                        cmd.envs(&env).args(&args).stderr(std::process::Stdio::null());
                    }),
                )
                .map_err(|err| connect_error(err.to_string()))?;
                ().serve(process).await.map_err(|err| connect_error(err.to_string()))?
            }
            McpTransport::Http { url } => {
                let config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                let transport = StreamableHttpClientTransport::from_config(config);
                ().serve(transport).await.map_err(|err| connect_error(err.to_string()))?
            }
        };
        let listed = tokio::time::timeout(server.call_timeout, list_tools(&session, &server))
            .await
            .map_err(|_| McpError::List {
                prefix: server.prefix.clone(),
                reason: format!("no answer within {:?}", server.call_timeout),
            })?
            .map_err(|reason| McpError::List { prefix: server.prefix.clone(), reason })?;
        let (mut tools, mut skipped) = (Vec::new(), Vec::new());
        for tool in listed {
            match unusable(&server.prefix, &tool) {
                None => tools.push(tool),
                Some(reason) => {
                    let name: String = tool.name.escape_debug().take(100).collect();
                    tracing::warn!(prefix = %server.prefix, tool = %name, %reason, "MCP tool left out");
                    skipped.push(SkippedTool { name, reason });
                }
            }
        }
        Ok(McpTools { server: Arc::new(server), session: Arc::new(session), tools, skipped })
    }

    /// The tools the server listed that are not offered (bad names, oversized schemas).
    #[must_use]
    pub fn skipped(&self) -> &[SkippedTool] {
        &self.skipped
    }

    /// The server's tools, ready for a [`ToolSet`](super::ToolSet).
    #[must_use]
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.tools
            .iter()
            .map(|tool| {
                Arc::new(McpTool {
                    name: format!("{}__{}", self.server.prefix, tool.name),
                    remote: tool.name.to_string(),
                    description: tool
                        .description
                        .as_deref()
                        .unwrap_or_default()
                        .chars()
                        .take(MAX_DESCRIPTION_CHARS)
                        .collect(),
                    schema: Value::Object(tool.input_schema.as_ref().clone()),
                    // The server's own word: a read-only or idempotent tool may run again
                    // after a crash (it acts on the server, which answers for it).
                    idempotent: tool.annotations.as_ref().is_some_and(|a| {
                        a.read_only_hint == Some(true) || a.idempotent_hint == Some(true)
                    }),
                    server: Arc::clone(&self.server),
                    session: Arc::clone(&self.session),
                }) as Arc<dyn Tool>
            })
            .collect()
    }
}

/// Every tool the server lists, page by page, refusing more than `server.max_tools`.
async fn list_tools(
    session: &Session,
    server: &McpServer,
) -> Result<Vec<rmcp::model::Tool>, String> {
    let mut tools = Vec::new();
    let mut cursor = None;
    loop {
        let params = PaginatedRequestParams::default().with_cursor(cursor);
        let page = session.list_tools(Some(params)).await.map_err(|err| err.to_string())?;
        tools.extend(page.tools);
        if tools.len() > server.max_tools {
            return Err(format!("it lists more than {} tools", server.max_tools));
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => return Ok(tools),
        }
    }
}

/// Why `tool` cannot be offered to a model, if it cannot.
fn unusable(prefix: &str, tool: &rmcp::model::Tool) -> Option<String> {
    let name = tool.name.as_ref();
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(valid) {
        return Some("its name is not made of letters, digits, '_' or '-'".into());
    }
    let full = prefix.len() + 2 + name.len();
    if full > MAX_TOOL_NAME {
        return Some(format!("its prefixed name has {full} characters (at most {MAX_TOOL_NAME})"));
    }
    let schema = serde_json::to_vec(tool.input_schema.as_ref()).map_or(usize::MAX, |v| v.len());
    if schema > MAX_SCHEMA_BYTES {
        return Some(format!("its input schema has {schema} bytes (at most {MAX_SCHEMA_BYTES})"));
    }
    None
}

/// One tool of an MCP server.
struct McpTool {
    name: String,
    remote: String,
    description: String,
    schema: Value,
    idempotent: bool,
    server: Arc<McpServer>,
    session: Arc<Session>,
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }
    fn description(&self) -> &str {
        &self.description
    }
    fn input_schema(&self) -> Value {
        self.schema.clone()
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let Value::Object(arguments) = args else {
            return Err(ToolError::new("invalid arguments: expected a JSON object"));
        };
        let request = CallToolRequestParams::new(self.remote.clone()).with_arguments(arguments);
        let timeout = self.server.call_timeout;
        // Dropping the request (timeout, or the turn stopping) cancels it on the server.
        let result = tokio::select! {
            () = ctx.cancel.cancelled() => return Err(ToolError::new("the call was cancelled")),
            result = tokio::time::timeout(timeout, self.session.call_tool(request)) => result,
        };
        let result = result
            .map_err(|_| ToolError::new(format!("the MCP call timed out after {timeout:?}")))?
            .map_err(|err| ToolError::new(format!("the MCP call failed: {err}")))?;
        let value = result_value(&result);
        if result.is_error == Some(true) {
            return Err(ToolError::new(match &value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            }));
        }
        Ok(self.attach_images(ctx, value, &result).await)
    }
}

impl McpTool {
    /// `value` with the result's images stored as attachments ([BEHAVIOUR §19](crate::behaviour#19-attachments)), so the model
    /// sees them and no row holds their bytes; an image that cannot be stored is named in a
    /// `not_attached` note instead.
    async fn attach_images(
        &self,
        ctx: &ToolContext,
        value: Value,
        result: &CallToolResult,
    ) -> Value {
        use base64::Engine as _;
        let mut attached = Vec::new();
        let mut refused = Vec::new();
        for (index, image) in result.content.iter().filter_map(ContentBlock::as_image).enumerate() {
            let extension = image.mime_type.rsplit('/').next().unwrap_or("bin");
            let name = format!("{}-{}.{extension}", self.name, index + 1);
            let stored = match base64::engine::general_purpose::STANDARD.decode(image.data.trim()) {
                Ok(bytes) => ctx.attach(&name, bytes).await,
                Err(_) => Err(ToolError::new("the image data is not valid base64")),
            };
            match stored {
                Ok(meta) => attached.push(meta),
                Err(err) => refused.push(format!("{name}: {err}")),
            }
        }
        let mut value = crate::store::files::with_attachments(value, &attached);
        if !refused.is_empty() {
            if !value.is_object() {
                value = serde_json::json!({"result": value});
            }
            value["not_attached"] = Value::from(refused);
        }
        value
    }
}

/// A call's result as the model sees it: the structured content if any, else the text (one
/// block: a string), else the content blocks but images as JSON (images are attachments).
fn result_value(result: &CallToolResult) -> Value {
    if let Some(structured) = &result.structured_content {
        return structured.clone();
    }
    let rest: Vec<&ContentBlock> =
        result.content.iter().filter(|b| b.as_image().is_none()).collect();
    let texts: Vec<&str> =
        rest.iter().filter_map(|b| b.as_text()).map(|t| t.text.as_str()).collect();
    if texts.len() == rest.len() {
        return Value::String(texts.join("\n"));
    }
    serde_json::to_value(&rest).unwrap_or(Value::Null)
}
