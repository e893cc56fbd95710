//! `soak`: the capacity load under faults, then an audit. Worker processes (heartbeat 1 s,
//! stale after 3 s) serve chats that each send message after message while a subscriber
//! follows every chat; meanwhile a fault is injected every few seconds — a worker killed
//! (SIGKILL, then replaced), a worker frozen past its lease (SIGSTOP for 4 s, then SIGCONT),
//! or a worker's database connection terminated (`pg_terminate_backend`). Then the audit:
//! every message answered exactly once with the whole answer, every subscriber saw each
//! answer's parts exactly (no duplicate, no gap), no chat stuck, no worker process left
//! behind, and (not in a quick run) the never-faulted worker's memory flat over the run's
//! second half. ("Exactly" for parts: what streamed
//! since the last reset is the stored answer's beginning — the stored message replaces the
//! preview, so parts still buffered at the commit are never streamed.) One JSON summary line; a failed
//! audit is an error (exit status 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd_core::events::{ChatEventKind, SubscribeOptions, subscribe};
use chatd_core::provider::StreamEvent;
use chatd_core::status::TurnEnding;
use chatd_core::store::{ChatStore, MessageQuery, SendMessage};
use chatd_core::{
    ChatId, ChatStatus, Message, NewChat, NewModelConfig, NewProvider, Part, ProviderKind, Role,
    UserId,
};
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sqlx::PgPool;
use tokio::process::Child;

use crate::capacity::{
    HEARTBEAT_ENV, Mix, Pace, STALE_ENV, WORKER_ENV, model, start_workers, usage_of,
};
use crate::pg::{BenchResult, Scratch};

/// The application name worker processes connect with, so faults can find their sessions.
const WORKER_APP: &str = "chatd_soak_worker";

/// What the subscribers saw.
#[derive(Debug, Default)]
struct Followed {
    turns: usize,
    /// Answers whose streamed parts did not add up to the stored answer.
    mismatches: Vec<String>,
    /// Messages never answered in time.
    stuck: usize,
    /// Turns that failed.
    failed: Vec<String>,
    /// Every chat it used.
    chats: Vec<ChatId>,
}

/// Messages a client sends to one chat before it starts another. The fake model reports a
/// constant 20-token prompt, so compaction never bounds a history here as it would in real
/// use; moving on keeps prompts (and so a worker's memory) the same size all run long.
const MESSAGES_PER_CHAT: usize = 20;

/// Sends messages until `until`, each once the last is answered, to a new chat every
/// [`MESSAGES_PER_CHAT`], following the chat: the text streamed since the last
/// `PreviewReset` must begin the stored answer.
async fn follow(store: Arc<dyn ChatStore>, until: Instant) -> BenchResult<Followed> {
    let mut seen = Followed::default();
    while Instant::now() < until {
        let chat = store.create_chat(NewChat::new(UserId::new())).await?.id;
        seen.chats.push(chat);
        follow_chat(&store, chat, until, &mut seen).await?;
        if seen.stuck > 0 {
            break;
        }
    }
    Ok(seen)
}

