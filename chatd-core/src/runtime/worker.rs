//! The worker ([BEHAVIOUR §8](crate::behaviour#8-workers-and-replicas)): acquires pending chats, runs their turns, keeps their leases alive,
//! recovers stale chats, and shuts down gracefully.
//!
//! One loop owns the bookkeeping; each turn runs in its own task and releases its chat when
//! it ends (unless its lease was lost, in which case it writes nothing more). The loop wakes
//! on: shutdown; a "pending work" hint (acquire at once); a hint about a running chat (a
//! person may have asked it to stop); the poll, heartbeat and sweep timers; a turn ending.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument;

use futures::StreamExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::turn::{StopReason, TurnEnd, TurnRunner, TurnSignal};
use crate::feed::ChangeKind;
use crate::ids::{ChatId, WorkerId};
use crate::status::{ChatStatus, TurnOutcome};
use crate::store::{ChatStore, Lease, LeaseStatus, StoreError};

/// Intervals and limits of a [`Worker`] ([BEHAVIOUR §15](crate::behaviour#15-defaults) defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// How often to look for pending chats without a hint (1 s).
    pub poll: Duration,
    /// How often to renew the leases (30 s).
    pub heartbeat: Duration,
    /// When a running chat without a heartbeat counts as abandoned (5 min).
    pub stale_after: Duration,
    /// How often to recover stale chats (`stale_after / 5`).
    pub sweep: Duration,
    /// The most turns this worker runs at once (8).
    pub max_turns: usize,
    /// How often to answer open tool calls past their deadline (30 s; [BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)).
    pub deadline_sweep: Duration,
    /// Cluster-wide caps on running turns, per owner and in all (none; [BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): give
    /// every worker of a cluster the same.
    pub caps: crate::store::RunningCaps,
    /// What to archive and purge (off; [BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    pub retention: crate::store::RetentionPolicy,
    /// How often to apply `retention` (5 min): batches of `RETENTION_BATCH` until one is
    /// not full, at most `RETENTION_BATCHES` per run.
    pub retention_every: Duration,
}

/// The most chats (and deleted messages) one retention batch touches of each kind.
pub(crate) const RETENTION_BATCH: usize = 100;
/// The most retention batches one run applies (the rest wait for the next run).
pub(crate) const RETENTION_BATCHES: usize = 10;

/// The most chats one deadline sweep settles (the rest wait for the next sweep).
pub(crate) const DEADLINE_SWEEP_BATCH: usize = 100;

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: Duration::from_secs(1),
            heartbeat: Duration::from_secs(30),
            stale_after: Duration::from_secs(300),
            sweep: Duration::from_secs(60),
            max_turns: 8,
            deadline_sweep: Duration::from_secs(30),
            caps: crate::store::RunningCaps::none(),
            retention: crate::store::RetentionPolicy::off(),
            retention_every: Duration::from_secs(300),
        }
    }
}

impl WorkerConfig {
    /// Sets the poll interval.
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sets the heartbeat interval.
    #[must_use]
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Sets when a chat is stale, and the sweep to a fifth of it.
    #[must_use]
    pub fn with_stale_after(mut self, stale: Duration) -> Self {
        self.stale_after = stale;
        self.sweep = stale / 5;
        self
    }

    /// Sets how often stale chats are recovered.
    #[must_use]
    pub fn with_sweep(mut self, sweep: Duration) -> Self {
        self.sweep = sweep;
        self
    }

    /// Sets how often open tool calls past their deadline are answered.
    #[must_use]
    pub fn with_deadline_sweep(mut self, every: Duration) -> Self {
        self.deadline_sweep = every;
        self
    }

    /// Sets the most turns run at once.
    #[must_use]
    pub fn with_max_turns(mut self, turns: usize) -> Self {
        self.max_turns = turns.max(1);
        self
    }

    /// Sets the retention policy and how often it is applied.
    #[must_use]
    pub fn with_retention(
        mut self,
        policy: crate::store::RetentionPolicy,
        every: Duration,
    ) -> Self {
        self.retention = policy;
        self.retention_every = every;
        self
    }
}

