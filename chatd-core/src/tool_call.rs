//! Durable tool calls ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): the record of each local call of a step that is not
//! answered in the same write as the step, kept with the chat until the step's tool rows are
//! written.
//!
//! A step whose calls all run at once and are idempotent needs no record: it is persisted in
//! one write after its calls ran, as before. Any other step (a call waits for a person or a
//! client, a call was denied, a call has side effects) is written in two parts: the assistant
//! row with one [`ToolCall`] per local call, then — when every call has its result — the tool
//! rows in call order, which clear the records. Between the two, the records say what each
//! call is waiting for, which non-idempotent calls were started (so a re-run never runs them
//! again), and the results already produced (so stopping never loses them).
//!
//! The rules both stores apply to the records inside their atomic operations (the
//! all-or-nothing decisions, deadlines, answering every unanswered call when the step must
//! end) are [`CallRecords`](crate::store::CallRecords). A host reads what waits for it with
//! [`Chat::open_calls`](crate::Chat::open_calls).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::message::NewMessage;
use crate::part::Part;

/// The result of a call whose worker stopped while it ran ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): the re-run never
/// runs it again.
pub(crate) const IN_DOUBT_RESULT: &str =
    "the worker stopped while this call was running; it may or may not have taken effect";
/// The result of a call cut off by an interrupt ([BEHAVIOUR §3](crate::behaviour#3-a-turn) item 8).
pub(crate) const INTERRUPTED_RESULT: &str = "tool call was interrupted before it produced a result";
/// The result of a call the person denied, before the optional `: <reason>`.
pub(crate) const DENIED_BY_USER: &str = "tool call denied by the user";
/// The result of an approval whose deadline passed.
pub(crate) const APPROVAL_EXPIRED: &str = "tool call was not approved before its deadline";
/// The result of a client call whose deadline passed.
pub(crate) const CLIENT_EXPIRED: &str = "the client did not return a result before its deadline";
/// The most decisions one [`resolve`] call takes (a step has at most a few dozen calls).
pub(crate) const MAX_DECISIONS: usize = 256;

/// What an open call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// A person's approval (`approve` or `deny`).
    Approval,
    /// The client's result (a client tool: `result`, or `deny`).
    Client,
}

/// Where a recorded call stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallState {
    /// Waiting for a decision or a client's result; the chat is `requires_action`.
    Open {
        /// What it waits for.
        kind: ActionKind,
        /// When the sweep answers it for the person ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes) "Deadlines").
        deadline: DateTime<Utc>,
    },
    /// To be run by the next worker (allowed by the policy, or approved).
    Ready,
    /// A non-idempotent call that a worker started: if no result follows, it is in doubt and
    /// is never run again.
    Started,
    /// Answered: its result is known (run, denied, a client's result, expired).
    Done {
        /// The result the model sees.
        result: Value,
        /// Whether it is an error result.
        is_error: bool,
    },
}

/// One local tool call of a step, as recorded with the chat until its tool row is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// The model's id for the call.
    pub tool_call_id: String,
    /// The tool called.
    pub tool_name: String,
    /// The arguments it runs with: the model's, or the person's edit.
    pub args: Value,
    /// Whether running it twice is harmless ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): such a call is never marked
    /// started, and simply runs again after a crash.
    pub idempotent: bool,
    /// Where it stands.
    #[serde(flatten)]
    pub state: CallState,
}

impl ToolCall {
    /// A record of a call in `state`.
    #[must_use]
    pub fn new(
        tool_call_id: impl Into<String>,
        tool_name: impl Into<String>,
        args: Value,
        idempotent: bool,
        state: CallState,
    ) -> Self {
        ToolCall {
            tool_call_id: tool_call_id.into(),
            tool_name: tool_name.into(),
            args,
            idempotent,
            state,
        }
    }

