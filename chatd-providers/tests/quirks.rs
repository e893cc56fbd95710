//! The quirks corpus: streams in the shape real servers send them (finish reasons that lie,
//! missing finishes, cut calls, odd usage, reasoning in odd places, mid-stream errors),
//! each replayed through its adapter and compared with its reviewed, normalised summary.
//!
//! A case is `tests/fixtures/quirks/<adapter>/<case>.sse` (or `.jsonl` for Bedrock's
//! event stream), opening with a comment that names the server behaviour it records, and
//! `<case>.expected`: one line per normalised event (deltas of a block joined), then the
//! turn loop's decision — `loop: run <ids>` (BEHAVIOUR §3 step rule 4; `invalid(...)` marks a
//! call the loop answers with `invalid tool arguments`), `loop: none`, or `error: <kind>
//! retryable|final`. `CHATD_BLESS=1 cargo test -p chatd-providers --test quirks` rewrites
//! the `.expected` files — review every change before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chatd_core::Secret;
use chatd_core::provider::{Accumulator, ModelProvider, ModelRequest, PromptMessage, StreamEvent};
use chatd_providers::anthropic::AnthropicProvider;
use chatd_providers::bedrock::{BedrockAuth, BedrockProvider};
use chatd_providers::chat_completions::{ChatCompletionsProvider, Dialect};
use chatd_providers::google::GoogleProvider;
use chatd_providers::openai_responses::ResponsesProvider;
use chatd_providers::testing::{FakeResponse, FakeServer};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

mod support;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quirks")
}

fn provider(adapter: &str, url: &str) -> Box<dyn ModelProvider> {
    let key = || Secret::new("quirk-key");
    match adapter {
        "chat-completions" => Box::new(
            ChatCompletionsProvider::new(Dialect::OpenAiCompat, url, key()).expect("provider"),
        ),
        "anthropic" => Box::new(AnthropicProvider::new(url, key())),
        "google" => Box::new(GoogleProvider::new(url, key())),
        "openai-responses" => Box::new(ResponsesProvider::new(url, key())),
        "bedrock" => Box::new(BedrockProvider::new(url, "us-east-1", BedrockAuth::Bearer(key()))),
        other => panic!("unknown adapter folder {other}"),
    }
}

/// Joins deltas: one line per block, in the order blocks started.
#[derive(Default)]
struct Summary {
    lines: Vec<String>,
    blocks: BTreeMap<String, usize>,
}

impl Summary {
    fn block(&mut self, key: String, head: String) -> usize {
        let lines = &mut self.lines;
        *self.blocks.entry(key).or_insert_with(|| {
            lines.push(head);
            lines.len() - 1
        })
    }

    fn append(&mut self, key: String, head: String, delta: &str) {
        let index = self.block(key, head);
        let line = &mut self.lines[index];
        if let Some(open) = line.strip_suffix('"') {
            *line = format!("{open}{}\"", delta.escape_debug());
        }
    }

    fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextStart { id } | StreamEvent::TextDelta { id, .. } => {
                let delta =
                    if let StreamEvent::TextDelta { delta, .. } = event { delta } else { "" };
                self.append(format!("t{id}"), "text \"\"".to_owned(), delta);
            }
            StreamEvent::ReasoningStart { id } | StreamEvent::ReasoningDelta { id, .. } => {
                let delta =
                    if let StreamEvent::ReasoningDelta { delta, .. } = event { delta } else { "" };
                self.append(format!("r{id}"), "reasoning \"\"".to_owned(), delta);
            }
            StreamEvent::ReasoningEnd { provider_metadata, .. } => {
                let keys: Vec<String> = provider_metadata
                    .iter()
                    .flat_map(|m| m.iter().map(|(k, v)| format!("{k}={v}")))
                    .collect();
                if !keys.is_empty() {
                    self.lines.push(format!("reasoning-end {}", keys.join(" ")));
                }
            }
            StreamEvent::ToolInputStart { id, tool_name } => {
                self.block(format!("i{id}"), format!("input {id} {tool_name} \"\""));
            }
            StreamEvent::ToolInputDelta { id, delta } => {
                self.append(format!("i{id}"), format!("input {id} ? \"\""), delta);
            }
            StreamEvent::ToolCall { id, tool_name, args, provider_executed, .. } => {
                let executed = if *provider_executed { " provider-executed" } else { "" };
                self.lines.push(format!("call {id} {tool_name} {args}{executed}"));
            }
            StreamEvent::Finish { reason, usage, .. } => {
                let usage = usage.map_or_else(
                    || "none".to_owned(),
                    |u| {
                        format!(
                            "in={} out={} cache_read={} cache_write={} reasoning={} total={}",
                            u.input_tokens,
                            u.output_tokens,
                            u.cache_read_tokens,
                            u.cache_creation_tokens,
                            u.reasoning_tokens,
                            u.total_tokens
                        )
                    },
                );
                self.lines.push(format!("finish {reason:?} usage {usage}"));
            }
            StreamEvent::TextEnd { .. } | StreamEvent::ToolInputEnd { .. } => {}
            other => self.lines.push(format!("{other:?}")),
        }
    }
}