struct Running {
    lease: Lease,
    signal: TurnSignal,
    lost: Arc<AtomicBool>,
}

/// How a turn run by a worker ended: what the runner returned, and whether the lease had
/// been lost (then nothing was released).
#[derive(Debug, Clone)]
pub struct TurnReport {
    /// The chat.
    pub chat_id: ChatId,
    /// The runner's result.
    pub end: TurnEnd,
    /// The worker lost the lease (a heartbeat found it gone, someone else took the chat, or
    /// the release failed on every attempt): the turn wrote nothing more, and a stale sweep
    /// recovers a chat left `running`.
    pub lost: bool,
    /// Why the turn failed or ended to re-run, with its whole `source()` chain (never shown
    /// to people: see [`TurnError`](crate::runtime::turn::TurnError)).
    pub cause: Option<Arc<crate::runtime::turn::TurnError>>,
}

/// Called after every turn (metrics, logs, tests).
pub(crate) type TurnListener = Arc<dyn Fn(&TurnReport) + Send + Sync>;

/// Runs turns. Build it, then `run` it until the shutdown token fires: it acquires pending
/// chats (up to its concurrency), heartbeats their leases, runs each with its
/// [`TurnRunner`], releases it, and recovers chats whose worker died. Any number of workers,
/// in any number of processes, may share a store. [`Chatd::send_and_wait`](crate::Chatd::send_and_wait)
/// shows one running a whole turn.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use chatd_core::runtime::turn::TurnRunner;
/// use chatd_core::{ChatStore, ToolSet, Worker, WorkerConfig};
/// # use chatd_core::provider::{ModelProvider, ProviderError};
/// # struct NoModels;
/// # #[async_trait::async_trait]
/// # impl chatd_core::ProviderSource for NoModels {
/// #     async fn provider(&self, _: &chatd_core::ModelConfig) -> Result<Arc<dyn ModelProvider>, ProviderError> {
/// #         Err(ProviderError::new("none", chatd_core::provider::ProviderErrorKind::Auth, "no models here"))
/// #     }
/// # }
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store: Arc<dyn ChatStore> = Arc::new(chatd_store_memory::InMemoryChatStore::new());
/// let runner = TurnRunner::new(Arc::clone(&store), Arc::new(NoModels), ToolSet::new());
/// let worker = Worker::new(store, runner).with_config(WorkerConfig::default().with_max_turns(4));
/// let health = worker.health();
/// let shutdown = CancellationToken::new();
/// let running = tokio::spawn(worker.run(shutdown.clone()));
/// tokio::time::sleep(Duration::from_millis(50)).await;
/// assert!(health.snapshot().last_poll.is_some(), "it has looked for work");
/// shutdown.cancel(); // graceful: running turns hand their chats back
/// running.await.expect("the worker stopped");
/// # }
/// ```
pub struct Worker {
    id: WorkerId,
    store: Arc<dyn ChatStore>,
    runner: TurnRunner,
    config: WorkerConfig,
    listener: Option<TurnListener>,
    diff: Option<super::diff::DiffRefresher>,
    health: super::health::HealthHandle,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker with a fresh id and the default intervals.
    #[must_use]
    pub fn new(store: Arc<dyn ChatStore>, runner: TurnRunner) -> Self {
        Worker {
            id: WorkerId::new(),
            store,
            runner,
            config: WorkerConfig::default(),
            listener: None,
            diff: None,
            health: super::health::HealthHandle::default(),
        }
    }

    /// A live view of this worker's health (take it before `run`).
    #[must_use]
    pub fn health(&self) -> super::health::HealthHandle {
        self.health.clone()
    }

    /// Sets the worker's id (the `worker_id` its leases carry).
    #[must_use]
    pub fn with_id(mut self, id: WorkerId) -> Self {
        self.id = id;
        self
    }

