//! The resume property (issue: "no gap, no duplicate, cursors strictly increasing"), run
//! against any store: a turn streams N parts into the part log in random batches, commits
//! its step and ends; in every other case the question is then edited. A client reads the
//! chat's stream, disconnecting after a random number of events and resubscribing from the
//! cursor of the last event it received. What it received (messages, parts, the turn's
//! start and end, the history rewrite) must equal the whole sequence exactly, and applying
//! it must leave the client holding the stored history.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chatd_core::events::{ChatEventKind, Cursor, Streams, SubscribeOptions, subscribe};

use chatd_core::provider::StreamEvent;
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
    /// The turn started.
    TurnStarted,
    /// The turn ended (its outcome's debug form).
    TurnEnded(String),
    /// History after this message id was rewritten.
    Rewritten(i64),
}

/// How the client subscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `subscribe`: a reader of its own.
    OwnReader,
    /// `Streams::subscribe`: the chat's shared reader.
    SharedReader,
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
    via: Via,
) -> Result<(), String> {
    let streams = (via == Via::SharedReader).then(|| Streams::new(Arc::clone(&store), options));
    for case in 0..cases {
        one(Arc::clone(&store), seed.wrapping_add(case), options, streams.as_ref())
            .await
            .map_err(|err| format!("case {case} (seed {}): {err}", seed.wrapping_add(case)))?;
    }
    Ok(())
}

async fn one(
    store: Arc<dyn ChatStore>,
    seed: u64,
    options: SubscribeOptions,
    streams: Option<&Streams>,
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
    let episode = lease.episode_base() + 1;
    let seen = Arc::new(AtomicI64::new(0));
    let ended = Arc::new(AtomicI64::new(0));
    let edit = seed.is_multiple_of(2);
    let edited = format!("question {seed}, edited");
    let question_id = store
        .list_messages(chat.id, chatd_core::store::MessageQuery::all())
        .await
        .map_err(|e| e.to_string())?
        .first()
        .map(|m| m.id)
        .ok_or("no question")?;

    // The turn: parts in random batches, then (once the client has them all) the commit.
    let producer = {
        let (store, seen, answer) = (Arc::clone(&store), Arc::clone(&seen), answer.clone());
        let (ended, edited) = (Arc::clone(&ended), edited.clone());
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
            if edit {
                while ended.load(Ordering::SeqCst) == 0 {
                    if tokio::time::Instant::now() > deadline {
                        return Err("the client never saw the turn end".to_owned());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                store
                    .edit_message(chat.id, question_id, vec![Part::text(edited)])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })
    };

    // The client.
    let mut received = Vec::new();
    let mut history: Vec<(i64, String)> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    let mut last_data: Option<Cursor> = None;
    'reconnect: loop {
        let events = match streams {
            Some(streams) => streams.subscribe(chat.id, cursor).await,
            None => subscribe(Arc::clone(&store), chat.id, cursor, options).await,
        };
        let mut events = events.map_err(|e| e.to_string())?;
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
                    let done = edit && text == edited;
                    history.push((message.id.0, text.clone()));
                    received.push(Received::Message(text));
                    if done {
                        break 'reconnect;
                    }
                }
                ChatEventKind::TurnStarted { .. } => received.push(Received::TurnStarted),
                ChatEventKind::TurnEnded { ending, .. } => {
                    received.push(Received::TurnEnded(format!("{ending:?}")));
                    ended.store(1, Ordering::SeqCst);
                    if !edit {
                        break 'reconnect;
                    }
                }
                ChatEventKind::HistoryRewritten { after_message_id } => {
                    history.retain(|(id, _)| *id <= after_message_id);
                    received.push(Received::Rewritten(after_message_id));
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
    let mut expected = vec![Received::Message(question), Received::TurnStarted];
    expected.extend((1..=parts).map(|s| Received::Part(format!("d{s}"))));
    expected.push(Received::Message(answer));
    expected.push(Received::TurnEnded("Finished".to_owned()));
    if edit {
        expected.push(Received::Rewritten(question_id.0 - 1));
        expected.push(Received::Message(edited));
    }
    if received != expected {
        return Err(format!("received {received:?}\nexpected {expected:?}"));
    }
    if edit {
        // The edit made the chat pending again: answer it, so the next case's chat is the
        // only pending one.
        let leases = store.acquire(WorkerId::new(), 1).await.map_err(|e| e.to_string())?;
        for lease in leases {
            store.release(&lease, TurnOutcome::Finished).await.map_err(|e| e.to_string())?;
        }
    }
    let stored: Vec<(i64, String)> = store
        .list_messages(chat.id, chatd_core::store::MessageQuery::user_visible_after(None))
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|m| (m.id.0, m.text()))
        .collect();
    if history == stored {
        Ok(())
    } else {
        Err(format!("the client holds {history:?}\nthe store holds {stored:?}"))
    }
}
