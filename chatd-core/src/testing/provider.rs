//! [`ScriptedProvider`]: a [`ModelProvider`] that replays scripted calls and records every
//! request it receives, for fast tests of code that drives models (no HTTP involved; the
//! provider crates' fake servers cover the wire formats).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::message::Usage;
use crate::provider::{
    EventStream, FinishReason, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind,
    StreamEvent, with_cancellation,
};
use crate::provider_config::ProviderKind;

/// One scripted model call.
#[derive(Debug, Clone)]
pub enum ScriptedCall {
    /// Stream these items, in order (an `Err` ends the stream with that error).
    Stream(Vec<Result<StreamEvent, ProviderError>>),
    /// Refuse the call before streaming.
    Fail(ProviderError),
    /// Stream these items, then stall (never end) — for interrupting a call mid-stream.
    StreamThenHang(Vec<Result<StreamEvent, ProviderError>>),
}

impl ScriptedCall {
    /// A text answer that finishes with `stop`.
    #[must_use]
    pub fn text(text: &str, usage: Option<Usage>) -> Self {
        ScriptedCall::Stream(vec![
            Ok(StreamEvent::TextStart { id: "t".into() }),
            Ok(StreamEvent::TextDelta { id: "t".into(), delta: text.to_owned() }),
            Ok(StreamEvent::TextEnd { id: "t".into(), provider_metadata: None }),
            Ok(StreamEvent::Finish {
                reason: FinishReason::Stop,
                usage,
                context_window: None,
                provider_metadata: None,
            }),
        ])
    }

    /// Local tool calls `(id, name, args)` that finish with `tool_calls`.
    #[must_use]
    pub fn tool_calls(calls: &[(&str, &str, Value)], usage: Option<Usage>) -> Self {
        let mut events: Vec<Result<StreamEvent, ProviderError>> = Vec::new();
        for (id, name, args) in calls {
            events.push(Ok(StreamEvent::ToolInputStart {
                id: (*id).to_owned(),
                tool_name: (*name).to_owned(),
            }));
            events.push(Ok(StreamEvent::ToolInputDelta {
                id: (*id).to_owned(),
                delta: args.to_string(),
            }));
            events.push(Ok(StreamEvent::ToolInputEnd { id: (*id).to_owned() }));
            events.push(Ok(StreamEvent::ToolCall {
                id: (*id).to_owned(),
                tool_name: (*name).to_owned(),
                args: args.clone(),
                provider_executed: false,
                provider_metadata: None,
            }));
        }
        events.push(Ok(StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
            usage,
            context_window: None,
            provider_metadata: None,
        }));
        ScriptedCall::Stream(events)
    }
}

/// A scripted [`ModelProvider`]. Calls beyond the script fail with `InvalidRequest`
/// ("script exhausted"), so a test that makes an unexpected call fails loudly.
#[derive(Debug)]
pub struct ScriptedProvider {
    kind: ProviderKind,
    script: Mutex<VecDeque<ScriptedCall>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl ScriptedProvider {
    /// A provider posing as `kind`, answering `calls` in order.
    #[must_use]
    pub fn new(kind: ProviderKind, calls: Vec<ScriptedCall>) -> Self {
        ScriptedProvider {
            kind,
            script: Mutex::new(calls.into()),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Appends a call to the script.
    pub fn push(&self, call: ScriptedCall) {
        self.script.lock().unwrap_or_else(PoisonError::into_inner).push_back(call);
    }

    /// Every request received so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many scripted calls are left.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[async_trait]
impl ModelProvider for ScriptedProvider {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<EventStream, ProviderError> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        let next = self.script.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
        match next {
            Some(ScriptedCall::Stream(items)) => Ok(with_cancellation(
                Box::pin(futures::stream::iter(items)),
                cancel,
                self.kind.as_str(),
            )),
            Some(ScriptedCall::Fail(err)) => Err(err),
            Some(ScriptedCall::StreamThenHang(items)) => {
                use futures::StreamExt;
                let hanging = futures::stream::iter(items).chain(futures::stream::pending());
                Ok(with_cancellation(Box::pin(hanging), cancel, self.kind.as_str()))
            }
            None => Err(ProviderError::new(
                self.kind.as_str(),
                ProviderErrorKind::InvalidRequest,
                "script exhausted",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::part::Part;
    use crate::provider::PromptMessage;

    #[tokio::test]
    async fn replays_calls_in_order_and_records_requests() {
        let provider = ScriptedProvider::new(
            ProviderKind::Anthropic,
            vec![
                ScriptedCall::tool_calls(&[("c1", "read_file", json!({"path": "a"}))], None),
                ScriptedCall::text("done", None),
                ScriptedCall::Fail(ProviderError::new(
                    "anthropic",
                    ProviderErrorKind::RateLimited,
                    "slow down",
                )),
            ],
        );
        let request = |text: &str| ModelRequest::new("m", vec![PromptMessage::user(text)]);
        let first =
            provider.generate(request("one"), CancellationToken::new()).await.expect("first");
        assert_eq!(first.parts, vec![Part::tool_call("c1", "read_file", json!({"path": "a"}))]);
        let second =
            provider.generate(request("two"), CancellationToken::new()).await.expect("second");
        assert_eq!(second.text(), "done");
        let third = provider
            .generate(request("three"), CancellationToken::new())
            .await
            .expect_err("scripted failure");
        assert_eq!(third.kind, ProviderErrorKind::RateLimited);
        let fourth = provider
            .generate(request("four"), CancellationToken::new())
            .await
            .expect_err("exhausted");
        assert_eq!(fourth.message, "script exhausted");
        let seen: Vec<String> = provider
            .requests()
            .iter()
            .map(|r| r.messages[0].content[0].as_text().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(seen, vec!["one", "two", "three", "four"]);
        assert_eq!(provider.remaining(), 0);
    }
}
