//! Attachments through a whole turn (BEHAVIOUR §19), for each of the eight provider kinds:
//! a person sends a picture and a PDF; the fake model (the kind's recorded tool-call stream)
//! asks `read_file` for an image of the workspace; the next request carries that image after
//! the tool results, and the first one carried the person's files, each in the provider's
//! own request shape — or, where the kind cannot take PDFs, a text note naming the file.

use std::sync::Arc;

use base64::Engine as _;
use chatd_core::files::testing_png;
use chatd_core::runtime::tools::{LocalWorkspace, ToolSet};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::{ChatStore, MessageQuery};
use chatd_core::{
    Actor, Chatd, NewChat, NewModelConfig, NewProvider, Part, ProviderKind, TurnOutcome, UserId,
    WorkerId,
};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_providers::{ProviderRegistry, StoreProviderSource};
use chatd_store_memory::InMemoryChatStore;
use chatd_tests::wire::{body, text_answer_text, tool_call_text};
use serde_json::{Value, json};

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The kind's recorded tool-call stream, its `.rs` paths renamed to `.png` ones.
fn tool_call(kind: ProviderKind) -> FakeResponse {
    let text = tool_call_text(kind)
        .replace("main.rs", "main.png")
        .replace("a.rs", "a.png")
        .replace("b.rs", "b.png");
    FakeResponse::sse(body(kind, &text))
}

fn answer(kind: ProviderKind) -> FakeResponse {
    FakeResponse::sse(body(kind, &text_answer_text(kind)))
}

/// A PNG in the kind's documented request shape.
fn image_block(kind: ProviderKind, data: &str) -> Value {
    match kind {
        ProviderKind::Anthropic => {
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}})
        }
        ProviderKind::Bedrock => json!({"image": {"format": "png", "source": {"bytes": data}}}),
        ProviderKind::Google => json!({"inlineData": {"mimeType": "image/png", "data": data}}),
        ProviderKind::OpenAi => {
            json!({"type": "input_image", "image_url": format!("data:image/png;base64,{data}")})
        }
        _ => {
            json!({"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}})
        }
    }
}

/// A PDF named `spec.pdf` in the kind's documented request shape; `None` where the kind
/// takes no documents (a text note is sent instead).
fn document_block(kind: ProviderKind, data: &str) -> Option<Value> {
    let url = format!("data:application/pdf;base64,{data}");
    Some(match kind {
        ProviderKind::Anthropic => {
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}})
        }
        ProviderKind::Bedrock => {
            json!({"document": {"format": "pdf", "name": "spec-pdf", "source": {"bytes": data}}})
        }
        ProviderKind::Google => {
            json!({"inlineData": {"mimeType": "application/pdf", "data": data}})
        }
        ProviderKind::OpenAi => {
            json!({"type": "input_file", "filename": "spec.pdf", "file_data": url})
        }
        ProviderKind::OpenAiCompat => return None,
        _ => json!({"type": "file", "file": {"filename": "spec.pdf", "file_data": url}}),
    })
}

/// Whether `node` is the kind's tool result.
fn is_tool_result(kind: ProviderKind, node: &Value) -> bool {
    match kind {
        ProviderKind::Anthropic => node["type"] == "tool_result",
        ProviderKind::Bedrock => node.get("toolResult").is_some(),
        ProviderKind::Google => node.get("functionResponse").is_some(),
        ProviderKind::OpenAi => node["type"] == "function_call_output",
        _ => node["role"] == "tool",
    }
}

/// Whether `node` holds everything `block` does (objects may hold more keys, such as
/// Anthropic's `cache_control`).
fn holds(node: &Value, block: &Value) -> bool {
    match (node, block) {
        (Value::Object(node), Value::Object(block)) => {
            block.iter().all(|(key, want)| node.get(key).is_some_and(|got| holds(got, want)))
        }
        (node, block) => node == block,
    }
}

