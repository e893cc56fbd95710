//! An MCP server for the MCP tool tests, written with `rmcp`'s server side: `add{a, b}`
//! answers the sum (structured), `shout{text}` answers text, `fail{}` answers an error
//! result, `sleep{ms}` sleeps (for timeouts and cancellation), `screenshot{}` answers a text
//! and a 4×3 PNG image. Served over stdio by the
//! `mcp-test-server` binary and over streamable HTTP by the tests. [`HostileMcpServer`] lists
//! tools no provider would accept, and pages without end.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

/// The test server.
#[derive(Debug, Clone, Default)]
pub struct TestMcpServer;

fn schema(value: Value) -> Arc<Map<String, Value>> {
    Arc::new(value.as_object().cloned().unwrap_or_default())
}

fn tools() -> Vec<Tool> {
    vec![
        // Read-only by its annotations: chatd may run it again after a crash (BEHAVIOUR §16).
        Tool::new(
            "add",
            "Add two integers.",
            schema(
                json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}),
            ),
        )
        .with_annotations(rmcp::model::ToolAnnotations::new().read_only(true)),
        Tool::new(
            "shout",
            "Upper-case a text.",
            schema(
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
        ),
        Tool::new("fail", "Always fails.", schema(json!({"type": "object", "properties": {}}))),
        Tool::new(
            "flood",
            "Answer with a text of `bytes` bytes (at most 64 MiB).",
            schema(
                json!({"type": "object", "properties": {"bytes": {"type": "integer"}}, "required": ["bytes"]}),
            ),
        ),
        Tool::new("screenshot", "Take a screenshot.", schema(json!({"type": "object", "properties": {}}))),
        Tool::new(
            "sleep",
            "Sleep for ms milliseconds.",
            schema(
                json!({"type": "object", "properties": {"ms": {"type": "integer"}}, "required": ["ms"]}),
            ),
        ),
    ]
}

impl ServerHandler for TestMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        let int = |name: &str| args.get(name).and_then(Value::as_i64).unwrap_or(0);
        let result = match request.name.as_ref() {
            "add" => {
                let sum = int("a") + int("b");
                let mut result = CallToolResult::success(vec![ContentBlock::text(sum.to_string())]);
                result.structured_content = Some(json!({"sum": sum}));
                result
            }
            "shout" => {
                let text = args.get("text").and_then(Value::as_str).unwrap_or_default();
                CallToolResult::success(vec![ContentBlock::text(text.to_uppercase())])
            }
            "fail" => CallToolResult::error(vec![ContentBlock::text("it failed on purpose")]),
            "flood" => {
                let bytes = usize::try_from(int("bytes")).unwrap_or(0).min(64 << 20);
                CallToolResult::success(vec![ContentBlock::text("x".repeat(bytes))])
            }
            "screenshot" => {
                use base64::Engine as _;
                let png = chatd_core::files::testing_png(4, 3);
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                CallToolResult::success(vec![
                    ContentBlock::text("the screen"),
                    ContentBlock::image(data, "image/png"),
                ])
            }
            "sleep" => {
                let ms = u64::try_from(int("ms")).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                CallToolResult::success(vec![ContentBlock::text("slept")])
            }
            other => return Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(result.into())
    }
}

/// A hostile MCP server: its first page lists the test server's tools and tools no provider
/// would accept (a name with a space, a name too long once prefixed, a 100 KiB schema, a
/// 10 000-character description); with `endless`, every page names a next one.
#[derive(Debug, Clone, Default)]
pub struct HostileMcpServer {
    /// Page forever, 50 more tools a page.
    pub endless: bool,
}

impl ServerHandler for HostileMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let page: u64 = request.and_then(|r| r.cursor).and_then(|c| c.parse().ok()).unwrap_or(0);
        let object = schema(json!({"type": "object", "properties": {}}));
        let mut tools = if page == 0 {
            let mut tools = super::mcp_server::tools();
            let huge: Map<String, Value> = (0..2000)
                .map(|i| {
                    (
                        format!("field_{i:04}"),
                        json!({"type": "string", "description": "x".repeat(40)}),
                    )
                })
                .collect();
            tools.push(Tool::new("bad name!", "Spaces.", Arc::clone(&object)));
            tools.push(Tool::new("n".repeat(70), "Too long.", Arc::clone(&object)));
            tools.push(Tool::new(
                "huge",
                "A huge schema.",
                schema(json!({"type": "object", "properties": huge})),
            ));
            tools.push(Tool::new("chatty", "d".repeat(10_000), Arc::clone(&object)));
            tools
        } else {
            (0..50)
                .map(|i| Tool::new(format!("t{page}_{i}"), "More.", Arc::clone(&object)))
                .collect()
        };
        tools.shrink_to_fit();
        let mut result = ListToolsResult::with_all_items(tools);
        if self.endless {
            result.next_cursor = Some((page + 1).to_string());
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        TestMcpServer.call_tool(request, context).await
    }
}
