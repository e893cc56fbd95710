//! Tools from MCP servers, against a server written with rmcp's server side
//! (`chatd_tests::mcp_server`): over stdio (a child process: `mcp-test-server`) and over
//! streamable HTTP (served here). Names are prefixed per server, calls run inside a turn,
//! errors and timeouts are results, and a cancelled turn stops its calls at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd_core::runtime::tools::mcp::{McpServer, McpTools};
use chatd_core::runtime::tools::{ToolContext, ToolSet};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::testing::ScriptedCall;
use chatd_core::{ChatId, Part, TurnOutcome, UserId};
use chatd_tests::mcp_server::{HostileMcpServer, TestMcpServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn stdio_server(prefix: &str) -> McpServer {
    McpServer::stdio(prefix, env!("CARGO_BIN_EXE_mcp-test-server"), &[])
}

/// Serves the test server over streamable HTTP; the token stops it.
async fn http_server() -> (String, CancellationToken) {
    serve(TestMcpServer).await
}

/// Serves `server` over streamable HTTP; the token stops it.
async fn serve<S: rmcp::ServerHandler + Clone + Send + Sync + 'static>(
    server: S,
) -> (String, CancellationToken) {
    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default();
    let service: StreamableHttpService<S, LocalSessionManager> =
        StreamableHttpService::new(move || Ok(server.clone()), Default::default(), config);
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { until.cancelled_owned().await })
            .await;
    });
    (format!("http://{addr}/mcp"), stop)
}

