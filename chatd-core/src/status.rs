//! The chat status state machine ([BEHAVIOUR §2](crate::behaviour#2-chat-status)), as data.
//!
//! Every status change in every store goes through [`ChatStatus::decide`]: a store looks at the current
//! row, picks the [`Trigger`] that describes the intent, and applies the returned
//! [`Decision`] inside its atomic operation. Stores never invent transitions.
//!
//! Two invariants hold for every decision and are therefore not repeated in the table:
//! - the ownership columns (`worker_id`, `started_at`, `heartbeat_at`) are set only while the
//!   status is `running`: any other `next` clears them;
//! - `last_error` is set only while the status is `error`: any other `next` clears it.
//!
//! # The table
//!
//! `·` = the intent is refused with [`InvalidTransition`]; `=` = accepted, status unchanged.
//! Message actions: *ins* inserts the message into history, *queue* appends it to the queue;
//! *stop* asks the running turn to stop (interrupt or pause); *promote* moves the queue head
//! into history (the status then becomes `pending`).
//!
//! *close* answers the recorded calls of an unfinished step ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)) before anything
//! else enters the history; stores also close them before any message is inserted.
//!
//! | trigger            | waiting        | pending       | running                | paused        | completed      | error          | requires_action   |
//! |--------------------|----------------|---------------|------------------------|---------------|----------------|----------------|-------------------|
//! | `SendQueue`        | pending, ins   | =, queue      | =, queue               | =, queue      | pending, ins   | pending, ins   | =, queue          |
//! | `SendInterrupt`    | pending, ins   | =, ins        | =, queue + stop        | =, queue      | pending, ins   | pending, ins   | pending, close, ins |
//! | `PromoteQueued`    | pending, ins   | =, ins        | =, stop (promote it)   | =, ins        | pending, ins   | pending, ins   | pending, close, ins |
//! | `Acquire`          | ·              | running       | ·                      | ·             | ·              | ·              | ·                 |
//! | `Heartbeat`        | ·              | ·             | =                      | ·             | ·              | ·              | ·                 |
//! | `FinishTurn`       | ·              | ·             | waiting, close, promote| ·             | ·              | ·              | ·                 |
//! | `EndInterrupted`   | ·              | ·             | waiting, close, promote| ·             | ·              | ·              | ·                 |
//! | `EndPaused`        | ·              | ·             | paused                 | ·             | ·              | ·              | ·                 |
//! | `FailTurn`         | ·              | ·             | error                  | ·             | ·              | ·              | ·                 |
//! | `Shutdown`         | ·              | ·             | pending                | ·             | ·              | ·              | ·                 |
//! | `RecoverStale`     | ·              | ·             | pending                | ·             | ·              | ·              | ·                 |
//! | `AwaitAction`      | ·              | ·             | requires_action        | ·             | ·              | ·              | ·                 |
//! | `ActionsResolved`  | =              | =             | =                      | =             | =              | =              | pending           |
//! | `Interrupt`        | =              | =             | =, stop                | =             | =              | =              | waiting, close, promote |
//! | `Pause`            | paused         | paused        | =, stop (pause)        | =             | ·              | paused         | paused            |
//! | `ResumeUnanswered` | ·              | ·             | ·                      | pending       | ·              | ·              | ·                 |
//! | `ResumeQueued`     | ·              | ·             | ·                      | pending, promote | ·           | ·              | ·                 |
//! | `ResumeIdle`       | ·              | ·             | ·                      | waiting       | ·              | ·              | ·                 |
//! | `ResumeAwaiting`   | ·              | ·             | ·                      | requires_action | ·            | ·              | ·                 |
//! | `Complete`         | completed      | ·             | ·                      | completed     | =              | completed      | ·                 |
//! | `Edit`             | pending        | pending       | pending (lease revoked)| pending       | pending        | pending        | pending           |
//! | `Compact`          | =              | ·             | ·                      | =             | =              | =              | ·                 |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The status of a chat (the seed's `chat_status` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChatStatus {
    /// Idle: no work needed.
    Waiting,
    /// Work needed and no worker owns it; the only status workers acquire.
    Pending,
    /// A worker owns the chat and runs its turn.
    Running,
    /// A person paused the chat: no worker takes it, the queue is not promoted.
    Paused,
    /// Closed as done; a new message re-opens it.
    Completed,
    /// The last turn failed; `last_error` says why.
    Error,
    /// Tool calls wait for a person's decision or a client's result ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)); no
    /// worker owns the chat.
    RequiresAction,
}