/// Sends `text` to `chat`. While the database is unreachable (a restart), retries for up to
/// a minute — first checking whether the failed attempt landed after all, so a message is
/// never sent twice.
async fn send(store: &Arc<dyn ChatStore>, chat: ChatId, text: &str) -> BenchResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.send_message(chat, SendMessage::text(text)).await {
            Ok(_) => return Ok(()),
            Err(err) if err.is_unavailable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Ok(messages) = store.list_messages(chat, MessageQuery::all()).await
                    && messages.iter().any(|m| m.role == Role::User && m.text() == text)
                {
                    return Ok(());
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// [`follow`] on one chat, for at most [`MESSAGES_PER_CHAT`] messages.
async fn follow_chat(
    store: &Arc<dyn ChatStore>,
    chat: ChatId,
    until: Instant,
    seen: &mut Followed,
) -> BenchResult<()> {
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(500));
    let mut events = subscribe(Arc::clone(store), chat, None, options).await?;
    let mut n = 0;
    while Instant::now() < until && n < MESSAGES_PER_CHAT {
        send(store, chat, &format!("message {n}")).await?;
        n += 1;
        let (mut streamed, mut stored) = (String::new(), None::<String>);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), events.next()).await
            else {
                seen.stuck += 1;
                return Ok(());
            };
            match event.kind {
                ChatEventKind::MessagePart { part: StreamEvent::TextDelta { delta, .. } } => {
                    streamed.push_str(&delta);
                }
                ChatEventKind::PreviewReset => streamed.clear(),
                ChatEventKind::Message { message } if message.role == Role::Assistant => {
                    stored = Some(message.text());
                }
                ChatEventKind::TurnEnded { ending, .. } => match ending {
                    TurnEnding::Finished => break,
                    // The turn re-runs as a new one: its parts start again.
                    TurnEnding::Shutdown | TurnEnding::Lost => streamed.clear(),
                    other => {
                        seen.failed.push(format!("{chat}: {other:?}"));
                        break;
                    }
                },
                _ => {}
            }
        }
        // The stored answer replaces the preview, so the last parts may never be streamed;
        // what was streamed must be its beginning, each part once and in order.
        if !stored.as_deref().is_some_and(|stored| stored.starts_with(streamed.as_str())) {
            seen.mismatches.push(format!("{chat}: streamed {streamed:?}, stored {stored:?}"));
        }
        seen.turns += 1;
    }
    Ok(())
}

/// Whether `messages` answer every user message exactly once: after each, zero or more tool
/// steps (an assistant message calling tools, then exactly one result per call), then one
/// assistant message whose text is `whole`.
pub(crate) fn answered_once(messages: &[Message], whole: &str) -> Result<(), String> {
    let mut rest = messages.iter().peekable();
    while let Some(user) = rest.next() {
        if user.role != Role::User {
            return Err(format!("message {} is not a user message", user.id));
        }
        loop {
            let Some(answer) = rest.next().filter(|m| m.role == Role::Assistant) else {
                return Err(format!("user message {} has no answer", user.id));
            };
            let calls: Vec<&str> = answer
                .content
                .iter()
                .filter_map(|p| match p {
                    Part::ToolCall { tool_call_id, .. } => Some(tool_call_id.as_str()),
                    _ => None,
                })
                .collect();
            if calls.is_empty() {
                if answer.text() != whole {
                    return Err(format!("answer {} is not the whole answer", answer.id));
                }
                break;
            }
            let mut results = Vec::new();
            while let Some(result) = rest.next_if(|m| m.role == Role::Tool) {
                results.extend(result.content.iter().filter_map(|p| match p {
                    Part::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
                    _ => None,
                }));
            }
            if results != calls {
                return Err(format!("calls {calls:?} answered by results {results:?}"));
            }
        }
    }
    Ok(())
}

/// The worker sessions' backend pids.
async fn worker_backends(pool: &PgPool) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
        .bind(WORKER_APP)
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

fn pid_of(child: &Child) -> Option<Pid> {
    child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw)
}

/// Processes still running in worker mode for `url` (none should be, after the run).
fn orphans(url: &str) -> usize {
    let wanted = format!("{WORKER_ENV}={url}");
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
                .unwrap_or(false)
        })
        .count()
}

