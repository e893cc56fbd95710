//! Attachments over HTTP (BEHAVIOUR §19): uploads sniffed from their bytes, downloads for the
//! owner only, references in messages, and the AI SDK's `file` parts both ways.

mod support;

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, USER, start};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn upload(s: &support::Server, token: &str, query: &str, bytes: Vec<u8>) -> (u16, Value) {
    let response = s
        .request(Method::POST, &format!("/api/files?{query}"), token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_upload_sniffed_download_for_their_owner_and_go_into_messages() {
    let s = start(Duration::from_millis(1)).await;
    let png = chatd_core::files::testing_png(6, 4);
    // The type comes from the bytes, not the name or the header.
    let (status, file) = upload(&s, USER, "name=notes.txt", png.clone()).await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(
        (file["media_type"].as_str(), file["size"].as_u64()),
        (Some("image/png"), Some(png.len() as u64))
    );
    assert!(file["chat_id"].is_null(), "unbound until a message refers to it");
    let id = file["id"].as_str().expect("id").to_owned();
    let (status, refused) = upload(&s, USER, "name=x.png", b"\x7fELF\x02\x01".to_vec()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("Only PNG, JPEG, GIF and WebP images, PDF and plain text"),
        "{refused}"
    );
    let (status, _) = upload(
        &s,
        USER,
        "name=big.txt",
        vec![b'x'; chatd_core::store::Limits::DEFAULT.max_file_bytes + 1],
    )
    .await;
    assert_eq!(status, 413, "over the upload limit");

    // Downloads: the owner gets the bytes with the sniffed type; anyone else gets 404.
    let response =
        s.request(Method::GET, &format!("/api/files/{id}"), USER).send().await.expect("get");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-disposition"], "inline; filename*=UTF-8''notes.txt");
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), png);
    for (token, path) in
        [(ADMIN, format!("/api/files/{id}")), (USER, "/api/files/not-an-id".to_owned())]
    {
        let (status, body) = s.call(Method::GET, &path, token, None).await;
        assert_eq!(status, 404, "{path} as {token}: {body}");
    }

    // A message refers to it; the chat then holds it, and reads carry the reference only.
    let message = json!({"message": [{"type": "text", "text": "what is this?"},
        {"type": "file", "attachment_id": id, "media_type": "text/plain", "name": "ignored"}]});
    let (status, chat) = s.call(Method::POST, "/api/chats", USER, Some(message)).await;
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["id"].as_str().expect("chat").to_owned();
    s.wait_status(&chat_id, USER, "waiting").await;
    let (_, listed) =
        s.call(Method::GET, &format!("/api/chats/{chat_id}/messages"), USER, None).await;
    let part = listed["messages"][0]["content"][1].clone();
    assert_eq!(
        part,
        json!({"type": "file", "media_type": "image/png", "attachment_id": id, "name": "notes.txt"})
    );
    let answer = listed["messages"][1]["content"][0]["text"].as_str().unwrap_or("").to_owned();
    assert_eq!(answer, format!("I see notes.txt: a 6×4 PNG image of {} bytes.", png.len()));
    let (_, files) = s.call(Method::GET, &format!("/api/chats/{chat_id}/files"), USER, None).await;
    assert_eq!(files["files"][0]["id"], id.as_str(), "{files}");
    let (status, _) =
        s.call(Method::GET, &format!("/api/chats/{chat_id}/files"), ADMIN, None).await;
    assert_eq!(status, 404, "another user's chat");
    // Another user cannot refer to it, nor upload into the chat.
    let theirs =
        json!({"message": [{"type": "file", "attachment_id": id, "media_type": "image/png"}]});
    let (status, body) = s.call(Method::POST, "/api/chats", ADMIN, Some(theirs)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["message"],
        "content[0].attachment_id refers to a file that does not exist."
    );
    let (status, _) =
        upload(&s, ADMIN, &format!("name=a.png&chat_id={chat_id}"), png.clone()).await;
    assert_eq!(status, 404);
    // Deleting the chat deletes its files.
    let (status, _) = s.call(Method::DELETE, &format!("/api/chats/{chat_id}"), USER, None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call(Method::GET, &format!("/api/files/{id}"), USER, None).await;
    assert_eq!(status, 404, "gone with its chat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_file_parts_go_in_as_data_urls_and_come_back_as_links() {
    let s = start(Duration::from_millis(1)).await;
    let (_, chat) = s.call(Method::POST, "/api/chats", USER, Some(json!({}))).await;
    let id = chat["id"].as_str().expect("id").to_owned();
    let png = chatd_core::files::testing_png(2, 9);
    let url = format!("data:image/png;base64,{}", b64(&png));
    let send = json!({"id": id, "trigger": "submit-message", "messages": [{"id": "u1", "role": "user", "parts": [
        {"type": "text", "text": "look"},
        {"type": "file", "mediaType": "image/png", "filename": "tall.png", "url": url}]}]});
    let response =
        s.request(Method::POST, "/ai/chat", USER).json(&send).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let stream = response.text().await.expect("stream");
    assert!(stream.contains("I see tall.png: a 2×9 PNG image"), "{stream}");
    let (_, history) = s.call(Method::GET, &format!("/ai/chat/{id}/messages"), USER, None).await;
    let history = history["messages"].clone();
    let file = history
        .as_array()
        .and_then(|h| h.first())
        .map(|m| m["parts"][1].clone())
        .unwrap_or_default();
    assert_eq!(file["type"], "file", "{history}");
    assert_eq!(
        (file["mediaType"].as_str(), file["filename"].as_str()),
        (Some("image/png"), Some("tall.png"))
    );
    let link = file["url"].as_str().expect("url").to_owned();
    assert!(link.starts_with("/api/files/"), "a link, not the bytes: {link}");
    let bytes = s
        .request(Method::GET, &link, USER)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(bytes.to_vec(), png);
    // The client sends the history back with the link: it stays a reference.
    let again = json!({"id": id, "trigger": "submit-message", "messages": [
        history[0].clone(),
        {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "again"}, file.clone()]}]});
    let response =
        s.request(Method::POST, "/ai/chat", USER).json(&again).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("stream").contains("I see tall.png: a 2×9 PNG image"));
    let (_, files) = s.call(Method::GET, &format!("/api/chats/{id}/files"), USER, None).await;
    assert_eq!(files["files"].as_array().map(Vec::len), Some(1), "stored once: {files}");
    // A link to someone else's file is refused.
    let (_, other) = s.call(Method::POST, "/api/chats", ADMIN, Some(json!({}))).await;
    let other_id = other["id"].as_str().expect("id");
    let steal = json!({"id": other_id, "trigger": "submit-message", "messages": [
        {"id": "x", "role": "user", "parts": [file]}]});
    let (status, body) = s.call(Method::POST, "/ai/chat", ADMIN, Some(steal)).await;
    assert_eq!(status, 400, "{body}");
}