impl ChatStatus {
    /// Decides what `trigger` does to a chat in this status (see the module table): the
    /// one rule every store applies inside the intent's atomic write.
    ///
    /// # Errors
    /// [`InvalidTransition`] when the table has no entry for the pair.
    pub fn decide(self, trigger: Trigger) -> Result<Decision, InvalidTransition> {
        decide(self, trigger)
    }

    /// The status a release writes, given this decided status and the chat's tool-call
    /// records: a turn that ends waiting whose calls were all decided meanwhile (a decision
    /// or the sweep got there between the records' write and the release) goes on at once
    /// (`pending`) instead of waiting for nothing.
    #[must_use]
    pub fn settle_release(self, calls: &[crate::tool_call::ToolCall]) -> ChatStatus {
        settle_release(self, calls)
    }

    /// Whether a message sent to a chat in this status waits behind the chat's queue
    /// ([BEHAVIOUR §2](crate::behaviour#2-chat-status)): an idle chat (`waiting`, `error`, `completed`) that still has queued
    /// messages answers them first — the new message joins the tail, the head enters the
    /// history — so messages are answered in the order they were sent.
    #[must_use]
    pub const fn answers_queue_first(self) -> bool {
        matches!(self, ChatStatus::Waiting | ChatStatus::Error | ChatStatus::Completed)
    }

    /// Every status, in the seed's order, then `requires_action` (added to the seed's enum).
    pub const ALL: [ChatStatus; 7] = [
        ChatStatus::Waiting,
        ChatStatus::Pending,
        ChatStatus::Running,
        ChatStatus::Paused,
        ChatStatus::Completed,
        ChatStatus::Error,
        ChatStatus::RequiresAction,
    ];

    /// The status a new chat starts in ([BEHAVIOUR §2](crate::behaviour#2-chat-status): with a first user message it needs work).
    #[must_use]
    pub const fn initial(with_message: bool) -> Self {
        if with_message { ChatStatus::Pending } else { ChatStatus::Waiting }
    }

    /// The database spelling (`waiting`, `pending`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ChatStatus::Waiting => "waiting",
            ChatStatus::Pending => "pending",
            ChatStatus::Running => "running",
            ChatStatus::Paused => "paused",
            ChatStatus::Completed => "completed",
            ChatStatus::Error => "error",
            ChatStatus::RequiresAction => "requires_action",
        }
    }
}

impl fmt::Display for ChatStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown chat status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for ChatStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChatStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What happened to a chat: the events of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Trigger {
    /// A user message sent with busy behaviour `queue` (the default).
    SendQueue,
    /// A user message sent with busy behaviour `interrupt`.
    SendInterrupt,
    /// A queued message promoted by the user ("send now").
    PromoteQueued,
    /// A worker claims the chat.
    Acquire,
    /// The owning worker renews its lease.
    Heartbeat,
    /// The turn ended normally.
    FinishTurn,
    /// The turn ended because it was interrupted.
    EndInterrupted,
    /// The turn ended because a pause was requested.
    EndPaused,
    /// The turn failed.
    FailTurn,
    /// The worker shut down mid-turn; someone else must re-run it.
    Shutdown,
    /// The owner's heartbeat is older than the stale threshold.
    RecoverStale,
    /// The turn ended with tool calls waiting for a person or a client ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)).
    AwaitAction,
    /// The last open tool call of the waiting step was decided (or expired).
    ActionsResolved,
    /// A person asked to stop the running turn.
    Interrupt,
    /// A person paused the chat.
    Pause,
    /// Resume a paused chat whose last message is an unanswered user message.
    ResumeUnanswered,
    /// Resume a paused chat that has queued messages.
    ResumeQueued,
    /// Resume a paused chat with nothing to do.
    ResumeIdle,
    /// Resume a paused chat whose step still has open tool calls.
    ResumeAwaiting,
    /// A person (or the host) closed the chat as done.
    Complete,
    /// A user message was edited: history is cut there and the turn re-runs.
    Edit,
    /// A manual compaction of an idle chat.
    Compact,
}

