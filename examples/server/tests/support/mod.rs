//! A server on a random port, over an in-memory store with the demo model and one worker,
//! and three users: an administrator, a user, and a user who may only read.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chatd_core::UserId;
use chatd_demo::{DemoModel, ModelChoice, Setup, open_store};
use chatd_server::{AppState, ServeOptions, TokenEntry, Tokens, app};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token";
pub const USER: &str = "user-token";
pub const READER: &str = "reader-token";

pub struct Server {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    stop: CancellationToken,
    _workspaces: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn entry(token: &str, scopes: &[&str], admin: bool) -> TokenEntry {
    TokenEntry {
        token: token.into(),
        user_id: UserId::new(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        admin,
        name: token.trim_end_matches("-token").into(),
    }
}

/// Starts a server whose demo model waits `delay` per word, with one worker.
pub async fn start(delay: Duration) -> Server {
    start_with(delay, 1).await
}

/// Starts a server with `workers` workers (0: chats wait, pending, for ever).
pub async fn start_with(delay: Duration, workers: usize) -> Server {
    start_serving(delay, workers, ServeOptions::default()).await
}

/// Starts a server with `workers` workers, serving with `options`.
pub async fn start_serving(delay: Duration, workers: usize, options: ServeOptions) -> Server {
    start_limited(delay, workers, options, None).await
}

/// Starts a server whose users may each spend at most `daily_micros` a day (none: no limit).
pub async fn start_limited(
    delay: Duration,
    workers: usize,
    options: ServeOptions,
    daily_micros: Option<i64>,
) -> Server {
    let store = open_store(None).await.expect("store");
    let workspaces = tempfile::tempdir().expect("workspaces");
    let mut setup = Setup::new(Arc::clone(&store), ModelChoice::Demo, workspaces.path().to_owned());
    setup.demo = DemoModel::with_delay(delay);
    setup.spend = daily_micros.map(|m| chatd_core::limits::SpendLimits::none().owner_per_day(m));
    setup.seed().await.expect("seed");
    let stop = CancellationToken::new();
    drop(setup.spawn_workers(workers, &stop));
    let tokens = Tokens::from_entries(vec![
        entry(ADMIN, &["chat:*"], true),
        entry(USER, &["chat:*"], false),
        entry(READER, &["chat:read"], false),
    ])
    .expect("tokens");
    let state = AppState::new(setup.chatd(), tokens).with_ask_switch(setup.ask.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let router = app(state.clone());
    tokio::spawn(chatd_server::serve(listener, router, options, stop.clone()));
    Server { url, state, client: reqwest::Client::new(), stop, _workspaces: workspaces }
}

impl Server {
    /// A request as `token`.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).bearer_auth(token)
    }

    /// Sends and returns the status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.request(method, path, token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("response");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Polls the chat until its status is `status`.
    pub async fn wait_status(&self, chat: &str, token: &str, status: &str) -> Value {
        for _ in 0..600 {
            let (_, body) =
                self.call(reqwest::Method::GET, &format!("/api/chats/{chat}"), token, None).await;
            if body["status"] == status {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("chat {chat} never became {status}");
    }
}
