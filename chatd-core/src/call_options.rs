//! Model call options (`chat_model_configs.options`, [BEHAVIOUR §9.3](crate::behaviour#9-providers)), decoded strictly.
//!
//! Every struct here rejects unknown keys, and [`CallOptions::from_json`] reports the full
//! path of the offending key (`provider_options.openai.reasoning_efort`), so a typo in an
//! admin's config is a validation error instead of a silently ignored setting. Azure uses
//! the `openai` shape and Bedrock the `anthropic` shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The default cap on generated tokens per model call ([BEHAVIOUR §3](crate::behaviour#3-a-turn)).
pub(crate) const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 32_000;

/// Options applied to every model call of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CallOptions {
    /// Cap on generated tokens (default 32 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling, ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Presence penalty, −2–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty, −2–2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Provider-specific options.
    #[serde(default, skip_serializing_if = "ProviderOptions::is_empty")]
    pub provider_options: ProviderOptions,
}

/// Provider-specific options, one optional section per provider family.
///
/// The sections are `#[non_exhaustive]` plain data: from another crate, start from
/// `Default` and assign the fields you need (or decode the stored JSON shape with
/// [`CallOptions::from_json`]):
///
/// ```
/// use chatd_core::call_options::{AnthropicOptions, AnthropicThinking, ProviderOptions};
/// use chatd_core::CallOptions;
///
/// let mut thinking = AnthropicThinking::default();
/// thinking.budget_tokens = 4096;
/// let mut anthropic = AnthropicOptions::default();
/// anthropic.thinking = Some(thinking);
/// let mut options = ProviderOptions::default();
/// options.anthropic = Some(anthropic);
/// let call = CallOptions::default().with_max_output_tokens(8192).with_provider_options(options);
/// assert_eq!(call.to_json()["provider_options"]["anthropic"]["thinking"]["budget_tokens"], 4096);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderOptions {
    /// OpenAI and Azure OpenAI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<OpenAiOptions>,
    /// Anthropic and Bedrock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<AnthropicOptions>,
    /// Google Gemini.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleOptions>,
    /// OpenAI-compatible servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openaicompat: Option<OpenAiCompatOptions>,
    /// OpenRouter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openrouter: Option<OpenRouterOptions>,
    /// Vercel AI Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vercel: Option<VercelOptions>,
}

impl ProviderOptions {
    /// Whether no section is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &ProviderOptions::default()
    }
}

/// Which OpenAI API to call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenAiApiMode {
    /// The Responses API (default).
    #[default]
    Responses,
    /// The Chat Completions API.
    ChatCompletions,
}

/// Reasoning effort levels understood by OpenAI-style APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningEffort {
    /// No reasoning.
    None,
    /// Minimal.
    Minimal,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Extra high.
    Xhigh,
}

/// OpenAI (and Azure) options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenAiOptions {
    /// Responses (default) or Chat Completions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_mode: Option<OpenAiApiMode>,
    /// Reasoning effort for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Reasoning summary: `auto`, `concise` or `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<String>,
    /// Allow several tool calls in one step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Prompt cache routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// `auto`, `default`, `flex`, `priority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Output verbosity: `low`, `medium`, `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_verbosity: Option<String>,
    /// An end-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Anthropic extended-thinking settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AnthropicThinking {
    /// Tokens the model may spend thinking (≥ 1024).
    pub budget_tokens: u32,
}

/// Anthropic (and Bedrock) options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AnthropicOptions {
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<AnthropicThinking>,
    /// At most one tool call per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
    /// Effort (`low`, `medium`, `high`, `xhigh`, `max`), sent as `output_config.effort`
    /// (Bedrock: passed through to the model); another value is refused when decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
}

/// The effort levels Anthropic accepts (`output_config.effort`).
pub(crate) const ANTHROPIC_EFFORTS: [&str; 5] = ["low", "medium", "high", "xhigh", "max"];

/// Gemini thinking settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GoogleThinkingConfig {
    /// Thinking token budget (`-1` = dynamic, `0` = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i32>,
    /// Return thought summaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    /// Thinking level for models that take one (`low`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
}

/// One Gemini safety setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GoogleSafetySetting {
    /// `HARM_CATEGORY_*`.
    pub category: String,
    /// `BLOCK_*` or `OFF`.
    pub threshold: String,
}

impl GoogleSafetySetting {
    /// A setting for `category` (`HARM_CATEGORY_*`) at `threshold` (`BLOCK_*` or `OFF`).
    #[must_use]
    pub fn new(category: impl Into<String>, threshold: impl Into<String>) -> Self {
        GoogleSafetySetting { category: category.into(), threshold: threshold.into() }
    }
}

/// Google Gemini options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GoogleOptions {
    /// Thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<GoogleThinkingConfig>,
    /// Safety settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_settings: Vec<GoogleSafetySetting>,
    /// A cached-content resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content: Option<String>,
}

