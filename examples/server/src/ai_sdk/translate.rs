//! chatd events → the AI SDK's UI message stream parts, for one assistant message.

use std::collections::HashSet;

use chatd_core::events::{ChatEvent, ChatEventKind};
use chatd_core::provider::StreamEvent;
use chatd_core::status::TurnEnding;
use chatd_core::tool_call::{ActionKind, OpenCall};
use chatd_core::{Message, Part, Role};
use serde_json::{Value, json};

/// chatd events → protocol parts, for one assistant message (the turn).
#[derive(Debug)]
pub struct Translator {
    message_id: String,
    /// Set while the answer waits for its user message (one sent into a busy chat waits in
    /// the queue): nothing before that message belongs to this answer.
    gate: Option<Gate>,
    started: bool,
    /// The episode (model call) whose step is open.
    step: Option<i64>,
    /// Whether parts of the current step were streamed (its persisted row adds nothing).
    streamed: bool,
    /// The turn being followed (a lost or shut-down turn is re-run as the next one).
    turn: Option<i64>,
    /// Turns before this one belong to earlier answers.
    first_turn: i64,
    /// Tool calls announced (`tool-input-start`), so each is announced once.
    calls: HashSet<String>,
    /// Tool calls whose input was sent (`tool-input-available`).
    available: HashSet<String>,
    /// Tool calls whose approval was requested (`tool-approval-request`).
    asked: HashSet<String>,
    /// The open calls the stream last told of (a follower that starts while the chat waits
    /// hears of them first, before the turn it replays).
    open: Vec<OpenCall>,
    /// The text and reasoning blocks streamed in the current step, in order: the UI id,
    /// whether it is reasoning, the text sent, whether it is still open.
    blocks: Vec<Block>,
}

/// The user message an answer waits for.
#[derive(Debug)]
struct Gate {
    /// The client's id for it (`None`: the next user message).
    client_id: Option<String>,
    /// Whether the answer's id is made from the message's when it comes.
    names_answer: bool,
}

/// A text or reasoning block streamed in the current step.
#[derive(Debug)]
struct Block {
    ui_id: String,
    reasoning: bool,
    sent: String,
    open: bool,
}