/// The pre-order positions in `body` of the nodes `matches` accepts.
fn positions(body: &Value, matches: &dyn Fn(&Value) -> bool) -> Vec<usize> {
    fn walk(node: &Value, matches: &dyn Fn(&Value) -> bool, at: &mut usize, out: &mut Vec<usize>) {
        if matches(node) {
            out.push(*at);
        }
        *at += 1;
        match node {
            Value::Array(items) => items.iter().for_each(|item| walk(item, matches, at, out)),
            Value::Object(map) => map.values().for_each(|item| walk(item, matches, at, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(body, matches, &mut 0, &mut out);
    out
}

fn find(body: &Value, block: &Value) -> Option<usize> {
    positions(body, &|node| holds(node, block)).first().copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_receives_files_in_its_own_shape() {
    let pasted = testing_png(7, 5);
    let shown = testing_png(3, 3);
    for kind in ProviderKind::ALL {
        let server = FakeServer::start(vec![tool_call(kind), answer(kind)]).await.expect("server");
        let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
        store
            .create_provider(
                NewProvider::new(kind).with_api_key("test-key").with_base_url(server.url()),
            )
            .await
            .expect("provider");
        store
            .create_model_config(NewModelConfig::new(kind, "test-model", 100_000))
            .await
            .expect("config");
        let owner = UserId::new();
        let chatd = Chatd::new(Arc::clone(&store));
        let content = vec![
            Part::text("What is in the picture, the PDF and the workspace's images?"),
            Part::File {
                media_type: "application/octet-stream".into(),
                data: Some(b64(&pasted)),
                attachment_id: None,
                file_id: None,
                name: Some("paste.png".into()),
            },
            Part::File {
                media_type: "image/png".into(),
                data: Some(b64(PDF)),
                attachment_id: None,
                file_id: None,
                name: Some("spec.pdf".into()),
            },
        ];
        let chat = chatd
            .create_chat(&Actor::user(owner), NewChat::new(owner).with_message(content))
            .await
            .expect("chat");
        // Stored by reference, with the types the bytes show.
        let stored = store.list_messages(chat.id, MessageQuery::all()).await.expect("rows");
        let types: Vec<(String, bool)> = stored[0]
            .content
            .iter()
            .filter_map(|p| match p {
                Part::File { media_type, data, attachment_id, .. } => {
                    assert!(data.is_none(), "{kind}: no bytes in the row");
                    Some((media_type.clone(), attachment_id.is_some()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            types,
            [("image/png".to_owned(), true), ("application/pdf".to_owned(), true)],
            "{kind}"
        );
        let dir = tempfile::tempdir().expect("workspace");
        for name in ["a.png", "b.png"] {
            std::fs::write(dir.path().join(name), &shown).expect("image");
        }
        std::fs::create_dir(dir.path().join("src")).expect("src");
        std::fs::write(dir.path().join("src/main.png"), &shown).expect("image");
        let workspace = Arc::new(LocalWorkspace::open(dir.path()).expect("workspace"));
        let source = StoreProviderSource::new(
            Arc::clone(&store),
            ProviderRegistry::new().with_env(|_| None),
        );
        let runner =
            TurnRunner::new(Arc::clone(&store), Arc::new(source), ToolSet::workspace(workspace))
                .with_titles(false);
        let lease = store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
        let end = runner.run(lease, TurnSignal::new()).await;
        assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished), "{kind}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{kind}");
        let (first, second) = (requests[0].json(), requests[1].json());
        // The person's picture and PDF, in the first request.
        assert!(find(&first, &image_block(kind, &b64(&pasted))).is_some(), "{kind}: {first}");
        match document_block(kind, &b64(PDF)) {
            Some(block) => assert!(find(&first, &block).is_some(), "{kind}: {first}"),
            None => assert!(
                first.to_string().contains("[attached file spec.pdf (application/pdf): this model cannot read files of this type]"),
                "{kind}: {first}"
            ),
        }
        // The image read_file attached, after the tool results, in the second.
        let image = find(&second, &image_block(kind, &b64(&shown)));
        let result = positions(&second, &|node| is_tool_result(kind, node)).last().copied();
        assert!(
            matches!((result, image), (Some(r), Some(i)) if r < i),
            "{kind}: the attached image follows the tool results: {second}"
        );
        // The tool row refers to the file; it holds no bytes.
        let rows = store.list_messages(chat.id, MessageQuery::all()).await.expect("rows");
        let attached = rows.iter().flat_map(|m| &m.content).any(|p| {
            matches!(p, Part::ToolResult { result, .. } if !chatd_core::files::FileRef::listed_in(result).is_empty())
        });
        assert!(attached, "{kind}: a tool result lists its attachment");
        assert!(!format!("{rows:?}").contains(&b64(&shown)), "{kind}: no bytes stored in rows");
        println!("{:>13}: picture, PDF and tool image sent in its own shape", kind.as_str());
    }
}

/// `read_file` attaches only what its bytes show to be an image or PDF: a `.png` holding
/// text is read as text, and without a file store an image is read as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_file_attaches_by_the_bytes_not_the_name() {
    use chatd_core::runtime::tools::ToolContext;
    use tokio_util::sync::CancellationToken;
    let store = InMemoryChatStore::new();
    chatd_tests::configure(&store).await;
    let owner = UserId::new();
    let chat = store.create_chat(NewChat::new(owner)).await.expect("chat");
    let dir = tempfile::tempdir().expect("workspace");
    std::fs::write(dir.path().join("fake.png"), "not a picture\n").expect("text");
    std::fs::write(dir.path().join("real.png"), testing_png(2, 2)).expect("image");
    let tools = ToolSet::workspace(Arc::new(LocalWorkspace::open(dir.path()).expect("workspace")));
    let read = |path: &str| Part::tool_call("c", "read_file", json!({ "path": path }));
    let with_files =
        ToolContext::new(chat.id, owner, chatd_core::ChatKind::Root, CancellationToken::new())
            .with_files(store.file_store());
    let results = tools.run_calls(&with_files, &[read("fake.png"), read("real.png")]).await;
    let results = results.expect("ran");
    let value = |part: &Part| match part {
        Part::ToolResult { result, .. } => result.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(value(&results[0]), json!({"content": "not a picture\n"}));
    let attached = value(&results[1]);
    assert_eq!(
        (attached["width"].as_u64(), attached["height"].as_u64()),
        (Some(2), Some(2)),
        "{attached}"
    );
    assert_eq!(chatd_core::files::FileRef::listed_in(&attached).len(), 1, "{attached}");
    let without =
        ToolContext::new(chat.id, owner, chatd_core::ChatKind::Root, CancellationToken::new());
    let plain = tools.run_calls(&without, &[read("real.png")]).await.expect("ran");
    assert!(value(&plain[0]).get("content").is_some(), "read as text without a file store");
}
