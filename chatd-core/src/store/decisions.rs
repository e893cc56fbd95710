//! Applying a person's or a client's decisions to a step's open tool calls ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)),
//! for store implementors: both stores call [`apply_decisions`] inside their atomic
//! operation, so they accept and refuse the same decisions.

use serde_json::Value;

use super::StoreError;
use crate::tool_call::{ActionKind, CallState, DENIED_BY_USER, Decision, MAX_DECISIONS, ToolCall};

/// Applies `decisions` to `calls`, all or nothing ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): every decision must name an
/// open call, at most once, with a decision its kind accepts. On error `calls` is unchanged.
///
/// # Errors
/// `Conflict` naming the first id that is not open (unknown, decided, an older step's) or is
/// decided twice; `Validation` (`decisions`) for an empty list, too many decisions, or a
/// decision of the wrong kind (`approve` on a client call, `result` on an approval).
pub fn apply_decisions(calls: &mut [ToolCall], decisions: &[Decision]) -> Result<(), StoreError> {
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
