use super::*;

#[test]
fn cursors_print_parse_and_order() {
    let cursor = Cursor::new(12, 16_777_217, 3);
    assert_eq!(cursor.to_string(), "12.16777217.3");
    assert_eq!("12.16777217.3".parse::<Cursor>(), Ok(cursor));
    assert!(Cursor::new(12, 1, 9) < Cursor::new(12, 2, 0));
    assert!(Cursor::new(11, 9, 9) < Cursor::new(12, 0, 0));
    for bad in ["", "1.2", "1.2.3.4.5", "1.2.3.", "a.b.c", "-1.0.0", "1..2"] {
        assert!(bad.parse::<Cursor>().is_err(), "{bad}");
    }
    assert_eq!(Cursor::START.message_id(), None);
    assert_eq!(Cursor::START.part(), None);
    let json = serde_json::to_string(&cursor).expect("json");
    assert_eq!(json, "\"12.16777217.3\"");
    assert_eq!(serde_json::from_str::<Cursor>(&json).expect("back"), cursor);
}

#[test]
fn edited_cursors_carry_their_history_version_and_order_after_older_ones() {
    let edited = Cursor { history: 2, ..Cursor::new(5, 0, 0) };
    assert_eq!(edited.to_string(), "5.0.0.2");
    assert_eq!("5.0.0.2".parse::<Cursor>(), Ok(edited));
    // A rewrite moves the message position back, yet the cursor still grows.
    assert!(Cursor::new(90, 0, 0) < edited);
}

#[test]
fn turn_boundaries_enclose_every_part_of_their_turn() {
    let (start, end) = (Cursor::turn_start(3), Cursor::turn_end(3));
    let first_part = (3 << 24) + 1;
    assert!(start < (first_part, 0) && (first_part, i64::MAX) < end);
    assert!(Cursor::turn_end(2) < start && end < Cursor::turn_start(4));
}

#[test]
fn every_event_names_itself_as_it_serializes() {
    use crate::ChatStatus;
    use crate::status::TurnEnding;
    use serde_json::json;
    let at = "2026-11-30T00:00:00Z";
    let chat = ChatId::new();
    let message: crate::Message = serde_json::from_value(json!({
        "id": 1, "chat_id": chat, "model_config_id": null, "created_at": at, "role": "user",
        "content": [], "visibility": "both", "usage": null, "context_limit": null,
        "compressed": false,
    }))
    .expect("a message");
    let whole_chat: crate::Chat = serde_json::from_value(json!({
        "id": chat, "owner_id": uuid::Uuid::nil(), "workspace_id": null,
        "workspace_agent_id": null, "title": "t", "status": "waiting", "worker_id": null,
        "started_at": null, "heartbeat_at": null, "created_at": at, "updated_at": at,
        "parent_chat_id": null, "root_chat_id": null, "last_model_config_id": uuid::Uuid::nil(),
        "archived": false, "last_error": null, "lease_epoch": 0, "stop_request": null,
        "last_turn": null, "turn_started_after": 0, "history_version": 0, "rewritten_after": 0,
    }))
    .expect("a chat");
    let diff: crate::diff_status::DiffStatus = serde_json::from_value(json!({
        "chat_id": chat, "url": null, "pull_request_state": null, "changes_requested": false,
        "additions": 0, "deletions": 0, "changed_files": 0, "refreshed_at": null,
        "stale_at": at, "created_at": at, "updated_at": at, "git_branch": "",
        "git_remote_origin": "",
    }))
    .expect("a diff status");
    let kinds = vec![
        ChatEventKind::Status { status: ChatStatus::Waiting, last_error: None },
        ChatEventKind::MessagePart { part: StreamEvent::TextStart { id: "t".into() } },
        ChatEventKind::Message { message },
        ChatEventKind::QueueUpdate { queue: Vec::new() },
        ChatEventKind::Error { message: "e".into() },
        ChatEventKind::Retry {
            attempt: 1,
            delay_ms: 1,
            error: "e".into(),
            retrying_at: chrono::Utc::now(),
        },
        ChatEventKind::PreviewReset,
        ChatEventKind::TurnStarted { turn: 1 },
        ChatEventKind::TurnEnded { turn: 1, ending: TurnEnding::Finished },
        ChatEventKind::HistoryRewritten { after_message_id: 0 },
    ];
    for kind in kinds {
        let event = ChatEvent { chat_id: chat, cursor: Cursor::START, kind };
        let value = serde_json::to_value(&event).expect("json");
        assert_eq!(value["type"], event.kind.name(), "{value}");
    }
    let owner = [
        OwnerEventKind::Created { chat: Box::new(whole_chat) },
        OwnerEventKind::StatusChange { status: ChatStatus::Running },
        OwnerEventKind::TitleChange { title: "t".into() },
        OwnerEventKind::Archived { archived: true },
        OwnerEventKind::Deleted,
        OwnerEventKind::DiffStatusChange { diff_status: Box::new(diff) },
        OwnerEventKind::Reset,
    ];
    for kind in owner {
        let value = serde_json::to_value(&kind).expect("json");
        assert_eq!(value["type"], kind.name(), "{value}");
    }
}
