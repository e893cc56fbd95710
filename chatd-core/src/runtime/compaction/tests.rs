use chrono::Utc;
use serde_json::json;

use super::*;
use crate::call_options::CallOptions;
use crate::ids::{MessageId, ModelConfigId};
use crate::message::{Usage, Visibility};
use crate::provider_config::ProviderKind;

fn config(context_limit: i64, threshold: i32) -> ModelConfig {
    ModelConfig {
        id: ModelConfigId::new(),
        provider: ProviderKind::OpenAi,
        model: "m".into(),
        display_name: "m".into(),
        created_by: None,
        updated_by: None,
        enabled: true,
        is_default: true,
        deleted: false,
        deleted_at: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        context_limit,
        compression_threshold: threshold,
        options: CallOptions::default(),
        prices: None,
    }
}

fn usage(input: i64) -> Usage {
    Usage { input_tokens: input, total_tokens: input + 10, ..Usage::default() }
}

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

#[test]
fn fires_at_the_threshold_and_not_below() {
    let config = config(100, 70);
    assert_eq!(check(&config, Some(usage(69)), None), None);
    let at = check(&config, Some(usage(70)), None).expect("70/100 reaches 70 %");
    assert_eq!((at.context_tokens, at.context_limit, at.usage_percent), (70, 100, 70));
    assert_eq!(check(&config, Some(usage(80)), None).map(|u| u.usage_percent), Some(80));
}

#[test]
fn the_provider_window_wins_over_the_config_limit() {
    let config = config(100, 70);
    assert_eq!(check(&config, Some(usage(80)), Some(1_000)), None);
    assert!(check(&config, Some(usage(800)), Some(1_000)).is_some());
}

#[test]
fn cache_tokens_count_and_total_is_the_fallback() {
    let config = config(100, 70);
    let cached = Usage {
        input_tokens: 10,
        cache_read_tokens: 50,
        cache_creation_tokens: 15,
        ..Usage::default()
    };
    assert_eq!(check(&config, Some(cached), None).map(|u| u.context_tokens), Some(75));
    let total_only = Usage { total_tokens: 90, ..Usage::default() };
    assert_eq!(check(&config, Some(total_only), None).map(|u| u.context_tokens), Some(90));
}

#[test]
fn threshold_100_disables_and_out_of_range_means_70() {
    assert_eq!(check(&config(100, 100), Some(usage(100)), None), None);
    assert_eq!(
        check(&config(100, 250), Some(usage(72)), None).map(|u| u.threshold_percent),
        Some(70)
    );
    assert_eq!(check(&config(100, -3), Some(usage(69)), None), None);
    assert_eq!(
        check(&config(0, 70), Some(usage(1_000_000)), None),
        None,
        "no window, no compaction"
    );
    assert_eq!(check(&config(100, 70), None, None), None, "no usage, no compaction");
}

fn tool_round(id: i64, call: &str, output_bytes: usize) -> [Message; 2] {
    [
        row(id, Role::Assistant, vec![Part::tool_call(call, "read_file", json!({"path": call}))]),
        row(
            id + 1,
            Role::Tool,
            vec![Part::tool_result(call, "read_file", json!("x".repeat(output_bytes)), false)],
        ),
    ]
}

