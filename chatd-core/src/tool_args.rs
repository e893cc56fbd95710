//! A tool call's arguments as the model sent them ([BEHAVIOUR §9.2](crate::behaviour#9-providers)): parsed without invention,
//! and checked before a call runs. Re-exported by [`provider`](crate::provider); a leaf, so
//! the store's validation can use it too.

use serde_json::{Map, Value};

/// Arguments as a JSON object: invalid or empty JSON becomes `{}`, a non-object value is
/// kept only if it is an object ([BEHAVIOUR §4](crate::behaviour#4-prompt-construction): what a prompt sends for a persisted call).
#[must_use]
pub(crate) fn args_object(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    }
}

/// The arguments of a complete call as the model sent them ([BEHAVIOUR §9.2](crate::behaviour#9-providers)): an object when
/// they are one, `{}` for empty text (a call of a tool without parameters), and otherwise
/// the raw text as a JSON string — never invented. The loop does not run a call whose
/// arguments are not an object: its result says why it was refused.
#[must_use]
pub fn parse_tool_args(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::String(raw.to_owned()),
    }
}

/// Why `args` cannot be a call's arguments (`None` for an object).
#[must_use]
pub(crate) fn invalid_args(args: &Value) -> Option<String> {
    use crate::part::json_kind;
    match args {
        Value::Object(_) => None,
        Value::String(raw) => Some(match serde_json::from_str::<Value>(raw) {
            Err(err) => format!("not valid JSON ({err})"),
            Ok(value) => format!("expected a JSON object, got {}", json_kind(&value)),
        }),
        other => Some(format!("expected a JSON object, got {}", json_kind(other))),
    }
}