/// `soak`: `minutes` of load and faults, then the audit.
pub(crate) async fn run(
    minutes: f64,
    quick: bool,
    mix: Mix,
    restart: Option<String>,
) -> BenchResult<String> {
    let length = Duration::from_secs_f64((minutes * 60.0).max(5.0));
    let (chats, fault_every) =
        if quick { (6, Duration::from_secs(3)) } else { (40, Duration::from_secs(5)) };
    let pace = Pace {
        first_token: Duration::from_millis(100),
        per_token: Duration::from_millis(20),
        tokens: 20,
    };
    let server = model::serve(pace, mix).await?;
    let scratch = Scratch::create(16).await?;
    let provider = NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url());
    scratch.store.create_provider(provider).await?;
    let config = NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 32_000).as_default();
    scratch.store.create_model_config(config).await?;
    let store: Arc<dyn ChatStore> = Arc::new(scratch.store.clone());
    let base = scratch.url();
    let url = if base.contains('?') {
        format!("{base}&application_name={WORKER_APP}")
    } else {
        format!("{base}?application_name={WORKER_APP}")
    };
    let env = [(HEARTBEAT_ENV, "1000".to_owned()), (STALE_ENV, "3000".to_owned())];
    let mut workers = start_workers(&url, 3, &env).await?;
    let steady = workers[0].id().unwrap_or(0);

    let started = Instant::now();
    let until = started + length;
    let mut clients = Vec::new();
    for _ in 0..chats {
        clients.push(tokio::spawn(follow(Arc::clone(&store), until)));
    }
    // Memory of the worker that is never faulted, at every fault.
    let mut rss_samples: Vec<u64> = Vec::new();
    let (mut kills, mut stops, mut cuts, mut restarts) = (0, 0, 0, 0);
    let mut round = 0usize;
    let halfway = started + length / 2;
    while Instant::now() + fault_every < until {
        tokio::time::sleep(fault_every).await;
        rss_samples.push(usage_of(steady).1);
        // Once, halfway: the database itself restarts (a command the host gives).
        if let Some(command) =
            restart.as_deref().filter(|_| restarts == 0 && Instant::now() > halfway)
        {
            let status = tokio::process::Command::new("sh").args(["-c", command]).status().await?;
            if !status.success() {
                return Err(format!("the restart command failed: {status}").into());
            }
            restarts += 1;
            continue;
        }
        // Faults rotate over the two other workers (index 1 and 2).
        let target = 1 + round % 2;
        // Freezes every other round: the fault that tests fencing hardest (the frozen
        // worker wakes up mid-turn after another has taken its chats over).
        match round % 4 {
            1 => {
                if let Some(pid) = pid_of(&workers[target]) {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = workers[target].wait().await;
                    kills += 1;
                }
                workers[target] = start_workers(&url, 1, &env).await?.remove(0);
            }
            0 | 2 => {
                if let Some(pid) = pid_of(&workers[target]) {
                    let _ = kill(pid, Signal::SIGSTOP);
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    let _ = kill(pid, Signal::SIGCONT);
                    stops += 1;
                }
            }
            _ => {
                let backends = worker_backends(&scratch.pool).await;
                if let Some(pid) = backends.get(round % backends.len().max(1)) {
                    let _ = sqlx::query("SELECT pg_terminate_backend($1)")
                        .bind(pid)
                        .execute(&scratch.pool)
                        .await;
                    cuts += 1;
                }
            }
        }
        round += 1;
    }
    let mut seen = Followed::default();
    for client in clients {
        let one = client.await??;
        seen.turns += one.turns;
        seen.stuck += one.stuck;
        seen.mismatches.extend(one.mismatches);
        seen.failed.extend(one.failed);
        seen.chats.extend(one.chats);
    }
    let rss_end = usage_of(steady).1;

    // The audit of what is stored.
    let mut unanswered = Vec::new();
    let (mut not_idle, mut tool_results) = (0, 0);
    for chat in &seen.chats {
        let messages = store.list_messages(*chat, MessageQuery::all()).await?;
        tool_results += messages.iter().filter(|m| m.role == Role::Tool).count();
        let whole: String = (0..pace.tokens).map(|n| format!("t{n} ")).collect();
        if let Err(why) = answered_once(&messages, &whole) {
            let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
            unanswered.push(format!("{chat}: {why}: {roles:?}"));
        }
        if store.get_chat(*chat).await?.status != ChatStatus::Waiting {
            not_idle += 1;
        }
    }
    for worker in &mut workers {
        if let Some(pid) = pid_of(worker) {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), worker.wait()).await;
        let _ = worker.start_kill();
        let _ = worker.wait().await;
    }
    let left = orphans(&url);
    scratch.drop_database().await?;
    // Flat: over the second half of the run (the first half warms caches and allocator
    // arenas up) the steady worker grew by at most a tenth, plus 2 MiB of slack. A quick
    // run is too short to tell a leak from warming up: it reports, not judges.
    let rss_mid = rss_samples.get(rss_samples.len() / 2).copied().unwrap_or(rss_end);
    let flat = (!quick).then_some(rss_end <= rss_mid + rss_mid / 10 + 2 * 1024);
    let pass = seen.mismatches.is_empty()
        && seen.failed.is_empty()
        && seen.stuck == 0
        && unanswered.is_empty()
        && not_idle == 0
        && left == 0
        && flat != Some(false)
        && seen.turns > 0;
    let summary = serde_json::json!({
        "scenario": "soak",
        "seconds": started.elapsed().as_secs(),
        "clients": chats,
        "chats": seen.chats.len(),
        "turns": seen.turns,
        "tool_results": tool_results,
        "mix": {"tool_every": mix.tool_every, "fail_every": mix.fail_every, "slow_every": mix.slow_every},
        "faults": {"sigkill": kills, "sigstop": stops, "terminate_backend": cuts, "database_restart": restarts},
        "answered_exactly_once": unanswered.is_empty(),
        "part_mismatches": seen.mismatches.len(),
        "failed_turns": seen.failed.len(),
        "stuck": seen.stuck,
        "not_idle": not_idle,
        "orphans": left,
        "rss_kib": rss_samples,
        "rss_kib_mid": rss_mid,
        "rss_kib_end": rss_end,
        "memory_flat": flat,
        "pass": pass,
    });
    if !pass {
        let details: Vec<String> = unanswered
            .iter()
            .chain(&seen.mismatches)
            .chain(&seen.failed)
            .take(5)
            .cloned()
            .collect();
        return Err(format!("{summary}\nthe soak's audit failed: {details:?}").into());
    }
    Ok(summary.to_string())
}

