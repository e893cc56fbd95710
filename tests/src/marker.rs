//! A tool for the crash tests that leaves a trace of every run: each call appends a line to
//! `<dir>/<chat>-<tool>`, and the first run of a chat's call sleeps `hang_ms` (so a worker can
//! be killed while it runs) — later runs return at once, so a re-run never hangs.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::ChatId;
use chatd_core::runtime::tools::{Tool, ToolContext, ToolError};
use serde_json::{Value, json};

/// A tool that counts its runs in a file per chat.
#[derive(Debug, Clone)]
pub struct Marker {
    /// Its name.
    pub name: &'static str,
    /// Whether it says it is idempotent.
    pub idempotent: bool,
    /// Where the run files are.
    pub dir: PathBuf,
}

impl Marker {
    /// How many times the tool ran for `chat` (lines in its file).
    #[must_use]
    pub fn runs(&self, chat: ChatId) -> usize {
        runs_in(&self.dir, chat, self.name)
    }
}

/// How many times `tool` ran for `chat`, as recorded under `dir`.
#[must_use]
pub fn runs_in(dir: &std::path::Path, chat: ChatId, tool: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{chat}-{tool}"))).map_or(0, |s| s.lines().count())
}

#[async_trait]
impl Tool for Marker {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "Records that it ran."
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "properties": {"hang_ms": {"type": "integer"}}})
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let before = self.runs(ctx.chat_id);
        let path = self.dir.join(format!("{}-{}", ctx.chat_id, self.name));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ToolError::new(e.to_string()))?;
        writeln!(file, "run").map_err(|e| ToolError::new(e.to_string()))?;
        file.sync_all().map_err(|e| ToolError::new(e.to_string()))?;
        let hang = args.get("hang_ms").and_then(Value::as_u64).unwrap_or(0);
        if before == 0 && hang > 0 {
            tokio::select! {
                () = ctx.cancel.cancelled() => return Err(ToolError::new("cancelled")),
                () = tokio::time::sleep(Duration::from_millis(hang)) => {}
            }
        }
        Ok(json!({"runs": before + 1}))
    }
}
