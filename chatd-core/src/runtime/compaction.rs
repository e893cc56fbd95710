//! Compaction ([BEHAVIOUR §5](crate::behaviour#5-compaction)): when a chat's prompt nears its model's context window, the history
//! is summarised by the same model and a boundary is written; later prompts start from it.
//!
//! The pieces (internal): `check` decides from the last step's usage; `summary_request`
//! builds the summariser's input so that it cannot overflow the window; `Compactor::compact`
//! runs the whole thing (publish the `chat_summarized` call, generate, persist the three
//! rows, publish the result) and never fails the turn: a failure is reported as an error
//! result part. A host configures the [`Compactor`] (its summary timeout) and hands it to
//! [`TurnRunner::with_compactor`](crate::runtime::turn::TurnRunner::with_compactor) and
//! [`Chatd::with_compactor`](crate::service::Chatd::with_compactor); it compacts a chat by
//! hand with [`Chatd::compact`](crate::service::Chatd::compact).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::prompt::build_prompt;
use crate::ids::ChatId;
use crate::message::{Message, Role};
use crate::model_config::ModelConfig;
use crate::part::Part;
use crate::provider::{ModelProvider, ModelRequest, PromptMessage, ProviderErrorKind, StreamEvent};
use crate::store::{ChatStore, Compaction, Fence, StoreError};
use crate::usage::CallKind;

/// How long the summary call may take ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const SUMMARY_TIMEOUT: Duration = Duration::from_secs(90);
/// How many times a turn re-enters the loop after compacting on its final step ([BEHAVIOUR §5](crate::behaviour#5-compaction)).
pub(crate) const MAX_REENTRIES: usize = 3;
/// The tool name of the user-visible compaction record.
pub(crate) const COMPACTION_TOOL: &str = "chat_summarized";
/// The text the tool-call part shows while the summary is written.
pub(crate) const SUMMARIZING: &str = "Summarizing…";
/// The result text of a tool output dropped from the summariser's input.
pub(crate) const DROPPED_OUTPUT: &str = "[tool output omitted to fit the summary request]";
/// The most tokens the summary may take.
pub(crate) const MAX_SUMMARY_TOKENS: i64 = 8_192;

/// The instruction appended to the history for the summary call.
pub(crate) const SUMMARY_INSTRUCTION: &str = "The conversation above is about to be compacted: it will be replaced by \
your summary, and work will continue from the summary alone. Write that summary now. Include: the user's goal; \
the decisions made and why; the concrete file paths, commands, APIs and identifiers involved; the errors met and \
how they were fixed; what is done, what is in progress and what remains; and the exact action that was in \
progress when this summary was requested. Be specific and complete, but do not repeat file contents verbatim. \
Reply with the summary only.";

/// The text before the summary in the boundary row.
pub(crate) const CONTINUATION_PREAMBLE: &str = "This conversation was compacted to fit the model's context window. \
The summary below replaces everything that came before it. Continue the work from where it stopped, without \
asking the user to repeat anything.\n\n";

/// What made a compaction happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompactionSource {
    /// The usage of a step crossed the threshold.
    Automatic,
    /// Someone asked for it (`compact` on an idle chat).
    Manual,
}

impl CompactionSource {
    /// The `source` field of the result.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CompactionSource::Automatic => "automatic",
            CompactionSource::Manual => "manual",
        }
    }
}

/// The measurements behind a compaction decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextUsage {
    /// Prompt tokens of the last step.
    pub context_tokens: i64,
    /// The context window.
    pub context_limit: i64,
    /// `100 · context_tokens / context_limit`, rounded down (0 without a window).
    pub usage_percent: i64,
    /// The configured threshold (after defaulting).
    pub threshold_percent: i32,
}

/// The usage of the step that produced `message` (an assistant row), measured against its
/// window: the row's own `context_limit`, else the config's.
#[must_use]
pub(crate) fn usage_of(message: &Message, config: &ModelConfig) -> ContextUsage {
    let context_tokens = message.usage.map_or(0, |u| u.context_tokens());
    let limit = message.context_limit.filter(|l| *l > 0).unwrap_or(config.context_limit);
    measure(context_tokens, limit, config)
}

