//! Recorded steps ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): a step whose calls are not all runnable at once and
//! idempotent is written in two parts — the assistant row with one record per call, then the
//! tool rows — so that calls can wait for a person or a client, a crash never runs a side
//! effect twice, and the re-run continues from the records instead of streaming the step
//! again.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::{StopReason, TurnEnd, TurnRunner, TurnSignal, store_failure};
use crate::chat::Chat;
use crate::message::NewMessage;
use crate::part::Part;
use crate::runtime::tools::{CallView, PolicyDecision, ToolContext};
use crate::status::TurnOutcome;
use crate::store::{Lease, Step, StoreError};
use crate::tool_call::{
    ActionKind, CallState, IN_DOUBT_RESULT, INTERRUPTED_RESULT, ToolCall, any_open, closing_rows,
};

/// How long open calls wait before the sweep answers them ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes) "Deadlines").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionDeadlines {
    /// For a person's approval (default 24 h).
    pub approval: Duration,
    /// For a client tool's result (default 10 min).
    pub client: Duration,
}

impl Default for ActionDeadlines {
    fn default() -> Self {
        ActionDeadlines { approval: APPROVAL_DEADLINE, client: CLIENT_DEADLINE }
    }
}

/// The default deadline of an approval.
pub(crate) const APPROVAL_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);
/// The default deadline of a client tool's result.
pub(crate) const CLIENT_DEADLINE: Duration = Duration::from_secs(10 * 60);

impl TurnRunner {
    /// One record per local call in `calls`, as the policy and the tools decide: a client
    /// tool's call waits for the client; an `ask` waits for a person; a `deny` is answered
    /// at once; an `auto` call is ready (and, when it is not idempotent, marked started in the
    /// same write as the step, since it runs right after). A call that cannot run at all (an
    /// unknown tool, arguments that are not an object or are too large) is ready and
    /// idempotent: running it only produces its error result.
    pub(super) async fn plan(&self, chat: &Chat, calls: &[Part]) -> Vec<ToolCall> {
        let mut records = Vec::with_capacity(calls.len());
        for call in calls {
            let Part::ToolCall { tool_call_id, tool_name, args, provider_executed: false, .. } =
                call
            else {
                continue;
            };
            let record = |idempotent, state| {
                ToolCall::new(
                    tool_call_id.clone(),
                    tool_name.clone(),
                    args.clone(),
                    idempotent,
                    state,
                )
            };
            let tool = self.tools.get(tool_name);
            let Some(tool) = tool.filter(|_| self.tools.refusal(args).is_none()) else {
                records.push(record(true, CallState::Ready));
                continue;
            };
            let idempotent = tool.idempotent();
            let open = |kind: ActionKind, wait: Duration| CallState::Open {
                kind,
                deadline: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
            };
            let state = if tool.runs_on_client() {
                open(ActionKind::Client, self.deadlines.client)
            } else {
                match self.policy.decide(CallView { chat, tool_name, args }).await {
                    PolicyDecision::Auto if idempotent => CallState::Ready,
                    PolicyDecision::Auto => CallState::Started,
                    PolicyDecision::Ask => open(ActionKind::Approval, self.deadlines.approval),
                    PolicyDecision::Deny(reason) => CallState::Done {
                        result: Value::String(format!("tool call denied: {reason}")),
                        is_error: true,
                    },
                }
            };
            records.push(record(idempotent, state));
        }
        records
    }

