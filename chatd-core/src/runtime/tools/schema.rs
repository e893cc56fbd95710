//! Tool argument schemas: generated from a Rust type with `schemars`, then normalised for
//! what providers accept. Every provider gets a self-contained object schema (`$ref`s
//! inlined, no `$schema`/`$defs`/`title`); OpenAI's strict mode additionally needs every
//! object closed (`additionalProperties: false`) with every property required (optional
//! ones become nullable) — [`strict`] produces that, or `None` when a schema cannot be
//! made strict (an open map, a recursive type).

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

/// How deep `$ref`s are inlined before a schema counts as recursive.
const MAX_DEPTH: usize = 32;

/// The normalised argument schema of `T` (see the module docs).
#[must_use]
pub(crate) fn schema_of<T: JsonSchema>() -> Value {
    let raw = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_else(|_| json!({}));
    normalise(&raw)
}

/// `schema` with its `$ref`s to `#/$defs/…` (or `#/definitions/…`) inlined and the
/// document-level keywords removed; an object schema at the top (`{"type": "object"}` if
/// it was not one).
#[must_use]
pub(crate) fn normalise(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = inline(schema, &defs, 0).unwrap_or_else(|| json!({"type": "object"}));
    if let Some(object) = out.as_object_mut() {
        for key in ["$schema", "$defs", "definitions", "title", "$id"] {
            object.remove(key);
        }
        if object.get("type").and_then(Value::as_str) != Some("object") {
            return json!({"type": "object", "properties": {}});
        }
    }
    out
}

fn inline(value: &Value, defs: &Map<String, Value>, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match value {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let name = target.rsplit('/').next().unwrap_or_default();
                let mut resolved = inline(defs.get(name)?, defs, depth + 1)?;
                // Keywords beside the `$ref` (a description) override the definition's.
                if let Some(object) = resolved.as_object_mut() {
                    for (key, extra) in map.iter().filter(|(key, _)| *key != "$ref") {
                        object.insert(key.clone(), inline(extra, defs, depth + 1)?);
                    }
                    object.remove("title");
                }
                return Some(resolved);
            }
            let mut out = Map::new();
            for (key, item) in map {
                if key == "$defs" || key == "definitions" {
                    continue;
                }
                out.insert(key.clone(), inline(item, defs, depth + 1)?);
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| inline(item, defs, depth + 1))
            .collect::<Option<_>>()
            .map(Value::Array),
        other => Some(other.clone()),
    }
}

/// `schema` (already `normalise`d) in OpenAI's strict form, or `None` when it has an open
/// map (`additionalProperties` other than `false`) that strict mode cannot express.
#[must_use]
pub fn strict(schema: &Value) -> Option<Value> {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, item) in map {
                let item = match key.as_str() {
                    // Property names are data, not schemas.
                    "properties" => {
                        let props = item.as_object()?;
                        let mut strict_props = Map::new();
                        for (name, prop) in props {
                            strict_props.insert(name.clone(), strict(prop)?);
                        }
                        Value::Object(strict_props)
                    }
                    "additionalProperties" if item != &Value::Bool(false) => return None,
                    "default" | "examples" | "const" | "enum" | "required" => item.clone(),
                    _ => strict(item)?,
                };
                out.insert(key.clone(), item);
            }
            let is_object = out.get("type").and_then(Value::as_str) == Some("object")
                || out.contains_key("properties");
            if is_object {
                let required: Vec<String> = out
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                let mut props =
                    out.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
                for (name, prop) in props.iter_mut() {
                    if !required.contains(name) {
                        *prop = nullable(prop.clone());
                    }
                }
                let all: Vec<Value> = props.keys().map(|k| Value::String(k.clone())).collect();
                out.insert("properties".into(), Value::Object(props));
                out.insert("required".into(), Value::Array(all));
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => items.iter().map(strict).collect::<Option<_>>().map(Value::Array),
        other => Some(other.clone()),
    }
}

/// A schema that also accepts `null` (an optional property under strict mode).
fn nullable(mut schema: Value) -> Value {
    let Some(object) = schema.as_object_mut() else { return schema };
    match object.get("type").cloned() {
        Some(Value::String(kind)) if kind != "null" => {
            object.insert("type".into(), json!([kind, "null"]));
        }
        Some(Value::Array(mut kinds)) => {
            if !kinds.contains(&json!("null")) {
                kinds.push(json!("null"));
            }
            object.insert("type".into(), Value::Array(kinds));
        }
        Some(_) => {}
        None => return json!({"anyOf": [schema, {"type": "null"}]}),
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A nested argument type, as tools write them.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Outer {
        /// The name.
        name: String,
        /// How many (optional).
        count: Option<u32>,
        /// The inner items.
        items: Vec<Inner>,
    }

    /// An item.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        /// Its label.
        label: String,
    }

    #[test]
    fn generated_schemas_are_self_contained_objects() {
        let schema = schema_of::<Outer>();
        let text = schema.to_string();
        assert!(
            !text.contains("$ref") && !text.contains("$defs") && !text.contains("$schema"),
            "{text}"
        );
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["items"]["items"]["properties"]["label"]["type"], "string");
        assert_eq!(schema["properties"]["name"]["description"], "The name.");
    }

    #[test]
    fn strict_mode_closes_objects_and_requires_every_property() {
        let schema = strict(&schema_of::<Outer>()).expect("strict-able");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["count", "items", "name"]));
        assert_eq!(schema["properties"]["count"]["type"], json!(["integer", "null"]));
        let inner = &schema["properties"]["items"]["items"];
        assert_eq!(
            (inner["additionalProperties"].clone(), inner["required"].clone()),
            (json!(false), json!(["label"]))
        );
        // A property literally named "properties" or "required" is data, not a keyword.
        let odd = json!({"type": "object", "properties": {"required": {"type": "string"}}, "required": ["required"]});
        assert_eq!(strict(&odd).expect("strict")["required"], json!(["required"]));
    }

    #[test]
    fn open_maps_and_recursive_types_are_not_forced() {
        let open = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(strict(&open), None);
        let recursive = json!({"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}});
        assert_eq!(
            normalise(&recursive),
            json!({"type": "object"}),
            "recursion is not inlined forever"
        );
        assert_eq!(normalise(&json!({"type": "string"}))["type"], "object");
    }
}
