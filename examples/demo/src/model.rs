//! The offline demo model: a [`ModelProvider`] that reads the prompt and plays a small,
//! fixed repertoire, streaming with a delay per word so that a person (or a test) can watch,
//! interrupt and reconnect.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::provider::{
    EventStream, FinishReason, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind,
    StreamEvent, with_cancellation,
};
use chatd_core::{Part, ProviderKind, Role, Usage};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The model name the demo model answers to.
pub const DEMO_MODEL: &str = "chatd-demo";

/// The client tool the demo model calls when asked where the person is.
pub const LOCATION_TOOL: &str = "user_location";

/// A client tool (BEHAVIOUR §16): the front end answers it with where the person is (a
/// city, or coordinates); the turn waits for that answer.
#[must_use]
pub fn location_tool() -> chatd_core::runtime::tools::ClientTool {
    chatd_core::runtime::tools::ClientTool::new(
        LOCATION_TOOL,
        "Ask the person's device where they are. Answers with a city or coordinates.",
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
    )
}

/// The offline demo model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DemoModel {
    delay: Duration,
}

impl Default for DemoModel {
    fn default() -> Self {
        DemoModel { delay: Duration::from_millis(35) }
    }
}

impl DemoModel {
    /// A demo model waiting `delay` before each streamed word.
    #[must_use]
    pub fn with_delay(delay: Duration) -> Self {
        DemoModel { delay }
    }

    /// As an adapter.
    #[must_use]
    pub fn shared(self) -> Arc<dyn ModelProvider> {
        Arc::new(self)
    }
}

