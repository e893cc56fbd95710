//! The input checks a store makes, one per [`ChatStore`](crate::store::ChatStore) intent, as
//! methods of the store's [`Limits`]: an implementor calls the one named for the method it
//! implements, first, before it reads or writes anything, and stores what it returns or
//! what it left in its `&mut` argument. Both first-party stores do exactly that, so the same
//! input gets the same error text whichever backend holds it
//! ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)).

use crate::call_options::CallOptions;
use crate::chat::{ChatFilter, ChatUpdate, NewChat};
use crate::message::Usage;
use crate::model_config::{ModelConfigUpdate, NewModelConfig};
use crate::part::Part;
use crate::provider_config::ProviderKind;
use crate::store::validate::{self, Limits};
use crate::store::{Compaction, NewPart, PartPosition, Result, SendMessage, Step};
use crate::tool_call::{Decision, ToolCall};

impl Limits {
    /// For `create_chat`: checks the first message, the title and the system prompt, and
    /// returns the title to store — the given one trimmed and cut at
    /// `max_title_chars`, else the first message's automatic title
    /// ([BEHAVIOUR §14](crate::behaviour#14-titles)), else `New Chat`.
    ///
    /// # Errors
    /// A validation error naming the field: the content errors of
    /// [`check_content`](Self::check_content), `Title is required.` for a blank given title,
    /// or a size or U+0000 error on `system_prompt`.
    pub fn check_new_chat(&self, new: &NewChat) -> Result<String> {
        validate::new_chat_within(new, self)?;
        validate::chat_title(new, self)
    }

