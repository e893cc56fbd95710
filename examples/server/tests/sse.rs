//! Server-Sent Events through a real SSE parser (`sse-stream`): framing that holds for
//! hostile text, and a turn followed across a connection the server drops mid-turn, resumed
//! with `Last-Event-ID` — every part exactly once.

mod support;

use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use sse_stream::{Sse, SseByteStream};
use support::{ADMIN, READER, USER, start};

/// One parsed event: id, type, JSON data.
type Frame = (String, String, Value);

async fn open(
    server: &support::Server,
    path: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> futures::stream::BoxStream<'static, Frame> {
    let mut request = server.request(Method::GET, path, token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("stream");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    SseByteStream::new(response.bytes_stream())
        .filter_map(|item| async move {
            let sse: Sse = item.expect("well-formed SSE");
            let data = sse.data?;
            let value: Value = serde_json::from_str(&data).expect("one line of JSON");
            Some((sse.id.expect("every event has an id"), sse.event.expect("a type"), value))
        })
        .boxed()
}

async fn next(stream: &mut (impl Stream<Item = Frame> + Unpin)) -> Option<Frame> {
    tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("an event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_round_trips_through_the_framing() {
    let server = start(Duration::from_millis(1)).await;
    let hostile = "line one\r\nline two\rthree\n\nevent: forged\nid: 999\ndata: {\"type\":\"status\"}\n\n: comment\u{2028}end";
    let (status, chat) =
        server.call(Method::POST, "/api/chats", USER, Some(json!({"message": hostile}))).await;
    assert_eq!(status, 201, "{chat}");
    let id = chat["id"].as_str().expect("id").to_owned();
    let (status, refused) =
        server.call(Method::POST, "/api/chats", USER, Some(json!({"message": "a\u{0}b"}))).await;
    assert_eq!((status, &refused["error"]["code"]), (400, &json!("validation")), "{refused}");
    server.wait_status(&id, USER, "waiting").await;
    let mut stream = open(&server, &format!("/api/chats/{id}/stream"), USER, None).await;
    let mut seen = Vec::new();
    while let Some((cursor, kind, data)) = next(&mut stream).await {
        assert_eq!(data["type"], kind, "the event name is the data's type");
        assert_eq!(data["cursor"], cursor, "the id is the cursor");
        seen.push((kind.clone(), data.clone()));
        if kind == "turn_ended" {
            break;
        }
    }
    let user: Vec<&Value> = seen
        .iter()
        .filter(|(k, d)| k == "message" && d["message"]["role"] == "user")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(user.len(), 1, "{seen:?}");
    assert_eq!(
        user[0]["message"]["content"][0]["text"], hostile,
        "the text survives byte for byte"
    );
    let answer: Vec<&Value> = seen
        .iter()
        .filter(|(k, d)| k == "message" && d["message"]["role"] == "assistant")
        .map(|(_, d)| d)
        .collect();
    let said = answer[0]["message"]["content"][1]["text"].as_str().expect("answer");
    assert!(said.contains("You said: “line one\r\nline two"), "{said}");
    assert!(!seen.iter().any(|(k, _)| k == "forged"), "no forged event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_resumed_after_the_server_drops_the_stream_has_every_part_once() {
    let server = start(Duration::from_millis(8)).await;
    let (_, chat) = server
        .call(Method::POST, "/api/chats", USER, Some(json!({"message": "tell me a slow story"})))
        .await;
    let id = chat["id"].as_str().expect("id").to_owned();
    let path = format!("/api/chats/{id}/stream");
    let mut frames: Vec<Frame> = Vec::new();
    let mut stream = open(&server, &path, USER, None).await;
    let mut deltas = 0;
    while deltas < 10 {
        let frame = next(&mut stream).await.expect("the turn is running");
        if frame.2["part"]["type"] == "text-delta" {
            deltas += 1;
        }
        frames.push(frame);
    }
    // The server drops every stream; this one ends.
    let (status, _) = server.call(Method::POST, "/api/admin/cut-streams", ADMIN, None).await;
    assert_eq!(status, 204);
    let mut after_cut = 0;
    while let Some(frame) = next(&mut stream).await {
        after_cut += 1;
        frames.push(frame);
    }
    let last_id = frames.last().expect("events").0.clone();
    println!(
        "dropped after {} events (+{after_cut} in flight); resuming from {last_id}",
        frames.len()
    );
    let mut resumed = open(&server, &path, USER, Some(&last_id)).await;
    let first = next(&mut resumed).await.expect("status first");
    assert_eq!(first.1, "status");
    while let Some(frame) = next(&mut resumed).await {
        let end = frame.1 == "turn_ended";
        frames.push(frame);
        if end {
            break;
        }
    }
    // Every event that moves the cursor comes once, in order; parts of an episode without gaps.
    let advancing = ["message", "message_part", "turn_started", "turn_ended"];
    let positions: Vec<(i64, i64, i64)> = frames
        .iter()
        .filter(|f| advancing.contains(&f.1.as_str()))
        .map(|f| {
            let n: Vec<i64> = f.0.split('.').map(|x| x.parse().expect("number")).collect();
            (n[0], n[1], n[2])
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {positions:?}");
    for pair in positions.windows(2) {
        if pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1 && pair[1].2 != 0 {
            assert_eq!(pair[1].2, pair[0].2 + 1, "no part missing: {pair:?}");
        }
    }
    let streamed: String = frames
        .iter()
        .filter(|f| f.2["part"]["type"] == "text-delta")
        .map(|f| f.2["part"]["delta"].as_str().unwrap_or_default())
        .collect();
    let stored = frames
        .iter()
        .rev()
        .find(|f| f.1 == "message" && f.2["message"]["role"] == "assistant")
        .expect("the answer");
    let stored = stored.2["message"]["content"][1]["text"].as_str().expect("text");
    // A step's last parts may be superseded by its persisted row (the message replaces the
    // preview), so the parts spell a prefix of the answer — never more, never a word twice.
    assert!(streamed.len() > 100 && stored.starts_with(&streamed), "{streamed:?} vs {stored:?}");
    assert_eq!(frames.last().expect("end").2["outcome"], "finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_list_resumes_from_its_last_event() {
    let server = start(Duration::from_millis(1)).await;
    let (_, first) =
        server.call(Method::POST, "/api/chats", USER, Some(json!({"title": "one"}))).await;
    let mut watch = open(&server, "/api/chats/watch", USER, None).await;
    let (cursor, kind, data) = next(&mut watch).await.expect("created");
    assert_eq!((kind.as_str(), &data["chat"]["id"]), ("created", &first["id"]));
    drop(watch);
    let (_, second) =
        server.call(Method::POST, "/api/chats", USER, Some(json!({"title": "two"}))).await;
    let id = first["id"].as_str().expect("id");
    server
        .call(Method::PATCH, &format!("/api/chats/{id}"), USER, Some(json!({"title": "uno"})))
        .await;
    let mut resumed = open(&server, "/api/chats/watch", USER, Some(&cursor)).await;
    let (_, kind, data) = next(&mut resumed).await.expect("the second chat");
    assert_eq!((kind.as_str(), &data["chat"]["id"]), ("created", &second["id"]));
    // The rename: a change the client's cursor predates is either a `title_change` or the
    // whole chat again (`created`, when the cursor came from the first listing).
    let (_, kind, data) = next(&mut resumed).await.expect("the rename");
    println!("after the resume: {kind} {data}");
    let title = if kind == "title_change" { &data["title"] } else { &data["chat"]["title"] };
    assert_eq!((&data["chat_id"], title), (&first["id"], &json!("uno")), "{kind} {data}");
    // Another user's list is their own.
    let mut other = open(&server, "/api/chats/watch", ADMIN, None).await;
    let quiet = tokio::time::timeout(Duration::from_millis(400), other.next()).await;
    assert!(quiet.is_err(), "the admin owns no chats here: {quiet:?}");
    // A cursor that does not parse is a 400.
    let bad = server.request(Method::GET, "/api/chats/watch?after=nonsense", USER).send().await;
    assert_eq!(bad.expect("response").status(), 400);
}

/// A user may hold `MAX_STREAMS_PER_USER` streams at once; one more is 429, another user
/// is not affected, and streams that end free their slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_a_bounded_number_of_streams() {
    let server = start(Duration::from_millis(1)).await;
    let max = chatd_server::slots::MAX_STREAMS_PER_USER;
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(open(&server, "/api/chats/watch", USER, None).await);
    }
    let refused = server.request(Method::GET, "/api/chats/watch", USER).send().await.expect("send");
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.expect("an error body");
    assert_eq!(body["error"]["code"], "too_many_streams", "{body}");
    let _other = open(&server, "/api/chats/watch", READER, None).await;
    server.state.cut_streams();
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again =
            server.request(Method::GET, "/api/chats/watch", USER).send().await.expect("send");
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 429);
        assert!(tokio::time::Instant::now() < deadline, "the slots were never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
