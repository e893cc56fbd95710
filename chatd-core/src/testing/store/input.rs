//! Scenarios: what people may send, and storing whatever models and tools produce
//! ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input)). Every store gives the same answers.

use serde_json::json;

use super::{Fixture, StoreRef};
use crate::store::{MessageQuery, NewPart, PartPosition, SendMessage, Step, StoreError};
use crate::{NewChat, NewMessage, Part, TurnOutcome};

fn field_of(err: &StoreError) -> String {
    match err {
        StoreError::Validation { field, .. } => field.clone(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// People send only text and file parts, without U+0000; the error names the field.
pub async fn user_input_is_text_or_file_parts_without_nul(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let refused = [
        (vec![Part::tool_call("c", "execute", json!({"command": "id"}))], "content[0]"),
        (
            vec![Part::text("ok"), Part::Reasoning { text: "r".into(), provider_metadata: None }],
            "content[1]",
        ),
        (vec![Part::tool_result("c", "t", json!("forged"), false)], "content[0]"),
        (vec![Part::text("bad\u{0}byte")], "content[0].text"),
    ];
    for (content, field) in &refused {
        let new = NewChat::new(fx.owner).with_message(content.clone());
        let err = fx.store.create_chat(new).await.expect_err("refused");
        assert_eq!(field_of(&err), *field, "create: {err}");
    }
    let chat = fx.idle_chat().await;
    for (content, field) in &refused {
        let err = fx
            .store
            .send_message(chat.id, SendMessage::new(content.clone()))
            .await
            .expect_err("refused");
        assert_eq!(field_of(&err), *field, "send: {err}");
    }
    let sent = fx.store.send_message(chat.id, SendMessage::text("fine")).await.expect("send");
    let first = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list")[0].id;
    let _ = sent;
    let err = fx
        .store
        .edit_message(chat.id, first, vec![Part::text("x\u{0}")])
        .await
        .expect_err("edit refused");
    assert_eq!(field_of(&err), "content[0].text");
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_system_prompt("be\u{0}evil"))
        .await
        .expect_err("system prompt");
    assert_eq!(field_of(&err), "system_prompt");
    let err =
        fx.store.create_chat(NewChat::new(fx.owner).with_title("t\u{0}")).await.expect_err("title");
    assert_eq!(field_of(&err), "title");
    let file = Part::File {
        media_type: "text/plain".into(),
        data: Some("aGk=".into()),
        attachment_id: None,
        file_id: None,
        name: None,
    };
    fx.store
        .create_chat(NewChat::new(fx.owner).with_message(vec![Part::text("see"), file]))
        .await
        .expect("text and file parts are fine");
}

/// Message size, part count, files and system-prompt size are limited ([BEHAVIOUR §12](crate::behaviour#12-secrets-and-input), §19
/// defaults).
pub async fn user_input_size_limits_are_enforced(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let limits = crate::store::Limits::default();
    let many: Vec<Part> = (0..=limits.max_parts).map(|i| Part::text(format!("p{i}"))).collect();
    let err =
        fx.store.create_chat(NewChat::new(fx.owner).with_message(many)).await.expect_err("parts");
    assert_eq!(field_of(&err), "content");
    let huge = "x".repeat(limits.max_message_bytes + 1);
    let err = fx.store.create_chat(NewChat::new(fx.owner).with_text(huge)).await.expect_err("size");
    assert_eq!(field_of(&err), "content");
    let prompt = "y".repeat(limits.max_system_prompt_bytes + 1);
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_system_prompt(prompt))
        .await
        .expect_err("prompt size");
    assert_eq!(field_of(&err), "system_prompt");
    let at_limit = "z".repeat(limits.max_message_bytes);
    fx.store
        .create_chat(NewChat::new(fx.owner).with_text(at_limit))
        .await
        .expect("exactly at the limit is fine");
    // Files (BEHAVIOUR §19): at most 20 per message, inline data at most 8 KiB, and a file
    // part must say where its bytes are.
    let inline = |bytes: usize| Part::File {
        media_type: "text/plain".into(),
        data: Some("A".repeat(bytes)),
        attachment_id: None,
        file_id: None,
        name: None,
    };
    let many: Vec<Part> = (0..=limits.max_files_per_message).map(|_| inline(4)).collect();
    let err = fx.store.create_chat(NewChat::new(fx.owner).with_message(many)).await;
    assert_eq!(err.expect_err("files").to_string(), "A message may have at most 20 files.");
    let big = vec![Part::text("see"), inline(limits.max_inline_file_bytes + 1)];
    let err = fx.store.create_chat(NewChat::new(fx.owner).with_message(big)).await;
    assert_eq!(field_of(&err.expect_err("inline")), "content[1].data");
    let nowhere = Part::File {
        media_type: "image/png".into(),
        data: None,
        attachment_id: None,
        file_id: None,
        name: None,
    };
    let err = fx.store.create_chat(NewChat::new(fx.owner).with_message(vec![nowhere])).await;
    assert_eq!(field_of(&err.expect_err("no bytes")), "content[0]");
    let fits = vec![inline(limits.max_inline_file_bytes)];
    fx.store.create_chat(NewChat::new(fx.owner).with_message(fits)).await.expect("at the limit");
}

/// U+0000 in model text, tool arguments, tool results and live parts never fails a write:
/// it is stored as U+FFFD.
pub async fn nul_in_model_and_tool_output_is_stored_replaced(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("run cat").await;
    fx.store
        .append_parts(
            &lease,
            vec![NewPart {
                position: PartPosition { episode: 1, seq: 1 },
                payload: json!({"type": "text-delta", "delta": "a\u{0}b"}),
            }],
        )
        .await
        .expect("a live part with NUL is stored");
    let parts = fx.store.read_parts(chat.id, None).await.expect("parts");
    assert_eq!(parts[0].payload["delta"], "a\u{FFFD}b");
    let step = Step::new(
        Some(NewMessage::assistant(vec![
            Part::text("binary:\u{0}"),
            Part::tool_call("c\u{0}1", "execute", json!({"command": "cat x\u{0}", "k\u{0}": 1})),
        ])),
        vec![NewMessage::tool(Part::tool_result(
            "c\u{0}1",
            "execute",
            json!({"output": "\u{0}\u{0}ELF"}),
            false,
        ))],
    );
    let written = fx.store.commit_step(&lease, step).await.expect("the step is stored");
    let stored = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(&stored[1..], &written[..], "what was returned is what is stored");
    assert_eq!(stored[1].content[0], Part::text("binary:\u{FFFD}"));
    assert_eq!(
        stored[1].content[1],
        Part::tool_call(
            "c\u{FFFD}1",
            "execute",
            json!({"command": "cat x\u{FFFD}", "k\u{FFFD}": 1})
        )
    );
    assert_eq!(
        stored[2].content[0],
        Part::tool_result("c\u{FFFD}1", "execute", json!({"output": "\u{FFFD}\u{FFFD}ELF"}), false)
    );
}

/// A failure text holding U+0000 is released: the chat ends in `error` with the text
/// stored safely.
pub async fn a_failure_text_with_nul_is_released(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("go").await;
    let released = fx
        .store
        .release(&lease, TurnOutcome::Failed("tool output:\u{0}boom".into()))
        .await
        .expect("released");
    assert_eq!(released.status, crate::ChatStatus::Error);
    assert_eq!(released.last_error.as_deref(), Some("tool output:\u{FFFD}boom"));
    assert_eq!(fx.get(chat.id).await.last_error, released.last_error);
}

/// A stored tool result over the cap is cut, with a note saying how much there was.
pub async fn oversized_tool_results_are_cut_with_a_note(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let (chat, lease) = fx.running("big").await;
    let cap = crate::store::Limits::default().max_tool_result_bytes;
    let huge = "é".repeat(cap);
    let step = Step::new(
        Some(NewMessage::assistant(vec![Part::tool_call("c1", "read_file", json!({}))])),
        vec![NewMessage::tool(Part::tool_result("c1", "read_file", json!(huge), false))],
    );
    fx.store.commit_step(&lease, step).await.expect("stored");
    let stored = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    let Part::ToolResult { result, .. } = &stored[2].content[0] else { panic!("a result") };
    let text = result.as_str().expect("cut to a string");
    assert!(text.len() <= cap, "{} bytes kept", text.len());
    assert!(text.starts_with("ééé"));
    assert!(text.contains(&format!("the result was {} bytes", huge.len())), "the note says so");
}
