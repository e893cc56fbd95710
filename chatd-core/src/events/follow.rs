//! `subscribe(chat, after)`: a chat's event stream, resumable by cursor ([BEHAVIOUR §7](crate::behaviour#7-streams)).
//!
//! Every change hint for the chat (or a resync, or the safety poll) makes the follower read
//! what lies after its cursor — persisted user-visible messages after `cursor.message`,
//! then the part log after `cursor.part`, then the chat — from the store, or from the
//! chat's shared tail when it follows through [`Streams`](super::Streams). Hints carry no
//! data, so a lost or duplicated hint costs latency, never correctness.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::ReusableBoxFuture;

use super::tail::{Tail, TailView};
use super::view::{ChatState, Chunk, PartRun, View, read_store};
use super::{ChatEvent, ChatEventKind, Cursor, hints_of};
use crate::feed::{ChangeHint, ChangeKind};
use crate::ids::ChatId;
use crate::message::QueuedMessage;
use crate::part_log::LivePart;
use crate::status::ChatStatus;

/// What a follower has told of the chat's state: its status, the failure, the open calls.
type Shown = (ChatStatus, Option<String>, Vec<crate::tool_call::OpenCall>);
use crate::store::{ChatStore, StoreError};

/// How a subscription re-reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Re-read this often even without a hint (a safety net under the feed's own poll
    /// fallback). Default 2 s.
    pub poll: Duration,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions { poll: Duration::from_secs(2) }
    }
}

impl SubscribeOptions {
    /// Re-reads every `poll` without hints.
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }
}

/// Follows `chat` from `after` (the cursor of the last event the client received; `None`
/// for the whole history), reading the store on its own (see [`Streams`](super::Streams)
/// to share one reader among a chat's subscribers). Yields, in order: the chat's status
/// (at once, before the history is read); every persisted user-visible message after the
/// cursor; the latest turn's start, the parts of the step in flight after the cursor, the
/// turn's end if it has ended; then live events. The stream ends when the chat is deleted.
/// A disconnecting client simply drops the stream: it never stops the turn.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use chatd_core::events::{ChatEventKind, subscribe};
/// use chatd_core::{ChatStore, NewChat, NewModelConfig, NewProvider, ProviderKind, UserId};
/// use chatd_core::SubscribeOptions;
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), chatd_core::StoreError> {
/// let store: Arc<dyn ChatStore> = Arc::new(chatd_store_memory::InMemoryChatStore::new());
/// store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await?;
/// store.create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-5", 400_000)).await?;
/// let chat = store.create_chat(NewChat::new(UserId::new()).with_text("hello")).await?;
///
/// let mut events = subscribe(Arc::clone(&store), chat.id, None, SubscribeOptions::default()).await?;
/// // The status comes first, then the history; a client keeps each event's cursor and
/// // passes the last one as `after` when it reconnects.
/// let first = events.next().await.expect("the status");
/// assert!(matches!(first.kind, ChatEventKind::Status { .. }));
/// let second = events.next().await.expect("the first message");
/// let ChatEventKind::Message { message } = second.kind else { panic!("{second:?}") };
/// assert_eq!(message.text(), "hello");
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// `NotFound` for an unknown chat; the store's error if the first read fails.
pub async fn subscribe(
    store: Arc<dyn ChatStore>,
    chat: ChatId,
    after: Option<Cursor>,
    options: SubscribeOptions,
) -> Result<BoxStream<'static, ChatEvent>, StoreError> {
    // Hints first, so nothing committed after the first read goes unnoticed.
    let hints = store.change_feed().await?.subscribe();
    let first = store.get_chat(chat).await?;
    let follower = Follower::new(
        store,
        chat,
        after.unwrap_or_default(),
        ChatState::from(&first),
        Wake::Hints(std::sync::Mutex::new(hints)),
        options.poll,
    );
    Ok(follower.into_stream())
}

/// A follower as a stream. Events already read are handed out straight from the queue; only
/// waiting and reading run as a future, whose allocation is reused from one wake-up to the
/// next. (`stream::unfold` moved the whole follower and built a new future for every event:
/// a fifth of the fan-out's time went to copying them.)
struct FollowStream {
    /// The follower, when no read is under way.
    idle: Option<Box<Follower>>,
    /// The box of the read under way (which owns the follower while `idle` is empty),
    /// reused by the next one.
    busy: Option<ReusableBoxFuture<'static, Box<Follower>>>,
}

