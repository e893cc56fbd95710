//! Answering tool calls that wait (BEHAVIOUR §16) at the prompt: `[y]es/[n]o/[e]dit` for an
//! approval, a result (JSON or text) or `n` for a client tool. Each answer is sent as it is
//! given; the chat goes back to work when the last open call is answered.

use std::collections::VecDeque;

use chatd_core::tool_call::{ActionKind, Decision, OpenCall};
use serde_json::Value;

/// The open calls still to be asked about, and whether the next line holds edited
/// arguments for the first of them.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    calls: VecDeque<OpenCall>,
    editing: bool,
}

/// What a line typed while calls wait means.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// Send this decision (and ask about the next call, if any).
    Decide(Decision),
    /// Print this and wait for another line.
    Ask(String),
}

impl Pending {
    /// Replaces the calls to ask about (the stream tells the open ones whenever they change).
    pub(crate) fn set(&mut self, calls: &[OpenCall]) {
        self.calls = calls.iter().cloned().collect();
        self.editing = false;
    }

    /// Forgets them (the chat no longer waits).
    pub(crate) fn clear(&mut self) {
        self.calls.clear();
        self.editing = false;
    }

    /// Whether a call waits for an answer.
    pub(crate) fn waiting(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The question for the first open call.
    pub(crate) fn question(&self) -> Option<String> {
        let call = self.calls.front()?;
        let args = call.args.to_string();
        Some(match call.kind {
            ActionKind::Client => format!(
                "[{} runs on your side ({args}): type its result (JSON or text), or n to decline]",
                call.tool_name
            ),
            _ => format!("[run {} {args}? [y]es/[n]o (n <reason>)/[e]dit]", call.tool_name),
        })
    }

    /// What `line` answers for the first open call; a decision removes the call.
    pub(crate) fn answer(&mut self, line: &str) -> Answer {
        let Some(call) = self.calls.front() else {
            return Answer::Ask("[no tool call waits]".into());
        };
        let id = call.tool_call_id.clone();
        let (word, rest) = line.split_once(' ').map_or((line, ""), |(w, r)| (w, r.trim()));
        let deny = || Decision::Deny {
            tool_call_id: id.clone(),
            reason: (!rest.is_empty()).then(|| rest.to_owned()),
        };
        let decision = if self.editing {
            match serde_json::from_str::<Value>(line) {
                Ok(args @ Value::Object(_)) => {
                    Decision::Approve { tool_call_id: id, args: Some(args) }
                }
                _ => return Answer::Ask("[the arguments must be a JSON object; try again]".into()),
            }
        } else if matches!(word, "n" | "no") {
            deny()
        } else if call.kind == ActionKind::Client {
            let output = serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.into()));
            Decision::Result { tool_call_id: id, output, is_error: false }
        } else {
            match word {
                "y" | "yes" => Decision::Approve { tool_call_id: id, args: None },
                "e" | "edit" => {
                    self.editing = true;
                    return Answer::Ask(format!("[new arguments as JSON (were {}):]", call.args));
                }
                _ => return Answer::Ask("[answer y, n (with a reason), or e]".into()),
            }
        };
        self.editing = false;
        self.calls.pop_front();
        Answer::Decide(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open(id: &str, kind: ActionKind) -> OpenCall {
        serde_json::from_value(json!({
            "tool_call_id": id, "tool_name": "execute", "args": {"command": "ls"},
            "kind": kind, "deadline": "2030-01-01T00:00:00Z"
        }))
        .expect("an open call")
    }

    #[test]
    fn yes_no_and_edit_become_decisions_in_order() {
        let mut pending = Pending::default();
        pending.set(&[
            open("a", ActionKind::Approval),
            open("b", ActionKind::Approval),
            open("c", ActionKind::Client),
        ]);
        assert!(pending.question().expect("asks").contains("[y]es/[n]o"));
        assert!(matches!(pending.answer("maybe"), Answer::Ask(_)));
        assert_eq!(
            pending.answer("y"),
            Answer::Decide(Decision::Approve { tool_call_id: "a".into(), args: None })
        );
        assert!(matches!(pending.answer("e"), Answer::Ask(_)));
        assert!(matches!(pending.answer("[1]"), Answer::Ask(_)), "not an object");
        assert_eq!(
            pending.answer(r#"{"command": "pwd"}"#),
            Answer::Decide(Decision::Approve {
                tool_call_id: "b".into(),
                args: Some(json!({"command": "pwd"}))
            })
        );
        assert!(pending.question().expect("asks").contains("runs on your side"));
        assert_eq!(
            pending.answer("Oslo"),
            Answer::Decide(Decision::Result {
                tool_call_id: "c".into(),
                output: json!("Oslo"),
                is_error: false
            })
        );
        assert!(!pending.waiting());
        pending.set(&[open("d", ActionKind::Approval)]);
        assert_eq!(
            pending.answer("n too risky"),
            Answer::Decide(Decision::Deny {
                tool_call_id: "d".into(),
                reason: Some("too risky".into())
            })
        );
    }
}
