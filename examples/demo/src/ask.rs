//! The demo's "ask before running tools" switch (BEHAVIOUR §16): a [`ToolPolicy`] that asks a
//! person before the tools with side effects run, per chat, on unless switched off.
//!
//! The switch is kept in this process: enough for the single-process server and terminal
//! chat. A host with several processes keeps such a setting with its own chat data and reads
//! it in its policy the same way.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use chatd_core::ChatId;
use chatd_core::runtime::tools::{CallView, PolicyDecision, ToolPolicy};

/// The tools the switch asks about: the ones that change the workspace.
pub const ASKED_TOOLS: [&str; 3] = ["execute", "write_file", "edit_files"];

/// Per chat: ask before [`ASKED_TOOLS`] run (the default), or let them run. Cheap to clone;
/// clones share the switch.
#[derive(Debug, Clone)]
pub struct AskSwitch {
    default_on: bool,
    flipped: Arc<RwLock<HashSet<ChatId>>>,
}

impl Default for AskSwitch {
    fn default() -> Self {
        AskSwitch::new(true)
    }
}

impl AskSwitch {
    /// A switch that is on (`default_on`) or off for every chat until set.
    #[must_use]
    pub fn new(default_on: bool) -> Self {
        AskSwitch { default_on, flipped: Arc::default() }
    }

    /// Whether calls of `chat` ask first.
    #[must_use]
    pub fn is_on(&self, chat: ChatId) -> bool {
        let flipped = self.flipped.read().unwrap_or_else(PoisonError::into_inner);
        self.default_on != flipped.contains(&chat)
    }

    /// Turns asking on or off for `chat`.
    pub fn set(&self, chat: ChatId, on: bool) {
        let mut flipped = self.flipped.write().unwrap_or_else(PoisonError::into_inner);
        if on == self.default_on {
            flipped.remove(&chat);
        } else {
            flipped.insert(chat);
        }
    }
}

#[async_trait]
impl ToolPolicy for AskSwitch {
    async fn decide(&self, call: CallView<'_>) -> PolicyDecision {
        if ASKED_TOOLS.contains(&call.tool_name) && self.is_on(call.chat.id) {
            PolicyDecision::Ask
        } else {
            PolicyDecision::Auto
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_is_per_chat_and_remembers_both_ways() {
        let (a, b) = (ChatId::new(), ChatId::new());
        let switch = AskSwitch::default();
        assert!(switch.is_on(a) && switch.is_on(b));
        switch.set(a, false);
        assert!(!switch.is_on(a) && switch.is_on(b));
        switch.set(a, true);
        assert!(switch.is_on(a));
        let off = AskSwitch::new(false);
        off.set(b, true);
        assert!(off.is_on(b) && !off.is_on(a));
    }
}