fn results(parts: &[Part]) -> Vec<(Value, bool)> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolResult { result, is_error, .. } => Some((result.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

fn call(id: &str, name: &str, args: Value) -> Part {
    Part::tool_call(id, name, args)
}

async fn exercise(tools: &McpTools, prefix: &str) {
    let set = ToolSet::new().with_all(tools.tools());
    let names: Vec<String> =
        set.definitions_for(chatd_core::ChatKind::Root).iter().map(|d| d.name.clone()).collect();
    for tool in ["add", "shout", "fail", "sleep", "flood", "screenshot"] {
        assert!(names.contains(&format!("{prefix}__{tool}")), "{names:?}");
    }
    // The server's annotations say which tools may run again after a crash.
    let idempotent = |name: &str| set.get(&format!("{prefix}__{name}")).map(|t| t.idempotent());
    assert_eq!((idempotent("add"), idempotent("shout")), (Some(true), Some(false)));
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let calls = [
        call("1", &format!("{prefix}__add"), json!({"a": 2, "b": 3})),
        call("2", &format!("{prefix}__shout"), json!({"text": "hi"})),
        call("3", &format!("{prefix}__fail"), json!({})),
    ];
    let got = results(&set.run_calls(&ctx, &calls).await.expect("not cancelled"));
    assert_eq!(got[0], (json!({"sum": 5}), false), "structured content");
    assert_eq!(got[1], (json!("HI"), false), "text content");
    assert!(got[2].1, "the server's error result is an error result");
    assert!(got[2].0.to_string().contains("it failed on purpose"), "{:?}", got[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_a_stdio_server_run_with_prefixed_names_and_errors_as_results() {
    println!("MCP server: {} over stdio", env!("CARGO_BIN_EXE_mcp-test-server"));
    let tools = McpTools::connect(stdio_server("local")).await.expect("connect");
    exercise(&tools, "local").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_of_a_streamable_http_server_run_the_same_way() {
    let (url, stop) = http_server().await;
    println!("MCP server: {url} (streamable HTTP)");
    let tools = McpTools::connect(McpServer::http("remote", &url)).await.expect("connect");
    exercise(&tools, "remote").await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_times_out_and_a_cancelled_turn_stops_its_calls_at_once() {
    let tools = McpTools::connect(stdio_server("s").with_call_timeout(Duration::from_millis(300)))
        .await
        .expect("connect");
    let set = ToolSet::new().with_all(tools.tools());
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let started = Instant::now();
    let got = results(
        &set.run_calls(&ctx, &[call("1", "s__sleep", json!({"ms": 10_000}))]).await.expect("ran"),
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(got[0].1);
    assert!(got[0].0.to_string().contains("timed out"), "{:?}", got[0]);

    let patient = McpTools::connect(stdio_server("p")).await.expect("connect");
    let set = ToolSet::new().with_all(patient.tools());
    let cancel = CancellationToken::new();
    let ctx =
        ToolContext::new(ChatId::new(), UserId::new(), chatd_core::ChatKind::Root, cancel.clone());
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let outcome = set.run_calls(&ctx, &[call("1", "p__sleep", json!({"ms": 30_000}))]).await;
    assert!(outcome.is_err(), "the stop cancels the call");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    stopper.await.expect("stopper");
    // The session still serves later calls.
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let got = results(
        &set.run_calls(&ctx, &[call("2", "p__add", json!({"a": 1, "b": 1}))]).await.expect("ran"),
    );
    assert_eq!(got[0], (json!({"sum": 2}), false));
}

/// A finished turn of the stdio server `prefix`'s tools: the model calls `tool` with `args`,
/// then answers `answer`.
async fn mcp_turn(prefix: &str, tool: &str, args: Value, answer: &str) -> crate::support::Fixture {
    let tools = McpTools::connect(stdio_server(prefix)).await.expect("connect");
    let fx = crate::support::fixture(vec![
        ScriptedCall::tool_calls(&[("c1", tool, args)], None),
        ScriptedCall::text(answer, None),
    ])
    .await;
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(crate::support::Scripted(Arc::clone(&fx.provider))),
        ToolSet::new().with_all(tools.tools()),
    )
    .with_titles(false);
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    assert!(matches!(end, TurnEnd::Release(TurnOutcome::Finished)), "{end:?}");
    fx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_uses_mcp_tools_like_any_other() {
    let fx = mcp_turn("calc", "calc__add", json!({"a": 20, "b": 22}), "42").await;
    let offered = &fx.provider.requests()[0].tools;
    assert!(offered.iter().any(|t| t.name == "calc__add"), "{offered:?}");
    let all: Vec<Part> = fx.messages().await.iter().flat_map(|m| m.content.clone()).collect();
    assert_eq!(results(&all), vec![(json!({"sum": 42}), false)]);
}

/// An MCP image result becomes an attachment (BEHAVIOUR §19): the stored result names the
/// file and holds no bytes, and the next step sends the image after the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_image_becomes_an_attachment_the_model_sees() {
    use base64::Engine as _;
    let fx = mcp_turn("ui", "ui__screenshot", json!({}), "a grey screen").await;
    let all: Vec<Part> = fx.messages().await.iter().flat_map(|m| m.content.clone()).collect();
    let (result, is_error) = results(&all).pop().expect("a result");
    assert!(!is_error, "{result}");
    let attached = chatd_core::files::FileRef::listed_in(&result);
    assert_eq!(attached.len(), 1, "{result}");
    assert_eq!(
        (attached[0].media_type.as_str(), attached[0].name.as_str()),
        ("image/png", "ui__screenshot-1.png")
    );
    let png = chatd_core::files::testing_png(4, 3);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    assert!(!result.to_string().contains(&encoded), "no bytes in the stored result");
    let files = fx.store.file_store().expect("files");
    let stored = files.read_file(None, attached[0].attachment_id).await.expect("stored");
    assert_eq!(stored.bytes, png);
    let second = &fx.provider.requests()[1];
    let tool = second.messages.last().expect("the tool message");
    assert!(
        matches!(tool.content.last(), Some(Part::File { data: Some(data), .. }) if *data == encoded),
        "the image follows the result: {:?}",
        tool.content
    );
}

/// Without a file store, an MCP image is named in a note, never stored inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_image_without_a_file_store_is_a_note() {
    let tools = McpTools::connect(stdio_server("ui")).await.expect("connect");
    let set = ToolSet::new().with_all(tools.tools());
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let got = results(
        &set.run_calls(&ctx, &[call("1", "ui__screenshot", json!({}))]).await.expect("ran"),
    );
    let (value, is_error) = &got[0];
    assert!(!is_error, "{value}");
    assert_eq!(value["result"], "the screen");
    assert_eq!(
        value["not_attached"][0],
        "ui__screenshot-1.png: files cannot be attached here: there is no file store"
    );
}

#[tokio::test]
async fn bad_prefixes_and_unreachable_servers_are_clear_errors() {
    for bad in ["", "a b", "x/y", &"p".repeat(33)] {
        let err = McpTools::connect(stdio_server(bad)).await.expect_err(bad);
        assert!(err.to_string().contains("prefix"), "{err}");
    }
    let err = McpTools::connect(McpServer::stdio("gone", "/nonexistent/mcp-server", &[]))
        .await
        .expect_err("no such program");
    assert!(err.to_string().contains("could not be reached"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_servers_unusable_tools_are_left_out_and_an_endless_list_is_refused() {
    let (url, stop) = serve(HostileMcpServer { endless: false }).await;
    let tools = McpTools::connect(McpServer::http("h", &url)).await.expect("connect");
    let skipped: Vec<(&str, &str)> =
        tools.skipped().iter().map(|s| (s.name.as_str(), s.reason.as_str())).collect();
    println!("left out: {skipped:?}");
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped[0].0 == "bad name!" && skipped[0].1.contains("letters"), "{skipped:?}");
    assert!(skipped[1].1.contains("73 characters"), "{skipped:?}");
    assert!(skipped[2].0 == "huge" && skipped[2].1.contains("input schema"), "{skipped:?}");
    let set = ToolSet::new().with_all(tools.tools());
    let offered = set.definitions_for(chatd_core::ChatKind::Root);
    let names: Vec<&str> = offered.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    let chatty = offered.iter().find(|d| d.name == "h__chatty").expect("chatty is offered");
    assert_eq!(chatty.description.chars().count(), 4096, "the description is cut");
    stop.cancel();

    let (url, stop) = serve(HostileMcpServer { endless: true }).await;
    let started = Instant::now();
    let err = McpTools::connect(McpServer::http("e", &url).with_max_tools(200))
        .await
        .expect_err("endless");
    println!("endless listing refused after {:?}: {err}", started.elapsed());
    assert!(err.to_string().contains("lists more than 200 tools"), "{err}");
    stop.cancel();
}

/// A server that answers with more than 16 MiB cannot make the client buffer it: rmcp
/// drops an oversized stdio line (the call then times out, and the session goes on) and
/// refuses an oversized HTTP answer. A result under the bound comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_not_buffered() {
    let flood = |bytes: usize| call("1", "f__flood", json!({"bytes": bytes}));
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let stdio = McpTools::connect(stdio_server("f").with_call_timeout(Duration::from_secs(3)))
        .await
        .expect("connect");
    let set = ToolSet::new().with_all(stdio.tools());
    let got = results(&set.run_calls(&ctx, &[flood(1 << 20)]).await.expect("ran"));
    assert_eq!((got[0].0.as_str().map(str::len), got[0].1), (Some(1 << 20), false));
    let got = results(&set.run_calls(&ctx, &[flood(20 << 20)]).await.expect("ran"));
    println!("stdio, 20 MiB: {}", got[0].0);
    assert!(got[0].1, "an error result");
    assert!(got[0].0.to_string().contains("timed out"), "{}", got[0].0);
    let got = results(
        &set.run_calls(&ctx, &[call("2", "f__add", json!({"a": 1, "b": 2}))]).await.expect("ran"),
    );
    assert_eq!(got[0].0, json!({"sum": 3}), "the session goes on");

    let (url, stop) = http_server().await;
    let http =
        McpTools::connect(McpServer::http("f", &url).with_call_timeout(Duration::from_secs(10)))
            .await
            .expect("connect");
    let set = ToolSet::new().with_all(http.tools());
    let got = results(&set.run_calls(&ctx, &[flood(20 << 20)]).await.expect("ran"));
    let text = got[0].0.to_string();
    println!("streamable HTTP, 20 MiB: {}", text.chars().take(300).collect::<String>());
    assert!(got[0].1, "an error result");
    assert!(text.len() < 4096, "the error does not carry the answer: {} bytes", text.len());
    stop.cancel();
}
