//! A raw TCP server for hostile-server tests: each connection's request is read (head and
//! `content-length` body) and recorded, then a script decides what to send — including
//! nothing, or gigabytes generated on the fly (never held in memory).

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatd_core::provider::{ModelProvider, ModelRequest, PromptMessage, ProviderError};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What a connection got: the request head (lower-cased header names).
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
}

impl Seen {
    /// Whether the request carried header `name`.
    pub fn has_header(&self, name: &str) -> bool {
        self.head.lines().any(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
    }
}

/// How to answer.
#[derive(Clone)]
pub enum Script {
    /// Accept, read the request, answer nothing (hold the connection).
    Silence,
    /// Send `head` (status line and headers), then nothing.
    HeadThenSilence(String),
    /// Send `head`, then `prefix`, then nothing.
    PrefixThenSilence(String, Vec<u8>),
    /// Send `head` then `prefix` then `filler` repeated `times` times (`None`: forever),
    /// then `suffix`.
    Stream { head: String, prefix: Vec<u8>, filler: Vec<u8>, times: Option<usize>, suffix: Vec<u8> },
    /// Send these bytes and close.
    Bytes(Vec<u8>),
}

/// A server answering every connection with `script(n)` (n = connection index).
pub struct RawServer {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Some(head)
}

impl RawServer {
    pub async fn start(script: impl Fn(usize) -> Script + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let script = Arc::new(script);
        tokio::spawn(async move {
            let mut index = 0;
            while let Ok((mut socket, _)) = listener.accept().await {
                let (record, script) = (Arc::clone(&record), Arc::clone(&script));
                let this = index;
                index += 1;
                tokio::spawn(async move {
                    let Some(head) = read_request(&mut socket).await else { return };
                    record.lock().expect("lock").push(Seen { head });
                    serve(&mut socket, script(this)).await;
                });
            }
        });
        RawServer { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn hold() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn serve(socket: &mut TcpStream, script: Script) {
    match script {
        Script::Silence => hold().await,
        Script::HeadThenSilence(head) => {
            let _ = socket.write_all(head.as_bytes()).await;
            hold().await;
        }
        Script::PrefixThenSilence(head, prefix) => {
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&prefix).await;
            hold().await;
        }
        Script::Stream { head, prefix, filler, times, suffix } => {
            if socket.write_all(head.as_bytes()).await.is_err()
                || socket.write_all(&prefix).await.is_err()
            {
                return;
            }
            let mut sent = 0;
            while times.is_none_or(|t| sent < t) {
                if socket.write_all(&filler).await.is_err() {
                    return; // the client gave up: what a bounded reader does
                }
                sent += 1;
            }
            let _ = socket.write_all(&suffix).await;
        }
        Script::Bytes(bytes) => {
            let _ = socket.write_all(&bytes).await;
        }
    }
}

/// An HTTP/1.1 response head without a length (the body ends when the connection closes).
pub fn head(status: &str, content_type: &str) -> String {
    format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n")
}

/// Runs one call to its end, dropping every event (a consumer that keeps nothing), and
/// returns its error; panics if the call succeeds.
pub async fn run_to_error(provider: &dyn ModelProvider) -> ProviderError {
    let request = ModelRequest::new("m", vec![PromptMessage::user("hi")]);
    match provider.stream(request, CancellationToken::new()).await {
        Err(err) => err,
        Ok(mut events) => loop {
            match events.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => break err,
                None => panic!("the call succeeded"),
            }
        },
    }
}
