//! The turn runner ([BEHAVIOUR §3](crate::behaviour#3-a-turn)): one acquired chat, model calls and tool steps until the model
//! is done, every step persisted atomically through the lease.
//!
//! After each persisted step the runner checks compaction ([BEHAVIOUR §5](crate::behaviour#5-compaction), [`super::compaction`]);
//! everything a client would stream goes to the [`TurnObserver`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

mod admit;
mod bounds;
mod call;
mod cause;
mod durable;
mod observer;

pub use bounds::StepLimits;
pub use cause::TurnError;
pub use durable::ActionDeadlines;
pub(crate) use observer::NoObserver;
pub use observer::{RetryNotice, TurnObserver};

use call::StepStop;
use observer::ObserverSink;

use super::compaction::{self, CompactionError, CompactionSource, CompactionTarget, Compactor};
use super::live::{FLUSH_INTERVAL, PartLog};
use super::prompt::build_prompt;
use super::retry::RetryPolicy;
use super::tools::{ToolContext, ToolPolicy, ToolRules, ToolSet};
use crate::chat::Chat;
use crate::ids::ChatId;
use crate::message::{Message, NewMessage};
use crate::model_config::ModelConfig;
use crate::part::Part;
use crate::provider::{Generation, ModelProvider, ModelRequest, ProviderError};
use crate::runtime::attachments::load_attachments;
use crate::status::TurnOutcome;
use crate::store::{ChatStore, Fence, Lease, Step, StoreError};
use crate::usage::{CallKind, NewUsage};

/// The most model calls in one turn ([BEHAVIOUR §3](crate::behaviour#3-a-turn)).
pub(crate) const MAX_STEPS: usize = 1200;
/// The result given to tool calls cut off by an interrupt ([BEHAVIOUR §3](crate::behaviour#3-a-turn) item 8).
pub(crate) const INTERRUPTED_TOOL_RESULT: &str = crate::tool_call::INTERRUPTED_RESULT;
/// The result given to tool calls still running when their worker shut down ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes)):
/// the step is persisted with it, and the re-run never runs the call again.
pub(crate) const IN_DOUBT_TOOL_RESULT: &str = crate::tool_call::IN_DOUBT_RESULT;
/// What `last_error` says when the store failed (the details are logged).
pub(crate) const STORE_FAILURE: &str = "the chat store failed (details are in the server logs)";
/// The failure when no model config can be resolved.
pub(crate) const NO_DEFAULT_MODEL: &str = "no default chat model config is available";

/// Why a running turn is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// A person interrupted: keep the partial output, end the turn.
    Interrupt,
    /// The worker is shutting down: drop the step, the turn re-runs elsewhere.
    Shutdown,
}

/// Stops a running turn. Cheap to clone; every clone controls the same turn.
#[derive(Debug, Clone, Default)]
pub struct TurnSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl TurnSignal {
    /// A fresh signal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the turn to stop for `reason` (the first reason given wins).
    pub fn stop(&self, reason: StopReason) {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(reason);
        self.token.cancel();
    }

    /// Why the turn was asked to stop, if it was.
    #[must_use]
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token adapters and tools observe.
    #[must_use]
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Completes when the turn is asked to stop.
    pub async fn stopped(&self) {
        self.token.cancelled().await;
    }
}

/// Supplies the provider adapter for a model config (the provider crate's registry,
/// looked up with the stored provider configuration).
#[async_trait]
pub trait ProviderSource: Send + Sync + 'static {
    /// The adapter for `config`.
    ///
    /// # Errors
    /// Why no adapter can be built (missing key, disabled provider, ...).
    async fn provider(&self, config: &ModelConfig)
    -> Result<Arc<dyn ModelProvider>, ProviderError>;
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEnd {
    /// Release the chat with this outcome.
    Release(TurnOutcome),
    /// The lease was lost: someone else owns the chat now; write nothing more.
    LeaseLost,
}

/// What every step of one turn shares — the lease, the chat, its model config, the provider,
/// the stop signal and the part log — built once, so the step's helpers take one value
/// instead of six.
pub(super) struct Turn<'a> {
    pub(super) lease: Lease,
    pub(super) chat: &'a Chat,
    pub(super) config: &'a ModelConfig,
    pub(super) provider: &'a Arc<dyn ModelProvider>,
    pub(super) signal: &'a TurnSignal,
    pub(super) log: &'a PartLog,
}

