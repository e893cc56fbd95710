//! Running a step's tool calls: concurrently (at most [`MAX_CONCURRENT_CALLS`] at once),
//! results in call order, and owned by the turn — a cancellation aborts every call and
//! waits until all of them, and all work they started, have stopped.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::{Tool, ToolContext, ToolError};
use crate::part::Part;
use crate::provider::ToolDefinition;

/// How many calls of one step run at once by default ([BEHAVIOUR §15](crate::behaviour#15-defaults)).
pub(crate) const MAX_CONCURRENT_CALLS: usize = 8;

/// The calls were cancelled (`ctx.cancel` fired); every one of them has stopped.
///
/// `finished` holds the results of the calls that had already ended when the stop came
/// (also those refused before they ran), in call order; a call that was still running has
/// none, and the caller answers it ([BEHAVIOUR §3](crate::behaviour#3-a-turn) rule 8).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the tool calls were cancelled")]
#[non_exhaustive]
pub struct Cancelled {
    /// The results of the calls that ended before the stop, in call order.
    pub finished: Vec<Part>,
}

/// The tools offered to the model for a chat.
#[derive(Clone)]
pub struct ToolSet {
    tools: Vec<Arc<dyn Tool>>,
    max_concurrent: usize,
    max_args_bytes: usize,
}

impl Default for ToolSet {
    fn default() -> Self {
        ToolSet {
            tools: Vec::new(),
            max_concurrent: MAX_CONCURRENT_CALLS,
            max_args_bytes: crate::store::Limits::default().max_tool_args_bytes,
        }
    }
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.iter().map(|t| t.name())).finish()
    }
}

/// A call in flight: its id, its tool, and its task (`Ok(None)`: unknown tool; `Err`: its
/// result is already known).
type Running = (String, String, Result<Option<JoinHandle<Result<Value, ToolError>>>, Value>);