/// One planned event, and whether a word's delay comes before it.
type Planned = (StreamEvent, bool);

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if c == ' ' || c == '\n' {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn text_block(plan: &mut Vec<Planned>, id: &str, text: &str, reasoning: bool) {
    let id = id.to_owned();
    let (start, end) = if reasoning {
        (
            StreamEvent::ReasoningStart { id: id.clone() },
            StreamEvent::ReasoningEnd { id: id.clone(), provider_metadata: None },
        )
    } else {
        (
            StreamEvent::TextStart { id: id.clone() },
            StreamEvent::TextEnd { id: id.clone(), provider_metadata: None },
        )
    };
    plan.push((start, false));
    for word in words(text) {
        let delta = if reasoning {
            StreamEvent::ReasoningDelta { id: id.clone(), delta: word }
        } else {
            StreamEvent::TextDelta { id: id.clone(), delta: word }
        };
        plan.push((delta, true));
    }
    plan.push((end, false));
}

fn tool_call(plan: &mut Vec<Planned>, id: &str, name: &str, args: &Value) {
    let text = args.to_string();
    plan.push((StreamEvent::ToolInputStart { id: id.into(), tool_name: name.into() }, false));
    let chars: Vec<char> = text.chars().collect();
    for chunk in chars.chunks(16) {
        let delta = chunk.iter().collect();
        plan.push((StreamEvent::ToolInputDelta { id: id.into(), delta }, true));
    }
    plan.push((StreamEvent::ToolInputEnd { id: id.into() }, false));
    plan.push((
        StreamEvent::ToolCall {
            id: id.into(),
            tool_name: name.into(),
            args: args.clone(),
            provider_executed: false,
            provider_metadata: None,
        },
        false,
    ));
}

fn finish(plan: &mut Vec<Planned>, reason: FinishReason, request: &ModelRequest) {
    let input: i64 = request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .map(|p| i64::try_from(serde_json::to_string(p).map_or(0, |s| s.len() / 4)).unwrap_or(0))
        .sum();
    let output = i64::try_from(plan.len()).unwrap_or(0);
    let usage = Usage {
        input_tokens: input + 40,
        output_tokens: output,
        total_tokens: input + 40 + output,
        ..Usage::default()
    };
    plan.push((
        StreamEvent::Finish {
            reason,
            usage: Some(usage),
            context_window: None,
            provider_metadata: None,
        },
        false,
    ));
}

/// The text of the person's latest message, and the tool results that followed it.
fn latest(request: &ModelRequest) -> (String, Vec<(String, Value, bool)>) {
    let mut results = Vec::new();
    for message in request.messages.iter().rev() {
        match message.role {
            Role::User => {
                let text = message
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text { text, .. } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                results.reverse();
                return (text, results);
            }
            _ => {
                for part in message.content.iter().rev() {
                    if let Part::ToolResult { tool_name, result, is_error, .. } = part {
                        results.push((tool_name.clone(), result.clone(), *is_error));
                    }
                }
            }
        }
    }
    results.reverse();
    (String::new(), results)
}

fn short(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

const STORY: &str = "Once upon a time, a chat service kept every word it was told. Its \
workers took turns, one chat at a time, and wrote down each step before the next began. When \
a worker fell asleep mid-sentence, another noticed the silence, took the chat over, and \
carried on from the last written step, so that nobody reading along ever saw a word twice or \
missed one. Readers came and went: some left in the middle of a paragraph and came back \
later, holding a small ticket that said exactly where they had stopped, and the service \
handed them the rest of the story from that very point. Some readers were impatient and \
asked the storyteller to stop; it stopped at once, mid-word if need be, and waited for the \
next question. And when someone rewrote an earlier question, the service crossed out \
everything after it, told every reader so, and started over. The end.";

/// What the model does with the prompt.
/// What the demo model sees of the files of the latest user message: each image's size
/// from its header, each other file's type and byte count.
fn described_files(request: &ModelRequest) -> Vec<String> {
    use base64::Engine as _;
    let Some(message) = request.messages.iter().rev().find(|m| m.role == Role::User) else {
        return Vec::new();
    };
    message
        .content
        .iter()
        .filter_map(|part| match part {
            Part::File { media_type, data: Some(data), name, .. } => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
                let name = name.as_deref().unwrap_or("a file");
                Some(
                    match imagesize::blob_size(&bytes).ok().map(|size| (size.width, size.height)) {
                        Some((w, h)) if media_type.starts_with("image/") => format!(
                            "{name}: a {w}×{h} {} image of {} bytes",
                            media_type.trim_start_matches("image/").to_uppercase(),
                            bytes.len()
                        ),
                        _ => format!("{name}: {media_type}, {} bytes", bytes.len()),
                    },
                )
            }
            _ => None,
        })
        .collect()
}

fn plan(request: &ModelRequest) -> Result<Vec<Planned>, ProviderError> {
    let (said, results) = latest(request);
    let lower = said.to_lowercase();
    let mut plan = Vec::new();
    let files = described_files(request);
    if results.is_empty() && !files.is_empty() {
        let answer = format!("I see {}.", files.join("; "));
        text_block(&mut plan, "t1", &answer, false);
        finish(&mut plan, FinishReason::Stop, request);
        return Ok(plan);
    }
    // Tools run concurrently within a step, so the listing waits for the write's result.
    if results.len() == 1 && results[0].0 == "write_file" {
        tool_call(&mut plan, "call_list", "execute", &json!({"command": "ls -l && cat notes.md"}));
        finish(&mut plan, FinishReason::ToolCalls, request);
        return Ok(plan);
    }
    if !results.is_empty() {
        let mut answer = String::from("Done. ");
        for (tool, result, is_error) in &results {
            let shown = match result {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("output")
                    .and_then(Value::as_str)
                    .map_or_else(|| result.to_string(), str::to_owned),
                other => other.to_string(),
            };
            let status = if *is_error { "failed" } else { "worked" };
            answer.push_str(&format!("`{tool}` {status}: {}\n", short(shown.trim(), 240)));
        }
        answer.push_str("\nAnything else?");
        text_block(&mut plan, "t1", &answer, false);
        finish(&mut plan, FinishReason::Stop, request);
        return Ok(plan);
    }
    if lower.contains("fail") {
        return Err(ProviderError::new(
            "demo",
            ProviderErrorKind::InvalidRequest,
            "the demo model fails when asked to (say anything without \"fail\" to go on)",
        ));
    }
    let thought = format!(
        "The person wrote {} words. Let me pick one of my tricks.",
        said.split_whitespace().count()
    );
    text_block(&mut plan, "r1", &thought, true);
    if lower.contains("where am i") || lower.contains("location") {
        text_block(&mut plan, "t1", "Let me ask your device.", false);
        tool_call(&mut plan, "call_location", LOCATION_TOOL, &json!({}));
        finish(&mut plan, FinishReason::ToolCalls, request);
    } else if ["file", "write", "note", "save", "tool", "run "].iter().any(|k| lower.contains(k)) {
        text_block(
            &mut plan,
            "t1",
            "I'll save your words to notes.md, then list the workspace.",
            false,
        );
        let content = format!("{}\n", short(&said, 2000));
        tool_call(
            &mut plan,
            "call_write",
            "write_file",
            &json!({"path": "notes.md", "content": content}),
        );
        finish(&mut plan, FinishReason::ToolCalls, request);
    } else if lower.contains("slow") || lower.contains("story") {
        text_block(&mut plan, "t1", STORY, false);
        finish(&mut plan, FinishReason::Stop, request);
    } else {
        let answer = format!(
            "You said: “{}”. I am chatd's offline demo model. Ask me to write a file to watch \
             tools run, for a slow story to try interrupting or editing, or to fail to see an \
             error.",
            short(said.trim(), 200)
        );
        text_block(&mut plan, "t1", &answer, false);
        finish(&mut plan, FinishReason::Stop, request);
    }
    Ok(plan)
}

#[async_trait]
impl ModelProvider for DemoModel {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenAiCompat
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        let planned = plan(&request)?;
        let delay = self.delay;
        let events = futures::stream::iter(planned).then(move |(event, wait)| async move {
            if wait {
                tokio::time::sleep(delay).await;
            }
            Ok(event)
        });
        Ok(with_cancellation(events.boxed(), cancel, "demo"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatd_core::provider::PromptMessage;

    fn run(said: &str) -> Vec<StreamEvent> {
        let request = ModelRequest::new(DEMO_MODEL, vec![PromptMessage::user(said)]);
        plan(&request).expect("plan").into_iter().map(|(e, _)| e).collect()
    }

    fn calls(events: &[StreamEvent]) -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { tool_name, .. } => Some(tool_name.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_attached_image_is_described_by_its_size() {
        use base64::Engine as _;
        let png = chatd_core::files::testing_png(6, 4);
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        let message = PromptMessage::new(
            Role::User,
            vec![
                Part::text("what is this?"),
                Part::File {
                    media_type: "image/png".into(),
                    data: Some(data),
                    attachment_id: None,
                    file_id: None,
                    name: Some("shot.png".into()),
                },
            ],
        );
        let request = ModelRequest::new(DEMO_MODEL, vec![message]);
        let events: Vec<StreamEvent> =
            plan(&request).expect("plan").into_iter().map(|(e, _)| e).collect();
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta { delta, .. } => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, format!("I see shot.png: a 6×4 PNG image of {} bytes.", png.len()));
    }

    #[test]
    fn asking_for_a_file_writes_it_then_lists_it_in_the_next_step() {
        let events = run("please write a file");
        assert_eq!(calls(&events), vec!["write_file"]);
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Finish { reason: FinishReason::ToolCalls, .. })
        ));
        let written = ModelRequest::new(
            DEMO_MODEL,
            vec![
                PromptMessage::user("write a file"),
                PromptMessage::new(
                    Role::Tool,
                    vec![Part::tool_result(
                        "c",
                        "write_file",
                        json!({"written": "notes.md"}),
                        false,
                    )],
                ),
            ],
        );
        let next: Vec<StreamEvent> =
            plan(&written).expect("plan").into_iter().map(|(e, _)| e).collect();
        assert_eq!(calls(&next), vec!["execute"], "the listing waits for the write");
    }

    #[test]
    fn the_answer_after_tool_results_summarises_them() {
        let request = ModelRequest::new(
            DEMO_MODEL,
            vec![
                PromptMessage::user("write a file"),
                PromptMessage::new(
                    Role::Tool,
                    vec![Part::tool_result("c", "execute", json!({"output": "notes.md"}), false)],
                ),
            ],
        );
        let text: String = plan(&request)
            .expect("plan")
            .into_iter()
            .filter_map(|(e, _)| match e {
                StreamEvent::TextDelta { delta, .. } => Some(delta),
                _ => None,
            })
            .collect();
        assert!(text.starts_with("Done. `execute` worked: notes.md"), "{text}");
    }

    #[test]
    fn fail_is_an_error_and_words_keep_their_spaces() {
        let request = ModelRequest::new(DEMO_MODEL, vec![PromptMessage::user("please fail")]);
        assert!(plan(&request).is_err());
        assert_eq!(words("a b\nc"), vec!["a ", "b\n", "c"]);
    }
}
