//! The resume property (issue: "no gap, no duplicate, cursors strictly increasing"), run
//! against any store: a turn streams N parts into the part log in random batches, then
//! commits its step; a client reads the chat's stream, disconnecting after a random number
//! of events and resubscribing from the cursor of the last event it received. What it
//! received (messages and parts) must equal the whole sequence exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chatd_core::events::{ChatEventKind, Cursor, SubscribeOptions, subscribe};
use chatd_core::provider::StreamEvent;
use chatd_core::runtime::live::episode_base;
use chatd_core::store::{ChatStore, NewPart, PartPosition, Step};
use chatd_core::{NewChat, NewMessage, Part, TurnOutcome, UserId, WorkerId};
use futures::StreamExt;

/// What the client kept of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A persisted message's text.
    Message(String),
    /// A streamed text delta.
    Part(String),
}

/// Runs `cases` seeded cases on `store` (which needs a default model config).
///
/// # Errors
/// A description of the first case that failed.
pub async fn run(
    store: Arc<dyn ChatStore>,
    cases: u64,
    seed: u64,
    options: SubscribeOptions,
) -> Result<(), String> {
    for case in 0..cases {
        one(Arc::clone(&store), seed.wrapping_add(case), options)
            .await
            .map_err(|err| format!("case {case} (seed {}): {err}", seed.wrapping_add(case)))?;
    }
    Ok(())
}

async fn one(
    store: Arc<dyn ChatStore>,
    seed: u64,
    options: SubscribeOptions,
) -> Result<(), String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let question = format!("question {seed}");
    let answer = format!("answer {seed}");
    let chat = store
        .create_chat(NewChat::new(UserId::new()).with_text(&question))
        .await
        .map_err(|e| e.to_string())?;
    let leases = store.acquire(WorkerId::new(), 1).await.map_err(|e| e.to_string())?;
    let lease = *leases.first().filter(|l| l.chat_id == chat.id).ok_or("acquired another chat")?;
    let parts = rng.i64(5..=40);
    let episode = episode_base(&lease) + 1;
    let seen = Arc::new(AtomicI64::new(0));

    // The turn: parts in random batches, then (once the client has them all) the commit.
    let producer = {
        let (store, seen, answer) = (Arc::clone(&store), Arc::clone(&seen), answer.clone());
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
        tokio::spawn(async move {
            let mut seq = 0;
            while seq < parts {
                let size = rng.i64(1..=8).min(parts - seq);
                let batch = (seq + 1..=seq + size)
                    .map(|s| NewPart {
                        position: PartPosition { episode, seq: s },
                        payload: serde_json::json!({"type": "stream", "event": {"type": "text-delta", "id": "t", "delta": format!("d{s}")}}),
                    })
                    .collect();
                store.append_parts(&lease, batch).await.map_err(|e| e.to_string())?;
                seq += size;
                tokio::time::sleep(Duration::from_millis(rng.u64(0..3))).await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while seen.load(Ordering::SeqCst) < parts {
                if tokio::time::Instant::now() > deadline {
                    return Err("the client never received every part".to_owned());
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            store
                .commit_step(
                    &lease,
                    Step::new(Some(NewMessage::assistant(vec![Part::text(answer)])), Vec::new()),
                )
                .await
                .map_err(|e| e.to_string())?;
            store.release(&lease, TurnOutcome::Finished).await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        })
    };

    // The client.
    let mut received = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut last_data: Option<Cursor> = None;
    'reconnect: loop {
        let mut events = subscribe(Arc::clone(&store), chat.id, cursor, options)
            .await
            .map_err(|e| e.to_string())?;
        for _ in 0..rng.usize(1..=6) {
            let event = tokio::time::timeout(Duration::from_secs(20), events.next())
                .await
                .map_err(|_| format!("no event in time; received so far: {received:?}"))?
                .ok_or("the stream ended")?;
            cursor = Some(event.cursor);
            if event.kind.advances() {
                if last_data.is_some_and(|last| event.cursor <= last) {
                    return Err(format!(
                        "cursor {} does not increase after {:?}",
                        event.cursor, last_data
                    ));
                }
                last_data = Some(event.cursor);
            }
            match event.kind {
                ChatEventKind::Message { message } => {
                    let text = message.text();
                    let done = text == answer;
                    received.push(Received::Message(text));
                    if done {
                        break 'reconnect;
                    }
                }
                ChatEventKind::MessagePart { part: StreamEvent::TextDelta { delta, .. } } => {
                    seen.store(event.cursor.seq, Ordering::SeqCst);
                    received.push(Received::Part(delta));
                }
                _ => {}
            }
        }
    }
    producer.await.map_err(|e| e.to_string())??;
    let mut expected = vec![Received::Message(question)];
    expected.extend((1..=parts).map(|s| Received::Part(format!("d{s}"))));
    expected.push(Received::Message(answer));
    if received == expected {
        Ok(())
    } else {
        Err(format!("received {received:?}\nexpected {expected:?}"))
    }
}