impl Trigger {
    /// The trigger a release applies, given how the turn ended and what a person asked for
    /// meanwhile (the chat's pending stop request).
    ///
    /// A failure is always reported as a failure. Otherwise a requested pause wins (the
    /// chat becomes `paused`), then a requested interrupt (the turn counts as interrupted
    /// even if the worker was shutting down: the person asked for it to stop, so it must
    /// not re-run).
    #[must_use]
    pub fn release(outcome: &TurnOutcome, stop: Option<StopKind>) -> Trigger {
        release_trigger(outcome, stop)
    }

    /// The trigger that resumes a paused chat, given what work is waiting: open tool calls
    /// (`requires_action`), then a recorded step to finish or an unanswered message
    /// (`pending`), then the queue.
    #[must_use]
    pub fn resume(
        calls: &[crate::tool_call::ToolCall],
        has_unanswered_message: bool,
        queued: usize,
    ) -> Trigger {
        resume_trigger_for(calls, has_unanswered_message, queued)
    }

    /// Every trigger, in table order.
    pub const ALL: [Trigger; 22] = [
        Trigger::SendQueue,
        Trigger::SendInterrupt,
        Trigger::PromoteQueued,
        Trigger::Acquire,
        Trigger::Heartbeat,
        Trigger::FinishTurn,
        Trigger::EndInterrupted,
        Trigger::EndPaused,
        Trigger::FailTurn,
        Trigger::Shutdown,
        Trigger::RecoverStale,
        Trigger::AwaitAction,
        Trigger::ActionsResolved,
        Trigger::Interrupt,
        Trigger::Pause,
        Trigger::ResumeUnanswered,
        Trigger::ResumeQueued,
        Trigger::ResumeIdle,
        Trigger::ResumeAwaiting,
        Trigger::Complete,
        Trigger::Edit,
        Trigger::Compact,
    ];

    /// A human-readable verb phrase, used in error messages.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Trigger::SendQueue | Trigger::SendInterrupt => "send a message to",
            Trigger::PromoteQueued => "promote a queued message of",
            Trigger::Acquire => "acquire",
            Trigger::Heartbeat => "renew the lease of",
            Trigger::FinishTurn => "finish the turn of",
            Trigger::EndInterrupted => "end the interrupted turn of",
            Trigger::EndPaused => "end the paused turn of",
            Trigger::FailTurn => "fail the turn of",
            Trigger::Shutdown => "hand back",
            Trigger::RecoverStale => "recover",
            Trigger::AwaitAction => "wait for tool decisions in",
            Trigger::ActionsResolved => "resolve the tool calls of",
            Trigger::Interrupt => "interrupt",
            Trigger::Pause => "pause",
            Trigger::ResumeUnanswered
            | Trigger::ResumeQueued
            | Trigger::ResumeIdle
            | Trigger::ResumeAwaiting => "resume",
            Trigger::Complete => "complete",
            Trigger::Edit => "edit",
            Trigger::Compact => "compact",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What to do with the message that came with the intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAction {
    /// The intent carries no message, or the message is not used.
    None,
    /// Insert the message into the chat history.
    Insert,
    /// Append the message to the chat's queue.
    Queue,
}

/// What a running turn is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopKind {
    /// Stop the turn; the chat goes back to `waiting` (or `pending` with queued work).
    Interrupt,
    /// Stop the turn; the chat becomes `paused`.
    Pause,
}

impl StopKind {
    /// The database spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StopKind::Interrupt => "interrupt",
            StopKind::Pause => "pause",
        }
    }
}

/// The outcome of [`ChatStatus::decide`]: what a store must do atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The status to write (see `promote_queue_head` for the one exception).
    pub next: ChatStatus,
    /// What to do with the intent's message.
    pub message: MessageAction,
    /// Ask the running turn to stop.
    pub stop: Option<StopKind>,
    /// If the queue is non-empty, pop its head into history and write `pending` instead of
    /// `next`.
    pub promote_queue_head: bool,
    /// Claim the chat: set the owner, `started_at = heartbeat_at = now`, bump the lease epoch.
    pub claim: bool,
    /// Revoke the current lease (the running worker's writes must fail from now on).
    pub revoke_lease: bool,
    /// Answer every recorded tool call of the chat's unfinished step ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)) and
    /// write their tool rows, before any message enters the history: answered calls keep
    /// their results, started ones are in doubt, the rest interrupted. Stores also close the
    /// step before inserting any message, whatever this says.
    pub close_calls: bool,
}

impl Decision {
    const fn to(next: ChatStatus) -> Self {
        Decision {
            next,
            message: MessageAction::None,
            stop: None,
            promote_queue_head: false,
            claim: false,
            revoke_lease: false,
            close_calls: false,
        }
    }

