//! Usage and cost over HTTP (BEHAVIOUR §17): prices set by an administrator, the chat's
//! running totals, `GET /api/usage` for a user's own records and an administrator's view of
//! everyone's.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

mod support;
use support::*;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_totals_and_usage_reports() {
    let s = start(Duration::from_millis(1)).await;
    // Prices on a config: set, shown, refused when negative, removed with null.
    let config = json!({"provider": "openai-compat", "model": "priced", "context_limit": 1000,
        "prices": {"input": 1000000, "output": 2000000, "cache_read": 100000, "cache_write": 1250000}});
    let (status, created) = s.call(Method::POST, "/api/model-configs", ADMIN, Some(config)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["prices"]["output"], 2_000_000);
    let id = created["id"].as_str().expect("id").to_owned();
    let path = format!("/api/model-configs/{id}");
    let bad = json!({"prices": {"input": -1}});
    let (status, body) = s.call(Method::PATCH, &path, ADMIN, Some(bad)).await;
    assert_eq!((status, code(&body)), (400, "validation"), "{body}");
    let typo = json!({"prices": {"inptu": 1}});
    let (status, _) = s.call(Method::PATCH, &path, ADMIN, Some(typo)).await;
    assert_eq!(status, 400, "an unknown price is refused");
    let (status, cleared) =
        s.call(Method::PATCH, &path, ADMIN, Some(json!({"prices": null}))).await;
    assert_eq!((status, cleared.get("prices")), (200, None), "{cleared}");

    // A turn on the demo model (priced at 3 and 15 per million): the chat's totals and the
    // user's report agree.
    let (_, chat) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "hello"}))).await;
    let chat_id = chat["id"].as_str().expect("id").to_owned();
    let done = s.wait_status(&chat_id, USER, "waiting").await;
    let spent = &done["spent"];
    assert_eq!(spent["calls"], 1, "{done}");
    assert!(spent["cost_micros"].as_i64().is_some_and(|c| c > 0), "{done}");
    let (status, mine) = s.call(Method::GET, "/api/usage?group=day_and_model", USER, None).await;
    assert_eq!(status, 200, "{mine}");
    let buckets = mine["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 1, "{mine}");
    assert_eq!(buckets[0]["calls"], 1);
    assert_eq!(buckets[0]["cost_micros"], spent["cost_micros"]);
    assert!(buckets[0]["day"].is_string() && buckets[0]["model"].is_string(), "{mine}");
    let tree = format!("/api/usage?chat_id={chat_id}");
    let (_, by_tree) = s.call(Method::GET, &tree, USER, None).await;
    assert_eq!(by_tree["buckets"][0]["calls"], 1);
    let (_, none) = s.call(Method::GET, &tree, ADMIN, None).await;
    assert_eq!(none["buckets"][0]["calls"], 1, "an administrator sees anyone's");

    // Someone else's usage: refused to a user, shown to an administrator.
    let someone = format!("/api/usage?owner={}", uuid::Uuid::new_v4());
    let (status, body) = s.call(Method::GET, &someone, USER, None).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, everyone) = s.call(Method::GET, "/api/usage?group=owner", ADMIN, None).await;
    assert_eq!(status, 200);
    assert!(everyone["buckets"][0]["owner_id"].is_string(), "{everyone}");
    let later = "/api/usage?from=2999-01-01T00:00:00Z";
    let (_, empty) = s.call(Method::GET, later, USER, None).await;
    assert_eq!(empty["buckets"], json!([]));
    let (status, _) = s.call(Method::GET, "/api/usage?group=weekly", USER, None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_past_the_daily_limit_is_429_and_changes_nothing() {
    // Every user may spend 1 micro-unit a day: the first turn goes past it.
    let s = start_limited(Duration::from_millis(1), 1, Default::default(), Some(1)).await;
    let (status, chat) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "hello"}))).await;
    assert_eq!(status, 201, "{chat}");
    let id = chat["id"].as_str().expect("id").to_owned();
    let done = s.wait_status(&id, USER, "waiting").await;
    let spent = done["spent"]["cost_micros"].as_i64().expect("spent");
    assert!(spent > 1, "{done}");
    let path = format!("/api/chats/{id}/messages");
    let (status, body) = s.call(Method::POST, &path, USER, Some(json!({"content": "more"}))).await;
    assert_eq!((status, code(&body)), (429, "spend_limit"), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(message, format!("spend limit reached: owner per day, {spent} of 1"));
    let (_, listed) = s.call(Method::GET, &path, USER, None).await;
    assert_eq!(listed["messages"].as_array().map(Vec::len), Some(2), "nothing was sent");
    let (status, body) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "a new chat"}))).await;
    assert_eq!((status, code(&body)), (429, "spend_limit"), "nor a new chat: {body}");
    // Another user has spent nothing.
    let (status, _) =
        s.call(Method::POST, "/api/chats", ADMIN, Some(json!({"message": "hi"}))).await;
    assert_eq!(status, 201);
}
