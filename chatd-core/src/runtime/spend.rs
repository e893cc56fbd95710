//! What model calls cost, as the runtime records it ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): every call the turn,
//! the compactor and the titler make goes into the store's usage ledger; a step cut before
//! its provider reported usage is recorded with an estimate.

use crate::ChatStore;
use crate::chat::Chat;
use crate::ids::ModelConfigId;
use crate::message::Usage;
use crate::provider::{Generation, ModelRequest};
use crate::usage::{CallKind, NewUsage};

/// The serialised size of what `request` sends (messages, system block, tools).
#[must_use]
pub(crate) fn request_bytes(request: &ModelRequest) -> usize {
    let size = |bytes: serde_json::Result<Vec<u8>>| bytes.map_or(0, |b| b.len());
    let messages: usize =
        request.messages.iter().map(|m| size(serde_json::to_vec(&m.content))).sum();
    let system: usize = request.system.iter().map(String::len).sum();
    messages + system + size(serde_json::to_vec(&request.tools))
}

/// The serialised size of `history`'s contents: what a prompt built from it sends, near
/// enough for an estimate.
#[must_use]
pub(crate) fn history_bytes(history: &[crate::message::Message]) -> usize {
    history.iter().map(|m| serde_json::to_vec(&m.content).map_or(0, |b| b.len())).sum()
}

/// What a call cut before its provider reported usage probably used: a quarter token per
/// byte of the request and of what it streamed (the same rule as compaction's estimate).
#[must_use]
pub(crate) fn estimate_cut(request_bytes: usize, partial: &Generation) -> Usage {
    let tokens = |bytes: usize| i64::try_from(bytes.div_ceil(4)).unwrap_or(i64::MAX);
    let streamed = serde_json::to_vec(&partial.parts).map_or(0, |b| b.len());
    let (input, output) = (tokens(request_bytes), tokens(streamed));
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input.saturating_add(output),
        ..Usage::default()
    }
}

/// Records a model call made for `chat` with `config` and returns the record (nothing when
/// there is no usage to record). Accounting never stops a chat: a store that refuses the
/// record is logged, and the call's work goes on.
pub(crate) async fn record(
    store: &dyn ChatStore,
    chat: &Chat,
    config: ModelConfigId,
    kind: CallKind,
    usage: Option<Usage>,
) -> Option<crate::usage::UsageRecord> {
    let usage = usage?;
    record_new(store, NewUsage::for_chat(chat, config, kind, usage)).await
}

/// As [`record`] for a prepared record (an estimate, say).
pub(crate) async fn record_new(
    store: &dyn ChatStore,
    new: NewUsage,
) -> Option<crate::usage::UsageRecord> {
    let (chat, kind) = (new.chat_id, new.kind);
    match store.record_usage(new).await {
        Ok(record) => {
            crate::telemetry::usage_recorded(&record);
            Some(record)
        }
        Err(err) => {
            tracing::warn!(
                chat = %chat,
                kind = kind.as_str(),
                error = %err,
                "the usage of a model call could not be recorded"
            );
            None
        }
    }
}
