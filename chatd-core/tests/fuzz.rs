//! Property-based fuzzing of the core decoders that read untrusted input (BEHAVIOUR §12): stored
//! message content (older and hostile shapes), `CallOptions` (model-config JSON), tool
//! arguments as a model sends them, and the user-input validator. No input may panic; what
//! decodes must encode and decode again to the same value.
//!
//! Longer runs: `PROPTEST_CASES=20000 cargo test --release -p chatd-core --test fuzz`.

use chatd_core::CallOptions;
use chatd_core::provider::parse_tool_args;
use chatd_core::store::{Limits, Step};
use chatd_core::{NewMessage, Role};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Arbitrary JSON, biased towards the keys these decoders look for.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("type".to_owned()),
        Just("text".to_owned()),
        Just("tool_call_id".to_owned()),
        Just("tool_name".to_owned()),
        Just("args".to_owned()),
        Just("result".to_owned()),
        Just("max_output_tokens".to_owned()),
        Just("provider_options".to_owned()),
        Just("openai".to_owned()),
        Just("reasoning_effort".to_owned()),
        "[a-z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("text".to_owned()),
            Just("tool-call".to_owned()),
            Just("tool-result".to_owned()),
            Just("reasoning".to_owned()),
            Just("file".to_owned()),
            Just("high".to_owned()),
            ".{0,16}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn message_content_decoding_never_panics_and_round_trips(value in json_value()) {
        if let Ok(parts) = chatd_core::Part::content_from_json(value) {
            let again = chatd_core::Part::content_from_json(chatd_core::Part::content_to_json(&parts)).expect("what decoded re-decodes");
            prop_assert_eq!(parts, again);
        }
    }

    #[test]
    fn call_options_decoding_never_panics_and_round_trips(value in json_value()) {
        if let Ok(options) = CallOptions::from_json(&value) {
            let again = CallOptions::from_json(&options.to_json()).expect("what decoded re-decodes");
            prop_assert_eq!(options, again);
        }
    }

    #[test]
    fn tool_arguments_never_panic_and_are_never_invented(raw in ".{0,64}") {
        let args = parse_tool_args(&raw);
        match &args {
            Value::Object(map) if raw.trim().is_empty() => prop_assert!(map.is_empty()),
            Value::Object(_) => prop_assert_eq!(serde_json::from_str::<Value>(&raw).ok(), Some(args.clone())),
            Value::String(kept) => {
                prop_assert_eq!(kept, &raw);
                // Kept as text only when it is not an object: the loop refuses to run it.
                prop_assert!(!matches!(serde_json::from_str::<Value>(&raw), Ok(Value::Object(_))));
            }
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn user_input_validation_never_panics(value in json_value()) {
        if let Ok(parts) = chatd_core::Part::content_from_json(value) {
            let limits = Limits::default();
            let _ = limits.check_content(&parts);
            let mut step = Step::new(Some(NewMessage::new(Role::Assistant, parts)), Vec::new());
            limits.check_step(&mut step).expect("an assistant row is a valid step");
            let output = step.assistant.map(|row| row.content).unwrap_or_default();
            let text = serde_json::to_string(&chatd_core::Part::content_to_json(&output)).expect("json");
            prop_assert!(!text.contains("\\u0000"), "sanitised output holds no NUL");
        }
    }
}
