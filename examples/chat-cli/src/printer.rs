//! Turns a chat's events into terminal output: streamed text as it comes, reasoning dimmed,
//! tool calls with their arguments, results when they arrive, a spinner while tools run, and
//! (on a terminal) the input prompt `› ` while the chat waits for you.

use std::collections::{HashSet, VecDeque};
use std::io::Write;

use chatd_core::events::{ChatEvent, ChatEventKind};
use chatd_core::provider::StreamEvent;
use chatd_core::status::TurnEnding;
use chatd_core::{ChatStatus, Message, Part, Role};
use serde_json::Value;

use crate::clean::clean;

const DIM: &str = "\x1b[2m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";
const SPINNER: [char; 8] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧'];
/// The input prompt.
pub(crate) const PROMPT: &str = "› ";

/// What is on the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Clean,
    Text,
    Reasoning,
    Spinner,
    Prompt,
}

/// The printer of one terminal.
pub(crate) struct Printer {
    line: Line,
    /// What was shown of the step in flight: its text, its reasoning, its tool calls (its
    /// persisted row may hold more: the row can overtake the step's last parts).
    shown_text: String,
    shown_reasoning: String,
    shown_calls: HashSet<String>,
    /// Tools are running (between a step with tool calls and their results).
    tools_running: usize,
    frame: usize,
    /// Texts this terminal sent, not to be echoed back, and whether each was queued (its
    /// answer then says which message it answers).
    sent: VecDeque<(String, bool)>,
    /// An interrupt was asked for: nothing more of the turn's text is shown (what was
    /// generated meanwhile is kept in the history, see `/history`).
    interrupting: bool,
    /// Colours and the spinner (a terminal), or plain lines (a pipe).
    fancy: bool,
    /// The chat's status.
    pub(crate) status: Option<ChatStatus>,
    /// Where it prints: stdout.
    out: Box<dyn Write + Send>,
}

fn short(value: &Value, max: usize) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

impl Printer {
    pub(crate) fn new(fancy: bool) -> Self {
        Printer {
            line: Line::Clean,
            shown_text: String::new(),
            shown_reasoning: String::new(),
            shown_calls: HashSet::new(),
            tools_running: 0,
            frame: 0,
            sent: VecDeque::new(),
            interrupting: false,
            fancy,
            status: None,
            out: Box::new(std::io::stdout()),
        }
    }

    /// A printer that writes into `out` (tests).
    #[cfg(test)]
    fn writing_to(out: Box<dyn Write + Send>) -> Self {
        Printer { out, ..Printer::new(false) }
    }

    /// Writes to the terminal (or, in tests, the buffer) and flushes.
    fn emit(&mut self, text: std::fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(text);
        let _ = self.out.flush();
    }

