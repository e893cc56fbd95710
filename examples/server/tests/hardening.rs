//! The example service's connection bounds and browser defences: a half-sent request and an
//! idle connection are closed after the header-read timeout; connections past the cap are
//! closed at once; a state-changing request from another origin (a form on another port of
//! the same host, which `SameSite` does not stop) is refused; the UI cannot be framed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use chatd_server::ServeOptions;
use support::*;

const TIMEOUT: Duration = Duration::from_millis(400);

async fn server(max_connections: usize) -> Server {
    let options = ServeOptions::default()
        .with_header_read_timeout(TIMEOUT)
        .with_max_connections(max_connections);
    start_serving(Duration::from_millis(1), 1, options).await
}

fn address(server: &Server) -> String {
    server.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; `None` if it is still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0_u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok().map(|()| received)
}

#[tokio::test]
async fn a_half_sent_request_and_an_idle_connection_are_closed() {
    let s = server(64).await;
    let mut half = TcpStream::connect(address(&s)).await.expect("connect");
    half.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("half a request");
    let mut idle = TcpStream::connect(address(&s)).await.expect("connect");
    let answered = closed_within(&mut half, Duration::from_secs(5)).await;
    assert!(answered.is_some(), "the half-sent request still held its connection after 5 s");
    println!(
        "half request closed; it got {:?}",
        String::from_utf8_lossy(&answered.unwrap_or_default())
    );
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await.is_some(), "idle connection");
    // A whole request is served as before.
    let (status, _) = s.call(Method::GET, "/api/me", USER, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let s = server(2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address(&s)).await.expect("connect");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.expect("half");
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = TcpStream::connect(address(&s)).await.expect("the kernel accepts");
    let _ = third.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let got = closed_within(&mut third, TIMEOUT / 2).await;
    assert_eq!(got.as_deref(), Some(&b""[..]), "the third connection was served: {got:?}");
    // Once the held ones time out, there is room again.
    tokio::time::sleep(TIMEOUT * 3).await;
    let (status, _) = s.call(Method::GET, "/api/me", USER, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_form_post_from_another_port_is_refused_and_changes_nothing() {
    let s = server(64).await;
    let (status, chat) =
        s.call(Method::POST, "/api/chats", USER, Some(json!({"title": "mine"}))).await;
    assert_eq!(status, 201, "{chat}");
    let id = chat["id"].as_str().expect("id").to_owned();
    // The browser's session cookie.
    let session = s.request(Method::POST, "/api/session", USER).send().await.expect("session");
    let cookie = session
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a cookie")
        .to_owned();
    let port = s.url.rsplit(':').next().expect("port").parse::<u16>().expect("port");
    let other = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    let forged = |origin: Option<&str>, site: Option<&str>| {
        let mut request = s
            .client
            .post(format!("{}/api/chats/{id}/pause", s.url))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    for (origin, site) in [
        (Some(other.as_str()), Some("same-site")),
        (Some(other.as_str()), None),
        (None, Some("cross-site")),
    ] {
        let response = forged(origin, site).await.expect("response");
        assert_eq!(response.status().as_u16(), 403, "{origin:?} {site:?}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "cross_origin", "{body}");
    }
    let (_, chat) = s.call(Method::GET, &format!("/api/chats/{id}"), USER, None).await;
    assert_ne!(chat["status"], "paused", "a forged request changed the chat");
    // The page's own requests, and programs without browser headers, go through.
    let own = forged(Some(&s.url), Some("same-origin")).await.expect("response");
    assert_ne!(own.status().as_u16(), 403, "the service's own page was refused");
    let (status, _) = s.call(Method::GET, &format!("/api/chats/{id}"), USER, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_web_ui_cannot_be_framed() {
    let s = server(64).await;
    let page = s.client.get(format!("{}/", s.url)).send().await.expect("page");
    let header = |name: &str| {
        page.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(header("x-frame-options"), "DENY");
}
