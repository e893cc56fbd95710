//! When a tool call is complete (BEHAVIOUR §9.2, DESIGN "Stream completion"): adapters hold each
//! call whose input closed until the stream ends, and release them only when it ended
//! normally with a finish that lets calls stand. A call cut by `length`, a content filter
//! or an error is never presented as complete.

use chatd_core::provider::{FinishReason, StreamEvent};

/// Complete tool calls waiting for the stream's finish.
#[derive(Debug, Default)]
pub(crate) struct HeldCalls(Vec<StreamEvent>);

impl HeldCalls {
    /// Holds a `ToolCall` event.
    pub(crate) fn hold(&mut self, call: StreamEvent) {
        self.0.push(call);
    }

    /// Whether no call is held.
    #[cfg_attr(not(feature = "anthropic"), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The held calls if `reason` lets them stand (tool use, `stop`, unknown), else none.
    pub(crate) fn release(&mut self, reason: &FinishReason) -> Vec<StreamEvent> {
        let held = std::mem::take(&mut self.0);
        if reason.runs_tool_calls() { held } else { Vec::new() }
    }
}
