//! Which provider serves a model name ([BEHAVIOUR §9.4](crate::behaviour#9-providers)).

use crate::provider_config::ProviderKind;

/// A model name that names no provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot tell which provider serves model `{0}`: write it as provider:model")]
pub struct UnresolvedModel(pub String);

/// Resolves `spec` to a provider and the provider's model name: an explicit
/// `provider:model` or `provider/model` wins, then `hint`, then the name's prefix
/// (`claude-` → anthropic; `gpt-`, `chatgpt-`, `o<digit>` → openai; `gemini-`, `gemma-` →
/// google).
///
/// # Errors
/// [`UnresolvedModel`] when nothing identifies the provider or the name is empty.
pub(crate) fn resolve_model(
    spec: &str,
    hint: Option<ProviderKind>,
) -> Result<(ProviderKind, String), UnresolvedModel> {
    let spec = spec.trim();
    for separator in [':', '/'] {
        if let Some((prefix, model)) = spec.split_once(separator)
            && let Ok(kind) = prefix.parse::<ProviderKind>()
            && !model.is_empty()
        {
            return Ok((kind, model.to_owned()));
        }
    }
    if spec.is_empty() {
        return Err(UnresolvedModel(spec.to_owned()));
    }
    if let Some(kind) = hint {
        return Ok((kind, spec.to_owned()));
    }
    let lower = spec.to_ascii_lowercase();
    let kind = if lower.starts_with("claude-") {
        ProviderKind::Anthropic
    } else if lower.starts_with("gpt-")
        || lower.starts_with("chatgpt-")
        || (lower.starts_with('o') && lower[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        ProviderKind::OpenAi
    } else if lower.starts_with("gemini-") || lower.starts_with("gemma-") {
        ProviderKind::Google
    } else {
        return Err(UnresolvedModel(spec.to_owned()));
    };
    Ok((kind, spec.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_provider_wins_then_hint_then_prefix() {
        let cases = [
            ("anthropic:claude-x", None, ProviderKind::Anthropic, "claude-x"),
            ("openrouter/meta-llama/llama-4", None, ProviderKind::OpenRouter, "meta-llama/llama-4"),
            (
                "openai-compat:qwen3",
                Some(ProviderKind::Google),
                ProviderKind::OpenAiCompat,
                "qwen3",
            ),
            (
                "claude-sonnet-4-5",
                Some(ProviderKind::Bedrock),
                ProviderKind::Bedrock,
                "claude-sonnet-4-5",
            ),
            ("claude-sonnet-4-5", None, ProviderKind::Anthropic, "claude-sonnet-4-5"),
            ("gpt-5", None, ProviderKind::OpenAi, "gpt-5"),
            ("chatgpt-4o-latest", None, ProviderKind::OpenAi, "chatgpt-4o-latest"),
            ("o3-mini", None, ProviderKind::OpenAi, "o3-mini"),
            ("gemini-2.5-pro", None, ProviderKind::Google, "gemini-2.5-pro"),
            ("gemma-3-27b", None, ProviderKind::Google, "gemma-3-27b"),
        ];
        for (spec, hint, kind, model) in cases {
            assert_eq!(resolve_model(spec, hint), Ok((kind, model.to_owned())), "{spec}");
        }
    }

    #[test]
    fn unknown_names_are_errors_not_guesses() {
        for spec in ["llama-3", "omega", "", "mystery:model", "anthropic:"] {
            assert!(resolve_model(spec, None).is_err(), "{spec}");
        }
        assert!(resolve_model("o1", None).is_ok());
    }
}
