//! A tool written against a Rust argument type: its schema is generated and normalised (and
//! made strict when the tool asks), and a call whose arguments do not decode is answered
//! with an error result the model can act on — the next call, corrected, runs.

use std::sync::Arc;

use chatd_core::runtime::tools::{ToolContext, ToolError, ToolSet, Typed, TypedTool};
use chatd_core::runtime::turn::{TurnEnd, TurnRunner, TurnSignal};
use chatd_core::testing::ScriptedCall;
use chatd_core::{Part, TurnOutcome};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// Arguments of `sum`.
#[derive(Debug, Deserialize, JsonSchema)]
struct SumArgs {
    /// The numbers to add.
    terms: Vec<Term>,
    /// A label for the result (optional).
    label: Option<String>,
}

/// One term.
#[derive(Debug, Deserialize, JsonSchema)]
struct Term {
    /// Its value.
    value: i64,
}

struct Sum;

#[async_trait::async_trait]
impl TypedTool for Sum {
    type Args = SumArgs;
    fn name(&self) -> &str {
        "sum"
    }
    fn description(&self) -> &str {
        "Add numbers."
    }
    fn strict(&self) -> bool {
        true
    }
    async fn call(&self, _ctx: &ToolContext, args: SumArgs) -> Result<Value, ToolError> {
        let total: i64 = args.terms.iter().map(|t| t.value).sum();
        Ok(json!({"sum": total, "label": args.label}))
    }
}

#[tokio::test]
async fn a_typed_tool_gets_a_generated_schema_and_decode_errors_the_model_can_correct() {
    let fx = crate::support::fixture(vec![
        ScriptedCall::tool_calls(&[("c1", "sum", json!({"terms": [{"val": 1}]}))], None),
        ScriptedCall::tool_calls(
            &[("c2", "sum", json!({"terms": [{"value": 2}, {"value": 3}]}))],
            None,
        ),
        ScriptedCall::text("5", None),
    ])
    .await;
    let runner = TurnRunner::new(
        Arc::clone(&fx.store),
        Arc::new(crate::support::Scripted(Arc::clone(&fx.provider))),
        ToolSet::new().with(Arc::new(Typed(Sum))),
    )
    .with_titles(false);
    let end = runner.run(fx.lease, TurnSignal::new()).await;
    assert!(matches!(end, TurnEnd::Release(TurnOutcome::Finished)), "{end:?}");

    // The schema the model was offered: generated, self-contained, strict.
    let requests = fx.provider.requests();
    let tool = &requests[0].tools[0];
    assert!(tool.strict, "strict was asked for and the schema allows it");
    let schema = &tool.input_schema;
    assert!(!schema.to_string().contains("$ref"), "{schema}");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!(["label", "terms"]));
    assert_eq!(schema["properties"]["label"]["type"], json!(["string", "null"]));
    assert_eq!(schema["properties"]["terms"]["items"]["properties"]["value"]["type"], "integer");
    assert_eq!(schema["properties"]["terms"]["description"], "The numbers to add.");

    // The bad call was answered, not run; the corrected one ran.
    let results: Vec<(String, Value, bool)> = fx
        .messages()
        .await
        .iter()
        .flat_map(|m| m.content.clone())
        .filter_map(|part| match part {
            Part::ToolResult { tool_call_id, result, is_error, .. } => {
                Some((tool_call_id, result, is_error))
            }
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    let (id, error, is_error) = &results[0];
    assert_eq!((id.as_str(), *is_error), ("c1", true));
    let error = error.to_string();
    assert!(error.contains("invalid arguments") && error.contains("value"), "{error}");
    assert_eq!(results[1], ("c2".to_owned(), json!({"sum": 5, "label": null}), false));
}
