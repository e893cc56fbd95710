//! One reader per chat per process: [`Streams`] keeps, for every chat someone follows, a
//! shared tail — the latest user-visible messages, the decoded part log of the step in
//! flight, the chat's state and its queue — refreshed by one store read per change hint.
//! Every subscriber of the chat keeps its own cursor and builds its events from the tail;
//! one whose cursor is older than the tail (a resume, or a subscriber that fell behind)
//! reads the store itself until the tail covers it. Nobody waits for anybody: the tail never
//! holds a subscriber's events, it only holds the chat's state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::follow::{Follower, Wake};
use super::view::{
    ChatState, Chunk, PartRun, SETTLE_ATTEMPTS, View, chat_state, consistent_read, decode,
    overtaken,
};
use super::{ChatEvent, Cursor, SubscribeOptions};
use crate::feed::{ChangeHint, ChangeKind};
use crate::ids::ChatId;
use crate::message::{Message, QueuedMessage};
use crate::store::{ChatStore, StoreError};

/// How many recent user-visible messages a tail keeps; older ones are read from the store.
const TAIL_MESSAGES: usize = 256;

/// The event streams of one store, with one shared reader per followed chat (see the
/// module docs). Cheap to clone; `Chatd` holds one.
#[derive(Clone)]
pub struct Streams {
    store: Arc<dyn ChatStore>,
    options: SubscribeOptions,
    tails: Arc<Mutex<HashMap<ChatId, Weak<Tail>>>>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Streams {
    /// Streams over `store`.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, options: SubscribeOptions) -> Self {
        Streams { store, options, tails: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Follows `chat` from `after`, like [`subscribe`](super::subscribe), sharing one
    /// reader with every other subscriber of the chat on this `Streams`.
    ///
    /// # Errors
    /// `NotFound` for an unknown chat; the store's error if reading it fails.
    pub async fn subscribe(
        &self,
        chat: ChatId,
        after: Option<Cursor>,
    ) -> Result<BoxStream<'static, ChatEvent>, StoreError> {
        let tail = self.tail(chat, after.unwrap_or_default()).await?;
        // The subscriber's first read starts here: a tail state from a refresh begun before it
        // may be older than what the subscriber is about to read (the tail may not have been
        // woken yet), so only a later refresh's is taken; until then it reads the store.
        let read_at = tail.start_read();
        let first = self.store.get_chat(chat).await?;
        let changes = tail.generation.subscribe();
        let follower = Follower::new(
            Arc::clone(&self.store),
            chat,
            after.unwrap_or_default(),
            ChatState::from(&first),
            Wake::Tail { tail, changes },
            self.options.poll,
        )
        .with_read_at(read_at);
        Ok(follower.into_stream())
    }

    /// Chats followed on this `Streams` right now (for tests and health reports).
    #[must_use]
    pub fn followed_chats(&self) -> usize {
        let tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
        tails.values().filter(|t| t.strong_count() > 0).count()
    }

    async fn tail(&self, chat: ChatId, seed: Cursor) -> Result<Arc<Tail>, StoreError> {
        {
            let mut tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
            tails.retain(|_, tail| tail.strong_count() > 0);
            if let Some(tail) = tails.get(&chat).and_then(Weak::upgrade) {
                return Ok(tail);
            }
        }
        // Hints first, so nothing committed after the first read goes unnoticed.
        let hints = self.store.change_feed().await?.subscribe();
        let (generation, _) = watch::channel(0);
        let tail = Arc::new(Tail {
            chat,
            store: Arc::clone(&self.store),
            state: RwLock::new(TailState::default()),
            reads: AtomicU64::new(0),
            generation,
        });
        let mut tails = self.tails.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = tails.get(&chat).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        tails.insert(chat, Arc::downgrade(&tail));
        drop(tails);
        tokio::spawn(run(Arc::downgrade(&tail), hints, seed, self.options.poll));
        Ok(tail)
    }
}

/// The shared tail of one chat.
pub(crate) struct Tail {
    chat: ChatId,
    store: Arc<dyn ChatStore>,
    /// Read by every subscriber at each refresh, written by the tail's task.
    state: RwLock<TailState>,
    /// Counts reads as they start (the tail's and its subscribers' own store reads), so a
    /// subscriber knows whether the tail's data is at least as new as what it read itself.
    reads: AtomicU64,
    /// Bumped after every refresh.
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct TailState {
    loaded: bool,
    /// Every user-visible message with an id above `base` is in `messages`.
    base: i64,
    messages: VecDeque<Message>,
    /// The step in flight's parts, one non-empty chunk per refresh, in log order.
    parts: Vec<Chunk>,
    /// The chat read before (`.0`) and after (`.1`) the latest refresh's history read.
    chat: Option<(ChatState, ChatState)>,
    queue: Option<Arc<Vec<QueuedMessage>>>,
    /// The `reads` tick at which the latest refresh started.
    read_at: u64,
    deleted: bool,
    /// The latest refresh was not overtaken (see `View::overtaken`), or gave up waiting.
    settled: bool,
}

/// What a subscriber gets from the tail.
pub(crate) enum TailView {
    /// The tail covers the cursor.
    View(Box<View>, Option<Arc<Vec<QueuedMessage>>>),
    /// The chat was deleted.
    Deleted,
    /// The chat changed under the tail's latest read (see `View::overtaken`), which is being
    /// repeated: wait for its next refresh.
    Unsettled,
    /// Read the store instead.
    Uncovered,
}

impl Tail {
    /// Starts a read of the subscriber's own: the tick to compare with [`Tail::view`].
    pub(crate) fn start_read(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Everything after `cursor`, if the tail covers it and is newer than `read_at`.
    pub(crate) fn view(&self, cursor: Cursor, read_at: u64) -> TailView {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if state.deleted {
            return TailView::Deleted;
        }
        let Some((before, chat)) = state.chat.as_ref() else { return TailView::Uncovered };
        if !state.loaded
            || state.read_at <= read_at
            || cursor.message < state.base
            || cursor.history != chat.history_version
        {
            return TailView::Uncovered;
        }
        if !state.settled {
            return TailView::Unsettled;
        }
        let from = state.messages.partition_point(|m| m.id.0 <= cursor.message);
        let messages = state.messages.range(from..).cloned().collect();
        let after = (cursor.episode, cursor.seq);
        let told = |p: &super::view::Decoded| (p.position.episode, p.position.seq) <= after;
        let first = state.parts.partition_point(|chunk| chunk.last().is_none_or(told));
        let parts = state.parts[first..]
            .iter()
            .enumerate()
            .map(|(i, chunk)| PartRun {
                chunk: Arc::clone(chunk),
                from: if i == 0 { chunk.partition_point(told) } else { 0 },
            })
            .collect();
        let view = View { messages, parts, before: before.clone(), chat: chat.clone() };
        TailView::View(Box::new(view), state.queue.clone())
    }

    fn gone(&self) -> Result<bool, StoreError> {
        self.state.write().unwrap_or_else(PoisonError::into_inner).deleted = true;
        Ok(true)
    }

    /// One refresh: messages and parts after the tail's head, the chat, and the queue.
    /// `Ok(false)`: the chat changed under the read (unless `force`): refresh again at once.
    async fn refresh(&self, seed: Cursor, queue: bool, force: bool) -> Result<bool, StoreError> {
        let tick = self.start_read();
        let (loaded, head, version) = {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            let last = state.parts.last().and_then(|chunk| chunk.last());
            let head = Cursor {
                message: state.messages.back().map_or(state.base, |m| m.id.0),
                episode: last.map_or(0, |p| p.position.episode),
                seq: last.map_or(0, |p| p.position.seq),
                ..Cursor::START
            };
            // The history version of the messages held: the one read *before* them (an edit
            // that lands during a read leaves the chat read after them newer than they are).
            (state.loaded, head, state.chat.as_ref().map(|c| c.0.history_version))
        };
        let from = if loaded { head } else { Cursor::new(seed.message, 0, 0) };
        let Some(mut before) = chat_state(self.store.as_ref(), self.chat).await? else {
            return self.gone();
        };
        let (mut messages, mut parts) =
            consistent_read(self.store.as_ref(), self.chat, from).await?;
        let Some(mut chat) = chat_state(self.store.as_ref(), self.chat).await? else {
            return self.gone();
        };
        let mut base = from.message;
        let mut reload = !loaded;
        if loaded && version != Some(chat.history_version) {
            // An edit rewrote the history: start again from where it cut.
            base = chat.rewritten_after;
            let cut = Cursor::new(base, 0, 0);
            let Some(again) = chat_state(self.store.as_ref(), self.chat).await? else {
                return self.gone();
            };
            before = again;
            (messages, parts) = consistent_read(self.store.as_ref(), self.chat, cut).await?;
            let Some(again) = chat_state(self.store.as_ref(), self.chat).await? else {
                return self.gone();
            };
            chat = again;
            reload = true;
        }
        let queue = if queue || !loaded {
            Some(Arc::new(self.store.list_queued(self.chat).await?))
        } else {
            None
        };
        let parts = decode(self.chat, parts);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if reload {
            state.messages.clear();
            state.parts.clear();
            state.base = base;
        }
        if !messages.is_empty() {
            // The commit that wrote them cleared the part log: what was read is all of it.
            state.parts.clear();
        }
        state.messages.extend(messages);
        while state.messages.len() > TAIL_MESSAGES {
            if let Some(old) = state.messages.pop_front() {
                state.base = old.id.0;
            }
        }
        if !parts.is_empty() {
            state.parts.push(parts);
        }
        let settled = force || !overtaken(&before, &chat);
        state.settled = settled;
        state.chat = Some((before, chat));
        if let Some(queue) = queue {
            state.queue = Some(queue);
        }
        state.read_at = tick;
        state.loaded = true;
        Ok(settled)
    }
}

/// The tail's task: a refresh per batch of hints about the chat (or per poll), until the
/// last subscriber has gone.
async fn run(
    tail: Weak<Tail>,
    mut hints: BoxStream<'static, ChangeHint>,
    seed: Cursor,
    poll: std::time::Duration,
) {
    let mut queue = true;
    let mut overtaken = 0;
    loop {
        let Some(current) = tail.upgrade() else { return };
        let chat = current.chat;
        match current.refresh(seed, queue, overtaken + 1 >= SETTLE_ATTEMPTS).await {
            Ok(settled) => {
                current.generation.send_modify(|g| *g += 1);
                queue = false;
                if !settled {
                    overtaken += 1;
                    continue;
                }
                overtaken = 0;
            }
            Err(err) => {
                tracing::debug!(chat = %chat, error = %err, "shared chat read failed; retrying")
            }
        }
        let deleted = current.state.read().unwrap_or_else(PoisonError::into_inner).deleted;
        if deleted {
            current.generation.send_modify(|g| *g += 1);
            return;
        }
        drop(current);
        let relevant =
            |hint: &ChangeHint| hint.kind == ChangeKind::Resync || hint.chat_id == Some(chat);
        loop {
            tokio::select! {
                hint = hints.next() => match hint {
                    Some(hint) if relevant(&hint) => {
                        queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
                        break;
                    }
                    Some(_) => {}
                    None => hints = Box::pin(futures::stream::pending()),
                },
                () = tokio::time::sleep(poll) => {
                    queue = true;
                    break;
                }
            }
            if tail.strong_count() == 0 {
                return;
            }
        }
        while let Some(Some(hint)) = hints.next().now_or_never() {
            if relevant(&hint) {
                queue |= matches!(hint.kind, ChangeKind::Queue | ChangeKind::Resync);
            }
        }
    }
}