impl ToolSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; a tool with the same name is replaced.
    #[must_use]
    pub fn with(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.retain(|t| t.name() != tool.name());
        self.tools.push(tool);
        self
    }

    /// Adds several tools (e.g. an MCP server's); later ones replace earlier ones of the
    /// same name.
    #[must_use]
    pub fn with_all(self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        tools.into_iter().fold(self, Self::with)
    }

    /// Sets how many calls of a step run at once (default 8; at
    /// least 1).
    #[must_use]
    pub fn with_max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls.max(1);
        self
    }

    /// Sets the largest arguments (as JSON) a call may have to be run (default
    /// [`Limits::max_tool_args_bytes`](crate::store::Limits), 256 KiB); larger ones get
    /// an `invalid tool arguments` result.
    #[must_use]
    pub fn with_max_args_bytes(mut self, bytes: usize) -> Self {
        self.max_args_bytes = bytes;
        self
    }

    /// Why a call with `args` is not run, if it is not ([BEHAVIOUR §3](crate::behaviour#3-a-turn)): arguments that are
    /// not a JSON object, or larger than the set's limit. Such a call gets the error result
    /// `invalid tool arguments: <reason>`.
    #[must_use]
    pub fn refusal(&self, args: &Value) -> Option<String> {
        crate::provider::invalid_args(args).or_else(|| {
            let size = args.to_string().len();
            (size > self.max_args_bytes)
                .then(|| format!("{size} bytes, more than the {} allowed", self.max_args_bytes))
        })
    }

    /// The set without the tool named `name` (a host that offers the built-in tools but one:
    /// `ToolSet::workspace_from(source).without("execute")`); a name it lacks changes nothing.
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        self.tools.retain(|t| t.name() != name);
        self
    }

    /// The tool named `name`, if the set has it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name).cloned()
    }

    /// The tools' names, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Adds every tool of `other` (replacing tools of the same name). The concurrency limit
    /// stays this set's.
    #[must_use]
    pub fn merge(self, other: ToolSet) -> Self {
        other.tools.into_iter().fold(self, ToolSet::with)
    }

    /// The definitions sent to the model.
    #[must_use]
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.definitions_for(crate::chat::ChatKind::Root)
    }

    /// The definitions offered to a chat of `kind` (a child gets no root-only tool).
    #[must_use]
    pub fn definitions_for(&self, kind: crate::chat::ChatKind) -> Vec<ToolDefinition> {
        self.tools
            .iter()
            .filter(|t| !(kind.is_child() && t.root_only()))
            .map(|t| {
                let schema = super::schema::normalise(&t.input_schema());
                let strict = t.strict().then(|| super::schema::strict(&schema)).flatten();
                let strict_form = strict.is_some();
                ToolDefinition::new(t.name(), t.description(), strict.unwrap_or(schema))
                    .with_strict(strict_form)
            })
            .collect()
    }

    /// Runs every local tool call in `calls` and returns one result part per call, in the
    /// calls' order. An unknown tool gives `Tool not found: NAME`, a panic
    /// `tool panicked: ...`, a tool error its message — all as error results.
    ///
    /// # Errors
    /// [`Cancelled`] when `ctx.cancel` fires first. Every call has then been aborted and
    /// awaited, and everything the calls started on `ctx.tasks` has ended, before this
    /// returns.
    pub async fn run_calls(
        &self,
        ctx: &ToolContext,
        calls: &[Part],
    ) -> Result<Vec<Part>, Cancelled> {
        let tasks = TaskTracker::new();
        let ctx = ToolContext { tasks: tasks.clone(), ..ctx.clone() };
        let permits = Arc::new(Semaphore::new(self.max_concurrent));
        let mut running: Vec<Running> = Vec::new();
        for call in calls {
            let Part::ToolCall { tool_call_id, tool_name, args, provider_executed: false, .. } =
                call
            else {
                continue;
            };
            if let Some(reason) = self.refusal(args) {
                // BEHAVIOUR §3: a call whose arguments are not an object is not run.
                let result = Value::String(format!("invalid tool arguments: {reason}"));
                running.push((tool_call_id.clone(), tool_name.clone(), Err(result)));
                continue;
            }
            let tool = self.tools.iter().find(|t| t.name() == tool_name).cloned();
            let handle = tool.map(|tool| {
                let (ctx, args, permits) = (ctx.clone(), args.clone(), Arc::clone(&permits));
                let span = crate::telemetry::tool_span(tool_name, tool_call_id);
                let name = tool_name.clone();
                let call = async move {
                    // The semaphore is never closed: a permit always comes.
                    let _permit = permits.acquire_owned().await;
                    let started = std::time::Instant::now();
                    let result = tool.run(&ctx, args).await;
                    let span = tracing::Span::current();
                    crate::telemetry::tool_ended(&span, &name, started.elapsed(), result.is_err());
                    result
                };
                tokio::spawn(tracing::Instrument::instrument(call, span))
            });
            running.push((tool_call_id.clone(), tool_name.clone(), Ok(handle)));
        }
        // Each call's result, taken once: a handle is never polled after it completed.
        let mut results: Vec<Option<Part>> = vec![None; running.len()];
        let mut cancelled = false;
        for (slot, (id, name, handle)) in results.iter_mut().zip(&mut running) {
            let value = match handle {
                Err(known) => Some((known.clone(), true)),
                Ok(None) => Some((Value::String(format!("Tool not found: {name}")), true)),
                Ok(Some(task)) if !cancelled => {
                    tokio::select! {
                        biased;
                        () = ctx.cancel.cancelled() => { cancelled = true; None }
                        joined = task => Some(joined_result(joined)),
                    }
                }
                // After the stop: a call that had already ended keeps its real result.
                Ok(Some(task)) if task.is_finished() => Some(joined_result(task.await)),
                Ok(Some(_)) => None,
            };
            if value.is_some() {
                // This handle is done with (awaited, or never spawned).
                *handle = Ok(None);
            }
            *slot = value.map(|(v, e)| Part::tool_result(id.clone(), name.clone(), v, e));
        }
        if cancelled {
            for (_, _, handle) in &running {
                if let Ok(Some(task)) = handle {
                    task.abort();
                }
            }
            for (_, _, handle) in &mut running {
                if let Ok(Some(task)) = handle {
                    let _ = task.await;
                }
            }
        }
        // Processes and blocking work the calls started end before the step goes on.
        tasks.close();
        tasks.wait().await;
        if cancelled {
            Err(Cancelled { finished: results.into_iter().flatten().collect() })
        } else {
            Ok(results.into_iter().flatten().collect())
        }
    }
}

/// A finished call's result: its value or error, a panic's message, or a cancellation.
fn joined_result(
    joined: Result<Result<Value, ToolError>, tokio::task::JoinError>,
) -> (Value, bool) {
    match joined {
        Ok(Ok(value)) => (value, false),
        Ok(Err(err)) => (err.to_result(), true),
        Err(join) if join.is_panic() => {
            let message = crate::runtime::panic_message(join.into_panic());
            (Value::String(format!("tool panicked: {message}")), true)
        }
        Err(_) => (Value::String("tool was cancelled".to_owned()), true),
    }
}
