//! Lenient field decoding for the private wire types of the stream parsers.
//!
//! Servers that speak a provider's format are not all strict about it: a field may be
//! missing, `null`, or of another JSON type than the reference server sends (the quirks
//! corpus, `tests/quirks`, holds real examples). A stream parser must not fail a step for
//! a field it can do without, so every optional field of a wire type is read with
//! [`field`]: a value of the expected type is kept, anything else is as if it were absent.

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// Reads an optional field leniently: `Some` only when the value is not `null` and has the
/// expected type. The wire types apply it to every field with
/// `#[serde_with::apply(_ => #[serde(deserialize_with = "crate::lenient::field")])]` (and
/// `#[serde(default)]` on the struct, for absent fields).
pub(crate) fn field<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => Ok(serde_json::from_value(value).ok()),
    }
}

/// Decodes one event's JSON text into its wire type: an error for text that is not JSON;
/// a JSON value of an unexpected shape decodes to the type's default (every field lenient).
pub(crate) fn event<T: DeserializeOwned + Default>(data: &[u8]) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_slice(data)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}