impl Translator {
    /// A translator whose message is `message_id`, the answer of turn `first_turn` (or of
    /// its re-runs).
    #[must_use]
    pub fn new(message_id: String, first_turn: i64) -> Self {
        Translator {
            message_id,
            gate: None,
            first_turn,
            started: false,
            step: None,
            streamed: false,
            turn: None,
            calls: HashSet::new(),
            available: HashSet::new(),
            asked: HashSet::new(),
            open: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// An answer to a message that is not in the history yet: events are skipped until the
    /// user message with `client_id` (or, without one, the next user message) arrives, and the
    /// answer is then named after it unless `new` was given an id the client chose.
    #[must_use]
    pub fn after_user_message(mut self, client_id: Option<String>, names_answer: bool) -> Self {
        self.gate = Some(Gate { client_id, names_answer });
        self
    }

    /// Whether `event` opens the gate (its user message arrived); the parts for an edit that
    /// took the message away.
    fn through_gate(&mut self, event: &ChatEvent) -> Option<(Vec<Value>, bool)> {
        let gate = self.gate.as_ref()?;
        match &event.kind {
            ChatEventKind::Message { message }
                if message.role == Role::User
                    && gate
                        .client_id
                        .as_ref()
                        .is_none_or(|id| message.client_id.as_ref() == Some(id)) =>
            {
                if gate.names_answer {
                    self.message_id = super::ui::answer_id(event.chat_id, message.id);
                }
                self.gate = None;
                Some((Vec::new(), false))
            }
            // An edit removes the queue, and with it the message this answer was for.
            ChatEventKind::HistoryRewritten { .. } => {
                self.gate = None;
                let mut out = Vec::new();
                self.start(&mut out);
                out.push(json!({"type": "abort", "reason": "the history was edited"}));
                Some((out, true))
            }
            _ => Some((Vec::new(), false)),
        }
    }

    fn start(&mut self, out: &mut Vec<Value>) {
        if !self.started {
            self.started = true;
            out.push(json!({"type": "start", "messageId": self.message_id}));
        }
    }

    fn open_step(&mut self, episode: i64, out: &mut Vec<Value>) {
        self.start(out);
        if self.step != Some(episode) {
            self.close_step(out);
            self.step = Some(episode);
            out.push(json!({"type": "start-step"}));
        }
    }

    fn close_step(&mut self, out: &mut Vec<Value>) {
        for block in self.blocks.iter_mut().filter(|b| b.open) {
            block.open = false;
            let kind = if block.reasoning { "reasoning-end" } else { "text-end" };
            out.push(json!({"type": kind, "id": block.ui_id}));
        }
        self.blocks.clear();
        if self.step.take().is_some() {
            out.push(json!({"type": "finish-step"}));
        }
        self.streamed = false;
    }

    fn call(&mut self, id: &str, name: &str, input: &Value, out: &mut Vec<Value>) {
        if self.calls.insert(id.to_owned()) {
            out.push(json!({"type": "tool-input-start", "toolCallId": id, "toolName": name, "dynamic": true}));
        }
        if self.available.insert(id.to_owned()) {
            out.push(json!({"type": "tool-input-available", "toolCallId": id, "toolName": name, "input": input, "dynamic": true}));
        }
    }

    fn block(&mut self, ui_id: String, reasoning: bool) -> Option<&mut Block> {
        self.blocks.iter_mut().find(|b| b.ui_id == ui_id && b.reasoning == reasoning)
    }

    /// Sends what the persisted text of a block adds to what was streamed of it, and ends it.
    fn complete_block(
        &mut self,
        index: usize,
        reasoning: bool,
        text: &str,
        fallback_id: &str,
        out: &mut Vec<Value>,
    ) {
        let (start, delta, end) = if reasoning {
            ("reasoning-start", "reasoning-delta", "reasoning-end")
        } else {
            ("text-start", "text-delta", "text-end")
        };
        let streamed = self.blocks.iter_mut().filter(|b| b.reasoning == reasoning).nth(index);
        match streamed {
            Some(block) => {
                if let Some(rest) = text.strip_prefix(block.sent.as_str())
                    && !rest.is_empty()
                {
                    out.push(json!({"type": delta, "id": block.ui_id, "delta": rest}));
                    block.sent.push_str(rest);
                }
                if block.open {
                    block.open = false;
                    out.push(json!({"type": end, "id": block.ui_id}));
                }
            }
            None => {
                out.push(json!({"type": start, "id": fallback_id}));
                out.push(json!({"type": delta, "id": fallback_id, "delta": text}));
                out.push(json!({"type": end, "id": fallback_id}));
            }
        }
    }

    fn output(id: &str, result: &Value, is_error: bool, out: &mut Vec<Value>) {
        let denied = |text: &str| text.starts_with(chatd_core::tool_call::Decision::DENIED_PREFIX);
        if is_error && result.as_str().is_some_and(denied) {
            // A person's denial (BEHAVIOUR §16): the SDK shows the call as denied.
            out.push(json!({"type": "tool-output-denied", "toolCallId": id}));
        } else if is_error {
            let text = match result {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push(json!({"type": "tool-output-error", "toolCallId": id, "errorText": text, "dynamic": true}));
        } else {
            out.push(json!({"type": "tool-output-available", "toolCallId": id, "output": result, "dynamic": true}));
        }
    }

    /// An approval request for each open approval call not yet asked about.
    fn ask(&mut self, out: &mut Vec<Value>) {
        self.start(out);
        let open = std::mem::take(&mut self.open);
        for call in open.iter().filter(|c| c.kind == ActionKind::Approval) {
            self.call(&call.tool_call_id, &call.tool_name, &call.args, out);
            if self.asked.insert(call.tool_call_id.clone()) {
                out.push(json!({
                    "type": "tool-approval-request",
                    "approvalId": call.tool_call_id,
                    "toolCallId": call.tool_call_id,
                }));
            }
        }
        self.open = open;
    }

    /// A part of the step in flight.
    fn part(&mut self, episode: i64, part: &StreamEvent, out: &mut Vec<Value>) {
        self.open_step(episode, out);
        self.streamed = true;
        let block = |id: &str| format!("{episode}-{id}");
        match part {
            StreamEvent::TextStart { id } | StreamEvent::ReasoningStart { id } => {
                let reasoning = matches!(part, StreamEvent::ReasoningStart { .. });
                let ui_id = block(id);
                let kind = if reasoning { "reasoning-start" } else { "text-start" };
                out.push(json!({"type": kind, "id": ui_id}));
                self.blocks.push(Block { ui_id, reasoning, sent: String::new(), open: true });
            }
            StreamEvent::TextDelta { id, delta } | StreamEvent::ReasoningDelta { id, delta } => {
                let reasoning = matches!(part, StreamEvent::ReasoningDelta { .. });
                let ui_id = block(id);
                let kind = if reasoning { "reasoning-delta" } else { "text-delta" };
                out.push(json!({"type": kind, "id": ui_id, "delta": delta}));
                if let Some(block) = self.block(ui_id, reasoning) {
                    block.sent.push_str(delta);
                }
            }
            StreamEvent::TextEnd { id, .. } | StreamEvent::ReasoningEnd { id, .. } => {
                let reasoning = matches!(part, StreamEvent::ReasoningEnd { .. });
                let ui_id = block(id);
                if let Some(block) = self.block(ui_id.clone(), reasoning) {
                    block.open = false;
                }
                let kind = if reasoning { "reasoning-end" } else { "text-end" };
                out.push(json!({"type": kind, "id": ui_id}));
            }
            StreamEvent::ToolInputStart { id, tool_name } if self.calls.insert(id.clone()) => {
                out.push(json!({"type": "tool-input-start", "toolCallId": id, "toolName": tool_name, "dynamic": true}));
            }
            StreamEvent::ToolInputDelta { id, delta } => {
                out.push(
                    json!({"type": "tool-input-delta", "toolCallId": id, "inputTextDelta": delta}),
                );
            }
            StreamEvent::ToolCall { id, tool_name, args, .. } => {
                self.call(id, tool_name, args, out)
            }
            StreamEvent::ToolResult { id, result, is_error, .. } => {
                Self::output(id, result, *is_error, out);
            }
            StreamEvent::Source { id, url, title } => {
                out.push(json!({"type": "source-url", "sourceId": id, "url": url, "title": title}));
            }
            // The step ends with its persisted row (which may hold more than was streamed).
            _ => {}
        }
    }

    /// A persisted row: it completes what was streamed of its step (a subscriber may see the
    /// row before the step's last parts) or, for a step not streamed here (a resumed turn),
    /// is sent whole; a tool row's results are sent as outputs.
    fn message(&mut self, message: &Message, out: &mut Vec<Value>) {
        match message.role {
            Role::Assistant => {
                if !self.streamed {
                    self.close_step(out);
                    self.open_step(-message.id.0, out);
                }
                let (mut texts, mut thoughts) = (0, 0);
                for (index, part) in message.content.iter().enumerate() {
                    let id = format!("m{}-{index}", message.id.0);
                    match part {
                        Part::Text { text, .. } => {
                            self.complete_block(texts, false, text, &id, out);
                            texts += 1;
                        }
                        Part::Reasoning { text, .. } => {
                            self.complete_block(thoughts, true, text, &id, out);
                            thoughts += 1;
                        }
                        Part::ToolCall { tool_call_id, tool_name, args, .. } => {
                            self.call(tool_call_id, tool_name, args, out);
                        }
                        Part::ToolResult { tool_call_id, result, is_error, .. } => {
                            Self::output(tool_call_id, result, *is_error, out);
                        }
                        _ => {}
                    }
                }
                self.close_step(out);
            }
            Role::Tool => {
                self.start(out);
                for part in &message.content {
                    if let Part::ToolResult { tool_call_id, result, is_error, .. } = part {
                        Self::output(tool_call_id, result, *is_error, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// The parts for `event`, and whether the message is complete.
    pub fn translate(&mut self, event: &ChatEvent) -> (Vec<Value>, bool) {
        if let Some(gated) = self.through_gate(event) {
            return gated;
        }
        let mut out = Vec::new();
        let done = match &event.kind {
            ChatEventKind::TurnStarted { turn } if *turn < self.first_turn => false,
            ChatEventKind::TurnStarted { turn } => {
                self.turn = Some(*turn);
                self.start(&mut out);
                false
            }
            ChatEventKind::MessagePart { part } => {
                self.part(event.cursor.episode, part, &mut out);
                false
            }
            ChatEventKind::Message { message } => {
                self.message(message, &mut out);
                false
            }
            ChatEventKind::Error { message } => {
                self.start(&mut out);
                out.push(json!({"type": "error", "errorText": message}));
                false
            }
            ChatEventKind::ActionRequired { calls } => {
                self.open.clone_from(calls);
                if self.turn.is_some() {
                    self.ask(&mut out);
                }
                false
            }
            ChatEventKind::TurnEnded { turn, ending } if self.turn == Some(*turn) => {
                self.start(&mut out);
                self.close_step(&mut out);
                match ending {
                    TurnEnding::Finished => {
                        out.push(json!({"type": "finish", "finishReason": "stop"}));
                        true
                    }
                    TurnEnding::Interrupted => {
                        out.push(json!({"type": "abort", "reason": "interrupted"}));
                        true
                    }
                    TurnEnding::Failed { reason } => {
                        out.push(json!({"type": "error", "errorText": reason}));
                        out.push(json!({"type": "finish", "finishReason": "error"}));
                        true
                    }
                    TurnEnding::AwaitingAction => {
                        self.ask(&mut out);
                        out.push(json!({"type": "finish", "finishReason": "tool-calls"}));
                        true
                    }
                    // Shut down or lost: another worker runs the turn again.
                    _ => false,
                }
            }
            ChatEventKind::HistoryRewritten { .. } => {
                self.start(&mut out);
                out.push(json!({"type": "abort", "reason": "the history was edited"}));
                true
            }
            _ => false,
        };
        (out, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatd_core::ChatId;
    use chatd_core::events::Cursor;

    fn event(cursor: Cursor, kind: ChatEventKind) -> ChatEvent {
        ChatEvent { chat_id: ChatId::new(), cursor, kind }
    }

    /// The chunks' types, in order.
    fn types(out: &[Value]) -> Vec<&str> {
        out.iter().filter_map(|c| c["type"].as_str()).collect()
    }

    fn part(seq: i64, part: StreamEvent) -> ChatEvent {
        event(Cursor::new(1, 5, seq), ChatEventKind::MessagePart { part })
    }

    #[test]
    fn a_row_that_overtakes_its_last_parts_completes_the_streamed_message() {
        let mut t = Translator::new("m".into(), 1);
        let mut out = Vec::new();
        for (seq, p) in [
            StreamEvent::TextStart { id: "t".into() },
            StreamEvent::TextDelta { id: "t".into(), delta: "Hello, ".into() },
            StreamEvent::ToolInputStart { id: "c1".into(), tool_name: "execute".into() },
        ]
        .into_iter()
        .enumerate()
        {
            out.extend(t.translate(&part(i64::try_from(seq).unwrap_or(0) + 1, p)).0);
        }
        let row: Message = serde_json::from_value(json!({
            "id": 2, "chat_id": ChatId::new(), "model_config_id": null,
            "created_at": "2026-11-30T00:00:00Z", "role": "assistant", "visibility": "both",
            "usage": null, "context_limit": null, "compressed": false,
            "content": [Part::text("Hello, world"), Part::tool_call("c1", "execute", json!({"command": "ls"}))],
        }))
        .expect("a row");
        out.extend(
            t.translate(&event(Cursor::new(2, 0, 0), ChatEventKind::Message { message: row })).0,
        );
        assert_eq!(
            types(&out),
            vec![
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "tool-input-start",
                "text-delta",
                "text-end",
                "tool-input-available",
                "finish-step"
            ]
        );
        assert_eq!(out[5]["delta"], "world", "only what the parts had not said");
        assert_eq!(out[7]["input"], json!({"command": "ls"}));
    }

    fn row(id: i64, role: &str, text: &str, client_id: Option<&str>) -> Message {
        serde_json::from_value(json!({
            "id": id, "chat_id": ChatId::new(), "model_config_id": null,
            "created_at": "2026-12-05T00:00:00Z", "role": role, "visibility": "both",
            "usage": null, "context_limit": null, "compressed": false,
            "content": [Part::text(text)], "client_id": client_id,
        }))
        .expect("a row")
    }

    #[test]
    fn an_answer_to_a_queued_message_starts_at_that_message() {
        let chat = ChatId::new();
        let at = |kind| ChatEvent { chat_id: chat, cursor: Cursor::new(1, 0, 0), kind };
        let mut t =
            Translator::new("unused".into(), 3).after_user_message(Some("ui-2".into()), true);
        let mut out = Vec::new();
        for kind in [
            // The turn being interrupted: its last part and row, another client's message.
            ChatEventKind::MessagePart {
                part: StreamEvent::TextDelta { id: "t".into(), delta: "old".into() },
            },
            ChatEventKind::Message { message: row(4, "assistant", "old", None) },
            ChatEventKind::Message { message: row(5, "user", "someone else", Some("ui-x")) },
            ChatEventKind::TurnEnded { turn: 2, ending: TurnEnding::Interrupted },
            // Ours, then its answer.
            ChatEventKind::Message { message: row(6, "user", "mine", Some("ui-2")) },
            ChatEventKind::TurnStarted { turn: 3 },
            ChatEventKind::Message { message: row(7, "assistant", "new", None) },
            ChatEventKind::TurnEnded { turn: 3, ending: TurnEnding::Finished },
        ] {
            let (chunks, done) = t.translate(&at(kind));
            out.extend(chunks);
            if done {
                break;
            }
        }
        assert_eq!(
            types(&out),
            vec![
                "start",
                "start-step",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step",
                "finish"
            ]
        );
        assert_eq!(out[0]["messageId"], format!("chatd-{chat}-6"), "named after the message");
        assert_eq!(out[3]["delta"], "new");
    }
}
