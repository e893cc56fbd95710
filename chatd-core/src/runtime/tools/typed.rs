//! Tools whose arguments are a Rust type: the schema is generated from the type
//! (`schemars`), normalised for providers ([`schema`](super::schema)), and the arguments are
//! decoded into it — a call whose arguments do not decode is answered with an error result
//! that says why (`invalid arguments: missing field `path``), so the model can correct
//! itself. The built-in workspace tools take this path too.
//!
//! ```
//! use chatd_core::runtime::tools::{ToolContext, ToolError, ToolSet, Typed, TypedTool};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::{Value, json};
//!
//! /// Arguments of `add`.
//! #[derive(Deserialize, JsonSchema)]
//! struct AddArgs {
//!     /// The first number.
//!     a: i64,
//!     /// The second number.
//!     b: i64,
//! }
//!
//! struct Add;
//!
//! #[async_trait::async_trait]
//! impl TypedTool for Add {
//!     type Args = AddArgs;
//!     fn name(&self) -> &str { "add" }
//!     fn description(&self) -> &str { "Add two integers." }
//!     async fn call(&self, _ctx: &ToolContext, args: AddArgs) -> Result<Value, ToolError> {
//!         Ok(json!({"sum": args.a + args.b}))
//!     }
//! }
//!
//! let tools = ToolSet::new().with(std::sync::Arc::new(Typed(Add)));
//! let schema = &tools.definitions_for(chatd_core::ChatKind::Root)[0].input_schema;
//! assert_eq!(schema["properties"]["a"]["type"], "integer");
//! ```

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Tool, ToolContext, ToolError};

/// A tool with typed arguments; register it wrapped in [`Typed`].
#[async_trait]
pub trait TypedTool: Send + Sync + 'static {
    /// The arguments (`#[derive(Deserialize, JsonSchema)]`; doc comments become the
    /// schema's descriptions).
    type Args: DeserializeOwned + JsonSchema + Send + 'static;

    /// Its name (unique in a set).
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// Whether only root chats are offered the tool (see [`Tool::root_only`]).
    fn root_only(&self) -> bool {
        false
    }

    /// The error result a child chat's call gets when the tool is [`root_only`](Self::root_only)
    /// (children are not offered it, but a model may call it anyway).
    fn child_refusal(&self) -> &str {
        "this tool is offered to root chats only"
    }

    /// Whether providers that can should enforce the schema (see [`Tool::strict`]).
    fn strict(&self) -> bool {
        false
    }

    /// Whether running a call twice is harmless (see [`Tool::idempotent`]; default `false`).
    fn idempotent(&self) -> bool {
        false
    }

    /// Runs one call with decoded arguments.
    ///
    /// # Errors
    /// A [`ToolError`] the model will see as an error result.
    async fn call(&self, ctx: &ToolContext, args: Self::Args) -> Result<Value, ToolError>;
}

/// A [`TypedTool`] as a [`Tool`].
#[derive(Debug, Clone)]
pub struct Typed<T>(pub T);

#[async_trait]
impl<T: TypedTool> Tool for Typed<T> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    fn input_schema(&self) -> Value {
        super::schema::schema_of::<T::Args>()
    }
    fn root_only(&self) -> bool {
        self.0.root_only()
    }
    fn strict(&self) -> bool {
        self.0.strict()
    }
    fn idempotent(&self) -> bool {
        self.0.idempotent()
    }
    async fn run(&self, ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        if ctx.kind.is_child() && self.0.root_only() {
            return Err(ToolError::new(self.0.child_refusal()));
        }
        self.0.call(ctx, decode_args(args)?).await
    }
}

/// Decodes a call's arguments, or the error result the model sees.
///
/// # Errors
/// `invalid arguments: <what serde said>`.
pub(crate) fn decode_args<A: DeserializeOwned>(args: Value) -> Result<A, ToolError> {
    serde_json::from_value(args).map_err(|err| ToolError::new(format!("invalid arguments: {err}")))
}
