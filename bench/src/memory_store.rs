//! `memory-store`: the cost of `InMemoryChatStore`'s intent-level operations against the
//! same work done on a plain `Mutex<HashMap<_, Vec<_>>>`.
//!
//! One *turn cycle* is what a chat does per user message: `send_message` (the chat becomes
//! pending), `acquire`, `commit_step` (an assistant row and a tool row), `release`, and
//! `prompt_messages` (the next turn's history). The baseline performs the same inserts,
//! status flips and history copy with no validation, no state machine, no indexes and no
//! fencing. Both run on the same runtime, one cycle after another, over the same number of
//! chats and rounds; the best of three runs of each is reported.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chatd_core::store::{ChatStore, SendMessage, Step};
use chatd_core::{
    NewChat, NewMessage, NewModelConfig, NewProvider, Part, ProviderKind, TurnOutcome, UserId,
    WorkerId,
};
use chatd_store_memory::InMemoryChatStore;
use serde_json::json;
use uuid::Uuid;

use crate::report::{Report, Target};

struct Sizes {
    chats: usize,
    rounds: usize,
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> Vec<Report> {
    let sizes =
        if quick { Sizes { chats: 50, rounds: 10 } } else { Sizes { chats: 1000, rounds: 30 } };
    let cycles = (sizes.chats * sizes.rounds) as f64;
    let mut store_best = f64::MAX;
    let mut raw_best = f64::MAX;
    for _ in 0..3 {
        store_best = store_best.min(store_cycles(&sizes).await);
        raw_best = raw_best.min(raw_cycles(&sizes));
    }
    vec![Report::new(
        "memory-store",
        "turn_cycles_per_sec",
        "cycles/s",
        cycles / store_best,
        cycles / raw_best,
        Target::AtLeast(0.5),
    )]
}

fn assistant_parts(round: usize) -> Vec<Part> {
    vec![
        Part::text(format!(
            "Here is what I found in round {round}: the build fails in the linker step."
        )),
        Part::tool_call(format!("call_{round}"), "read_file", json!({"path": "src/main.rs"})),
    ]
}

fn tool_result(round: usize) -> Part {
    Part::tool_result(
        format!("call_{round}"),
        "read_file",
        json!({"content": "fn main() {}"}),
        false,
    )
}

/// Seconds for all cycles through the store.
async fn store_cycles(sizes: &Sizes) -> f64 {
    let store = InMemoryChatStore::new();
    let owner = UserId::new();
    let worker = WorkerId::new();
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "m", 1000))
        .await
        .expect("config");
    let mut chats = Vec::with_capacity(sizes.chats);
    for _ in 0..sizes.chats {
        chats.push(store.create_chat(NewChat::new(owner)).await.expect("chat").id);
    }
    let started = Instant::now();
    for round in 0..sizes.rounds {
        for chat in &chats {
            store
                .send_message(*chat, SendMessage::text(format!("question {round}")))
                .await
                .expect("send");
            let lease = store.acquire(worker, 1).await.expect("acquire")[0];
            let step = Step::new(
                Some(NewMessage::assistant(assistant_parts(round))),
                vec![NewMessage::tool(tool_result(round))],
            );
            store.commit_step(&lease, step).await.expect("commit");
            store.release(&lease, TurnOutcome::Finished).await.expect("release");
            let prompt = store.prompt_messages(*chat).await.expect("prompt");
            std::hint::black_box(prompt);
        }
    }
    started.elapsed().as_secs_f64()
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // read only through black_box
struct RawRow {
    id: i64,
    role: &'static str,
    content: Vec<Part>,
    model_visible: bool,
}

#[derive(Default)]
struct RawChat {
    status: &'static str,
    worker: Option<Uuid>,
    rows: Vec<RawRow>,
}

#[derive(Default)]
struct RawState {
    chats: HashMap<Uuid, RawChat>,
    next_id: i64,
}

impl RawState {
    fn push(&mut self, chat: Uuid, role: &'static str, content: Vec<Part>) {
        self.next_id += 1;
        let id = self.next_id;
        if let Some(c) = self.chats.get_mut(&chat) {
            c.rows.push(RawRow { id, role, content, model_visible: true });
        }
    }
}

/// Seconds for the same cycles on a bare mutex-protected map.
fn raw_cycles(sizes: &Sizes) -> f64 {
    let state = Mutex::new(RawState::default());
    let worker = Uuid::new_v4();
    let chats: Vec<Uuid> = (0..sizes.chats).map(|_| Uuid::new_v4()).collect();
    {
        let mut s = state.lock().expect("lock");
        for chat in &chats {
            s.chats.insert(*chat, RawChat { status: "waiting", ..RawChat::default() });
        }
    }
    let started = Instant::now();
    for round in 0..sizes.rounds {
        for chat in &chats {
            {
                let mut s = state.lock().expect("lock");
                s.push(*chat, "user", vec![Part::text(format!("question {round}"))]);
                if let Some(c) = s.chats.get_mut(chat) {
                    c.status = "pending";
                }
            }
            {
                let mut s = state.lock().expect("lock");
                if let Some(c) = s.chats.get_mut(chat) {
                    c.status = "running";
                    c.worker = Some(worker);
                }
            }
            {
                let mut s = state.lock().expect("lock");
                s.push(*chat, "assistant", assistant_parts(round));
                s.push(*chat, "tool", vec![tool_result(round)]);
            }
            {
                let mut s = state.lock().expect("lock");
                if let Some(c) = s.chats.get_mut(chat) {
                    c.status = "waiting";
                    c.worker = None;
                }
            }
            let prompt: Vec<RawRow> = {
                let s = state.lock().expect("lock");
                s.chats
                    .get(chat)
                    .map(|c| c.rows.iter().filter(|r| r.model_visible).cloned().collect())
                    .unwrap_or_default()
            };
            std::hint::black_box(prompt);
        }
    }
    started.elapsed().as_secs_f64()
}