/// OpenAI-compatible server options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenAiCompatOptions {
    /// Reasoning effort, for servers that accept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Allow several tool calls in one step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// An end-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Send the assistant's `reasoning_content` back with its tool calls (default on:
    /// DeepSeek, Kimi and Qwen thinking modes reject a tool loop without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_reasoning_content: Option<bool>,
}

/// OpenRouter provider routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenRouterRouting {
    /// Providers to try, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Providers to use exclusively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Providers to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Whether other providers may be used when the listed ones fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_fallbacks: Option<bool>,
    /// `allow` or `deny` providers that store data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<String>,
}

/// OpenRouter reasoning settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenRouterReasoning {
    /// Effort level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<ReasoningEffort>,
    /// Token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Reason but do not return the reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
    /// Turn reasoning on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// OpenRouter options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenRouterOptions {
    /// Provider routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<OpenRouterRouting>,
    /// Reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<OpenRouterReasoning>,
    /// Fallback models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Allow several tool calls in one step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

/// Vercel AI Gateway options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct VercelOptions {
    /// Upstream providers to try, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    /// Upstream providers to use exclusively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Fallback models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// An end-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Removes the key at `path` (`a.b.c`; an array index ends the walk there) from `value`;
/// `false` when nothing could be removed.
fn remove_path(value: &mut Value, path: &str) -> bool {
    let segments: Vec<&str> = path
        .split('.')
        .map(|s| s.split('[').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
        .collect();
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = value;
    for segment in parents {
        match node.get_mut(*segment) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.as_object_mut().is_some_and(|map| map.remove(*last).is_some())
}

/// A call-options document that was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("options.{path}: {reason}")]
pub struct OptionsError {
    /// The path of the offending key (`provider_options.openai.api_mode`).
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl CallOptions {
    /// Sets the output cap.
    #[must_use]
    pub fn with_max_output_tokens(mut self, tokens: u32) -> Self {
        self.max_output_tokens = Some(tokens);
        self
    }

    /// Sets the temperature.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `top_p`.
    #[must_use]
    pub fn with_top_p(mut self, top_p: f64) -> Self {
        self.top_p = Some(top_p);
        self
    }

    /// Sets `top_k`.
    #[must_use]
    pub fn with_top_k(mut self, top_k: u32) -> Self {
        self.top_k = Some(top_k);
        self
    }

    /// Sets the provider-specific options.
    #[must_use]
    pub fn with_provider_options(mut self, options: ProviderOptions) -> Self {
        self.provider_options = options;
        self
    }

    /// Decodes and validates an options document strictly (`null` = defaults).
    ///
    /// # Errors
    /// [`OptionsError`] naming the first unknown key, wrongly typed value or out-of-range
    /// number.
    pub fn from_json(value: &Value) -> Result<Self, OptionsError> {
        if value.is_null() {
            return Ok(CallOptions::default());
        }
        let options: CallOptions = serde_path_to_error::deserialize(value).map_err(|err| {
            OptionsError { path: err.path().to_string(), reason: err.into_inner().to_string() }
        })?;
        options.validate()?;
        Ok(options)
    }

    /// Decodes an options document as stored ([BEHAVIOUR §9.3](crate::behaviour#9-providers): strict on write, lenient on
    /// read): each unknown key, wrongly typed value or out-of-range number is dropped with
    /// a warning naming its path, and the rest is kept — one odd row never breaks every
    /// read of the configs.
    #[must_use]
    pub fn from_json_lenient(value: &Value) -> Self {
        let mut value = value.clone();
        // Each round removes one offending key; a document has finitely many.
        for _ in 0..64 {
            match Self::from_json(&value) {
                Ok(options) => return options,
                Err(err) => {
                    tracing::warn!(path = %err.path, reason = %err.reason, "ignoring a stored model-config option");
                    if !remove_path(&mut value, &err.path) {
                        break;
                    }
                }
            }
        }
        tracing::warn!("ignoring stored model-config options that cannot be read");
        CallOptions::default()
    }

    /// The stored JSON document.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(serde_json::Map::new()))
    }

    /// The effective output cap.
    #[must_use]
    pub fn max_output_tokens_or_default(&self) -> u32 {
        self.max_output_tokens.unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS)
    }

    /// Checks numeric ranges.
    ///
    /// # Errors
    /// [`OptionsError`] for the first value out of range.
    pub fn validate(&self) -> Result<(), OptionsError> {
        fn range(path: &str, value: Option<f64>, low: f64, high: f64) -> Result<(), OptionsError> {
            match value {
                Some(v) if !(low..=high).contains(&v) => Err(OptionsError {
                    path: path.to_owned(),
                    reason: format!("must be between {low} and {high}, got {v}"),
                }),
                _ => Ok(()),
            }
        }
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if self.max_output_tokens == Some(0) {
            return Err(OptionsError {
                path: "max_output_tokens".into(),
                reason: "must be greater than zero".into(),
            });
        }
        if self.top_k == Some(0) {
            return Err(OptionsError {
                path: "top_k".into(),
                reason: "must be greater than zero".into(),
            });
        }
        if let Some(effort) =
            self.provider_options.anthropic.as_ref().and_then(|a| a.effort.as_ref())
            && !ANTHROPIC_EFFORTS.contains(&effort.as_str())
        {
            return Err(OptionsError {
                path: "provider_options.anthropic.effort".into(),
                reason: format!("must be one of {}, got {effort:?}", ANTHROPIC_EFFORTS.join(", ")),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_every_documented_key() {
        let doc = json!({
            "max_output_tokens": 1000, "temperature": 0.2, "top_p": 0.9, "top_k": 40,
            "presence_penalty": 0.1, "frequency_penalty": -0.1,
            "provider_options": {
                "openai": {"reasoning_effort": "high", "reasoning_summary": "auto",
                           "parallel_tool_calls": false, "prompt_cache_key": "k",
                           "service_tier": "flex", "api_mode": "chat_completions"},
                "anthropic": {"thinking": {"budget_tokens": 2048}, "disable_parallel_tool_use": true},
                "google": {"thinking_config": {"thinking_budget": 1024, "include_thoughts": true},
                           "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]},
                "openaicompat": {"reasoning_effort": "low"},
                "openrouter": {"provider": {"order": ["anthropic", "openai"]}, "reasoning": {"effort": "medium"}},
                "vercel": {"order": ["bedrock"]}
            }
        });
        let options = CallOptions::from_json(&doc).expect("valid");
        let openai = options.provider_options.openai.as_ref().expect("openai");
        assert_eq!(openai.api_mode, Some(OpenAiApiMode::ChatCompletions));
        assert_eq!(openai.reasoning_effort, Some(ReasoningEffort::High));
        let routing =
            options.provider_options.openrouter.as_ref().and_then(|o| o.provider.as_ref());
        assert_eq!(
            routing.map(|r| r.order.clone()),
            Some(vec!["anthropic".into(), "openai".into()])
        );
        assert_eq!(CallOptions::from_json(&options.to_json()).expect("round trip"), options);
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let err = CallOptions::from_json(&json!({"temprature": 1})).expect_err("unknown");
        assert_eq!(err.path, "temprature");
        assert!(err.reason.contains("unknown field `temprature`"), "{}", err.reason);

        let err = CallOptions::from_json(
            &json!({"provider_options": {"openai": {"reasoning_efort": "low"}}}),
        )
        .expect_err("nested unknown");
        assert_eq!(err.path, "provider_options.openai.reasoning_efort");
        assert!(err.to_string().starts_with("options.provider_options.openai.reasoning_efort:"));

        let err = CallOptions::from_json(&json!({"provider_options": {"mistral": {}}}))
            .expect_err("section");
        assert!(err.reason.contains("mistral"));
    }

    #[test]
    fn wrong_types_and_ranges_are_rejected() {
        let err = CallOptions::from_json(&json!({"temperature": "hot"})).expect_err("type");
        assert_eq!(err.path, "temperature");
        let err = CallOptions::from_json(&json!({"temperature": 3.5})).expect_err("range");
        assert_eq!(err.path, "temperature");
        let err = CallOptions::from_json(&json!({"max_output_tokens": 0})).expect_err("zero");
        assert_eq!(err.path, "max_output_tokens");
        let err = CallOptions::from_json(
            &json!({"provider_options": {"openai": {"reasoning_effort": "extreme"}}}),
        )
        .expect_err("enum");
        assert_eq!(err.path, "provider_options.openai.reasoning_effort");
    }

    #[test]
    fn null_and_empty_mean_defaults() {
        assert_eq!(CallOptions::from_json(&Value::Null).expect("null"), CallOptions::default());
        assert_eq!(CallOptions::from_json(&json!({})).expect("empty"), CallOptions::default());
        assert_eq!(CallOptions::default().max_output_tokens_or_default(), 32_000);
        assert_eq!(CallOptions::default().to_json(), json!({}));
    }
}

#[cfg(test)]
mod lenient_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_options_are_read_leniently_and_written_strictly() {
        let stored = json!({
            "max_output_tokens": 1000,
            "temperature": "hot",
            "future_option": true,
            "provider_options": {"openai": {"reasoning_effort": "high", "new_knob": 3}}
        });
        assert!(CallOptions::from_json(&stored).is_err(), "strict on write");
        let read = CallOptions::from_json_lenient(&stored);
        assert_eq!(read.max_output_tokens, Some(1000), "good keys are kept");
        assert_eq!(read.temperature, None, "a wrongly typed value is dropped");
        let openai = read.provider_options.openai.expect("openai kept");
        assert_eq!(openai.reasoning_effort, Some(ReasoningEffort::High));
        assert_eq!(CallOptions::from_json_lenient(&json!("garbage")), CallOptions::default());
    }
}
