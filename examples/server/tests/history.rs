//! History you keep over HTTP (BEHAVIOUR §18): an edit's earlier revision read back, a fork,
//! labels and search — each owner-scoped, each bad input refused in the error shape.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, USER, start};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn ids(body: &Value) -> Vec<String> {
    body["chats"]
        .as_array()
        .map(|chats| chats.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_keep_their_past_and_chats_fork_label_and_search() {
    let s = start(Duration::from_millis(1)).await;
    let (_, chat) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "hello"}))).await;
    let id = chat["id"].as_str().expect("id").to_owned();
    s.wait_status(&id, USER, "waiting").await;
    let (_, listed) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    let messages = listed["messages"].as_array().expect("messages").clone();
    let (first, answer) = (messages[0]["id"].as_i64().expect("id"), messages[1]["id"].clone());

    // An edit keeps the past: read with include_deleted, each kept row says its revision.
    let edit = json!({"content": "hello again"});
    let (status, _) =
        s.call(Method::PATCH, &format!("/api/chats/{id}/messages/{first}"), USER, Some(edit)).await;
    assert_eq!(status, 200);
    s.wait_status(&id, USER, "waiting").await;
    let path = format!("/api/chats/{id}/messages?include_deleted=true");
    let (status, all) = s.call(Method::GET, &path, USER, None).await;
    assert_eq!(status, 200, "{all}");
    let kept: Vec<&Value> = all["messages"]
        .as_array()
        .expect("all")
        .iter()
        .filter(|m| m["deleted"].is_object())
        .collect();
    assert_eq!(kept.len(), 2, "the first text and its answer: {all}");
    assert_eq!(kept[0]["content"][0]["text"], "hello");
    assert_eq!(kept[0]["deleted"]["revision"], 0);
    let (_, plain) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    assert!(plain["messages"].as_array().expect("plain").iter().all(|m| m["deleted"].is_null()));

    // A fork at the new answer; another user's fork of it is not found, nor is a fork at a
    // message the edit took out.
    let (_, listed) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    let new_answer = listed["messages"][1]["id"].clone();
    let fork_path = format!("/api/chats/{id}/fork");
    let (status, fork) =
        s.call(Method::POST, &fork_path, USER, Some(json!({"message_id": new_answer}))).await;
    assert_eq!(status, 201, "{fork}");
    assert_eq!(fork["forked_from"]["chat_id"], id.as_str());
    assert_eq!(fork["status"], "waiting");
    let fork_id = fork["id"].as_str().expect("fork id").to_owned();
    let (status, body) =
        s.call(Method::POST, &fork_path, ADMIN, Some(json!({"message_id": new_answer}))).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "another user's chat");
    let (status, body) =
        s.call(Method::POST, &fork_path, USER, Some(json!({"message_id": answer}))).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "a message the edit took out");
    let (status, _) = s.call(Method::POST, &fork_path, USER, Some(json!({"message": 1}))).await;
    assert_eq!(status, 400, "an unknown field");

    // Labels, and the list filtered by them and searched.
    let labels = json!({"labels": {"topic": "greetings", "team/area": "demo"}});
    let (status, labelled) =
        s.call(Method::PATCH, &format!("/api/chats/{fork_id}"), USER, Some(labels)).await;
    assert_eq!((status, &labelled["labels"]["topic"]), (200, &json!("greetings")));
    let bad = json!({"labels": {"bad key": "x"}});
    let (status, body) =
        s.call(Method::PATCH, &format!("/api/chats/{fork_id}"), USER, Some(bad)).await;
    assert_eq!((status, code(&body)), (400, "validation"), "{body}");
    let (_, found) = s.call(Method::GET, "/api/chats?labels=topic:greetings", USER, None).await;
    assert_eq!(ids(&found), std::slice::from_ref(&fork_id));
    let (_, found) =
        s.call(Method::GET, "/api/chats?labels=topic:greetings,team/area:other", USER, None).await;
    assert!(ids(&found).is_empty(), "every label must match");
    let (status, body) = s.call(Method::GET, "/api/chats?labels=nocolon", USER, None).await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    let (_, found) = s.call(Method::GET, "/api/chats?q=fork", USER, None).await;
    assert_eq!(ids(&found), std::slice::from_ref(&fork_id), "by the fork's title");
    let (_, found) = s.call(Method::GET, "/api/chats?q=again", USER, None).await;
    let mut both = ids(&found);
    both.sort();
    let mut expected = vec![id.clone(), fork_id.clone()];
    expected.sort();
    assert_eq!(both, expected, "by message text, in both");
    let (_, found) = s.call(Method::GET, "/api/chats?q=again", ADMIN, None).await;
    assert!(ids(&found).is_empty(), "another user's chats never match");
}