impl Stream for FollowStream {
    type Item = ChatEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        let this = self.get_mut();
        loop {
            if let Some(mut follower) = this.idle.take() {
                if let Some(event) = follower.pop() {
                    this.idle = Some(follower);
                    return Poll::Ready(Some(event));
                }
                if follower.done {
                    this.idle = Some(follower);
                    return Poll::Ready(None);
                }
                let next = async move {
                    follower.advance().await;
                    follower
                };
                match &mut this.busy {
                    Some(future) => future.set(next),
                    None => this.busy = Some(ReusableBoxFuture::new(next)),
                }
            }
            // `idle` is empty: the read under way holds the follower.
            let Some(future) = this.busy.as_mut() else { return Poll::Ready(None) };
            match future.poll(cx) {
                Poll::Ready(follower) => this.idle = Some(follower),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// What wakes a follower.
pub(crate) enum Wake {
    /// Its own hint stream (in a mutex only to make the state `Sync`).
    Hints(std::sync::Mutex<BoxStream<'static, ChangeHint>>),
    /// The chat's shared tail, after each of its refreshes.
    Tail { tail: Arc<Tail>, changes: watch::Receiver<u64> },
}

pub(crate) struct Follower {
    store: Arc<dyn ChatStore>,
    chat: ChatId,
    wake: Wake,
    cursor: Cursor,
    status: Shown,
    /// Parts were emitted since the last message or reset.
    dirty: bool,
    /// The episode of the preview being built.
    episode: Option<i64>,
    pending: VecDeque<Queued>,
    /// The queue last sent (updates are sent only when it changed).
    queue: Option<Arc<Vec<QueuedMessage>>>,
    /// The tail tick of this follower's latest store read (see `Tail::view`).
    read_at: u64,
    poll: Duration,
    /// The first read is still to come.
    fresh: bool,
    /// The turn that was running when this follower subscribed (the chat read then): its
    /// end is told even if a later turn has begun by the first read.
    arrived_in: Option<i64>,
    done: bool,
}

/// What a follower has read and not yet handed out.
enum Queued {
    Event(ChatEvent),
    /// The message parts `chunk[next..end]`, each told at its own position after `base`.
    /// Built when handed out, so a subscriber that is far behind holds one reference to
    /// what it has still to tell, not a copy of every event.
    Parts {
        chunk: Chunk,
        next: usize,
        end: usize,
        base: Cursor,
    },
}

/// What one read found.
enum Read {
    Got(Box<View>, Option<Arc<Vec<QueuedMessage>>>),
    /// The chat is gone.
    Gone,
    /// Nothing to tell yet: the shared tail is reading again (see `TailView::Unsettled`).
    Later,
}

/// The lease epoch an episode number was derived from (see `runtime::live`).
fn episode_epoch(episode: i64) -> i64 {
    episode >> 24
}

impl Follower {
    pub(crate) fn new(
        store: Arc<dyn ChatStore>,
        chat: ChatId,
        after: Cursor,
        first: ChatState,
        wake: Wake,
        poll: Duration,
    ) -> Self {
        let mut follower = Follower {
            store,
            chat,
            wake,
            cursor: after,
            status: (ChatStatus::Waiting, None, Vec::new()),
            // A resuming client may still show parts of an attempt that has since been
            // superseded: until a message or a part of that same episode says otherwise,
            // treat its preview as present.
            // (Turn boundaries sit at seq 0; parts start at 1.)
            dirty: after.seq > 0,
            episode: (after.seq > 0).then_some(after.episode),
            pending: VecDeque::new(),
            queue: None,
            read_at: 0,
            poll,
            fresh: true,
            arrived_in: (first.status == ChatStatus::Running && first.lease_epoch > 0)
                .then_some(first.lease_epoch),
            done: false,
        };
        follower.tell_status(&(first.status, first.last_error.clone(), first.open_calls.clone()));
        follower
    }

    /// Takes tail views only from refreshes started after the shared tail's read tick
    /// `read_at` (see [`Tail::start_read`](super::tail::Tail::start_read)).
    pub(crate) fn with_read_at(mut self, read_at: u64) -> Self {
        self.read_at = read_at;
        self
    }

    pub(crate) fn into_stream(self) -> BoxStream<'static, ChatEvent> {
        Box::pin(FollowStream { idle: Some(Box::new(self)), busy: None })
    }

    /// The next read: the first one, or the one after the next wake-up.
    async fn advance(&mut self) {
        if self.fresh {
            self.fresh = false;
            self.read_now(true).await;
        } else {
            self.wait().await;
        }
    }

    fn push(&mut self, kind: ChatEventKind) {
        let event = ChatEvent { chat_id: self.chat, cursor: self.cursor, kind };
        self.pending.push_back(Queued::Event(event));
    }

    /// Queues the message part `chunk[index]` (at the cursor, which is at its position),
    /// extending the run it continues.
    fn push_part(&mut self, chunk: &Chunk, index: usize) {
        if let Some(Queued::Parts { chunk: run, end, base, .. }) = self.pending.back_mut()
            && Arc::ptr_eq(run, chunk)
            && *end == index
            && (base.history, base.message) == (self.cursor.history, self.cursor.message)
        {
            *end += 1;
            return;
        }
        let run = Queued::Parts {
            chunk: Arc::clone(chunk),
            next: index,
            end: index + 1,
            base: self.cursor,
        };
        self.pending.push_back(run);
    }

    /// The next event read and not yet handed out.
    fn pop(&mut self) -> Option<ChatEvent> {
        loop {
            match self.pending.front_mut()? {
                Queued::Event(_) => {
                    if let Some(Queued::Event(event)) = self.pending.pop_front() {
                        return Some(event);
                    }
                }
                Queued::Parts { chunk, next, end, base } => {
                    let event = chunk.get(*next).and_then(|part| match &part.live {
                        Some(LivePart::Stream { event }) => Some(ChatEvent {
                            chat_id: self.chat,
                            cursor: Cursor {
                                episode: part.position.episode,
                                seq: part.position.seq,
                                ..*base
                            },
                            kind: ChatEventKind::MessagePart { part: event.clone() },
                        }),
                        _ => None,
                    });
                    *next += 1;
                    if *next >= *end {
                        self.pending.pop_front();
                    }
                    if event.is_some() {
                        return event;
                    }
                }
            }
        }
    }

    /// Waits for a hint about the chat (or the tail's refresh, or the poll), coalesces what
    /// else is ready, and re-reads.
    async fn wait(&mut self) {
        let mut queue = false;
        match &mut self.wake {
            Wake::Tail { changes, .. } => {
                // The tail polls for everyone (and re-reads the queue then): no timer here.
                if changes.changed().await.is_err() {
                    // The tail is gone: only possible once the chat was deleted.
                    self.done = true;
                    return;
                }
            }
            Wake::Hints(hints) => {
                let chat = self.chat;
                let relevant = |hint: &ChangeHint| {
                    hint.kind == ChangeKind::Resync || hint.chat_id == Some(chat)
                };
                tokio::select! {
                    hint = hints_of(hints).next() => match hint {
                        Some(hint) if relevant(&hint) => {
                            queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
                            if hint.kind == ChangeKind::Deleted {
                                self.done = true;
                                return;
                            }
                        }
                        Some(_) => return,
                        None => {
                            // The feed is gone (its store was dropped): poll instead.
                            *hints_of(hints) = Box::pin(futures::stream::pending());
                            return;
                        }
                    },
                    () = tokio::time::sleep(self.poll) => queue = true,
                }
                while let Some(Some(hint)) = hints_of(hints).next().now_or_never() {
                    if relevant(&hint) {
                        queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
                        self.done |= hint.kind == ChangeKind::Deleted;
                    }
                }
                if self.done {
                    return;
                }
            }
        }
        self.read_now(queue).await;
    }

    /// Reads and queues the events; a failed read is retried at the next wake-up.
    async fn read_now(&mut self, queue: bool) {
        if let Err(err) = self.refresh(queue).await {
            tracing::debug!(chat = %self.chat, error = %err, "subscription re-read failed; retrying");
        }
    }

    /// Reads everything after the cursor (from the tail when it covers it).
    async fn read(&mut self, queue: bool) -> Result<Read, StoreError> {
        if let Wake::Tail { tail, .. } = &self.wake {
            match tail.view(self.cursor, self.read_at) {
                TailView::View(view, queue) => return Ok(Read::Got(view, queue)),
                TailView::Deleted => return Ok(Read::Gone),
                TailView::Unsettled => return Ok(Read::Later),
                TailView::Uncovered => self.read_at = tail.start_read(),
            }
        }
        let Some(view) = read_store(self.store.as_ref(), self.chat, self.cursor).await? else {
            return Ok(Read::Gone);
        };
        let queue = if queue || self.queue.is_none() {
            Some(Arc::new(self.store.list_queued(self.chat).await?))
        } else {
            None
        };
        Ok(Read::Got(Box::new(view), queue))
    }

    /// Reads everything after the cursor and queues the events.
    async fn refresh(&mut self, queue: bool) -> Result<(), StoreError> {
        let (mut view, mut new_queue) = match self.read(queue).await? {
            Read::Got(view, queue) => (view, queue),
            Read::Gone => {
                self.done = true;
                return Ok(());
            }
            Read::Later => return Ok(()),
        };
        // An edit rewrote the history: what was read may predate it. Tell the client what
        // to drop, then read again from there.
        for _ in 0..4 {
            if view.chat.history_version <= self.cursor.history {
                break;
            }
            let behind = view.chat.history_version - self.cursor.history;
            let keep = if behind == 1 { view.chat.rewritten_after } else { 0 };
            self.cursor.history = view.chat.history_version;
            self.cursor.message = self.cursor.message.min(keep);
            self.dirty = false;
            self.episode = None;
            self.push(ChatEventKind::HistoryRewritten { after_message_id: self.cursor.message });
            (view, new_queue) = match self.read(queue).await? {
                Read::Got(view, queue) => (view, queue),
                Read::Gone => {
                    self.done = true;
                    return Ok(());
                }
                Read::Later => return Ok(()),
            };
        }
        if view.chat.history_version != self.cursor.history {
            return Ok(()); // Still being edited: next round.
        }
        self.apply(*view);
        if let Some(queue) = new_queue {
            let same =
                self.queue.as_ref().is_some_and(|old| Arc::ptr_eq(old, &queue) || old == &queue);
            if !same {
                self.push(ChatEventKind::QueueUpdate { queue: queue.as_ref().clone() });
            }
            self.queue = Some(queue);
        }
        Ok(())
    }

    fn apply(&mut self, view: View) {
        let View { messages, parts, before, chat } = view;
        let status = (chat.status, chat.last_error.clone(), chat.open_calls.clone());
        // A preview from an earlier lease than the chat's current one was superseded (its
        // worker died, or lost the chat to an edit): say so before the re-run's messages.
        let stale_preview = self.episode.is_some_and(|e| episode_epoch(e) < chat.lease_epoch);
        if self.dirty && stale_preview && !messages.is_empty() {
            self.reset();
        }
        // Turn boundaries, in history order. A turn's start comes before its first message
        // (or part); it is the turn of the chat read after the history, so its parts are
        // covered. A turn's end comes before the first user message after it (none arrives
        // while it runs) or after everything read; it is taken from the chat read before
        // the history, so every message of that turn is in this read. A status that
        // changed is told with its boundary, so a subscriber that reads rarely sees the
        // same order as one that reads often.
        let running = chat.status == ChatStatus::Running;
        let changed = self.status != status;
        let mut start = (chat.lease_epoch > 0 && (running || chat.last_turn.is_some()))
            .then_some(chat.lease_epoch);
        let ended = self.ending(&before);
        // The turn that ended started after this message: the first user message after it
        // comes after its end.
        let ended_after = ended.as_ref().map_or(i64::MAX, |(_, _, after)| *after);
        let mut end = ended.map(|(turn, ending, _)| (turn, ending));
        // The same turn: its start comes first.
        let same = start.is_some() && start == end.as_ref().map(|(turn, _)| *turn);
        // An earlier turn whose end is told to a client that has not had its start (it
        // arrived while that turn ran, and read only after the next began): the start first,
        // before that turn's messages.
        let mut late_start = end
            .as_ref()
            .map(|(turn, _)| *turn)
            .filter(|turn| !same && self.cursor.position() < Cursor::turn_start(*turn));
        for message in messages {
            let user = message.role == crate::message::Role::User;
            if message.id.0 > ended_after {
                self.announce(late_start.take(), false, &status);
            }
            if user && message.id.0 > ended_after {
                if same {
                    self.announce(start.take(), false, &status);
                }
                self.conclude(end.take(), changed && !running, &status);
            }
            if message.id.0 > chat.turn_started_after {
                if !same {
                    self.conclude(end.take(), changed && !running, &status);
                }
                self.announce(start.take(), changed && running, &status);
            }
            self.cursor.message = message.id.0;
            self.dirty = false;
            self.episode = None;
            self.push(ChatEventKind::Message { message });
        }
        for PartRun { chunk, from } in parts {
            for index in from..chunk.len() {
                let Some(part) = chunk.get(index) else { break };
                if episode_epoch(part.position.episode) >= chat.lease_epoch {
                    self.conclude(end.take(), false, &status);
                    self.announce(start.take(), changed && running, &status);
                }
                self.part(&chunk, index);
            }
        }
        if same {
            self.announce(start.take(), false, &status);
            self.conclude(end.take(), changed && !running, &status);
        } else {
            if end.is_some() {
                self.announce(late_start.take(), false, &status);
            }
            self.conclude(end.take(), changed && !running, &status);
            self.announce(start.take(), changed && running, &status);
        }
        if self.status != status {
            self.tell_status(&status);
        }
    }

    /// The turn whose end this read can tell, with the message it started after: the turn of
    /// the chat read before the history once it has ended; while a later turn runs, the one
    /// before it — but only to a client that saw it start (one that did not never hears of
    /// it, as it never hears of older turns).
    fn ending(&self, before: &ChatState) -> Option<(i64, crate::status::TurnEnding, i64)> {
        if before.lease_epoch == 0 {
            return None;
        }
        if before.status != ChatStatus::Running {
            let ending = before.last_turn.clone()?;
            return Some((before.lease_epoch, ending, before.turn_started_after));
        }
        let previous = before.lease_epoch - 1;
        let seen = self.cursor.position() >= Cursor::turn_start(previous)
            || self.arrived_in == Some(previous);
        let ending = before.previous_turn.clone().filter(|_| previous > 0 && seen)?;
        Some((previous, ending, before.previous_turn_started_after))
    }

    /// The turn's start (once, if the client has not had it) and a status that became
    /// `running`, before the turn's messages and parts.
    fn announce(&mut self, turn: Option<i64>, running: bool, status: &Shown) {
        if let Some(turn) = turn {
            let (episode, seq) = Cursor::turn_start(turn);
            if self.cursor.position() < (episode, seq) {
                (self.cursor.episode, self.cursor.seq) = (episode, seq);
                self.push(ChatEventKind::TurnStarted { turn });
            }
            if running && self.status != *status {
                self.tell_status(status);
            }
        }
    }

    /// The turn's end (once), after its messages and parts, with the status it left.
    fn conclude(
        &mut self,
        ending: Option<(i64, crate::status::TurnEnding)>,
        changed: bool,
        status: &Shown,
    ) {
        let Some((turn, ending)) = ending else { return };
        let due = self.cursor.position() < Cursor::turn_end(turn);
        if self.dirty && (due || changed) {
            // The turn ended without persisting what was previewed (shutdown, death).
            self.reset();
        }
        if changed && self.status != *status {
            self.tell_status(status);
        }
        let (episode, seq) = Cursor::turn_end(turn);
        if self.cursor.position() < (episode, seq) {
            (self.cursor.episode, self.cursor.seq) = (episode, seq);
            self.push(ChatEventKind::TurnEnded { turn, ending });
        }
    }

    fn tell_status(&mut self, status: &Shown) {
        self.status = status.clone();
        self.push(ChatEventKind::Status { status: status.0, last_error: status.1.clone() });
        if status.0 == ChatStatus::RequiresAction {
            self.push(ChatEventKind::ActionRequired { calls: status.2.clone() });
        }
        if status.0 == ChatStatus::Error {
            let message = status.1.clone().unwrap_or_else(|| "the turn failed".to_owned());
            self.push(ChatEventKind::Error { message });
        }
    }

    fn reset(&mut self) {
        self.dirty = false;
        self.episode = None;
        self.push(ChatEventKind::PreviewReset);
    }

    fn part(&mut self, chunk: &Chunk, index: usize) {
        let Some(part) = chunk.get(index) else { return };
        let episode = part.position.episode;
        if (episode, part.position.seq) <= self.cursor.position() {
            return; // Already had (or superseded by a later turn's start).
        }
        if self.episode != Some(episode) {
            if self.dirty {
                self.reset();
            }
            self.episode = Some(episode);
        }
        self.cursor.episode = episode;
        self.cursor.seq = part.position.seq;
        match &part.live {
            Some(LivePart::Stream { .. }) => {
                self.dirty = true;
                self.push_part(chunk, index);
            }
            Some(LivePart::Retry { attempt, delay_ms, error, retrying_at }) => {
                self.push(ChatEventKind::Retry {
                    attempt: *attempt,
                    delay_ms: *delay_ms,
                    error: error.clone(),
                    retrying_at: *retrying_at,
                });
                self.reset();
            }
            // A part this version does not know (written by a newer worker): skip it.
            None => {}
        }
    }
}