/// Runs turns. Cheap to clone.
#[derive(Clone)]
pub struct TurnRunner {
    store: Arc<dyn ChatStore>,
    providers: Arc<dyn ProviderSource>,
    tools: ToolSet,
    retry: RetryPolicy,
    max_steps: usize,
    observer: Arc<dyn TurnObserver>,
    live: Option<Duration>,
    titles: bool,
    title_options: super::title::TitleOptions,
    compactor: Compactor,
    max_reentries: usize,
    step_limits: StepLimits,
    policy: Arc<dyn ToolPolicy>,
    deadlines: ActionDeadlines,
    spend: Option<Arc<dyn crate::limits::SpendPolicy>>,
    files: Option<Arc<dyn crate::store::files::FileStore>>,
}

impl std::fmt::Debug for TurnRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRunner")
            .field("tools", &self.tools)
            .field("max_steps", &self.max_steps)
            .finish_non_exhaustive()
    }
}

impl TurnRunner {
    /// A runner with the default retry policy and step limit, and no observer.
    #[must_use]
    pub fn new(
        store: Arc<dyn ChatStore>,
        providers: Arc<dyn ProviderSource>,
        tools: ToolSet,
    ) -> Self {
        let files = store.file_store();
        TurnRunner {
            store,
            files,
            providers,
            tools,
            retry: RetryPolicy::default(),
            max_steps: MAX_STEPS,
            observer: Arc::new(NoObserver),
            live: Some(FLUSH_INTERVAL),
            titles: true,
            title_options: super::title::TitleOptions::default(),
            compactor: Compactor::new(),
            max_reentries: compaction::MAX_REENTRIES,
            step_limits: StepLimits::default(),
            policy: Arc::new(ToolRules::new()),
            deadlines: ActionDeadlines::default(),
            spend: None,
        }
    }

    /// Consults `policy` before every model call ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): a refusal ends the turn as
    /// failed with the refusal's text (`spend limit reached: …`), without retries; the steps
    /// already written stay. Default: no limit.
    #[must_use]
    pub fn with_spend_policy(mut self, policy: Arc<dyn crate::limits::SpendPolicy>) -> Self {
        self.spend = Some(policy);
        self
    }

    /// Reads and stores attachments in `files` ([BEHAVIOUR §19](crate::behaviour#19-attachments)) instead of the chat store's
    /// own file store ([`ChatStore::file_store`]).
    #[must_use]
    pub fn with_files(mut self, files: Arc<dyn crate::store::files::FileStore>) -> Self {
        self.files = Some(files);
        self
    }