fn measure(context_tokens: i64, context_limit: i64, config: &ModelConfig) -> ContextUsage {
    let usage_percent = if context_limit > 0 {
        i64::try_from(i128::from(context_tokens).saturating_mul(100) / i128::from(context_limit))
            .unwrap_or(i64::MAX)
    } else {
        0
    };
    ContextUsage {
        context_tokens,
        context_limit,
        usage_percent,
        threshold_percent: config.effective_compression_threshold(),
    }
}

/// Whether the step just persisted calls for a compaction ([BEHAVIOUR §5](crate::behaviour#5-compaction)):
/// `limit > 0 && 100·context_tokens/limit ≥ threshold`, with threshold 100 disabling it.
/// `context_window` is what the provider reported for the step.
#[must_use]
pub(crate) fn check(
    config: &ModelConfig,
    usage: Option<crate::message::Usage>,
    context_window: Option<i64>,
) -> Option<ContextUsage> {
    let measured = measure(
        usage.map_or(0, |u| u.context_tokens()),
        context_window.filter(|w| *w > 0).unwrap_or(config.context_limit),
        config,
    );
    let threshold = i64::from(measured.threshold_percent);
    (threshold < 100
        && measured.context_limit > 0
        && measured.context_tokens > 0
        && measured.usage_percent >= threshold)
        .then_some(measured)
}

/// A rough token count: a quarter of the serialised bytes, plus a little per message.
fn estimate(message: &PromptMessage) -> i64 {
    let bytes = serde_json::to_vec(&message.content).map_or(0, |b| b.len());
    i64::try_from(bytes / 4).unwrap_or(i64::MAX).saturating_add(4)
}

/// The summariser's input: the current prompt plus a final user message holding
/// [`SUMMARY_INSTRUCTION`], shrunk until it fits `usage.context_limit` with room for the
/// summary. The estimate is scaled by what the provider reported for the real prompt, so
/// token-dense content does not fool it. Shrinking replaces the oldest tool outputs first
/// with [`DROPPED_OUTPUT`]; if that is not enough, the oldest messages are dropped (the
/// last message is always kept).
#[must_use]
pub(crate) fn summary_request(
    history: &[Message],
    config: &ModelConfig,
    kind: crate::chat::ChatKind,
    usage: &ContextUsage,
) -> ModelRequest {
    let prompt = build_prompt(history, config.provider, kind);
    let mut messages = prompt.messages;
    // The summary is written from text: files are named, not sent (BEHAVIOUR §19).
    crate::runtime::attachments::name_attachments(&mut messages);
    let instruction = PromptMessage::user(SUMMARY_INSTRUCTION);
    let max_output = summary_tokens(usage.context_limit);
    if usage.context_limit > 0 {
        let system: i64 =
            prompt.system.iter().map(|s| i64::try_from(s.len() / 4).unwrap_or(0)).sum();
        let raw: i64 = messages.iter().map(estimate).sum::<i64>() + system;
        // The provider's count of (most of) this prompt calibrates the estimate.
        let scale = if raw > 0 { (usage.context_tokens as f64 / raw as f64).max(1.0) } else { 1.0 };
        let budget = usage.context_limit - max_output - estimate(&instruction);
        let scaled = |m: &PromptMessage| (estimate(m) as f64 * scale).ceil() as i64;
        let mut total: i64 =
            messages.iter().map(scaled).sum::<i64>() + (system as f64 * scale) as i64;
        // Oldest tool outputs first.
        for message in messages.iter_mut().filter(|m| m.role == Role::Tool) {
            if total <= budget {
                break;
            }
            let before = scaled(message);
            for part in &mut message.content {
                if let Part::ToolResult { result, .. } = part {
                    *result = Value::String(DROPPED_OUTPUT.to_owned());
                }
            }
            total -= before - scaled(message);
        }
        // Then whole messages, oldest first, never starting on a tool row (its call would
        // be gone); the last message always stays.
        let mut start = 0;
        while total > budget && start + 1 < messages.len() {
            total -= scaled(&messages[start]);
            start += 1;
            while start + 1 < messages.len() && messages[start].role == Role::Tool {
                total -= scaled(&messages[start]);
                start += 1;
            }
        }
        messages.drain(..start);
    }
    messages.push(instruction);
    let mut request =
        ModelRequest::new(config.model.clone(), messages).with_options(config.options.clone());
    request.system = prompt.system;
    request.options.max_output_tokens = Some(u32::try_from(max_output).unwrap_or(u32::MAX));
    request
}

