//! What a store does with a chat's tool-call records ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)),
//! inside its atomic operations: [`CallRecords`], implemented for `[ToolCall]`. Both stores
//! call it, so they accept and refuse the same decisions and expire and close calls alike.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::message::NewMessage;

use super::StoreError;
use crate::tool_call::{ActionKind, CallState, DENIED_BY_USER, Decision, MAX_DECISIONS, ToolCall};

/// The rules a store applies to a chat's tool-call records ([`Chat::tool_calls`](crate::Chat::tool_calls))
/// inside its atomic writes, so every store treats them alike. Implemented for `[ToolCall]`
/// (and so for `Vec<ToolCall>`); sealed.
pub trait CallRecords: sealed::Sealed {
    /// Whether any call is open (waits for an approval or a client's result).
    fn any_open(&self) -> bool;

    /// The earliest deadline of the open calls: what a store indexes so that
    /// `expire_tool_calls` finds the chats whose calls are due.
    fn earliest_deadline(&self) -> Option<DateTime<Utc>>;

    /// For `expire_tool_calls`: answers every open call whose deadline is at or before `now`
    /// with its expiry result. Returns whether any call changed.
    fn expire(&mut self, now: DateTime<Utc>) -> bool;

    /// For an interrupt or a message inserted before a recorded step finished: the tool rows
    /// that end the step — every answered call keeps its result, a started one gets the
    /// in-doubt result, every other call the interrupted result — in call order.
    fn closing_rows(&self) -> Vec<NewMessage>;

    /// For `resolve_tool_calls`: applies `decisions`, all or nothing ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)):
    /// every decision must name an open call, at most once, with a decision its kind
    /// accepts. On error the records are unchanged.
    ///
    /// # Errors
    /// `Conflict` naming the first id that is not open (unknown, decided, an older step's) or
    /// is decided twice; `Validation` (`decisions`) for an empty list, too many decisions, or
    /// a decision of the wrong kind (`approve` on a client call, `result` on an approval).
    fn apply_decisions(&mut self, decisions: &[Decision]) -> Result<(), StoreError>;
}

mod sealed {
    /// Keeps [`CallRecords`](super::CallRecords) implemented only here.
    pub trait Sealed {}
    impl Sealed for [crate::tool_call::ToolCall] {}
}

impl CallRecords for [ToolCall] {
    fn any_open(&self) -> bool {
        crate::tool_call::any_open(self)
    }

    fn earliest_deadline(&self) -> Option<DateTime<Utc>> {
        crate::tool_call::earliest_deadline(self)
    }

    fn expire(&mut self, now: DateTime<Utc>) -> bool {
        crate::tool_call::expire(self, now)
    }

    fn closing_rows(&self) -> Vec<NewMessage> {
        crate::tool_call::closing_rows(self, crate::tool_call::INTERRUPTED_RESULT)
    }

    fn apply_decisions(&mut self, decisions: &[Decision]) -> Result<(), StoreError> {
        apply_decisions(self, decisions)
    }
}

/// [`CallRecords::apply_decisions`].
pub(crate) fn apply_decisions(
    calls: &mut [ToolCall],
    decisions: &[Decision],
) -> Result<(), StoreError> {
    if decisions.is_empty() {
        return Err(StoreError::validation("decisions", "no decision was given"));
    }
    if decisions.len() > MAX_DECISIONS {
        return Err(StoreError::validation(
            "decisions",
            format!("at most {MAX_DECISIONS} decisions per request"),
        ));
    }
    let mut targets = Vec::with_capacity(decisions.len());
    for decision in decisions {
        let id = decision.tool_call_id();
        let found = calls.iter().position(|call| call.tool_call_id == id);
        let Some(index) = found.filter(|index| !targets.contains(index)) else {
            return Err(not_open(id));
        };
        let Some(kind) = calls.get(index).and_then(ToolCall::open_kind) else {
            return Err(not_open(id));
        };
        let accepted = matches!(
            (decision, kind),
            (Decision::Approve { .. }, ActionKind::Approval)
                | (Decision::Result { .. }, ActionKind::Client)
                | (Decision::Deny { .. }, _)
        );
        if !accepted {
            return Err(StoreError::validation(
                "decisions",
                format!(
                    "tool call {} waits for {}: `{}` does not apply",
                    excerpt(id),
                    match kind {
                        ActionKind::Approval => "an approval (approve or deny)",
                        ActionKind::Client => "the client's result (result or deny)",
                    },
                    decision.name()
                ),
            ));
        }
        targets.push(index);
    }
    for (decision, index) in decisions.iter().zip(targets) {
        let Some(call) = calls.get_mut(index) else { continue };
        match decision {
            Decision::Approve { args, .. } => {
                if let Some(args) = args {
                    call.args = args.clone();
                }
                call.state = CallState::Ready;
            }
            Decision::Deny { reason, .. } => {
                let text = match reason.as_deref().map(str::trim) {
                    Some(reason) if !reason.is_empty() => format!("{DENIED_BY_USER}: {reason}"),
                    _ => DENIED_BY_USER.to_owned(),
                };
                call.answer(Value::String(text), true);
            }
            Decision::Result { output, is_error, .. } => call.answer(output.clone(), *is_error),
        }
    }
    Ok(())
}

/// An id as quoted in an error: at most 64 characters (ids come from models and clients).
fn excerpt(id: &str) -> String {
    let short: String = id.chars().take(64).collect();
    format!("{short:?}")
}

fn not_open(id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "tool call {} is not open in this chat (unknown, already decided, or of an earlier step)",
        excerpt(id)
    ))
}