#[cfg(test)]
mod tests {
    use chatd_core::{ChatId, Message, MessageId, Part, Role, Visibility};
    use serde_json::json;

    use super::answered_once;

    fn row(id: i64, role: Role, content: Vec<Part>) -> Message {
        Message {
            id: MessageId(id),
            chat_id: ChatId(uuid::Uuid::nil()),
            model_config_id: None,
            created_at: chrono::Utc::now(),
            role,
            content,
            visibility: Visibility::Both,
            usage: None,
            context_limit: None,
            compressed: false,
            client_id: None,
            deleted: None,
        }
    }

    fn call(id: &str) -> Part {
        serde_json::from_value(
            json!({"type": "tool-call", "tool_call_id": id, "tool_name": "clock"}),
        )
        .expect("call")
    }

    fn result(id: &str) -> Part {
        serde_json::from_value(
            json!({"type": "tool-result", "tool_call_id": id, "tool_name": "clock", "result": {}}),
        )
        .expect("result")
    }

    #[test]
    fn the_audit_accepts_tool_steps_and_refuses_what_is_not_exactly_once() {
        let q = row(1, Role::User, vec![Part::text("q")]);
        let whole = "t0 t1 ";
        let answer = |id| row(id, Role::Assistant, vec![Part::text(whole)]);
        let asks = row(2, Role::Assistant, vec![call("c1")]);
        let tool = |id| row(id, Role::Tool, vec![result("c1")]);
        assert_eq!(answered_once(&[q.clone(), answer(2)], whole), Ok(()));
        assert_eq!(answered_once(&[q.clone(), asks.clone(), tool(3), answer(4)], whole), Ok(()));
        // Answered twice, a call run twice, a call never answered, a cut answer, no answer.
        assert!(answered_once(&[q.clone(), answer(2), answer(3)], whole).is_err());
        assert!(
            answered_once(&[q.clone(), asks.clone(), tool(3), tool(4), answer(5)], whole).is_err()
        );
        assert!(answered_once(&[q.clone(), asks.clone(), answer(3)], whole).is_err());
        let cut = row(2, Role::Assistant, vec![Part::text("t0 ")]);
        assert!(answered_once(&[q.clone(), cut], whole).is_err());
        assert!(answered_once(&[q], whole).is_err());
    }
}
