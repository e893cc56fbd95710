//! Folding a stream of events into one assistant step.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::event::{FinishReason, StreamEvent};
use crate::message::Usage;
use crate::part::{Part, ProviderMetadata};

/// The accumulated result of one model call: what becomes one assistant row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// The parts, in the order their blocks started.
    pub parts: Vec<Part>,
    /// Why the model stopped (`None` if the stream ended without saying).
    pub finish_reason: Option<FinishReason>,
    /// Normalised usage.
    pub usage: Option<Usage>,
    /// The context window the provider reported.
    pub context_window: Option<i64>,
    /// Provider data for the whole response.
    pub provider_metadata: Option<ProviderMetadata>,
}

impl Generation {
    /// The concatenated text.
    #[must_use]
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Tool calls the caller must execute (not provider-executed).
    #[must_use]
    pub fn local_tool_calls(&self) -> Vec<&Part> {
        self.parts
            .iter()
            .filter(|p| matches!(p, Part::ToolCall { provider_executed: false, .. }))
            .collect()
    }

    /// The local calls the loop runs ([BEHAVIOUR §3](crate::behaviour#3-a-turn) step rule 4): every complete local call when
    /// the model finished with tool use, `stop` or a reason this library does not know;
    /// none after `length`, a content filter or an error finish.
    #[must_use]
    pub fn calls_to_run(&self) -> Vec<&Part> {
        match &self.finish_reason {
            Some(reason) if reason.runs_tool_calls() => self.local_tool_calls(),
            _ => Vec::new(),
        }
    }
}

/// Folds [`StreamEvent`]s into a [`Generation`]. Events may arrive for blocks that never
/// announced their start; they are started implicitly.
#[derive(Debug, Default)]
pub struct Accumulator {
    parts: Vec<Part>,
    text: HashMap<String, usize>,
    reasoning: HashMap<String, usize>,
    /// Tool call id → (index of its placeholder part, name, argument text so far).
    tool_inputs: HashMap<String, (usize, String, String)>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    context_window: Option<i64>,
    provider_metadata: Option<ProviderMetadata>,
}

impl Accumulator {
    /// Adds one event.
    pub fn push(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::TextStart { id } => {
                self.text_index(id);
            }
            StreamEvent::TextDelta { id, delta } => {
                let index = self.text_index(id);
                if let Some(Part::Text { text, .. }) = self.parts.get_mut(index) {
                    text.push_str(&delta);
                }
            }
            StreamEvent::TextEnd { id, provider_metadata } => {
                if let Some(meta) = provider_metadata {
                    let index = self.text_index(id);
                    if let Some(Part::Text { provider_metadata: slot, .. }) =
                        self.parts.get_mut(index)
                    {
                        slot.get_or_insert_with(Map::new).extend(meta);
                    }
                }
            }
            StreamEvent::ToolInputEnd { .. } => {}
            StreamEvent::ReasoningStart { id } => {
                self.reasoning_index(id);
            }
            StreamEvent::ReasoningDelta { id, delta } => {
                let index = self.reasoning_index(id);
                if let Some(Part::Reasoning { text, .. }) = self.parts.get_mut(index) {
                    text.push_str(&delta);
                }
            }
            StreamEvent::ReasoningEnd { id, provider_metadata } => {
                let index = self.reasoning_index(id);
                if let (Some(Part::Reasoning { provider_metadata: slot, .. }), Some(meta)) =
                    (self.parts.get_mut(index), provider_metadata)
                {
                    slot.get_or_insert_with(Map::new).extend(meta);
                }
            }
            StreamEvent::ToolInputStart { id, tool_name } => {
                self.tool_input(id, tool_name);
            }
            StreamEvent::ToolInputDelta { id, delta } => {
                let entry = self.tool_input(id, String::new());
                entry.2.push_str(&delta);
            }
            StreamEvent::ToolCall { id, tool_name, args, provider_executed, provider_metadata } => {
                // Kept as sent: a non-object is refused by the loop, never replaced.
                let part = Part::ToolCall {
                    tool_call_id: id.clone(),
                    tool_name,
                    args,
                    provider_executed,
                    provider_metadata,
                };
                match self.tool_inputs.remove(&id) {
                    Some((index, _, _)) => self.parts[index] = part,
                    None => self.parts.push(part),
                }
            }
            StreamEvent::ToolResult { id, tool_name, result, is_error } => {
                self.parts.push(Part::ToolResult {
                    tool_call_id: id,
                    tool_name,
                    result,
                    is_error,
                    provider_executed: true,
                    provider_metadata: None,
                });
            }
            StreamEvent::Source { id, url, title } => {
                self.parts.push(Part::Source { id, url, title })
            }
            StreamEvent::Finish { reason, usage, context_window, provider_metadata } => {
                self.finish_reason = Some(reason);
                self.usage = usage.or(self.usage);
                self.context_window = context_window.or(self.context_window);
                if let Some(meta) = provider_metadata {
                    self.provider_metadata.get_or_insert_with(Map::new).extend(meta);
                }
            }
        }
    }

    fn text_index(&mut self, id: String) -> usize {
        let parts = &mut self.parts;
        *self.text.entry(id).or_insert_with(|| {
            parts.push(Part::text(""));
            parts.len() - 1
        })
    }

    fn reasoning_index(&mut self, id: String) -> usize {
        let parts = &mut self.parts;
        *self.reasoning.entry(id).or_insert_with(|| {
            parts.push(Part::Reasoning { text: String::new(), provider_metadata: None });
            parts.len() - 1
        })
    }

    fn tool_input(&mut self, id: String, tool_name: String) -> &mut (usize, String, String) {
        let parts = &mut self.parts;
        let entry = self.tool_inputs.entry(id.clone()).or_insert_with(|| {
            parts.push(Part::tool_call(id, String::new(), Value::Object(Map::new())));
            (parts.len() - 1, String::new(), String::new())
        });
        if !tool_name.is_empty() {
            entry.1 = tool_name;
        }
        entry
    }

    /// The accumulated step of a stream that ended normally. Tool inputs whose complete
    /// `ToolCall` never came are not calls (their arguments are never invented) and are
    /// dropped; empty text blocks without provider data are dropped.
    #[must_use]
    pub fn finish(mut self) -> Generation {
        let unfinished: Vec<usize> =
            self.tool_inputs.drain().map(|(_, (index, ..))| index).collect();
        let mut index = 0;
        self.parts.retain(|_| {
            index += 1;
            !unfinished.contains(&(index - 1))
        });
        self.generation()
    }

    /// The accumulated step of a stream that was stopped (an interrupt): tool inputs whose
    /// `ToolCall` never came are kept as calls whose arguments are the raw text streamed so
    /// far (a JSON string, not an object), so they get the interrupted result and are never
    /// run.
    #[must_use]
    pub fn finish_interrupted(mut self) -> Generation {
        for (id, (index, name, raw)) in self.tool_inputs.drain() {
            self.parts[index] = Part::tool_call(id, name, Value::String(raw));
        }
        self.generation()
    }

    fn generation(mut self) -> Generation {
        // An empty text block is dropped unless it carries provider data that must be replayed.
        self.parts.retain(
            |part| !matches!(part, Part::Text { text, provider_metadata: None } if text.is_empty()),
        );
        Generation {
            parts: self.parts,
            finish_reason: self.finish_reason,
            usage: self.usage,
            context_window: self.context_window,
            provider_metadata: self.provider_metadata,
        }
    }
}