    /// Also runs `refresher` (diff statuses, [BEHAVIOUR §10](crate::behaviour#10-diff-status)) until shutdown.
    #[must_use]
    pub fn with_diff_refresher(mut self, refresher: super::diff::DiffRefresher) -> Self {
        self.diff = Some(refresher);
        self
    }

    /// Calls `listener` after every turn.
    #[must_use]
    pub fn with_turn_listener(mut self, listener: TurnListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Sets every interval and limit.
    #[must_use]
    pub fn with_config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the poll interval.
    #[must_use]
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.config.poll = poll;
        self
    }

    /// Sets the heartbeat interval.
    #[must_use]
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.config.heartbeat = heartbeat;
        self
    }

    /// Sets the staleness threshold and, with it, the sweep interval (`stale / 5`).
    #[must_use]
    pub fn with_stale_after(mut self, stale: Duration) -> Self {
        self.config.stale_after = stale;
        self.config.sweep = stale / 5;
        self
    }

    /// Sets how often open tool calls past their deadline are answered.
    #[must_use]
    pub fn with_deadline_sweep(mut self, every: Duration) -> Self {
        self.config.deadline_sweep = every;
        self
    }

    /// Sets the most turns run at once.
    #[must_use]
    pub fn with_max_turns(mut self, max: usize) -> Self {
        self.config.max_turns = max.max(1);
        self
    }

    /// The worker's id.
    #[must_use]
    pub fn id(&self) -> WorkerId {
        self.id
    }

    /// Runs until `shutdown` fires, then stops acquiring, asks every turn to shut down
    /// (their chats return to `pending` for another worker), and waits for them. Store
    /// failures are logged and retried at the next tick; they never end the worker.
    pub async fn run(self, shutdown: CancellationToken) {
        let refresher =
            self.diff.clone().map(|refresher| tokio::spawn(refresher.run(shutdown.child_token())));
        let mut hints = match self.store.change_feed().await {
            Ok(feed) => feed.subscribe(),
            Err(err) => {
                tracing::warn!(worker = %self.id, error = %err, "no change feed; polling only");
                Box::pin(futures::stream::pending())
            }
        };
        let mut running: HashMap<ChatId, Running> = HashMap::new();
        let mut turns: JoinSet<ChatId> = JoinSet::new();
        let mut poll = tokio::time::interval(self.config.poll.max(Duration::from_millis(1)));
        let mut heartbeat =
            tokio::time::interval(self.config.heartbeat.max(Duration::from_millis(1)));
        let mut sweep = tokio::time::interval(self.config.sweep.max(Duration::from_millis(1)));
        let mut deadlines =
            tokio::time::interval(self.config.deadline_sweep.max(Duration::from_millis(1)));
        let mut retention =
            tokio::time::interval(self.config.retention_every.max(Duration::from_millis(1)));
        let retains = !self.config.retention.is_off();
        for timer in [&mut poll, &mut heartbeat, &mut sweep, &mut deadlines, &mut retention] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        heartbeat.reset();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(done) = turns.join_next() => {
                    if let Ok(chat) = done {
                        running.remove(&chat);
                    }
                }
                _ = sweep.tick() => match self.store.recover_stale(self.config.stale_after).await {
                    Ok(recovered) if !recovered.is_empty() => {
                        tracing::info!(worker = %self.id, chats = recovered.len(), "recovered stale chats");
                        self.acquire(&mut running, &mut turns).await;
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(worker = %self.id, error = %err, "stale sweep failed"),
                },
                _ = deadlines.tick() => match self.store.expire_tool_calls(DEADLINE_SWEEP_BATCH).await {
                    Ok(expired) if !expired.is_empty() => {
                        tracing::info!(worker = %self.id, chats = expired.len(), "answered tool calls past their deadline");
                        self.acquire(&mut running, &mut turns).await;
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(worker = %self.id, error = %err, "deadline sweep failed"),
                },
                _ = retention.tick(), if retains => self.retain().await,
                _ = heartbeat.tick() => self.heartbeat(&running).await,
                _ = poll.tick() => self.acquire(&mut running, &mut turns).await,
                hint = hints.next() => match hint {
                    Some(hint) => match (hint.kind, hint.chat_id) {
                        (ChangeKind::Pending, _) | (ChangeKind::Resync, _) => {
                            self.acquire(&mut running, &mut turns).await;
                        }
                        (ChangeKind::Chat, Some(chat)) if running.contains_key(&chat) => {
                            self.check_stop(chat, &running).await;
                        }
                        _ => {}
                    },
                    None => hints = Box::pin(futures::stream::pending()),
                },
            }
        }
        for turn in running.values() {
            turn.signal.stop(StopReason::Shutdown);
        }
        while turns.join_next().await.is_some() {}
        if let Some(refresher) = refresher {
            let _ = refresher.await;
        }
    }

    /// Acquires up to the free capacity and starts those turns.
    async fn acquire(&self, running: &mut HashMap<ChatId, Running>, turns: &mut JoinSet<ChatId>) {
        let free = self.config.max_turns.saturating_sub(running.len());
        if free == 0 {
            return;
        }
        let span = crate::telemetry::acquire_span(self.id);
        let leases = match self
            .store
            .acquire_capped(self.id, free, self.config.caps)
            .instrument(span.clone())
            .await
        {
            Ok(leases) => leases,
            Err(err) => {
                self.health.polled(None);
                tracing::warn!(worker = %self.id, error = %err, "acquire failed");
                return;
            }
        };
        crate::telemetry::acquired(&span, leases.len());
        self.health.polled(Some(leases.len()));
        for lease in leases {
            let signal = TurnSignal::new();
            let lost = Arc::new(AtomicBool::new(false));
            running.insert(
                lease.chat_id,
                Running { lease, signal: signal.clone(), lost: Arc::clone(&lost) },
            );
            let (runner, store) = (self.runner.clone(), Arc::clone(&self.store));
            let listener = self.listener.clone();
            let health = self.health.clone();
            turns.spawn(async move {
                let (end, cause) = runner.run_with_cause(lease, signal).await;
                let mut lost = lost.load(Ordering::SeqCst) || end == TurnEnd::LeaseLost;
                if let TurnEnd::Release(outcome) = &end
                    && !lost
                {
                    lost = !release(store.as_ref(), &lease, outcome.clone()).await;
                }
                if lost {
                    crate::telemetry::lease_lost();
                }
                health.ended(lost);
                if let Some(listener) = listener {
                    let cause = cause.map(Arc::new);
                    listener(&TurnReport { chat_id: lease.chat_id, end, lost, cause });
                }
                lease.chat_id
            });
        }
    }

    /// Renews every lease in one call; cancels turns whose lease is gone and stops turns a
    /// person asked to stop.
    /// Applies the retention policy: batches until one is not full ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    async fn retain(&self) {
        for _ in 0..RETENTION_BATCHES {
            match self.store.apply_retention(&self.config.retention, RETENTION_BATCH).await {
                Ok(pass) => {
                    crate::telemetry::retention(&pass);
                    if pass != crate::store::RetentionPass::default() {
                        tracing::info!(
                            worker = %self.id,
                            archived = pass.archived.len(),
                            purged = pass.purged.len(),
                            deleted_messages = pass.deleted_messages_purged,
                            "retention"
                        );
                    }
                    self.forget_files(&pass.purged).await;
                    if !pass.full(RETENTION_BATCH) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(worker = %self.id, error = %err, "retention failed");
                    return;
                }
            }
        }
        self.purge_unbound_files().await;
    }

    /// Deletes purged chats' files from a file store that does not delete them with the
    /// chat ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    async fn forget_files(&self, purged: &[ChatId]) {
        let Some(files) = self.store.file_store() else { return };
        for chat in purged {
            if let Err(err) = files.delete_chat_files(*chat).await {
                tracing::warn!(worker = %self.id, chat_id = %chat, error = %err, "retention: files not deleted");
            }
        }
    }

    /// Purges uploads no message referred to, per the policy ([BEHAVIOUR §19](crate::behaviour#19-attachments)).
    async fn purge_unbound_files(&self) {
        let (Some(after), Some(files)) =
            (self.config.retention.purge_unbound_files_after, self.store.file_store())
        else {
            return;
        };
        let Ok(after) = chrono::Duration::from_std(after) else { return };
        match files.purge_unbound_files(chrono::Utc::now() - after).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(worker = %self.id, purged, "retention: unbound files"),
            Err(err) => tracing::warn!(worker = %self.id, error = %err, "retention: unbound files"),
        }
    }

    async fn heartbeat(&self, running: &HashMap<ChatId, Running>) {
        if running.is_empty() {
            return;
        }
        let leases: Vec<Lease> = running.values().map(|r| r.lease).collect();
        let statuses = match self.store.heartbeat(self.id, &leases).await {
            Ok(statuses) => statuses,
            Err(err) => {
                tracing::warn!(worker = %self.id, error = %err, "heartbeat failed");
                return;
            }
        };
        for (lease, status) in leases.iter().zip(statuses) {
            let Some(turn) = running.get(&lease.chat_id) else { continue };
            match status {
                LeaseStatus::Held => {}
                LeaseStatus::StopRequested(_) => turn.signal.stop(StopReason::Interrupt),
                LeaseStatus::Lost => lose(turn),
            }
        }
    }

    /// A running chat changed: a stop request, or someone else took it (edit, recovery).
    async fn check_stop(&self, chat: ChatId, running: &HashMap<ChatId, Running>) {
        let Some(turn) = running.get(&chat) else { return };
        match self.store.get_chat(chat).await {
            Ok(current) => {
                let ours = current.status == ChatStatus::Running
                    && current.worker_id == Some(self.id)
                    && current.lease_epoch == turn.lease.epoch;
                if !ours {
                    lose(turn);
                } else if current.stop_request.is_some() {
                    turn.signal.stop(StopReason::Interrupt);
                }
            }
            Err(err) if err.is_not_found() => lose(turn),
            Err(err) => tracing::debug!(chat = %chat, error = %err, "stop check failed"),
        }
    }
}