/// The room left for the summary in a window of `limit` tokens.
fn summary_tokens(limit: i64) -> i64 {
    if limit > 0 { (limit / 8).clamp(1, MAX_SUMMARY_TOKENS) } else { MAX_SUMMARY_TOKENS }
}

/// Why a compaction did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompactionError {
    /// The summary call failed, timed out or returned nothing.
    #[error("compaction failed: {0}")]
    Summary(String),
    /// The write was refused (a lost lease, a busy chat, nothing to compact, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The turn was asked to stop while the summary was written.
    #[error("compaction was interrupted")]
    Stopped,
}

/// Receives the parts a compaction publishes (in a turn: the part log and the observer).
#[async_trait::async_trait]
pub(crate) trait CompactionSink: Send + Sync {
    /// A part: the `chat_summarized` call, then its result (an error result on failure).
    /// The call is published before the summary is requested.
    async fn part(&self, chat: ChatId, event: &StreamEvent);
    /// The three rows were persisted.
    async fn persisted(&self, chat: ChatId, messages: &[Message]);
}

/// What to compact, and with what.
#[derive(Clone, Copy)]
pub(crate) struct CompactionTarget<'a> {
    /// The store holding the chat.
    pub store: &'a dyn ChatStore,
    /// The model that writes the summary (the chat's own).
    pub provider: &'a Arc<dyn ModelProvider>,
    /// Its configuration.
    pub config: &'a ModelConfig,
    /// Who may write: the running turn's lease, or an idle chat.
    pub fence: Fence,
    /// The chat (a sub-agent's prompt carries the sub-agent instruction; the summary's
    /// usage is recorded for it).
    pub chat: &'a crate::Chat,
    /// The usage that triggered it (recorded in the result).
    pub usage: ContextUsage,
    /// Why it happens.
    pub source: CompactionSource,
}

/// Writes summaries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Compactor {
    timeout: Duration,
}

impl Default for Compactor {
    fn default() -> Self {
        Compactor { timeout: SUMMARY_TIMEOUT }
    }
}

impl Compactor {
    /// Manual compaction of an idle chat ([BEHAVIOUR §5](crate::behaviour#5-compaction)):
    /// forces a summary whatever the usage, with `source: "manual"`. The usage recorded is
    /// that of the chat's last assistant step. [`Chatd::compact`](crate::service::Chatd::compact)
    /// calls it for a host.
    ///
    /// # Errors
    /// `Conflict` when there is nothing to compact (no model-visible message after the
    /// latest boundary); `InvalidTransition` when the chat is busy; the summary's failure.
    pub(crate) async fn compact_idle(
        &self,
        store: &dyn ChatStore,
        provider: &Arc<dyn ModelProvider>,
        config: &ModelConfig,
        chat: &crate::chat::Chat,
        sink: &dyn CompactionSink,
    ) -> Result<Vec<Message>, CompactionError> {
        let history = store.prompt_messages(chat.id).await?;
        let after_boundary: Vec<&Message> = history
            .iter()
            .skip_while(|m| m.role == Role::System)
            .filter(|m| m.visibility.is_model_visible() && !m.compressed)
            .collect();
        if after_boundary.is_empty() {
            return Err(StoreError::Conflict("there is nothing to compact".to_owned()).into());
        }
        let usage = after_boundary
            .iter()
            .rev()
            .find(|m| m.role == Role::Assistant && m.usage.is_some())
            .map_or_else(|| measure(0, config.context_limit, config), |m| usage_of(m, config));
        self.compact(
            CompactionTarget {
                store,
                provider,
                config,
                fence: Fence::Idle(chat.id),
                chat,
                usage,
                source: CompactionSource::Manual,
            },
            sink,
            CancellationToken::new(),
        )
        .await
    }