    /// Sets the policy that decides, per call, whether it runs, waits for a person's
    /// approval, or is refused ([BEHAVIOUR §16](crate::behaviour#16-durable-tool-calls-approvals-client-tools-crashes); default: every call runs).
    #[must_use]
    pub fn with_policy(mut self, policy: Arc<dyn ToolPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how long open calls wait before the sweep answers them (default 24 h for an
    /// approval, 10 min for a client tool's result).
    #[must_use]
    pub fn with_action_deadlines(mut self, deadlines: ActionDeadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Sets the bounds every model call holds to, whatever its provider (default
    /// [`StepLimits::default`]: 64 MiB per step, 5 min to the first event, 2 min of silence).
    #[must_use]
    pub fn with_step_limits(mut self, limits: StepLimits) -> Self {
        self.step_limits = limits;
        self
    }

    /// Whether the first turn of a chat generates its title in the background (default on).
    #[must_use]
    pub fn with_titles(mut self, titles: bool) -> Self {
        self.titles = titles;
        self
    }

    /// Sets how background titles are made (timeout, length).
    #[must_use]
    pub fn with_title_options(mut self, options: super::title::TitleOptions) -> Self {
        self.title_options = options;
        self
    }

    /// Sets the compactor (its summary timeout).
    #[must_use]
    pub fn with_compactor(mut self, compactor: Compactor) -> Self {
        self.compactor = compactor;
        self
    }

    /// Sets how many times a turn goes on after compacting on its final step (default 3).
    #[must_use]
    pub fn with_max_reentries(mut self, reentries: usize) -> Self {
        self.max_reentries = reentries;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the most model calls per turn.
    #[must_use]
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = max_steps.max(1);
        self
    }

    /// How often streamed parts are written to the store's durable part log, where
    /// subscribers on every replica read them (default 50 ms; `None` publishes
    /// nothing: only the persisted steps are visible).
    #[must_use]
    pub fn with_live_parts(mut self, interval: Option<Duration>) -> Self {
        self.live = interval;
        self
    }

    /// Sets the observer.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn TurnObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs the turn of the chat `lease` holds until it ends. A panic anywhere in the turn
    /// ends it as a failure (`chat processing panicked: ...`) instead of unwinding into the
    /// caller. [`run_with_cause`](Self::run_with_cause) also returns why it failed.
    pub async fn run(&self, lease: Lease, signal: TurnSignal) -> TurnEnd {
        self.run_with_cause(lease, signal).await.0
    }

    /// [`run`](Self::run), and the error behind a turn that failed or ends to re-run (a
    /// store or provider outage), with its whole `source()` chain: what people see of it
    /// (`last_error`, events) stays redacted, the host in-process gets the cause.
    pub async fn run_with_cause(
        &self,
        lease: Lease,
        signal: TurnSignal,
    ) -> (TurnEnd, Option<TurnError>) {
        use tracing::Instrument;
        let runner = self.clone();
        let span = crate::telemetry::turn_span(lease.chat_id, lease.epoch);
        let turn = cause::capture(async move { runner.run_inner(lease, signal).await })
            .instrument(span.clone());
        let (end, cause) = match tokio::spawn(turn).await {
            Ok(ended) => ended,
            Err(join) if join.is_panic() => {
                let message = super::panic_message(join.into_panic());
                let failed = format!("chat processing panicked: {message}");
                (TurnEnd::Release(TurnOutcome::Failed(failed)), None)
            }
            Err(_) => (TurnEnd::Release(TurnOutcome::Shutdown), None),
        };
        let outcome = match &end {
            TurnEnd::Release(TurnOutcome::Finished) => "finished",
            TurnEnd::Release(TurnOutcome::Interrupted) => "interrupted",
            TurnEnd::Release(TurnOutcome::Failed(_)) => "failed",
            TurnEnd::Release(TurnOutcome::Shutdown) => "shutdown",
            TurnEnd::Release(TurnOutcome::AwaitingAction) => "awaiting_action",
            TurnEnd::LeaseLost => "lost",
        };
        crate::telemetry::turn_ended(&span, outcome);
        (end, cause)
    }

    /// The model config of `chat`: its last one, else the default ([BEHAVIOUR §3](crate::behaviour#3-a-turn) item 1). A
    /// disabled config serves no new turn (a sub-agent's, a compaction's or a title's
    /// neither: they run on this one).
    async fn model_config(&self, chat: &Chat) -> Result<ModelConfig, TurnEnd> {
        match self.store.get_model_config(chat.last_model_config_id).await {
            Ok(config) if !config.deleted && !config.enabled => {
                return Err(TurnEnd::Release(TurnOutcome::Failed(disabled_config(&config))));
            }
            Ok(config) if !config.deleted => return Ok(config),
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(err) => return Err(store_failure(err, "")),
        }
        match self.store.default_model_config().await {
            Ok(Some(config)) if !config.enabled => {
                Err(TurnEnd::Release(TurnOutcome::Failed(disabled_config(&config))))
            }
            Ok(Some(config)) => Ok(config),
            Ok(None) => Err(TurnEnd::Release(TurnOutcome::Failed(NO_DEFAULT_MODEL.to_owned()))),
            Err(err) => Err(store_failure(err, "")),
        }
    }

    async fn run_inner(&self, lease: Lease, signal: TurnSignal) -> TurnEnd {
        let failed = |message: String| TurnEnd::Release(TurnOutcome::Failed(message));
        let chat = match self.store.get_chat(lease.chat_id).await {
            Ok(chat) => chat,
            Err(err) => return store_failure(err, ""),
        };
        let config = match self.model_config(&chat).await {
            Ok(config) => config,
            Err(end) => return end,
        };
        let provider = match self.providers.provider(&config).await {
            Ok(provider) => provider,
            // A source that could not reach what it reads (the store, a key vault) says so
            // with a retryable error: the turn re-runs later, like a store outage.
            Err(err) if err.is_retryable() => {
                tracing::warn!(error = %err, "no provider for now; the turn will re-run");
                cause::record(TurnError::ProviderSource(err));
                return TurnEnd::Release(TurnOutcome::Shutdown);
            }
            Err(err) => {
                let shown = err.to_string();
                cause::record(TurnError::ProviderSource(err));
                return failed(shown);
            }
        };
        if self.titles && self.is_first_turn(chat.id).await {
            // Bounded inside; the turn never waits for it.
            drop(super::title::spawn_title(
                Arc::clone(&self.store),
                Arc::clone(&provider),
                config.clone(),
                chat.id,
                self.title_options,
            ));
        }
        let ctx = ToolContext::for_chat(&chat, signal.token()).with_files(self.files.clone());
        let log = PartLog::new(Arc::clone(&self.store), lease, self.live);
        let turn = Turn {
            lease,
            chat: &chat,
            config: &config,
            provider: &provider,
            signal: &signal,
            log: &log,
        };
        // A step recorded by an earlier turn (its calls decided, or its worker gone) is
        // finished first: it is never streamed again (BEHAVIOUR §16).
        if !chat.tool_calls.is_empty() {
            if crate::tool_call::any_open(&chat.tool_calls) {
                return TurnEnd::Release(TurnOutcome::AwaitingAction);
            }
            let records = chat.tool_calls.clone();
            if let Err(end) = self.finish_recorded(&lease, &ctx, &signal, records, true).await {
                return end;
            }
        }
        let mut reentries = 0;
        // This turn's model calls, tokens and cost, for the per-turn limits.
        let mut turn_spend = crate::usage::Spend::default();
        for step in 0..self.max_steps {
            match signal.reason() {
                Some(StopReason::Interrupt) => return TurnEnd::Release(TurnOutcome::Interrupted),
                Some(StopReason::Shutdown) => return TurnEnd::Release(TurnOutcome::Shutdown),
                None => {}
            }
            let history = match self.store.prompt_messages(chat.id).await {
                Ok(history) => history,
                Err(err) => return store_failure(err, ""),
            };
            // A turn whose final answer a worker committed before dying (or losing its
            // lease) without releasing the chat re-runs here with nothing left to do: it must
            // not answer again (BEHAVIOUR §8).
            if step == 0 && already_answered(&history) {
                return TurnEnd::Release(TurnOutcome::Finished);
            }
            let mut prompt = build_prompt(&history, config.provider, chat.kind());
            // The step's files, each read once; never stored back (BEHAVIOUR §19).
            let files = self.files.as_deref();
            if let Err(err) =
                load_attachments(files, chat.owner_id, config.provider, &mut prompt.messages).await
            {
                return store_failure(err, "");
            }
            let mut request = ModelRequest::new(config.model.clone(), prompt.messages)
                .with_options(config.options.clone());
            request.system = prompt.system;
            request.tools = self.tools.definitions_for(ctx.kind);
            // Serialising the prompt costs a pass over it: only a spend policy needs it on
            // every step (an interrupted step's estimate measures the history instead).
            let request_bytes = self.spend.is_some().then(|| super::spend::request_bytes(&request));
            let bound = request_bytes.unwrap_or(0);
            if let Err(end) =
                self.admit_call(&lease, &chat, &config, bound, turn_spend, &signal).await
            {
                return end;
            }
            let (generation, interrupted) = match self.call_model(&turn, request).await {
                Ok(generation) => (generation, false),
                Err(StepStop::Failed(message)) => return failed(message),
                Err(StepStop::LeaseLost) => return TurnEnd::LeaseLost,
                Err(StepStop::Stopped(_)) if signal.reason() == Some(StopReason::Shutdown) => {
                    return TurnEnd::Release(TurnOutcome::Shutdown);
                }
                Err(StepStop::Stopped(partial)) => (partial, true),
            };
            let record = match generation.usage {
                Some(used) => {
                    let new = NewUsage::for_chat(&chat, config.id, CallKind::Step, used);
                    super::spend::record_new(self.store.as_ref(), new).await
                }
                // Cut before the provider said: what was streamed was still paid for.
                None if interrupted => {
                    let bytes =
                        request_bytes.unwrap_or_else(|| super::spend::history_bytes(&history));
                    let used = super::spend::estimate_cut(bytes, &generation);
                    let new = NewUsage::for_chat(&chat, config.id, CallKind::Step, used);
                    super::spend::record_new(self.store.as_ref(), new.as_estimate()).await
                }
                None => None,
            };
            turn_spend = match record {
                Some(record) => turn_spend.plus(&record.usage, record.cost_micros),
                None => crate::usage::Spend { calls: turn_spend.calls + 1, ..turn_spend },
            };
            // BEHAVIOUR §3 step rule 4: complete calls run after tool use, `stop` or an unknown
            // finish; an interrupted step's calls all get the interrupted result.
            let calls: Vec<Part> = if interrupted {
                generation.local_tool_calls().into_iter().cloned().collect()
            } else {
                generation.calls_to_run().into_iter().cloned().collect()
            };
            if !interrupted && !calls.is_empty() {
                let records = self.plan(&chat, &calls).await;
                let simple = records
                    .iter()
                    .all(|r| r.idempotent && r.state == crate::tool_call::CallState::Ready);
                if !simple {
                    log.discard().await;
                    let assistant = assistant_row(&config, &generation);
                    let recorded = self.open_recorded(&lease, assistant, records.clone()).await;
                    if let Err(end) = recorded {
                        return end;
                    }
                    if let Err(end) =
                        self.finish_recorded(&lease, &ctx, &signal, records, false).await
                    {
                        return end;
                    }
                    if let Err(end) = self.compact_if_needed(&turn, &generation).await {
                        return end;
                    }
                    continue;
                }
            }
            let (results, interrupted) = if calls.is_empty() {
                (Vec::new(), interrupted)
            } else if interrupted {
                (synthetic_results(&calls, INTERRUPTED_TOOL_RESULT), true)
            } else {
                // A stop cancels the calls; `run_calls` returns only once every one of them
                // (and every process it started) has stopped, so the synthetic results
                // below are written after the calls can no longer act.
                // Calls that finished keep their real results, on interrupt and shutdown
                // alike: the step is persisted, so the re-run after a shutdown never runs
                // them again.
                match self.tools.run_calls(&ctx, &calls).await {
                    Ok(results) => (results, false),
                    Err(stopped) => {
                        let unfinished = match signal.reason() {
                            Some(StopReason::Shutdown) => IN_DOUBT_TOOL_RESULT,
                            _ => INTERRUPTED_TOOL_RESULT,
                        };
                        (answer_unfinished(&calls, stopped.finished, unfinished), true)
                    }
                }
            };
            // Committing clears the part log: what is still buffered is in the step.
            log.discard().await;
            match self.commit(&lease, &config, &generation, results).await {
                Ok(messages) => self.observer.on_step(chat.id, &messages),
                Err(StoreError::LeaseLost { .. }) => return TurnEnd::LeaseLost,
                Err(err) => return store_failure(err, "failed to persist the step: "),
            }
            if interrupted {
                return TurnEnd::Release(match signal.reason() {
                    Some(StopReason::Shutdown) => TurnOutcome::Shutdown,
                    _ => TurnOutcome::Interrupted,
                });
            }
            let compacted = match self.compact_if_needed(&turn, &generation).await {
                Ok(compacted) => compacted,
                Err(end) => return end,
            };
            if calls.is_empty() {
                if compacted && reentries < self.max_reentries {
                    reentries += 1;
                    continue;
                }
                return TurnEnd::Release(TurnOutcome::Finished);
            }
        }
        TurnEnd::Release(TurnOutcome::Finished)
    }

    /// Compacts after a step whose usage crossed the threshold ([BEHAVIOUR §5](crate::behaviour#5-compaction)). `Ok(true)` when a
    /// boundary was written; a failed summary is reported (as an error part) and is
    /// `Ok(false)`; `Err` ends the turn (lost lease, stop).
    async fn compact_if_needed(
        &self,
        turn: &Turn<'_>,
        generation: &Generation,
    ) -> Result<bool, TurnEnd> {
        let Turn { lease, chat, config, provider, signal, log } = *turn;
        let lease = &lease;
        let Some(usage) = compaction::check(config, generation.usage, generation.context_window)
        else {
            return Ok(false);
        };
        let outcome = self
            .compactor
            .compact(
                CompactionTarget {
                    store: self.store.as_ref(),
                    provider,
                    config,
                    fence: Fence::Lease(*lease),
                    chat,
                    usage,
                    source: CompactionSource::Automatic,
                },
                &ObserverSink { observer: self.observer.as_ref(), log },
                signal.token(),
            )
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(CompactionError::Store(StoreError::LeaseLost { .. })) => Err(TurnEnd::LeaseLost),
            Err(CompactionError::Stopped) => {
                Err(TurnEnd::Release(if signal.reason() == Some(StopReason::Shutdown) {
                    TurnOutcome::Shutdown
                } else {
                    TurnOutcome::Interrupted
                }))
            }
            Err(err) => {
                tracing::warn!(chat = %chat.id, error = %err, "compaction failed; the turn goes on");
                Ok(false)
            }
        }
    }

    /// Whether the chat has no assistant message yet. Only the oldest rows are read, so the
    /// check costs the same for a chat of any length: a chat whose first 64 rows hold no
    /// answer is treated as new (harmless: the title is compare-and-set on the automatic one).
    async fn is_first_turn(&self, chat: ChatId) -> bool {
        let oldest = crate::store::MessageQuery::all().with_limit(64);
        match self.store.list_messages(chat, oldest).await {
            Ok(messages) => !messages.iter().any(|m| m.role == crate::message::Role::Assistant),
            Err(_) => false,
        }
    }

    /// Persists one step: the assistant row (if it has parts) and one tool row per result.
    async fn commit(
        &self,
        lease: &Lease,
        config: &ModelConfig,
        generation: &Generation,
        results: Vec<Part>,
    ) -> Result<Vec<Message>, StoreError> {
        let assistant = assistant_row(config, generation);
        let tool_rows = results.into_iter().map(NewMessage::tool).collect();
        self.store.commit_step(lease, Step::new(assistant, tool_rows)).await
    }
}

/// The assistant row of a step, if it has any parts.
fn assistant_row(config: &ModelConfig, generation: &Generation) -> Option<NewMessage> {
    (!generation.parts.is_empty()).then(|| {
        NewMessage::assistant(generation.parts.clone()).with_model_config(config.id).with_usage(
            generation.usage,
            Some(generation.context_window.unwrap_or(config.context_limit)),
        )
    })
}

/// How a store failure ends the turn: an unreachable store sends the chat back to
/// `pending` (the turn re-runs once the store is back; a step whose commit was in doubt is
/// then simply part of the history), anything else fails it with `context` + the error.
/// Whether the history ends with the model's final answer: an assistant message with no
/// local tool call.
fn already_answered(history: &[Message]) -> bool {
    history.last().is_some_and(|last| {
        last.role == crate::message::Role::Assistant
            && !last
                .content
                .iter()
                .any(|p| matches!(p, Part::ToolCall { provider_executed: false, .. }))
    })
}

/// How a store error ends the turn; the error itself is recorded as the turn's cause for the
/// host (see [`TurnError`]).
fn store_failure(err: StoreError, context: &str) -> TurnEnd {
    let end = if err.is_unavailable() {
        tracing::warn!(error = %err, "store unavailable; the turn will re-run");
        TurnEnd::Release(TurnOutcome::Shutdown)
    } else if matches!(err, StoreError::Backend { .. }) {
        // `last_error` is shown to people: the backend's own text (SQL, constraint names,
        // values) goes to the logs only (BEHAVIOUR §12).
        tracing::error!(error = %err, "store failure ends the turn");
        TurnEnd::Release(TurnOutcome::Failed(format!("{context}{STORE_FAILURE}")))
    } else {
        TurnEnd::Release(TurnOutcome::Failed(format!("{context}{err}")))
    };
    cause::record(TurnError::Store { context: context.to_owned(), source: err });
    end
}

/// The synthetic error result of every call in `calls`.
/// The failure of a turn whose model config an administrator disabled.
fn disabled_config(config: &ModelConfig) -> String {
    format!(
        "the model config \"{}\" ({}) is disabled: an administrator must enable it, or the \
         chat must use another model",
        config.display_name, config.model
    )
}

/// One result per call, in call order: the finished ones' own, the error result `unfinished`
/// for the rest.
fn answer_unfinished(calls: &[Part], finished: Vec<Part>, unfinished: &str) -> Vec<Part> {
    fn id_of(part: &Part) -> Option<&str> {
        match part {
            Part::ToolResult { tool_call_id, .. } => Some(tool_call_id),
            _ => None,
        }
    }
    let mut finished = finished;
    synthetic_results(calls, unfinished)
        .into_iter()
        .map(|synthetic| {
            let id = id_of(&synthetic).map(str::to_owned);
            match finished.iter().position(|done| id_of(done) == id.as_deref()) {
                Some(at) => finished.swap_remove(at),
                None => synthetic,
            }
        })
        .collect()
}

fn synthetic_results(calls: &[Part], text: &str) -> Vec<Part> {
    calls
        .iter()
        .filter_map(|call| match call {
            Part::ToolCall { tool_call_id, tool_name, .. } => Some(Part::tool_result(
                tool_call_id.clone(),
                tool_name.clone(),
                Value::String(text.to_owned()),
                true,
            )),
            _ => None,
        })
        .collect()
}
