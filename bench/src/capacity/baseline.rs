//! The capacity scenario's two baselines: the same token streams read by a bare HTTP client
//! with no persistence (what chatd adds to latency), and the minimal SQL a durable turn
//! needs replayed by a plain loop (what chatd adds to the database's work).

use std::time::Instant;

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::pg::BenchResult;

/// One bare request to the fake server at `url`: milliseconds to the first token event and
/// the gaps between token events as they arrived.
pub(super) async fn bare_stream(url: &str) -> BenchResult<(f64, Vec<f64>)> {
    let host = url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(host).await?;
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    socket.write_all(request.as_bytes()).await?;
    let mut buffer = vec![0u8; 16 * 1024];
    let (mut first, mut last, mut gaps) = (None, None::<Instant>, Vec::new());
    loop {
        let n = socket.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        let now = Instant::now();
        let tokens = memchr::memmem::find_iter(&buffer[..n], b"\"content\":").count();
        for _ in 0..tokens {
            match last {
                None => first = Some((now - sent).as_secs_f64() * 1000.0),
                Some(before) => gaps.push((now - before).as_secs_f64() * 1000.0),
            }
            last = Some(now);
        }
    }
    Ok((first.ok_or("the fake server sent no token")?, gaps))
}

/// Replays, for `turns` turns of `tokens` tokens each, the least SQL that keeps a turn
/// durable with a live preview: the user message and the chat made pending, the claim, one
/// part-log insert per flush of the preview (every `flush_every` tokens), the answer with
/// the part log cleared and the chat released. Plain statements, no library.
pub(super) async fn minimal_turns(
    pool: &PgPool,
    config: Uuid,
    turns: usize,
    tokens: usize,
    flush_every: usize,
) -> BenchResult<()> {
    let worker = Uuid::new_v4();
    let chat: Uuid = sqlx::query_scalar(
        "INSERT INTO chats (owner_id, title, status, last_model_config_id) \
         VALUES ($1, 'baseline', 'waiting', $2) RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(config)
    .fetch_one(pool)
    .await?;
    for turn in 0..turns {
        sqlx::query(
            "WITH m AS (INSERT INTO chat_messages (chat_id, role, content) \
               VALUES ($1, 'user', '[{\"type\":\"text\",\"text\":\"question\"}]'::jsonb)) \
             UPDATE chats SET status = 'pending', updated_at = now() WHERE id = $1",
        )
        .bind(chat)
        .execute(pool)
        .await?;
        sqlx::query(
            "UPDATE chats SET status = 'running', worker_id = $2, heartbeat_at = now(), \
               lease_epoch = lease_epoch + 1 WHERE id = $1",
        )
        .bind(chat)
        .bind(worker)
        .execute(pool)
        .await?;
        // The prompt: the history read once per step.
        sqlx::query("SELECT role, content FROM chat_messages WHERE chat_id = $1 ORDER BY id")
            .bind(chat)
            .fetch_all(pool)
            .await?;
        let flushes = tokens.div_ceil(flush_every.max(1));
        for seq in 0..flushes {
            let payload = serde_json::json!({"type": "text-delta", "delta": "t0 t1 t2"});
            let episode = i64::try_from(turn).unwrap_or(0);
            let seq = i64::try_from(seq).unwrap_or(0);
            sqlx::query(
                "INSERT INTO chat_stream_parts (chat_id, episode, seq, episodes, seqs, payloads) \
                 VALUES ($1, $2, $3, ARRAY[$2], ARRAY[$3], ARRAY[$4])",
            )
            .bind(chat)
            .bind(episode)
            .bind(seq)
            .bind(payload)
            .execute(pool)
            .await?;
        }
        let answer: String = (0..tokens).map(|n| format!("t{n} ")).collect();
        sqlx::query(
            "WITH m AS (INSERT INTO chat_messages (chat_id, role, content) \
               VALUES ($1, 'assistant', jsonb_build_array(jsonb_build_object('type', 'text', 'text', $2::text)))), \
             p AS (DELETE FROM chat_stream_parts WHERE chat_id = $1) \
             UPDATE chats SET status = 'waiting', worker_id = NULL, heartbeat_at = NULL, \
               updated_at = now() WHERE id = $1",
        )
        .bind(chat)
        .bind(answer)
        .execute(pool)
        .await?;
    }
    Ok(())
}
