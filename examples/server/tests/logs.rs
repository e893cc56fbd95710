//! What the example service logs: every request runs in a `request` span with its method
//! and path, so whatever is logged while serving it (its failure, its response) says which
//! request it was — and never its query string, which may carry a user's text.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;

mod support;
use support::*;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_response_is_logged_inside_its_request_span_without_its_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .init();
    let server = start(Duration::from_millis(1)).await;
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = server
        .call(
            Method::PATCH,
            &format!("/api/chats/{unknown}?q=hunter2"),
            USER,
            Some(serde_json::json!({"title": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let path = format!("/api/chats/{unknown}");
    let mut line = None;
    for _ in 0..100 {
        let text = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
        line = text.lines().find(|l| l.contains("finished processing request")).map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let line = line.expect("the response is logged");
    assert!(
        line.contains(&format!("request{{method=PATCH path={path}}}")),
        "the line is inside the request's span: {line}"
    );
    assert!(line.contains("status=404"), "{line}");
    let all = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    assert!(!all.contains("hunter2"), "no query string in the logs: {all}");
}
