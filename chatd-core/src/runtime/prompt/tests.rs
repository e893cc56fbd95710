use chrono::Utc;
use serde_json::json;

use super::*;
use crate::ids::{ChatId, MessageId};
use crate::message::Visibility;
use crate::part::ProviderMetadata;

fn row(id: i64, role: Role, content: Vec<Part>) -> Message {
    Message {
        id: MessageId(id),
        chat_id: ChatId::new(),
        model_config_id: None,
        created_at: Utc::now(),
        role,
        content,
        visibility: Visibility::Both,
        usage: None,
        context_limit: None,
        compressed: false,
        client_id: None,
        deleted: None,
    }
}

fn roles(prompt: &Prompt) -> Vec<Role> {
    prompt.messages.iter().map(|m| m.role).collect()
}

#[test]
fn leading_system_rows_form_the_system_block_and_children_get_the_sub_agent_note() {
    let history = vec![
        row(1, Role::System, vec![Part::text("You are a coding agent.")]),
        row(2, Role::System, vec![Part::text("Summary so far: ...")]),
        row(3, Role::User, vec![Part::text("go")]),
    ];
    let root = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(root.system, vec!["You are a coding agent.", "Summary so far: ..."]);
    assert_eq!(roles(&root), vec![Role::User]);
    let child = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Child);
    assert_eq!(child.system.last().map(String::as_str), Some(SUB_AGENT_INSTRUCTION));
}

#[test]
fn user_only_rows_are_not_sent() {
    let mut hidden = row(2, Role::Assistant, vec![Part::text("for people only")]);
    hidden.visibility = Visibility::User;
    let history = vec![row(1, Role::User, vec![Part::text("q")]), hidden];
    assert_eq!(
        roles(&build_prompt(&history, ProviderKind::OpenAi, crate::chat::ChatKind::Root)),
        vec![Role::User]
    );
}