    fn style(&self, style: &'static str) -> &'static str {
        if self.fancy { style } else { "" }
    }

    /// Ends the current line (and clears a spinner).
    fn newline(&mut self) {
        match self.line {
            Line::Clean => {}
            Line::Spinner | Line::Prompt => self.emit(format_args!("\r\x1b[2K")),
            Line::Text | Line::Reasoning => {
                let reset = self.style(RESET);
                self.emit(format_args!("{reset}\n"));
            }
        }
        self.line = Line::Clean;
    }

    /// Prints a line of its own (as text: see [`clean`]).
    pub(crate) fn say(&mut self, text: &str) {
        self.newline();
        self.emit(format_args!("{}\n", clean(text)));
    }

    /// Prints a dimmed line of its own.
    pub(crate) fn dim(&mut self, text: &str) {
        self.say_styled(DIM, text);
    }

    /// Prints `text` (as text) between this terminal's own `style` and a reset.
    fn say_styled(&mut self, style: &'static str, text: &str) {
        self.newline();
        let (style, reset) = (self.style(style), self.style(RESET));
        self.emit(format_args!("{style}{}{reset}\n", clean(text)));
    }

    /// Remembers a text this terminal sent, so its echo is not printed.
    pub(crate) fn sent(&mut self, text: &str) {
        self.sent.push_back((text.to_owned(), false));
        if self.sent.len() > 64 {
            self.sent.pop_front();
        }
    }

    /// The last text sent was queued: its answer will say which message it answers.
    pub(crate) fn queued(&mut self) {
        if let Some(last) = self.sent.back_mut() {
            last.1 = true;
        }
    }

    /// Shows the prompt, on a terminal, unless something is on the current line.
    pub(crate) fn prompt(&mut self) {
        if self.fancy && self.line == Line::Clean {
            let (bold, reset) = (self.style(BOLD), self.style(RESET));
            self.emit(format_args!("{bold}{PROMPT}{reset}"));
            self.line = Line::Prompt;
        }
    }

    /// A line was typed: the terminal's cursor is on a fresh line.
    pub(crate) fn typed(&mut self) {
        if self.line == Line::Prompt {
            self.line = Line::Clean;
        }
    }

    /// An interrupt was asked for: the rest of the turn's text is not shown.
    pub(crate) fn interrupting(&mut self) {
        self.interrupting = true;
    }

    /// Whether the spinner should turn.
    pub(crate) fn spinning(&self) -> bool {
        self.fancy && self.tools_running > 0
    }

    /// One spinner frame.
    pub(crate) fn spin(&mut self) {
        if self.line != Line::Spinner {
            self.newline();
        }
        self.frame = (self.frame + 1) % SPINNER.len();
        self.emit(format_args!("\r{} running tools…", SPINNER[self.frame]));
        self.line = Line::Spinner;
    }

    fn write(&mut self, kind: Line, text: &str) {
        if self.line != kind {
            self.newline();
            if kind == Line::Reasoning {
                let dim = self.style(DIM);
                self.emit(format_args!("{dim}thinking: "));
            }
        }
        self.emit(format_args!("{}", clean(text)));
        self.line = kind;
    }

    fn call(&mut self, id: &str, tool_name: &str, args: &Value) {
        if self.shown_calls.insert(id.to_owned()) {
            self.newline();
            let (bold, reset) = (self.style(BOLD), self.style(RESET));
            let shown = short(args, 200);
            let args = clean(&shown);
            self.emit(format_args!("{bold}⚙ {}{reset} {args}\n", clean(tool_name)));
        }
    }

    fn part(&mut self, part: &StreamEvent) {
        if self.interrupting {
            return;
        }
        match part {
            StreamEvent::TextDelta { delta, .. } => {
                self.shown_text.push_str(delta);
                self.write(Line::Text, delta);
            }
            StreamEvent::ReasoningDelta { delta, .. } => {
                self.shown_reasoning.push_str(delta);
                self.write(Line::Reasoning, delta);
            }
            StreamEvent::ToolCall { id, tool_name, args, .. } => self.call(id, tool_name, args),
            _ => {}
        }
    }

    /// Shows what `full` adds to what was `shown` (all of it when they differ).
    fn complete(&mut self, kind: Line, shown: &str, full: &str) {
        match full.strip_prefix(shown) {
            Some(rest) if !rest.is_empty() => self.write(kind, rest),
            Some(_) => {}
            None => {
                self.newline();
                self.write(kind, full);
            }
        }
    }

    fn message(&mut self, message: &Message) {
        match message.role {
            Role::User => {
                let text = message.text();
                if self.sent.front().is_some_and(|(sent, _)| *sent == text) {
                    if let Some((_, true)) = self.sent.pop_front() {
                        self.say_styled(DIM, &format!("── now answering: “{text}”"));
                    }
                } else {
                    self.say(&format!("[{}] you: {text}", message.id.0));
                }
            }
            Role::Assistant => {
                let join = |reasoning: bool| -> String {
                    message
                        .content
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text { text, .. } if !reasoning => Some(text.as_str()),
                            Part::Reasoning { text, .. } if reasoning => Some(text.as_str()),
                            _ => None,
                        })
                        .collect()
                };
                let (reasoning, text) = (join(true), join(false));
                let (shown_reasoning, shown_text) = (
                    std::mem::take(&mut self.shown_reasoning),
                    std::mem::take(&mut self.shown_text),
                );
                if !self.interrupting {
                    self.complete(Line::Reasoning, &shown_reasoning, &reasoning);
                    self.complete(Line::Text, &shown_text, &text);
                }
                self.newline();
                let mut calls = 0;
                for part in &message.content {
                    if let Part::ToolCall { tool_call_id, tool_name, args, .. } = part {
                        self.call(tool_call_id, tool_name, args);
                        calls += 1;
                    }
                }
                self.shown_calls.clear();
                self.tools_running = calls;
            }
            Role::Tool => {
                for part in &message.content {
                    if let Part::ToolResult { tool_name, result, is_error, .. } = part {
                        let mark = if *is_error { "✗" } else { "←" };
                        self.say(&format!(
                            "  {mark} {tool_name}: {}",
                            short(result, 300).replace('\n', " ⏎ ")
                        ));
                    }
                }
                self.tools_running = 0;
            }
            Role::System => {}
        }
    }

    /// Prints `event`; returns whether it ended a turn.
    pub(crate) fn event(&mut self, event: &ChatEvent) -> bool {
        match &event.kind {
            ChatEventKind::Status { status, last_error } => {
                self.status = Some(*status);
                if let (ChatStatus::Error, Some(error)) = (status, last_error) {
                    self.say(&format!("[error: {error}]"));
                }
            }
            ChatEventKind::MessagePart { part } => self.part(part),
            ChatEventKind::Message { message } => self.message(message),
            ChatEventKind::PreviewReset => {
                self.shown_text.clear();
                self.shown_reasoning.clear();
                if !self.interrupting {
                    self.say("[the step restarts]");
                }
            }
            ChatEventKind::Retry { attempt, delay_ms, error, .. } => {
                self.say(&format!("[retry {attempt} in {delay_ms} ms: {error}]"));
            }
            ChatEventKind::Error { message } => self.say(&format!("[error: {message}]")),
            ChatEventKind::QueueUpdate { queue } if !queue.is_empty() => {
                self.say(&format!("[{} queued]", queue.len()));
            }
            ChatEventKind::HistoryRewritten { after_message_id } => {
                self.say(&format!("[history rewritten after message {after_message_id}]"));
            }
            ChatEventKind::TurnEnded { ending, .. } => {
                self.tools_running = 0;
                self.interrupting = false;
                let ending = match ending {
                    TurnEnding::Finished => "finished".to_owned(),
                    TurnEnding::Interrupted => "interrupted".to_owned(),
                    TurnEnding::Failed { reason } => format!("failed: {reason}"),
                    TurnEnding::Shutdown => "shut down (it will run again)".to_owned(),
                    TurnEnding::AwaitingAction => "waits for your answer".to_owned(),
                    _ => "lost (it will run again)".to_owned(),
                };
                self.say_styled(DIM, &format!("[turn {ending}]"));
                return true;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use chatd_core::events::Cursor;
    use chatd_core::{ChatId, Part};
    use serde_json::json;

    use super::*;

    /// A buffer the printer writes into, readable by the test.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut kept) = self.0.lock() {
                kept.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().map(|k| k.clone()).unwrap_or_default())
                .into_owned()
        }
    }

    fn event(kind: ChatEventKind) -> ChatEvent {
        ChatEvent { chat_id: ChatId::new(), cursor: Cursor::new(1, 0, 0), kind }
    }

    fn delta(text: &str) -> ChatEvent {
        let part = StreamEvent::TextDelta { id: "t".into(), delta: text.into() };
        event(ChatEventKind::MessagePart { part })
    }

    #[test]
    fn after_ctrl_c_nothing_more_of_the_turn_is_printed() {
        let out = Shared::default();
        let mut printer = Printer::writing_to(Box::new(out.clone()));
        printer.event(&delta("Once upon "));
        printer.say("[interrupting — Ctrl-C again to exit]");
        printer.interrupting();
        // What was in flight when the turn was asked to stop: more parts, a restarted
        // preview, and the partial answer's row, which holds more than was shown.
        printer.event(&delta("a time"));
        printer.event(&event(ChatEventKind::PreviewReset));
        let row: Message = serde_json::from_value(json!({
            "id": 2, "chat_id": ChatId::new(), "model_config_id": null,
            "created_at": "2026-12-05T00:00:00Z", "role": "assistant", "visibility": "both",
            "usage": null, "context_limit": null, "compressed": false,
            "content": [Part::text("Once upon a time there")],
        }))
        .expect("a row");
        printer.event(&event(ChatEventKind::Message { message: row }));
        let ended = TurnEnding::Interrupted;
        assert!(printer.event(&event(ChatEventKind::TurnEnded { turn: 1, ending: ended })));
        assert_eq!(
            out.text(),
            "Once upon \n[interrupting — Ctrl-C again to exit]\n[turn interrupted]\n",
            "nothing between the notice and the turn's end"
        );
        // The next turn prints again.
        printer.event(&delta("Hello"));
        assert!(out.text().ends_with("[turn interrupted]\nHello"));
    }
}