    const fn close(mut self) -> Self {
        self.close_calls = true;
        self
    }

    const fn insert(mut self) -> Self {
        self.message = MessageAction::Insert;
        self
    }

    const fn queue(mut self) -> Self {
        self.message = MessageAction::Queue;
        self
    }

    const fn stop(mut self, kind: StopKind) -> Self {
        self.stop = Some(kind);
        self
    }

    const fn promote(mut self) -> Self {
        self.promote_queue_head = true;
        self
    }

    /// Whether the decision leaves the status as it was.
    #[must_use]
    pub fn keeps(&self, from: ChatStatus) -> bool {
        self.next == from
    }
}

/// An intent that the state machine refuses for the chat's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {trigger} a chat that is {from}")]
pub struct InvalidTransition {
    /// The chat's status when the intent arrived.
    pub from: ChatStatus,
    /// The refused intent.
    pub trigger: Trigger,
}

/// [`ChatStatus::decide`].
pub(crate) fn decide(from: ChatStatus, trigger: Trigger) -> Result<Decision, InvalidTransition> {
    use ChatStatus::{Completed, Error, Paused, Pending, RequiresAction, Running, Waiting};
    use Trigger as T;

    let decision = match (trigger, from) {
        (T::SendQueue | T::SendInterrupt | T::PromoteQueued, Waiting | Completed | Error) => {
            Decision::to(Pending).insert()
        }
        (T::SendQueue, Pending | Running | Paused | RequiresAction) => Decision::to(from).queue(),
        (T::SendInterrupt | T::PromoteQueued, RequiresAction) => {
            Decision::to(Pending).close().insert()
        }
        (T::SendInterrupt, Pending) => Decision::to(Pending).insert(),
        (T::SendInterrupt, Running) => Decision::to(Running).queue().stop(StopKind::Interrupt),
        (T::SendInterrupt, Paused) => Decision::to(Paused).queue(),
        (T::PromoteQueued, Pending | Paused) => Decision::to(from).insert(),
        (T::PromoteQueued, Running) => Decision::to(Running).stop(StopKind::Interrupt),

        (T::Acquire, Pending) => Decision { claim: true, ..Decision::to(Running) },
        (T::Heartbeat, Running) => Decision::to(Running),
        (T::FinishTurn | T::EndInterrupted, Running) => Decision::to(Waiting).close().promote(),
        (T::EndPaused, Running) => Decision::to(Paused),
        (T::FailTurn, Running) => Decision::to(Error),
        (T::Shutdown | T::RecoverStale, Running) => Decision::to(Pending),
        (T::AwaitAction, Running) => Decision::to(RequiresAction),
        (T::ActionsResolved, RequiresAction) => Decision::to(Pending),
        // Records can hold open calls in other statuses for a moment (a turn between writing
        // them and its release, a chat recovered before it was released): decisions are
        // kept, and whoever continues the step sees them.
        (T::ActionsResolved, _) => Decision::to(from),

        (T::Interrupt, Running) => Decision::to(Running).stop(StopKind::Interrupt),
        (T::Interrupt, RequiresAction) => Decision::to(Waiting).close().promote(),
        (T::Interrupt, _) => Decision::to(from),
        (T::Pause, Waiting | Pending | Error | RequiresAction) => Decision::to(Paused),
        (T::Pause, Running) => Decision::to(Running).stop(StopKind::Pause),
        (T::Pause, Paused) => Decision::to(Paused),
        (T::ResumeUnanswered, Paused) => Decision::to(Pending),
        (T::ResumeQueued, Paused) => Decision::to(Pending).promote(),
        (T::ResumeIdle, Paused) => Decision::to(Waiting),
        (T::ResumeAwaiting, Paused) => Decision::to(RequiresAction),
        (T::Complete, Waiting | Error | Paused | Completed) => Decision::to(Completed),
        (T::Edit, Running) => Decision { revoke_lease: true, ..Decision::to(Pending) },
        (T::Edit, _) => Decision::to(Pending),
        (T::Compact, Waiting | Paused | Completed | Error) => Decision::to(from),

        _ => return Err(InvalidTransition { from, trigger }),
    };
    Ok(decision)
}