    /// Runs what the records allow and writes the outcome: `Ok` once the step's tool rows are
    /// written (the turn goes on), else how the turn ends — `requires_action` when calls stay
    /// open, a stop, a lost lease. With `resumed`, the records come from an earlier turn:
    /// a call it marked started is in doubt and is answered so, never run again.
    pub(super) async fn finish_recorded(
        &self,
        lease: &Lease,
        ctx: &ToolContext,
        signal: &TurnSignal,
        mut records: Vec<ToolCall>,
        resumed: bool,
    ) -> Result<(), TurnEnd> {
        if resumed {
            for record in &mut records {
                if record.state == CallState::Started {
                    record.answer(Value::String(IN_DOUBT_RESULT.to_owned()), true);
                }
            }
            // Approved calls with side effects are marked started before they run.
            let mut marked = false;
            for record in &mut records {
                if record.state == CallState::Ready && !record.idempotent {
                    record.state = CallState::Started;
                    marked = true;
                }
            }
            if marked {
                self.write(lease, Step::records(records.clone())).await?;
            }
        }
        let runnable: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.state, CallState::Ready | CallState::Started))
            .map(|(index, _)| index)
            .collect();
        if !runnable.is_empty() {
            let parts: Vec<Part> = runnable
                .iter()
                .filter_map(|&index| records.get(index))
                .map(|r| {
                    Part::tool_call(r.tool_call_id.clone(), r.tool_name.clone(), r.args.clone())
                })
                .collect();
            let (results, stopped) = match self.tools.run_calls(ctx, &parts).await {
                Ok(results) => (results, false),
                Err(cancelled) => (cancelled.finished, true),
            };
            for result in results {
                let Part::ToolResult { tool_call_id, result, is_error, .. } = result else {
                    continue;
                };
                if let Some(record) = records.iter_mut().find(|r| r.tool_call_id == tool_call_id) {
                    record.answer(result, is_error);
                }
            }
            if stopped {
                return Err(self.stop_recorded(lease, signal, records, &runnable).await);
            }
        }
        if any_open(&records) {
            self.write(lease, Step::records(records)).await?;
            return Err(TurnEnd::Release(TurnOutcome::AwaitingAction));
        }
        self.write(lease, Step::closing(closing_rows(&records, INTERRUPTED_RESULT))).await?;
        Ok(())
    }

    /// A stop while recorded calls ran. Shutdown keeps the records (finished results, and the
    /// started marks that make the re-run answer those calls as in doubt); an interrupt
    /// answers every unfinished call as interrupted and writes the step's rows.
    async fn stop_recorded(
        &self,
        lease: &Lease,
        signal: &TurnSignal,
        mut records: Vec<ToolCall>,
        ran: &[usize],
    ) -> TurnEnd {
        if signal.reason() == Some(StopReason::Shutdown) {
            return match self.write(lease, Step::records(records)).await {
                Ok(()) => TurnEnd::Release(TurnOutcome::Shutdown),
                Err(end) => end,
            };
        }
        for &index in ran {
            if let Some(record) = records.get_mut(index)
                && !matches!(record.state, CallState::Done { .. })
            {
                record.answer(Value::String(INTERRUPTED_RESULT.to_owned()), true);
            }
        }
        match self.write(lease, Step::closing(closing_rows(&records, INTERRUPTED_RESULT))).await {
            Ok(()) => TurnEnd::Release(TurnOutcome::Interrupted),
            Err(end) => end,
        }
    }

    /// One fenced write of a recorded step, told to the observer.
    async fn write(&self, lease: &Lease, step: Step) -> Result<(), TurnEnd> {
        match self.store.commit_step(lease, step).await {
            Ok(messages) => {
                if !messages.is_empty() {
                    self.observer.on_step(lease.chat_id, &messages);
                }
                Ok(())
            }
            Err(StoreError::LeaseLost { .. }) => Err(TurnEnd::LeaseLost),
            Err(err) => Err(store_failure(err, "failed to persist the step: ")),
        }
    }

    /// The first write of a recorded step: the assistant row and the records.
    pub(super) async fn open_recorded(
        &self,
        lease: &Lease,
        assistant: Option<NewMessage>,
        records: Vec<ToolCall>,
    ) -> Result<(), TurnEnd> {
        self.write(lease, Step::recorded(assistant, records)).await
    }
}