#[test]
fn a_dangling_tool_call_gets_a_synthetic_error_result() {
    let history = vec![
        row(1, Role::User, vec![Part::text("read both")]),
        row(
            2,
            Role::Assistant,
            vec![
                Part::tool_call("a", "read_file", json!({"path": "a"})),
                Part::tool_call("b", "read_file", json!({"path": "b"})),
            ],
        ),
        row(3, Role::Tool, vec![Part::tool_result("a", "read_file", json!("A"), false)]),
        row(4, Role::User, vec![Part::text("and?")]),
    ];
    let prompt = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(
        roles(&prompt),
        vec![Role::User, Role::Assistant, Role::Tool, Role::Tool, Role::User]
    );
    assert_eq!(
        prompt.messages[3].content,
        vec![Part::tool_result("b", "read_file", json!(INTERRUPTED_RESULT), true)]
    );
    let tail = build_prompt(&history[..2], ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(
        tail.messages.last().map(|m| m.content.len()),
        Some(2),
        "both calls of an interrupted step are answered"
    );
}

#[test]
fn a_tool_result_without_its_call_is_dropped() {
    let history = vec![
        row(1, Role::User, vec![Part::text("q")]),
        row(
            2,
            Role::Tool,
            vec![Part::tool_result("orphan", "execute", json!({"exit_code": 0}), false)],
        ),
    ];
    let prompt = build_prompt(&history, ProviderKind::OpenAi, crate::chat::ChatKind::Root);
    assert_eq!(roles(&prompt), vec![Role::User]);
}

/// The original system's case: the results of D and E arrive after an orphan result C.
/// The prompt must not become `assistant[D,E] assistant[C] tool(C) tool(D) tool(E)`.
#[test]
fn an_orphan_result_among_real_ones_keeps_every_result_right_after_its_call() {
    let history = vec![
        row(1, Role::User, vec![Part::text("q")]),
        row(
            2,
            Role::Assistant,
            vec![Part::tool_call("D", "t", json!({})), Part::tool_call("E", "t", json!({}))],
        ),
        row(3, Role::Tool, vec![Part::tool_result("C", "t", json!("c"), false)]),
        row(4, Role::Tool, vec![Part::tool_result("D", "t", json!("d"), false)]),
        row(5, Role::Tool, vec![Part::tool_result("E", "t", json!("e"), false)]),
    ];
    let prompt = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(roles(&prompt), vec![Role::User, Role::Assistant, Role::Tool, Role::Tool]);
    let ids: Vec<&str> = prompt.messages[2..]
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|p| match p {
            Part::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec!["D", "E"]);
}

/// Results of provider-executed tools stay in the assistant row and never become local
/// calls, even if a tool row repeats one.
#[test]
fn a_provider_executed_result_in_a_tool_row_never_becomes_a_local_call() {
    let history = vec![
        row(1, Role::User, vec![Part::text("q")]),
        row(
            2,
            Role::Assistant,
            vec![Part::ToolCall {
                tool_call_id: "ws".into(),
                tool_name: "web_search".into(),
                args: json!({}),
                provider_executed: true,
                provider_metadata: None,
            }],
        ),
        row(3, Role::Tool, vec![Part::tool_result("ws", "web_search", json!("r"), false)]),
    ];
    let prompt = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(roles(&prompt), vec![Role::User, Role::Assistant]);
}

#[test]
fn ids_are_sanitised_consistently_and_arguments_become_objects() {
    let history = vec![
        row(
            1,
            Role::Assistant,
            vec![
                Part::tool_call("toolu.01:x/y", "read_file", json!("{\"path\":\"a\"}")),
                Part::tool_call("call 2", "read_file", json!(["not", "an", "object"])),
            ],
        ),
        row(2, Role::Tool, vec![Part::tool_result("toolu.01:x/y", "read_file", json!("A"), false)]),
        row(3, Role::Tool, vec![Part::tool_result("call 2", "read_file", json!("B"), false)]),
    ];
    let prompt = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    let (first, second) = (sanitize_tool_call_id("toolu.01:x/y"), sanitize_tool_call_id("call 2"));
    assert!(
        first.starts_with("toolu_01_x_y_") && second.starts_with("call_2_"),
        "{first} {second}"
    );
    assert_eq!(
        prompt.messages[0].content,
        vec![
            Part::tool_call(first, "read_file", json!({"path": "a"})),
            Part::tool_call(second, "read_file", json!({}))
        ]
    );
    assert_eq!(
        roles(&prompt),
        vec![Role::Assistant, Role::Tool, Role::Tool],
        "no synthetic rows: ids still match"
    );
    assert!(sanitize_tool_call_id("").starts_with("call_"));
}

/// SPEC §4: sanitising never maps two ids to one — ids differing only in characters a
/// provider refuses stay distinct, and a clean id is kept as it is.
#[test]
fn sanitising_never_maps_two_ids_to_one() {
    let ids = ["call.1", "call:1", "call 1", "call_1", "call/1", "", "é", "ü"];
    let cleaned: std::collections::HashSet<String> =
        ids.iter().map(|id| sanitize_tool_call_id(id)).collect();
    assert_eq!(cleaned.len(), ids.len(), "{cleaned:?}");
    assert_eq!(sanitize_tool_call_id("call_1"), "call_1");
    assert_eq!(sanitize_tool_call_id("toolu_01AbC-x"), "toolu_01AbC-x");
    for id in cleaned {
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{id}");
    }
}

#[test]
fn reasoning_is_replayed_only_to_the_provider_that_produced_it() {
    let mut anthropic = ProviderMetadata::new();
    anthropic.insert("anthropic".into(), json!({"signature": "s"}));
    let mut google = ProviderMetadata::new();
    google.insert("google".into(), json!({"thought_signature": "g"}));
    let history = vec![row(
        1,
        Role::Assistant,
        vec![
            Part::Reasoning { text: "claude thought".into(), provider_metadata: Some(anthropic) },
            Part::Reasoning { text: "gemini thought".into(), provider_metadata: Some(google) },
            Part::Reasoning { text: "unsigned".into(), provider_metadata: None },
            Part::text("answer"),
        ],
    )];
    let texts = |kind| -> Vec<String> {
        build_prompt(&history, kind, crate::chat::ChatKind::Root).messages[0]
            .content
            .iter()
            .filter_map(|p| p.as_text().map(str::to_owned))
            .collect()
    };
    assert_eq!(texts(ProviderKind::Anthropic), vec!["claude thought", "answer"]);
    assert_eq!(texts(ProviderKind::Google), vec!["gemini thought", "answer"]);
    assert_eq!(texts(ProviderKind::OpenRouter), vec!["answer"]);
}

#[test]
fn provider_executed_tools_need_no_local_result() {
    let history = vec![
        row(
            1,
            Role::Assistant,
            vec![
                Part::ToolCall {
                    tool_call_id: "ws".into(),
                    tool_name: "web_search".into(),
                    args: json!({}),
                    provider_executed: true,
                    provider_metadata: None,
                },
                Part::ToolResult {
                    tool_call_id: "ws".into(),
                    tool_name: "web_search".into(),
                    result: json!([]),
                    is_error: false,
                    provider_executed: true,
                    provider_metadata: None,
                },
                Part::text("found it"),
            ],
        ),
        row(2, Role::User, vec![Part::text("thanks")]),
    ];
    assert_eq!(
        roles(&build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root)),
        vec![Role::Assistant, Role::User]
    );
}