    /// For `update_chat`: checks a new title and labels, and returns the title to store
    /// (trimmed, cut at `max_title_chars`) when the update sets one.
    ///
    /// # Errors
    /// `Title is required.`, a U+0000 error on `title`, or a validation error on `labels`
    /// naming the first bad label ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    pub fn check_chat_update(&self, update: &ChatUpdate) -> Result<Option<String>> {
        let title = update.title.as_deref().map(|t| validate::title_within(t, self)).transpose()?;
        if let Some(labels) = &update.labels {
            validate::labels(labels)?;
        }
        Ok(title)
    }

    /// For `list_chats`: checks a filter's labels and search query.
    ///
    /// # Errors
    /// A validation error on `labels` or `query`.
    pub fn check_chat_filter(&self, filter: &ChatFilter) -> Result<()> {
        validate::chat_filter(filter)
    }

    /// For `send_message`: checks the content (as [`check_content`](Self::check_content))
    /// and the client id (1 to [`SendMessage::MAX_CLIENT_ID_BYTES`] bytes, no control
    /// characters).
    ///
    /// # Errors
    /// As `check_content`, or a validation error on `client_id`.
    pub fn check_send(&self, send: &SendMessage) -> Result<()> {
        validate::send_within(send, self)
    }

    /// For `edit_message` and every other intent that stores what a person wrote: at least
    /// one and at most `max_parts` parts, only `text` and `file` parts, no empty text, no
    /// U+0000, files within `max_files_per_message` and `max_inline_file_bytes`, at most
    /// `max_message_bytes` in all.
    ///
    /// # Errors
    /// `Content is required.`, `content[i].text cannot be empty.`, `content[i] is a <type>
    /// part: messages may hold only text and file parts.`, `content[i].text cannot contain
    /// the NUL character (U+0000).`, or a size error naming the limit.
    pub fn check_content(&self, content: &[Part]) -> Result<()> {
        validate::user_content_within(content, self)
    }

    /// For `commit_step`: checks the rows' roles (an assistant row, then
    /// `tool` rows) and makes the step storable: U+0000 becomes U+FFFD everywhere, and a tool
    /// result over `max_tool_result_bytes` is cut with a note — model and tool output is
    /// never refused for its content.
    ///
    /// # Errors
    /// A validation error naming the misplaced row.
    pub fn check_step(&self, step: &mut Step) -> Result<()> {
        validate::step_within(step, self)
    }

    /// For `resolve_tool_calls`: edited arguments must be a JSON object within
    /// `max_tool_args_bytes`, as the model's must ([BEHAVIOUR §3](crate::behaviour#3-a-turn));
    /// results and reasons are made storable like tool results.
    ///
    /// # Errors
    /// A validation error on `decisions[i].args` naming the problem.
    pub fn check_decisions(&self, decisions: &mut [Decision]) -> Result<()> {
        validate::decisions_within(decisions, self)
    }

    /// For the call records `resolve_tool_calls` writes once the decisions are applied: makes
    /// them storable (U+0000 replaced in ids, names, arguments and results; results over
    /// `max_tool_result_bytes` cut).
    pub fn check_tool_calls(&self, calls: &mut [ToolCall]) {
        validate::tool_calls_within(calls, self);
    }

    /// For `write_compaction`: a non-empty boundary, and a tool call with the result that
    /// answers it; the parts are made storable like a step's.
    ///
    /// # Errors
    /// A validation error naming the malformed field.
    pub fn check_compaction(&self, compaction: &mut Compaction) -> Result<()> {
        validate::compaction_within(compaction, self)
    }

    /// For `append_parts`: makes the payloads storable (U+0000 replaced) and checks that
    /// `parts` continue the part log after `last` in strictly increasing positions. Returns
    /// the new last position (`last` when `parts` is empty).
    ///
    /// # Errors
    /// `Conflict` naming the first position that is not after its predecessor.
    pub fn check_parts(
        &self,
        last: Option<PartPosition>,
        parts: &mut [NewPart],
    ) -> Result<Option<PartPosition>> {
        validate::part_payloads(parts);
        validate::part_positions(last, parts)
    }

    /// For `create_provider` and `update_provider`: a base URL is empty or an absolute
    /// `http`/`https` URL, and `azure` needs one.
    ///
    /// # Errors
    /// `Base URL must be an absolute http or https URL.` / `The azure provider requires a
    /// base URL.`
    pub fn check_base_url(&self, kind: ProviderKind, url: &str) -> Result<()> {
        validate::base_url(kind, url)
    }

    /// For `create_model_config`: a model name, a positive context limit, a compression
    /// threshold from 0 to 100, prices within range, and options the provider's API can
    /// express (see [`check_options`](Self::check_options)).
    ///
    /// # Errors
    /// `Model is required.`, `Context limit must be greater than zero.`, `Compression
    /// threshold must be between 0 and 100.`, or an error naming the price or option.
    pub fn check_new_model_config(&self, new: &NewModelConfig) -> Result<()> {
        validate::new_model_config(new)
    }

    /// For `update_model_config`, before reading the config: the fields the update sets, as
    /// [`check_new_model_config`](Self::check_new_model_config) checks them. The options
    /// need the config's provider: check them with [`check_options`](Self::check_options).
    ///
    /// # Errors
    /// As `check_new_model_config`.
    pub fn check_model_config_update(&self, update: &ModelConfigUpdate) -> Result<()> {
        validate::model_config_update(update)
    }

    /// Checks that `kind`'s API can express `options`, so none is dropped silently when the
    /// model is called: Bedrock's Converse cannot disable parallel tool use.
    ///
    /// # Errors
    /// A validation error naming the option.
    pub fn check_options(&self, kind: ProviderKind, options: &CallOptions) -> Result<()> {
        validate::options_for(kind, options)
    }

    /// For `record_usage`: no negative token count.
    ///
    /// # Errors
    /// A validation error on `usage`.
    pub fn check_usage(&self, usage: &Usage) -> Result<()> {
        validate::usage(usage)
    }

    /// A turn's failure reason as `release` stores it in `last_error`: U+0000 replaced, at
    /// most 2 000 characters.
    #[must_use]
    pub fn failure_text(&self, reason: &str) -> String {
        validate::failure_text(reason)
    }

    /// For `fork_chat`: the fork's title, the source's `source_title` with a fork marker,
    /// within `max_title_chars` ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)).
    #[must_use]
    pub fn fork_title(&self, source_title: &str) -> String {
        crate::chat::fork_title(source_title, self.max_title_chars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fork_title_keeps_the_marker_within_the_configured_length() {
        let limits = Limits::default().with_max_title_chars(12);
        assert_eq!(limits.fork_title("Plan"), "Plan (fork)");
        assert_eq!(limits.fork_title("A long title here"), "A lon (fork)");
        assert_eq!(Limits::default().fork_title("A long title here"), "A long title here (fork)");
    }

    #[test]
    fn a_chat_update_returns_its_title_trimmed_and_cut() {
        let limits = Limits::default().with_max_title_chars(5);
        let update = ChatUpdate { title: Some("  Renamed chat ".into()), ..ChatUpdate::default() };
        assert_eq!(limits.check_chat_update(&update).expect("valid"), Some("Renam".into()));
        assert_eq!(limits.check_chat_update(&ChatUpdate::default()).expect("valid"), None);
        let blank = ChatUpdate { title: Some("  ".into()), ..ChatUpdate::default() };
        assert_eq!(
            limits.check_chat_update(&blank).expect_err("blank").to_string(),
            "Title is required."
        );
    }
}