    /// What the call waits for, if it is open.
    #[must_use]
    pub fn open_kind(&self) -> Option<ActionKind> {
        match self.state {
            CallState::Open { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Its deadline, if it is open.
    #[must_use]
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        match self.state {
            CallState::Open { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Answers the call.
    pub fn answer(&mut self, result: Value, is_error: bool) {
        self.state = CallState::Done { result, is_error };
    }

    /// Its tool-result part: its own result when answered, else `{"error": fallback}`-style
    /// `fallback` as an error result.
    #[must_use]
    pub fn result_part(&self, fallback: &str) -> Part {
        let (result, is_error) = match &self.state {
            CallState::Done { result, is_error } => (result.clone(), *is_error),
            CallState::Started => (Value::String(IN_DOUBT_RESULT.to_owned()), true),
            _ => (Value::String(fallback.to_owned()), true),
        };
        Part::tool_result(self.tool_call_id.clone(), self.tool_name.clone(), result, is_error)
    }
}

/// The calls that are open, as clients are told of them (`action_required`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpenCall {
    /// The model's id for the call.
    pub tool_call_id: String,
    /// The tool called.
    pub tool_name: String,
    /// The arguments as the model gave them.
    pub args: Value,
    /// What it waits for.
    pub kind: ActionKind,
    /// When the sweep answers it.
    pub deadline: DateTime<Utc>,
}

/// The open calls among `calls`, in call order.
#[must_use]
pub(crate) fn open_calls(calls: &[ToolCall]) -> Vec<OpenCall> {
    calls
        .iter()
        .filter_map(|call| match call.state {
            CallState::Open { kind, deadline } => Some(OpenCall {
                tool_call_id: call.tool_call_id.clone(),
                tool_name: call.tool_name.clone(),
                args: call.args.clone(),
                kind,
                deadline,
            }),
            _ => None,
        })
        .collect()
}

/// Whether any call is open.
#[must_use]
pub(crate) fn any_open(calls: &[ToolCall]) -> bool {
    calls.iter().any(|call| call.open_kind().is_some())
}

/// The earliest deadline of the open calls (what a store indexes for the sweep).
#[must_use]
pub(crate) fn earliest_deadline(calls: &[ToolCall]) -> Option<DateTime<Utc>> {
    calls.iter().filter_map(ToolCall::deadline).min()
}

/// A decision on one open call ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes) "Resolving").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Run the call, with `args` instead of the model's when given (an approval call only).
    Approve {
        /// The call.
        tool_call_id: String,
        /// Edited arguments (checked like the model's: a JSON object within the size limit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<Value>,
    },
    /// Never run the call; the model gets `tool call denied by the user[: reason]`.
    Deny {
        /// The call.
        tool_call_id: String,
        /// Why, shown to the model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A client tool's result (a client call only).
    Result {
        /// The call.
        tool_call_id: String,
        /// The result the model sees.
        output: Value,
        /// Whether it is an error result.
        #[serde(default)]
        is_error: bool,
    },
}

impl Decision {
    /// How the result of a denied call begins (`tool call denied by the user`, then
    /// `: <reason>` when one was given): a client recognises a denial in the history by it.
    pub const DENIED_PREFIX: &'static str = DENIED_BY_USER;

    /// The call it decides.
    #[must_use]
    pub fn tool_call_id(&self) -> &str {
        match self {
            Decision::Approve { tool_call_id, .. }
            | Decision::Deny { tool_call_id, .. }
            | Decision::Result { tool_call_id, .. } => tool_call_id,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approve",
            Decision::Deny { .. } => "deny",
            Decision::Result { .. } => "result",
        }
    }
}

/// Answers every open call whose deadline is at or before `now` with its expiry result.
/// Returns whether any call changed.
pub(crate) fn expire(calls: &mut [ToolCall], now: DateTime<Utc>) -> bool {
    let mut changed = false;
    for call in calls.iter_mut() {
        if let CallState::Open { kind, deadline } = call.state
            && deadline <= now
        {
            let text = match kind {
                ActionKind::Approval => APPROVAL_EXPIRED,
                ActionKind::Client => CLIENT_EXPIRED,
            };
            call.answer(Value::String(text.to_owned()), true);
            changed = true;
        }
    }
    changed
}

/// The tool rows that end a recorded step early (an interrupt, a message inserted before the
/// step finished): every answered call keeps its result, a started one gets
/// the in-doubt result ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)), every other call `fallback` — in call order.
#[must_use]
pub(crate) fn closing_rows(calls: &[ToolCall], fallback: &str) -> Vec<NewMessage> {
    calls.iter().map(|call| NewMessage::tool(call.result_part(fallback))).collect()
}

#[cfg(test)]
mod tests;