/// How a chat's turn ended, as its subscribers are told (`turn_ended`) and as the chat
/// records it ([`Chat::last_turn`](crate::Chat::last_turn)). Unlike [`TurnOutcome`] (what
/// the worker reports) it also covers turns that ended without their worker: an edit
/// (`interrupted`) and a lost lease (`lost`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnEnding {
    /// The model finished.
    Finished,
    /// A person stopped it: an interrupt, a pause, or an edit that rewrote its history.
    Interrupted,
    /// It failed; the chat is in `error`.
    Failed {
        /// Why (the chat's `last_error`).
        reason: String,
    },
    /// Its worker shut down; the chat is `pending` and the turn re-runs as a new turn.
    Shutdown,
    /// Its worker stopped heartbeating and the chat was recovered; it re-runs as a new turn.
    Lost,
    /// It ended with tool calls waiting for a person or a client; the chat is
    /// `requires_action`, and the next turn starts once they are decided ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)).
    AwaitingAction,
}

impl TurnEnding {
    /// The ending recorded when a worker's release applies `trigger`.
    #[must_use]
    pub fn of_release(trigger: Trigger, outcome: &TurnOutcome) -> Self {
        match (trigger, outcome) {
            (Trigger::FailTurn, TurnOutcome::Failed(reason)) => {
                TurnEnding::Failed { reason: reason.clone() }
            }
            (Trigger::FailTurn, _) => TurnEnding::Failed { reason: String::new() },
            (Trigger::FinishTurn, _) => TurnEnding::Finished,
            (Trigger::Shutdown, _) => TurnEnding::Shutdown,
            (Trigger::AwaitAction, _) => TurnEnding::AwaitingAction,
            _ => TurnEnding::Interrupted,
        }
    }

    /// Whether the chat's work is over (no re-run follows this turn by itself).
    #[must_use]
    pub fn is_final(&self) -> bool {
        !matches!(self, TurnEnding::Shutdown | TurnEnding::Lost)
    }
}

/// How a turn ended, as reported by the worker that ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnOutcome {
    /// The model finished (text, stop, length, step limit, ...).
    Finished,
    /// The turn was interrupted; its partial output has been committed.
    Interrupted,
    /// The turn failed; the string is the structured reason stored in `last_error`.
    Failed(String),
    /// The worker is shutting down; the turn must re-run elsewhere.
    Shutdown,
    /// The step's tool calls wait for a person or a client ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)): the step and its
    /// call records are persisted; the chat becomes `requires_action`.
    AwaitingAction,
}

/// [`Trigger::release`].
pub(crate) fn release_trigger(outcome: &TurnOutcome, stop: Option<StopKind>) -> Trigger {
    match (outcome, stop) {
        (TurnOutcome::Failed(_), _) => Trigger::FailTurn,
        (_, Some(StopKind::Pause)) => Trigger::EndPaused,
        (TurnOutcome::Interrupted, _)
        | (TurnOutcome::Shutdown | TurnOutcome::AwaitingAction, Some(StopKind::Interrupt)) => {
            Trigger::EndInterrupted
        }
        (TurnOutcome::Finished, _) => Trigger::FinishTurn,
        (TurnOutcome::Shutdown, None) => Trigger::Shutdown,
        (TurnOutcome::AwaitingAction, None) => Trigger::AwaitAction,
    }
}

/// [`ChatStatus::settle_release`].
pub(crate) fn settle_release(next: ChatStatus, calls: &[crate::tool_call::ToolCall]) -> ChatStatus {
    if next == ChatStatus::RequiresAction && !crate::tool_call::any_open(calls) {
        ChatStatus::Pending
    } else {
        next
    }
}

/// [`Trigger::resume`].
pub(crate) fn resume_trigger_for(
    calls: &[crate::tool_call::ToolCall],
    has_unanswered_message: bool,
    queued: usize,
) -> Trigger {
    if crate::tool_call::any_open(calls) {
        Trigger::ResumeAwaiting
    } else if !calls.is_empty() {
        Trigger::ResumeUnanswered
    } else {
        resume_trigger(has_unanswered_message, queued)
    }
}

/// The trigger that resumes a paused chat without recorded tool calls, given what work is
/// waiting.
#[must_use]
pub(crate) fn resume_trigger(has_unanswered_message: bool, queued: usize) -> Trigger {
    if has_unanswered_message {
        Trigger::ResumeUnanswered
    } else if queued > 0 {
        Trigger::ResumeQueued
    } else {
        Trigger::ResumeIdle
    }
}

#[cfg(test)]
mod tests;
