//! What model calls cost, as the runtime records it (BEHAVIOUR §17): every call the turn,
//! the compactor and the titler make goes into the store's usage ledger.

use crate::ChatStore;
use crate::chat::Chat;
use crate::ids::ModelConfigId;
use crate::message::Usage;
use crate::usage::{CallKind, NewUsage};

/// Records a model call made for `chat` with `config` and returns the record (nothing when
/// the provider reported no usage). Accounting never stops a chat: a store that refuses the
/// record is logged, and the call's work goes on.
pub async fn record(
    store: &dyn ChatStore,
    chat: &Chat,
    config: ModelConfigId,
    kind: CallKind,
    usage: Option<Usage>,
) -> Option<crate::usage::UsageRecord> {
    let usage = usage?;
    match store.record_usage(NewUsage::for_chat(chat, config, kind, usage)).await {
        Ok(record) => {
            crate::telemetry::usage_recorded(&record);
            Some(record)
        }
        Err(err) => {
            tracing::warn!(
                chat = %chat.id,
                kind = kind.as_str(),
                error = %err,
                "the usage of a model call could not be recorded"
            );
            None
        }
    }
}