/// Replays one case and returns its summary.
async fn replay(adapter: &str, body: Vec<u8>) -> String {
    let response = if adapter == "bedrock" {
        FakeResponse::sse(body).with_header("content-type", "application/vnd.amazon.eventstream")
    } else {
        FakeResponse::sse(body)
    };
    let server = FakeServer::start(vec![response]).await.expect("server");
    let provider = provider(adapter, server.url());
    let request = ModelRequest::new("model", vec![PromptMessage::user("go")]);
    let mut summary = Summary::default();
    let mut accumulator = Accumulator::default();
    let mut outcome = None;
    match provider.stream(request, CancellationToken::new()).await {
        Err(err) => outcome = Some(err),
        Ok(mut events) => {
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => {
                        summary.push(&event);
                        accumulator.push(event);
                    }
                    Err(err) => {
                        outcome = Some(err);
                        break;
                    }
                }
            }
        }
    }
    let mut lines = summary.lines;
    lines.push(match outcome {
        Some(err) => format!(
            "error: {} {}",
            err.kind,
            if err.is_retryable() { "retryable" } else { "final" }
        ),
        None => {
            let generation = accumulator.finish();
            let run: Vec<String> = generation
                .calls_to_run()
                .iter()
                .filter_map(|part| match part {
                    chatd_core::Part::ToolCall { tool_call_id, args, .. } => {
                        Some(match chatd_core::ToolSet::new().refusal(args) {
                            Some(_) => format!("invalid({tool_call_id})"),
                            None => tool_call_id.clone(),
                        })
                    }
                    _ => None,
                })
                .collect();
            if run.is_empty() {
                "loop: none".to_owned()
            } else {
                format!("loop: run {}", run.join(" "))
            }
        }
    });
    lines.join("\n") + "\n"
}

fn cases() -> Vec<(String, PathBuf)> {
    let mut cases = Vec::new();
    for adapter in std::fs::read_dir(corpus()).expect("corpus").flatten() {
        let name = adapter.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(adapter.path()).expect("adapter dir").flatten() {
            let path = file.path();
            if matches!(path.extension().and_then(|e| e.to_str()), Some("sse" | "jsonl")) {
                cases.push((name.clone(), path));
            }
        }
    }
    cases.sort();
    cases
}

#[tokio::test]
async fn every_recorded_quirk_normalises_as_reviewed() {
    let bless = std::env::var("CHATD_BLESS").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus holds {} cases (at least 30)", cases.len());
    let mut failures = Vec::new();
    for (adapter, path) in &cases {
        let raw = std::fs::read(path).expect("fixture");
        let body = if adapter == "bedrock" {
            support::bedrock_frames_from(&String::from_utf8(raw).expect("utf-8"))
        } else {
            raw
        };
        let got = replay(adapter, body).await;
        let expected_path = path.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{}:\n--- expected\n{expected}--- got\n{got}", path.display()));
        }
    }
    println!("{} quirk cases replayed", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_the_required_quirks() {
    let names: Vec<String> = cases()
        .iter()
        .map(|(adapter, path)| {
            format!("{adapter}/{}", path.file_stem().and_then(|s| s.to_str()).unwrap_or(""))
        })
        .collect();
    for required in [
        "chat-completions/finish-stop-with-tool-calls",
        "chat-completions/unknown-finish-with-calls",
        "chat-completions/done-without-finish-valid-calls",
        "chat-completions/done-without-finish-truncated-call",
        "chat-completions/done-without-finish-call-without-arguments",
        "chat-completions/length-cuts-a-call",
        "chat-completions/content-filter-after-a-call",
        "chat-completions/connection-closed-mid-call",
        "chat-completions/usage-in-finish-chunk",
        "chat-completions/usage-in-trailing-chunk",
        "chat-completions/usage-followed-by-null",
        "chat-completions/usage-without-total-tokens",
        "chat-completions/reasoning-as-object",
        "chat-completions/reasoning-content-null-on-finish",
        "chat-completions/reasoning-tail-with-content",
        "chat-completions/reasoning-tail-with-call",
        "chat-completions/parallel-calls-interleaved",
        "chat-completions/empty-reasoning-then-call",
        "chat-completions/two-choices-reordered",
        "chat-completions/abnormal-finish-insufficient-system-resource",
        "anthropic/thinking-with-signature",
        "anthropic/tool-use-cut-by-max-tokens",
        "anthropic/overloaded-error-mid-stream",
        "google/max-tokens-partial-function-call",
        "google/safety-with-function-call",
        "google/malformed-function-call",
        "openai-responses/incomplete-with-call",
        "openai-responses/failed",
        "bedrock/throttling-exception-frame",
    ] {
        assert!(names.iter().any(|n| n == required), "missing quirk case {required}");
    }
}