fn results(request: &ModelRequest) -> Vec<String> {
    request
        .messages
        .iter()
        .flat_map(|m| m.content.iter())
        .filter_map(|p| match p {
            Part::ToolResult { tool_call_id, result, .. } => {
                Some(if *result == json!(DROPPED_OUTPUT) {
                    format!("{tool_call_id}:dropped")
                } else {
                    format!("{tool_call_id}:kept")
                })
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_history_that_fits_is_sent_whole_with_the_instruction_last() {
    let mut history = vec![row(1, Role::User, vec![Part::text("read the files")])];
    history.extend(tool_round(2, "a", 400));
    let config = config(100_000, 70);
    let usage = measure(80_000, 100_000, &config);
    let request = summary_request(&history, &config, crate::chat::ChatKind::Root, &usage);
    assert_eq!(results(&request), vec!["a:kept"]);
    let last = request.messages.last().expect("instruction");
    assert_eq!(
        (last.role, last.content.clone()),
        (Role::User, vec![Part::text(SUMMARY_INSTRUCTION)])
    );
    assert!(request.tools.is_empty(), "tools are disabled for the summary");
    assert_eq!(request.options.max_output_tokens, Some(8_192));
}

#[test]
fn the_summary_names_attached_files_instead_of_sending_them() {
    let shot = Part::attachment(crate::ids::FileId::new(), "image/png", "shot.png");
    let history = vec![row(1, Role::User, vec![Part::text("what is this?"), shot])];
    let config = config(100_000, 70);
    let request = summary_request(
        &history,
        &config,
        crate::chat::ChatKind::Root,
        &measure(10, 100_000, &config),
    );
    assert_eq!(
        request.messages[0].content,
        vec![Part::text("what is this?"), Part::text("[attached file shot.png (image/png)]")]
    );
}

#[test]
fn an_overflowing_history_drops_the_oldest_tool_outputs_first() {
    // Three 40 KB outputs ≈ 30 000 estimated tokens in a 20 000-token window.
    let mut history = vec![row(1, Role::User, vec![Part::text("read the files")])];
    history.extend(tool_round(2, "a", 40_000));
    history.extend(tool_round(4, "b", 40_000));
    history.extend(tool_round(6, "c", 40_000));
    history.push(row(8, Role::Assistant, vec![Part::text("done reading")]));
    let config = config(20_000, 70);
    let usage = measure(19_000, 20_000, &config);
    let request = summary_request(&history, &config, crate::chat::ChatKind::Root, &usage);
    assert_eq!(results(&request), vec!["a:dropped", "b:dropped", "c:kept"]);
    assert_eq!(
        request.messages[0].content,
        vec![Part::text("read the files")],
        "no message dropped"
    );
    let estimated: i64 = request.messages.iter().map(estimate).sum();
    assert!(estimated + summary_tokens(20_000) <= 20_000, "fits: {estimated}");
}

#[test]
fn provider_counts_scale_the_estimate() {
    // The same history, but the provider counted four times the estimate: more must go.
    let mut history = vec![row(1, Role::User, vec![Part::text("read the files")])];
    history.extend(tool_round(2, "a", 8_000));
    history.extend(tool_round(4, "b", 8_000));
    history.extend(tool_round(6, "c", 8_000));
    let config = config(20_000, 70);
    let plain = summary_request(
        &history,
        &config,
        crate::chat::ChatKind::Root,
        &measure(6_000, 20_000, &config),
    );
    assert_eq!(results(&plain), vec!["a:kept", "b:kept", "c:kept"]);
    let dense = summary_request(
        &history,
        &config,
        crate::chat::ChatKind::Root,
        &measure(19_000, 20_000, &config),
    );
    assert_eq!(results(&dense), vec!["a:dropped", "b:kept", "c:kept"]);
}

#[test]
fn when_dropping_outputs_is_not_enough_the_oldest_messages_go_and_the_last_stays() {
    let history: Vec<Message> = (1..=40)
        .map(|i| {
            row(
                i,
                if i % 2 == 1 { Role::User } else { Role::Assistant },
                vec![Part::text("y".repeat(4_000))],
            )
        })
        .collect();
    let config = config(8_000, 70);
    let request = summary_request(
        &history,
        &config,
        crate::chat::ChatKind::Root,
        &measure(7_000, 8_000, &config),
    );
    let kept = request.messages.len() - 1; // minus the instruction
    assert!((1..40).contains(&kept), "kept {kept}");
    let estimated: i64 = request.messages.iter().map(estimate).sum();
    assert!(estimated + summary_tokens(8_000) <= 8_000, "fits: {estimated}");
    assert_eq!(
        request.messages[kept - 1].content,
        history[39].content,
        "the newest message is kept"
    );
}

#[test]
fn the_boundary_becomes_the_opening_user_message() {
    let mut boundary = row(5, Role::System, vec![Part::text("summary")]);
    boundary.compressed = true;
    boundary.visibility = Visibility::Model;
    let history = vec![row(1, Role::System, vec![Part::text("sys")]), boundary];
    let prompt = build_prompt(&history, ProviderKind::Anthropic, crate::chat::ChatKind::Root);
    assert_eq!(prompt.system, vec!["sys"]);
    assert_eq!(prompt.messages.len(), 1);
    assert_eq!(prompt.messages[0].role, Role::User);
}
