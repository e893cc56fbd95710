//! Internal steps of a turn, for benchmarks that time one of them on its own. Not part of
//! the embedding API: the turn runs them itself.

use crate::ids::UserId;
use crate::message::Message;
use crate::provider::PromptMessage;
use crate::provider_config::ProviderKind;
use crate::store::files::FileStore;

/// One entry of the durable part log, as the turn writes it and subscribers read it
/// ([BEHAVIOUR §7](crate::behaviour#7-streams)).
pub use crate::part_log::LivePart;

/// The conversation a turn would send to a provider of `kind` for `history` (a root chat's
/// prompt, without its system block), before its attachments are loaded.
#[must_use]
pub fn prompt_messages(history: &[Message], kind: ProviderKind) -> Vec<PromptMessage> {
    crate::runtime::prompt::build_prompt(history, kind, crate::chat::ChatKind::Root).messages
}

/// Loads the files `messages` refer to, as a turn does before it calls the model
/// ([BEHAVIOUR §19](crate::behaviour#19-attachments)). Returns how many files were read.
///
/// # Errors
/// The file store's failures other than `NotFound`.
pub async fn load_attachments(
    files: Option<&dyn FileStore>,
    owner: UserId,
    kind: ProviderKind,
    messages: &mut [PromptMessage],
) -> crate::store::Result<usize> {
    crate::runtime::attachments::load_attachments(files, owner, kind, messages).await
}