/// The lease is gone: stop the turn at once and write nothing more.
fn lose(turn: &Running) {
    turn.lost.store(true, Ordering::SeqCst);
    turn.signal.stop(StopReason::Shutdown);
}

/// Releases a chat, retrying a failing store a few times. `false` when the lease is lost:
/// someone else has the chat, it is gone, or every attempt failed — then the chat stays
/// `running` until a stale sweep recovers it, and this worker no longer holds it.
async fn release(store: &dyn ChatStore, lease: &Lease, outcome: TurnOutcome) -> bool {
    let mut delay = Duration::from_millis(100);
    for _ in 0..5 {
        match store.release(lease, outcome.clone()).await {
            Ok(_) => return true,
            Err(StoreError::LeaseLost { .. } | StoreError::NotFound { .. }) => return false,
            Err(err) => {
                tracing::warn!(chat = %lease.chat_id, error = %err, "release failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    tracing::warn!(chat = %lease.chat_id, "release failed 5 times; the stale sweep recovers the chat");
    false
}

// The mock store comes with the `testing` feature (scripts/test builds with every feature).
#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::store::MockChatStore;

    fn lease() -> Lease {
        Lease { chat_id: ChatId::new(), worker_id: WorkerId::new(), epoch: 1 }
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_that_keeps_failing_reports_the_lease_lost() {
        let mut store = MockChatStore::new();
        store
            .expect_release()
            .times(5)
            .returning(|_, _| Err(StoreError::unavailable("the database is down")));
        assert!(
            !release(&store, &lease(), TurnOutcome::Finished).await,
            "the chat stays running for the stale sweep: this worker no longer holds it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_refused_as_lost_is_not_retried() {
        let mut store = MockChatStore::new();
        store
            .expect_release()
            .times(1)
            .returning(|lease, _| Err(StoreError::LeaseLost { chat_id: lease.chat_id }));
        assert!(!release(&store, &lease(), TurnOutcome::Finished).await);
    }
}