    /// A compactor with the documented defaults (docs/BEHAVIOUR.md §15).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The summary call's timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the summary call's timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Compacts the target's chat: publishes the `chat_summarized` call, summarises its
    /// prompt history with the target's model, writes the three rows, publishes the result.
    /// Every failure is also published, as an error result of the call.
    ///
    /// # Errors
    /// Why no boundary was written.
    pub(crate) async fn compact(
        &self,
        target: CompactionTarget<'_>,
        sink: &dyn CompactionSink,
        cancel: CancellationToken,
    ) -> Result<Vec<Message>, CompactionError> {
        let (chat, usage, source) = (target.fence.chat_id(), target.usage, target.source);
        let call_id = format!("compaction_{}", uuid::Uuid::now_v7().simple());
        let args = json!({
            "message": SUMMARIZING,
            "source": source.as_str(),
            "threshold_percent": usage.threshold_percent,
            "usage_percent": usage.usage_percent,
        });
        sink.part(
            chat,
            &StreamEvent::ToolCall {
                id: call_id.clone(),
                tool_name: COMPACTION_TOOL.to_owned(),
                args: args.clone(),
                provider_executed: false,
                provider_metadata: None,
            },
        )
        .await;
        let outcome = self.summarize_and_write(&target, &call_id, args, cancel).await;
        let (result, is_error) = match &outcome {
            Ok((_, result)) => (result.clone(), false),
            Err(err) => (Value::String(err.to_string()), true),
        };
        if let Ok((messages, _)) = &outcome {
            sink.persisted(chat, messages).await;
        }
        sink.part(
            chat,
            &StreamEvent::ToolResult {
                id: call_id,
                tool_name: COMPACTION_TOOL.to_owned(),
                result,
                is_error,
            },
        )
        .await;
        outcome.map(|(messages, _)| messages)
    }

    async fn summarize_and_write(
        &self,
        target: &CompactionTarget<'_>,
        call_id: &str,
        args: Value,
        cancel: CancellationToken,
    ) -> Result<(Vec<Message>, Value), CompactionError> {
        let CompactionTarget { store, config, fence, chat, usage, source, .. } = *target;
        let history = store.prompt_messages(fence.chat_id()).await?;
        let mut used = None;
        let summary = self.summarize(target, &history, &cancel, &mut used).await;
        crate::runtime::spend::record(store, chat, config.id, CallKind::Compaction, used).await;
        let summary = summary?;
        let result = json!({
            "summary": summary,
            "source": source.as_str(),
            "threshold_percent": usage.threshold_percent,
            "usage_percent": usage.usage_percent,
            "context_tokens": usage.context_tokens,
            "context_limit_tokens": usage.context_limit,
        });
        let compaction = Compaction::new(
            vec![Part::text(format!("{CONTINUATION_PREAMBLE}{summary}"))],
            Part::tool_call(call_id, COMPACTION_TOOL, args),
            Part::tool_result(call_id, COMPACTION_TOOL, result.clone(), false),
        )
        .with_model_config(config.id);
        let messages = store.write_compaction(fence, compaction).await?;
        Ok((messages, result))
    }

    /// The summary text of `history`, by the target's model. A context-length refusal (the
    /// estimate was wrong) is retried with half the window, twice. `used` receives what the
    /// calls that answered used (an empty summary costs too).
    async fn summarize(
        &self,
        target: &CompactionTarget<'_>,
        history: &[Message],
        cancel: &CancellationToken,
        used: &mut Option<crate::message::Usage>,
    ) -> Result<String, CompactionError> {
        let (provider, config, kind) = (target.provider, target.config, target.chat.kind());
        let mut window = target.usage;
        for _ in 0..3 {
            let request = summary_request(history, config, kind, &window);
            let call = provider.generate(request, cancel.child_token());
            let generation = tokio::select! {
                () = cancel.cancelled() => return Err(CompactionError::Stopped),
                outcome = tokio::time::timeout(self.timeout, call) => match outcome {
                    Err(_) => return Err(CompactionError::Summary(format!(
                        "the summary call timed out after {} s", self.timeout.as_secs()
                    ))),
                    Ok(Err(err)) if err.kind == ProviderErrorKind::ContextLength
                        && window.context_limit > 1 =>
                    {
                        window.context_limit /= 2;
                        continue;
                    }
                    Ok(Err(err)) => return Err(CompactionError::Summary(err.to_string())),
                    Ok(Ok(generation)) => generation,
                },
            };
            if let Some(usage) = generation.usage {
                *used = Some(used.map_or(usage, |before| before.plus(usage)));
            }
            let summary = generation.text().trim().to_owned();
            if summary.is_empty() {
                return Err(CompactionError::Summary(
                    "the model returned an empty summary".to_owned(),
                ));
            }
            return Ok(summary);
        }
        Err(CompactionError::Summary(
            "the history does not fit the model's context window even after shrinking".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests;
