//! Every REST route, its success and its error paths, through a real HTTP client.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, READER, USER, start, start_with};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_sessions_and_unknown_routes() {
    let s = start(Duration::from_millis(1)).await;
    let (status, me) = s.call(Method::GET, "/api/me", USER, None).await;
    assert_eq!((status, me["admin"].as_bool()), (200, Some(false)));
    let (status, body) = s.call(Method::GET, "/api/me", "wrong", None).await;
    assert_eq!((status, code(&body)), (401, "unauthenticated"));
    let anonymous = s.client.get(format!("{}/api/chats", s.url)).send().await.expect("sent");
    assert_eq!(anonymous.status(), 401);
    // A session cookie stands for the token (what the browser's EventSource uses).
    let login = s.request(Method::POST, "/api/session", USER).send().await.expect("sent");
    assert_eq!(login.status(), 204);
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let by_cookie = s
        .client
        .get(format!("{}/api/me", s.url))
        .header("cookie", &pair)
        .send()
        .await
        .expect("sent");
    assert_eq!(by_cookie.status(), 200);
    let logout = s.client.delete(format!("{}/api/session", s.url)).send().await.expect("sent");
    assert!(logout.headers()["set-cookie"].to_str().expect("cookie").contains("Max-Age=0"));
    let (status, body) = s.call(Method::GET, "/api/nowhere", USER, None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    // A method a route does not take is answered in the error shape, naming what it takes.
    let (status, body) = s.call(Method::PUT, "/api/me", USER, None).await;
    assert_eq!((status, code(&body)), (405, "method_not_allowed"), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("PUT")), "{body}");
    // The same inside one chat's nested routes.
    let chat = format!("/api/chats/{}", uuid::Uuid::new_v4());
    let (status, body) = s.call(Method::GET, &format!("{chat}/nowhere"), USER, None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = s.call(Method::PUT, &format!("{chat}/interrupt"), USER, None).await;
    assert_eq!((status, code(&body)), (405, "method_not_allowed"), "{body}");
    // The scheme of an Authorization header is case-insensitive (RFC 9110 §11.1).
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = s
            .client
            .get(format!("{}/api/me", s.url))
            .header("authorization", format!("{scheme} {USER}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "scheme {scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_are_created_listed_paged_renamed_archived_and_deleted() {
    let s = start(Duration::from_millis(1)).await;
    let (status, a) = s.call(Method::POST, "/api/chats", USER, Some(json!({"title": "a"}))).await;
    assert_eq!((status, &a["title"]), (201, &json!("a")));
    let (_, b) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "hi there"}))).await;
    assert_eq!(b["title"], "hi there", "the first message names the chat");
    let (id_a, id_b) = (a["id"].as_str().expect("a"), b["id"].as_str().expect("b"));
    // Bad input.
    let (status, body) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"titel": "x"}))).await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    let raw = s
        .request(Method::POST, "/api/chats", USER)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await;
    assert_eq!(raw.expect("sent").status(), 400);
    let plain = s.request(Method::POST, "/api/chats", USER).body("{}").send().await.expect("sent");
    assert_eq!(plain.status(), 415);
    let huge = json!({"message": "x".repeat(chatd_server::MAX_BODY_BYTES + 1)});
    let (status, body) = s.call(Method::POST, "/api/chats", USER, Some(huge)).await;
    assert_eq!((status, code(&body)), (413, "too_large"));
    let (status, body) = s.call(Method::POST, "/api/chats", READER, Some(json!({}))).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    // Paging, newest first.
    let (status, page) = s.call(Method::GET, "/api/chats?limit=1", USER, None).await;
    assert_eq!((status, &page["chats"][0]["id"]), (200, &b["id"]));
    let next = page["next"].as_str().expect("a next page");
    let (_, page) =
        s.call(Method::GET, &format!("/api/chats?limit=1&after={next}"), USER, None).await;
    assert_eq!((&page["chats"][0]["id"], &page["next"]), (&a["id"], &Value::Null));
    for bad in [
        "/api/chats?limit=0",
        "/api/chats?limit=5000",
        "/api/chats?status=sleepy",
        "/api/chats?after=x_y",
        "/api/chats?limit=abc",
    ] {
        let (status, body) = s.call(Method::GET, bad, USER, None).await;
        assert_eq!((status, code(&body)), (400, "invalid_request"), "{bad}: {body}");
    }
    let (_, filtered) = s.call(Method::GET, "/api/chats?status=completed,paused", USER, None).await;
    assert_eq!(filtered["chats"], json!([]), "{filtered}");
    let (_, filtered) =
        s.call(Method::GET, "/api/chats?status=waiting,pending,running", USER, None).await;
    assert_eq!(filtered["chats"].as_array().map(Vec::len), Some(2), "{filtered}");
    // Get: someone else's chat does not exist for you; neither does a malformed id.
    let (status, _) = s.call(Method::GET, &format!("/api/chats/{id_a}"), USER, None).await;
    assert_eq!(status, 200);
    for (path, token) in
        [(format!("/api/chats/{id_a}"), ADMIN), ("/api/chats/not-a-uuid".to_owned(), USER)]
    {
        let (status, body) = s.call(Method::GET, &path, token, None).await;
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (404, Some("Chat not found.")),
            "{path}"
        );
    }
    // A malformed message or queued-message id is a record that does not exist, too.
    for (method, path, message) in [
        (Method::PATCH, format!("/api/chats/{id_a}/messages/x"), "Chat message not found."),
        (Method::DELETE, format!("/api/chats/{id_a}/queue/x"), "Queued message not found."),
        (Method::POST, format!("/api/chats/{id_a}/queue/1.5/promote"), "Queued message not found."),
    ] {
        let (status, body) = s.call(method, &path, USER, Some(json!({"content": "x"}))).await;
        assert_eq!((status, body["error"]["message"].as_str()), (404, Some(message)), "{path}");
    }
    // Rename and archive.
    let (status, renamed) = s
        .call(Method::PATCH, &format!("/api/chats/{id_a}"), USER, Some(json!({"title": "A"})))
        .await;
    assert_eq!((status, &renamed["title"]), (200, &json!("A")));
    let (status, body) = s
        .call(Method::PATCH, &format!("/api/chats/{id_a}"), USER, Some(json!({"title": "  "})))
        .await;
    assert_eq!((status, body["error"]["message"].as_str()), (400, Some("Title is required.")));
    let (status, _) =
        s.call(Method::PATCH, &format!("/api/chats/{id_a}"), USER, Some(json!({}))).await;
    assert_eq!(status, 400);
    let (status, body) = s
        .call(Method::PATCH, &format!("/api/chats/{id_a}"), READER, Some(json!({"title": "R"})))
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "the scope is checked first: {body}");
    let (status, archived) = s
        .call(Method::PATCH, &format!("/api/chats/{id_a}"), USER, Some(json!({"archived": true})))
        .await;
    assert_eq!((status, &archived["archived"]), (200, &json!(true)));
    let (_, listed) = s.call(Method::GET, "/api/chats?archived=true", USER, None).await;
    assert_eq!(listed["chats"][0]["id"], a["id"]);
    // Delete.
    let (status, _) = s.call(Method::DELETE, &format!("/api/chats/{id_a}"), ADMIN, None).await;
    assert_eq!(status, 404, "not the admin's chat");
    let (status, _) = s.call(Method::DELETE, &format!("/api/chats/{id_a}"), USER, None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call(Method::GET, &format!("/api/chats/{id_a}"), USER, None).await;
    assert_eq!(status, 404);
    s.wait_status(id_b, USER, "waiting").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queue_edits_and_lifecycle_actions() {
    let s = start(Duration::from_millis(25)).await;
    let (_, chat) = s
        .call(Method::POST, "/api/chats", USER, Some(json!({"message": "tell me a slow story"})))
        .await;
    let id = chat["id"].as_str().expect("id").to_owned();
    let path = |rest: &str| format!("/api/chats/{id}{rest}");
    s.wait_status(&id, USER, "running").await;
    // While the story runs, messages queue — up to 20, then 429 with the SPEC's text.
    for n in 0..20 {
        let (status, sent) = s
            .call(Method::POST, &path("/messages"), USER, Some(json!({"content": format!("q{n}")})))
            .await;
        assert_eq!((status, &sent["delivery"]), (202, &json!("queued")), "{sent}");
    }
    let (status, body) = s
        .call(Method::POST, &path("/messages"), USER, Some(json!({"content": "one too many"})))
        .await;
    assert_eq!((status, code(&body)), (429, "queue_full"));
    assert_eq!(
        body["error"]["message"],
        "Message queue is full. Maximum 20 messages can be queued."
    );
    let (status, queue) = s.call(Method::GET, &path("/queue"), USER, None).await;
    assert_eq!((status, queue.as_array().map(Vec::len)), (200, Some(20)));
    let first = queue[0]["id"].as_i64().expect("queued id");
    let (status, rest) =
        s.call(Method::DELETE, &path(&format!("/queue/{first}")), USER, None).await;
    assert_eq!((status, rest.as_array().map(Vec::len)), (200, Some(19)));
    let (status, _) = s.call(Method::DELETE, &path(&format!("/queue/{first}")), USER, None).await;
    assert_eq!(status, 404, "already gone");
    let (status, _) = s.call(Method::DELETE, &path("/queue/abc"), USER, None).await;
    assert_eq!(status, 404);
    for queued in &queue.as_array().expect("queue")[1..] {
        let qid = queued["id"].as_i64().expect("id");
        s.call(Method::DELETE, &path(&format!("/queue/{qid}")), USER, None).await;
    }
    let (_, sent) = s
        .call(Method::POST, &path("/messages"), USER, Some(json!({"content": "promote me"})))
        .await;
    let qid = sent["queued"]["id"].as_i64().expect("queued");
    let (status, promoted) =
        s.call(Method::POST, &path(&format!("/queue/{qid}/promote")), USER, None).await;
    assert_eq!(status, 200, "{promoted}");
    s.wait_status(&id, USER, "waiting").await;
    let (status, listed) = s.call(Method::GET, &path("/messages"), USER, None).await;
    let messages = listed["messages"].as_array().expect("messages").clone();
    assert_eq!(status, 200);
    assert!(messages.iter().any(|m| m["content"][0]["text"] == "promote me"), "{listed}");
    let (status, _) = s.call(Method::GET, &path("/messages"), ADMIN, None).await;
    assert_eq!(status, 404, "someone else's messages");
    let last = messages.last().expect("one")["id"].as_i64().expect("id");
    let (_, after) =
        s.call(Method::GET, &path(&format!("/messages?after={last}")), USER, None).await;
    assert_eq!(after["messages"], json!([]));
    // Sending to an idle chat inserts; parts are accepted as well as text.
    let parts = json!({"content": [{"type": "text", "text": "hello"}], "busy": "interrupt", "client_id": "my-7"});
    let (status, sent) = s.call(Method::POST, &path("/messages"), USER, Some(parts)).await;
    assert_eq!((status, &sent["delivery"]), (201, &json!("inserted")), "{sent}");
    assert_eq!(sent["message"]["client_id"], "my-7", "the client's id is kept");
    let bad = json!({"content": "x", "client_id": "a\nb"});
    let (status, body) = s.call(Method::POST, &path("/messages"), USER, Some(bad)).await;
    assert_eq!((status, code(&body)), (400, "validation"), "{body}");
    let (status, body) =
        s.call(Method::POST, &path("/messages"), USER, Some(json!({"content": []}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        s.call(Method::POST, &path("/messages"), READER, Some(json!({"content": "x"}))).await;
    assert_eq!(status, 403, "no chat:update");
    s.wait_status(&id, USER, "waiting").await;
    // Edit: a user message re-runs; an assistant message or an unknown id cannot be edited.
    let user_id = messages[0]["id"].as_i64().expect("id");
    let (status, edited) = s
        .call(
            Method::PATCH,
            &path(&format!("/messages/{user_id}")),
            USER,
            Some(json!({"content": "hi again"})),
        )
        .await;
    assert_eq!(
        (status, edited["deleted_messages"].as_i64().map(|n| n > 0)),
        (200, Some(true)),
        "{edited}"
    );
    s.wait_status(&id, USER, "waiting").await;
    let (_, listed) = s.call(Method::GET, &path("/messages"), USER, None).await;
    let assistant = listed["messages"]
        .as_array()
        .expect("m")
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("answer")["id"]
        .as_i64()
        .expect("id");
    let (status, body) = s
        .call(
            Method::PATCH,
            &path(&format!("/messages/{assistant}")),
            USER,
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("Only user messages can be edited.")),
        "{body}"
    );
    let (status, body) =
        s.call(Method::PATCH, &path("/messages/99999"), USER, Some(json!({"content": "x"}))).await;
    assert_eq!((status, body["error"]["message"].as_str()), (404, Some("Chat message not found.")));
    // Lifecycle: pause, resume (twice is a conflict), complete, interrupt of an idle chat.
    let (status, paused) = s.call(Method::POST, &path("/pause"), USER, None).await;
    assert_eq!((status, &paused["status"]), (200, &json!("paused")));
    let (status, _) = s.call(Method::POST, &path("/resume"), USER, None).await;
    assert_eq!(status, 200);
    let (status, body) = s.call(Method::POST, &path("/resume"), USER, None).await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");
    let (status, done) = s.call(Method::POST, &path("/complete"), USER, None).await;
    assert_eq!((status, &done["status"]), (200, &json!("completed")));
    let (status, _) = s.call(Method::POST, &path("/interrupt"), USER, None).await;
    assert_eq!(status, 200);
    let (status, _) = s.call(Method::POST, &path("/pause"), READER, None).await;
    assert_eq!(status, 403);
    let (status, _) = s.call(Method::GET, &path(""), READER, None).await;
    assert_eq!(status, 404, "a reader's scope reaches only their own chats");
    // Manual compaction summarises the idle chat with its model.
    let (status, body) = s.call(Method::POST, &path("/compact"), USER, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_array().is_some_and(|rows| !rows.is_empty()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_status_and_the_admin_configuration() {
    let s = start(Duration::from_millis(1)).await;
    let (_, chat) = s.call(Method::POST, "/api/chats", USER, Some(json!({}))).await;
    let id = chat["id"].as_str().expect("id");
    let (status, diff) = s.call(Method::GET, &format!("/api/chats/{id}/diff"), USER, None).await;
    assert_eq!((status, diff), (200, Value::Null));
    let reference = json!({"remote": "https://github.com/o/r", "branch": "main"});
    let (status, diff) =
        s.call(Method::POST, &format!("/api/chats/{id}/diff"), USER, Some(reference)).await;
    assert_eq!((status, &diff["git_branch"]), (200, &json!("main")), "{diff}");
    let (_, diff) = s.call(Method::GET, &format!("/api/chats/{id}/diff"), USER, None).await;
    assert_eq!(diff["git_remote_origin"], "https://github.com/o/r");
    let (status, _) = s.call(Method::GET, &format!("/api/chats/{id}/diff"), ADMIN, None).await;
    assert_eq!(status, 404);
    // Providers: admin only; keys never come back.
    let (status, body) = s.call(Method::GET, "/api/providers", USER, None).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let new = json!({"provider": "anthropic", "api_key": "sk-ant-secret-value"});
    let (status, created) = s.call(Method::POST, "/api/providers", ADMIN, Some(new.clone())).await;
    assert_eq!((status, &created["has_api_key"]), (201, &json!(true)), "{created}");
    assert!(!created.to_string().contains("sk-ant-secret-value"));
    let (status, body) = s.call(Method::POST, "/api/providers", ADMIN, Some(new)).await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    let (status, body) =
        s.call(Method::POST, "/api/providers", ADMIN, Some(json!({"provider": "acme"}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, listed) = s.call(Method::GET, "/api/providers", ADMIN, None).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains("sk-ant-secret-value"), "{listed}");
    let (status, updated) = s
        .call(Method::PATCH, "/api/providers/anthropic", ADMIN, Some(json!({"enabled": false})))
        .await;
    assert_eq!((status, &updated["enabled"]), (200, &json!(false)));
    let (status, _) =
        s.call(Method::PATCH, "/api/providers/acme", ADMIN, Some(json!({"enabled": false}))).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(Method::PATCH, "/api/providers/anthropic", USER, Some(json!({"enabled": true})))
        .await;
    assert_eq!(status, 403);
    // Model configs.
    let config = json!({"provider": "anthropic", "model": "claude-test", "context_limit": 200000, "options": {"temperature": 0.2}});
    let (status, created) = s.call(Method::POST, "/api/model-configs", ADMIN, Some(config)).await;
    assert_eq!((status, &created["model"]), (201, &json!("claude-test")), "{created}");
    let config_id = created["id"].as_str().expect("id");
    let bad = json!({"provider": "anthropic", "model": "m", "context_limit": 1, "options": {"tempreature": 1}});
    let (status, body) = s.call(Method::POST, "/api/model-configs", ADMIN, Some(bad)).await;
    assert_eq!(status, 400, "unknown option keys are refused on write: {body}");
    let (status, _) = s
        .call(
            Method::POST,
            "/api/model-configs",
            USER,
            Some(json!({"provider": "anthropic", "model": "m", "context_limit": 1})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, updated) = s
        .call(
            Method::PATCH,
            &format!("/api/model-configs/{config_id}"),
            ADMIN,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((status, &updated["enabled"]), (200, &json!(false)));
    let (_, seen) = s.call(Method::GET, "/api/model-configs", USER, None).await;
    assert!(!seen.to_string().contains("claude-test"), "users see enabled configs only");
    let (_, seen) = s.call(Method::GET, "/api/model-configs", ADMIN, None).await;
    assert!(seen.to_string().contains("claude-test"));
    let (status, _) =
        s.call(Method::DELETE, &format!("/api/model-configs/{config_id}"), ADMIN, None).await;
    assert_eq!(status, 204);
    let (status, _) =
        s.call(Method::PATCH, "/api/model-configs/not-an-id", ADMIN, Some(json!({}))).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(Method::DELETE, "/api/providers/anthropic", ADMIN, None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call(Method::DELETE, "/api/providers/anthropic", ADMIN, None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(Method::POST, "/api/admin/cut-streams", USER, None).await;
    assert_eq!(status, 403);
    let (status, _) = s.call(Method::POST, "/api/admin/cut-streams", ADMIN, None).await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_routes_refuse_what_they_cannot_do() {
    let s = start(Duration::from_millis(30)).await;
    let (_, chat) = s.call(Method::POST, "/api/chats", USER, Some(json!({}))).await;
    let id = chat["id"].as_str().expect("id");
    let (status, _) = s.call(Method::GET, &format!("/ai/chat/{id}/stream"), USER, None).await;
    assert_eq!(status, 204, "nothing to resume");
    let message = |text: &str| json!({"id": id, "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": text}]}], "trigger": "submit-message"});
    let (status, _) = s.call(Method::POST, "/ai/chat", ADMIN, Some(message("hi"))).await;
    assert_eq!(status, 404, "someone else's chat");
    let (status, _) =
        s.call(Method::POST, "/ai/chat", USER, Some(json!({"id": "nope", "messages": []}))).await;
    assert_eq!(status, 404);
    let (status, _) =
        s.call(Method::POST, "/ai/chat", USER, Some(json!({"id": id, "messages": []}))).await;
    assert_eq!(status, 400, "no user message");
    let (status, _) = s
        .call(
            Method::POST,
            "/ai/chat",
            USER,
            Some(json!({"id": id, "messages": [], "trigger": "dance"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) =
        s.call(Method::POST, "/api/chats/x/messages", "nobody", Some(message("x"))).await;
    assert_eq!(status, 401);
    let with_parts =
        |parts: Value| json!({"id": id, "messages": [{"id": "f", "role": "user", "parts": parts}]});
    for (parts, why) in [
        (
            json!([{"type": "file", "mediaType": "image/png", "url": "https://example.com/cat.png"}]),
            "a file by link",
        ),
        (
            json!([{"type": "file", "mediaType": "image/png", "url": "data:image/png;base64,@@"}]),
            "bad base64",
        ),
        (json!([{"type": "step-start"}]), "nothing to send"),
    ] {
        let (status, body) = s.call(Method::POST, "/ai/chat", USER, Some(with_parts(parts))).await;
        assert_eq!((status, code(&body)), (400, "invalid_request"), "{why}: {body}");
    }
    let edit = json!({"id": id, "messageId": "nope", "messages": [{"id": "nope", "role": "user", "parts": [{"type": "text", "text": "x"}]}]});
    let (status, body) = s.call(Method::POST, "/ai/chat", USER, Some(edit)).await;
    assert_eq!(status, 400, "an edit of a message chatd does not know: {body}");
    let answers = json!({"id": id, "messages": [{"id": "a", "role": "assistant", "parts": []}]});
    let (status, body) = s.call(Method::POST, "/ai/chat", USER, Some(answers)).await;
    assert_eq!(
        (status, code(&body)),
        (409, "no_open_calls"),
        "tool answers to a chat that waits for none"
    );
    let (_, listed) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    assert_eq!(listed["messages"], json!([]), "nothing refused was sent");
    // A running turn: resumable; a second message interrupts it and is answered next.
    let streaming = s
        .request(Method::POST, "/ai/chat", USER)
        .json(&message("tell me a slow story"))
        .send()
        .await
        .expect("sent");
    assert_eq!(streaming.headers()["x-vercel-ai-ui-message-stream"], "v1");
    s.wait_status(id, USER, "running").await;
    let resumed =
        s.request(Method::GET, &format!("/ai/chat/{id}/stream"), USER).send().await.expect("sent");
    assert_eq!(resumed.status(), 200);
    let again = json!({"id": id, "messages": [{"id": "u2", "role": "user", "parts": [{"type": "text", "text": "again"}]}]});
    let second = s.request(Method::POST, "/ai/chat", USER).json(&again).send().await.expect("sent");
    assert_eq!(second.status(), 200);
    let first = chunks(&streaming.text().await.expect("the first turn"));
    assert_eq!(first.last().map(|c| c["type"].clone()), Some(json!("abort")), "{first:?}");
    let replayed = chunks(&resumed.text().await.expect("the resumed turn"));
    assert_eq!(replayed.first().map(|c| c["type"].clone()), Some(json!("start")));
    assert_eq!(replayed.last().map(|c| c["type"].clone()), Some(json!("abort")));
    let answer = chunks(&second.text().await.expect("the second turn"));
    assert_eq!(answer.last().map(|c| c["type"].clone()), Some(json!("finish")), "{answer:?}");
    assert!(said(&answer).starts_with("You said: “again”"), "only its own answer: {answer:?}");
    let (_, listed) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    let rows: Vec<(&str, Option<&str>)> = listed["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["role"].as_str().unwrap_or(""), m["client_id"].as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![("user", Some("u")), ("assistant", None), ("user", Some("u2")), ("assistant", None)],
        "the interrupted answer is kept; both messages keep the client's ids"
    );
}

/// The chunks of a UI message stream response (without `[DONE]`, which it must end with).
fn chunks(text: &str) -> Vec<Value> {
    assert!(text.trim_end().ends_with("data: [DONE]"), "ends with [DONE]: {text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("a chunk"))
        .collect()
}

/// What the text deltas say.
fn said(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .filter_map(|c| c["delta"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_regenerate_re_runs_the_last_user_message() {
    let s = start(Duration::from_millis(1)).await;
    let (_, chat) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"message": "hello there"}))).await;
    let id = chat["id"].as_str().expect("id");
    s.wait_status(id, USER, "waiting").await;
    let body =
        json!({"id": id, "messages": [], "trigger": "regenerate-message", "messageId": "m1"});
    let response =
        s.request(Method::POST, "/ai/chat", USER).json(&body).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let chunks = chunks(&response.text().await.expect("the turn"));
    let kinds: Vec<&str> = chunks.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"finish"), "{kinds:?}");
    let said = said(&chunks);
    assert!(said.starts_with("You said: “hello there”"), "{said:?} from {kinds:?}");
    let (_, after) = s.call(Method::GET, &format!("/api/chats/{id}"), USER, None).await;
    assert_eq!(after["history_version"], 1, "the re-run rewrote the history once");
    let (_, listed) = s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
    let roles: Vec<&str> = listed["messages"]
        .as_array()
        .expect("m")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, vec!["user", "assistant"], "one question, one (new) answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ai_sdk_client_that_leaves_a_quiet_turn_releases_its_subscription() {
    // No worker: the turn never starts, so the stream carries no event at all.
    let s = start_with(Duration::from_millis(1), 0).await;
    let (_, chat) = s.call(Method::POST, "/api/chats", USER, Some(json!({}))).await;
    let id = chat["id"].as_str().expect("id");
    let message = json!({"id": id, "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]});
    let response =
        s.request(Method::POST, "/ai/chat", USER).json(&message).send().await.expect("sent");
    assert_eq!(response.status(), 200);
    let streams = s.state.chatd.streams();
    assert_eq!(streams.followed_chats(), 1, "the turn is followed");
    drop(response);
    let mut waited = 0;
    while streams.followed_chats() > 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(streams.followed_chats(), 0, "the subscription ends with the client");
}

/// Two AI SDK sends to one idle chat at once are both kept and answered in order (busy
/// behaviour `interrupt`: nothing is refused, nothing is left in the queue), and a request
/// sent again (a client retrying a response it lost) is stored once: the latest message's
/// retry follows its answer, an earlier one's is refused (409). (Before `interrupt`, the
/// refused one of a race could stay queued and be answered though the client had been told
/// no.) No worker runs, so the turn stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_ai_sdk_sends_are_both_kept_and_a_retry_is_stored_once() {
    let s = start_with(Duration::from_millis(30), 0).await;
    for round in 0..25 {
        let (_, chat) = s.call(Method::POST, "/api/chats", USER, Some(json!({}))).await;
        let id = chat["id"].as_str().expect("id").to_owned();
        let body = |ui: &str| json!({"id": id, "messages": [{"id": ui, "role": "user", "parts": [{"type": "text", "text": ui}]}], "trigger": "submit-message"});
        let send = |ui: &str| s.request(Method::POST, "/ai/chat", USER).json(&body(ui)).send();
        let (a, b) = tokio::join!(send("a"), send("b"));
        let statuses = [a, b].map(|r| r.expect("sent").status().as_u16());
        assert_eq!(statuses, [200, 200], "round {round}");
        let (status, queue) =
            s.call(Method::GET, &format!("/api/chats/{id}/queue"), USER, None).await;
        assert_eq!(
            (status, queue.as_array().map(Vec::len)),
            (200, Some(0)),
            "round {round}: {queue}"
        );
        let (_, listed) =
            s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
        let users = |listed: &Value| -> Vec<String> {
            let messages = listed["messages"].as_array().expect("messages").iter();
            let users = messages.filter(|m| m["role"] == "user");
            users.filter_map(|m| m["client_id"].as_str().map(str::to_owned)).collect()
        };
        let order = users(&listed);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec!["a", "b"], "round {round}: {listed}");
        // A retry of the latest message follows its answer; of an earlier one, 409.
        let retry = send(&order[1]).await.expect("retry");
        assert_eq!(retry.status(), 200, "round {round}");
        drop(retry);
        let retry = send(&order[0]).await.expect("retry");
        assert_eq!(retry.status(), 409, "round {round}");
        let (_, listed) =
            s.call(Method::GET, &format!("/api/chats/{id}/messages"), USER, None).await;
        assert_eq!(users(&listed), order, "round {round}: stored once");
    }
}
