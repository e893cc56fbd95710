//! A seeded property test of turns that wait (BEHAVIOUR §16): random interleavings of
//! decisions (some stale), interrupts, new messages, edits, deadlines, pauses and worker
//! deaths, on the in-memory store with the real turn runner. Whatever the order:
//! a denied call never runs, a side-effecting call never runs twice, an accepted decision is
//! never lost, and every finished step answers each of its calls exactly once, right after
//! the call (a history every provider accepts).
//!
//! `CHATD_PROPERTY_CASES` sets how many sequences run (default 40; `chatd-bench` style long
//! runs can set thousands); `CHATD_PROPERTY_SEED` replays one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatd_core::runtime::tools::{Tool, ToolContext, ToolError, ToolRules, ToolSet};
use chatd_core::runtime::turn::{ActionDeadlines, StopReason, TurnEnd, TurnRunner, TurnSignal};
use chatd_core::store::{BusyBehavior, MessageQuery, SendMessage};
use chatd_core::testing::ScriptedCall;
use chatd_core::tool_call::{ActionKind, Decision};
use chatd_core::{ChatStatus, Part, Role, StoreError, WorkerId};
use serde_json::{Value, json};

use crate::support::*;

/// Counts runs per call id.
#[derive(Clone, Default)]
struct Runs(Arc<Mutex<HashMap<String, usize>>>);

impl Runs {
    fn of(&self, id: &str) -> usize {
        self.0.lock().expect("runs").get(id).copied().unwrap_or(0)
    }
}

struct Counting {
    name: &'static str,
    idempotent: bool,
    runs: Runs,
}

#[async_trait]
impl Tool for Counting {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "counts"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    fn idempotent(&self) -> bool {
        self.idempotent
    }
    async fn run(&self, _ctx: &ToolContext, args: Value) -> Result<Value, ToolError> {
        let id = args["id"].as_str().unwrap_or_default().to_owned();
        *self.runs.0.lock().expect("runs").entry(id).or_default() += 1;
        tokio::task::yield_now().await;
        Ok(json!({"ran": args}))
    }
}

struct World {
    fx: Fixture,
    runs: Runs,
    next_call: usize,
    /// Calls a person denied (the decision was accepted).
    denied: HashSet<String>,
    /// Calls a person approved (accepted), with whether the step was cut afterwards.
    approved: HashMap<String, bool>,
    /// Every call id the model made.
    made: Vec<String>,
    rng: fastrand::Rng,
}

impl World {
    /// A worker's runner: `pay` asks first; its approvals are due at once or in an hour.
    fn runner(&mut self) -> TurnRunner {
        let tools = ToolSet::new()
            .with(Arc::new(Counting { name: "pay", idempotent: false, runs: self.runs.clone() }))
            .with(Arc::new(Counting { name: "peek", idempotent: true, runs: self.runs.clone() }));
        let approval = if self.rng.bool() { Duration::ZERO } else { Duration::from_secs(3600) };
        let provider = Arc::new(Scripted(Arc::clone(&self.fx.provider)));
        TurnRunner::new(Arc::clone(&self.fx.store), provider, tools)
            .with_titles(false)
            .with_policy(Arc::new(ToolRules::new().ask("pay")))
            .with_action_deadlines(ActionDeadlines { approval, ..ActionDeadlines::default() })
    }

    /// Keeps the scripted model supplied: a step calls `pay` and `peek` (fresh ids) or
    /// answers with text.
    fn feed(&mut self) {
        while self.fx.provider.remaining() < 4 {
            if self.rng.u8(0..3) == 0 {
                self.fx.provider.push(ScriptedCall::text("ok", None));
            } else {
                let (pay, peek) = (format!("p{}", self.next_call), format!("k{}", self.next_call));
                self.next_call += 1;
                self.fx.provider.push(ScriptedCall::tool_calls(
                    &[
                        (pay.as_str(), "pay", json!({"id": pay})),
                        (peek.as_str(), "peek", json!({"id": peek})),
                    ],
                    None,
                ));
                self.made.extend([pay, peek]);
            }
        }
    }

    async fn chat(&self) -> chatd_core::Chat {
        self.fx.store.get_chat(self.fx.chat).await.expect("chat")
    }

    /// A worker takes the chat if it is pending and runs its turn; with `die`, it is stopped
    /// partway and never releases (the stale sweep takes the chat back).
    async fn work(&mut self, die: bool) {
        self.feed();
        let Some(lease) = self.fx.store.acquire(WorkerId::new(), 1).await.expect("acquire").pop()
        else {
            return;
        };
        let runner = self.runner();
        let signal = TurnSignal::new();
        if die {
            let stopper = signal.clone();
            let after = Duration::from_micros(self.rng.u64(0..3000));
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                stopper.stop(StopReason::Shutdown);
            });
        }
        let end = runner.run(lease, signal).await;
        match end {
            TurnEnd::Release(_) if die => {
                self.fx.store.recover_stale(Duration::ZERO).await.expect("recover");
            }
            TurnEnd::Release(outcome) => match self.fx.store.release(&lease, outcome).await {
                Ok(_) | Err(StoreError::LeaseLost { .. }) => {}
                Err(err) => panic!("release: {err}"),
            },
            _ => {}
        }
    }

    /// Decides some open calls (sometimes naming a stale id, which must change nothing).
    async fn decide(&mut self) {
        let chat = self.chat().await;
        let open = chat.open_calls();
        let mut decisions = Vec::new();
        for call in &open {
            if self.rng.bool() {
                continue;
            }
            let id = call.tool_call_id.clone();
            decisions.push(match (call.kind, self.rng.u8(0..3)) {
                (ActionKind::Approval, 0) => Decision::Deny { tool_call_id: id, reason: None },
                (ActionKind::Approval, 1) => {
                    Decision::Approve { tool_call_id: id.clone(), args: Some(json!({"id": id})) }
                }
                _ => Decision::Approve { tool_call_id: id, args: None },
            });
        }
        let stale = self.rng.u8(0..4) == 0 && !self.made.is_empty();
        if stale {
            let old = self.made[self.rng.usize(0..self.made.len())].clone();
            if !open.iter().any(|c| c.tool_call_id == old) {
                decisions.push(Decision::Approve { tool_call_id: old, args: None });
            }
        }
        if decisions.is_empty() {
            return;
        }
        let before = self.chat().await.tool_calls;
        match self.fx.store.resolve_tool_calls(self.fx.chat, decisions.clone()).await {
            Ok(_) => {
                for decision in decisions {
                    match decision {
                        Decision::Deny { tool_call_id, .. } => {
                            self.denied.insert(tool_call_id);
                        }
                        Decision::Approve { tool_call_id, .. } => {
                            self.approved.insert(tool_call_id, false);
                        }
                        _ => {}
                    }
                }
            }
            Err(StoreError::Conflict(_)) => {
                assert_eq!(self.chat().await.tool_calls, before, "a refused decision applied");
            }
            Err(err) => panic!("resolve: {err}"),
        }
    }

    /// Marks approved calls whose step is being cut (they may end interrupted, not run).
    async fn cut(&mut self) {
        let records = self.chat().await.tool_calls;
        for record in records {
            if let Some(cut) = self.approved.get_mut(&record.tool_call_id) {
                *cut = true;
            }
        }
    }

    async fn step(&mut self) {
        match self.rng.u8(0..10) {
            0..=2 => self.work(false).await,
            3 => self.work(true).await,
            4 | 5 => self.decide().await,
            6 => {
                self.cut().await;
                self.fx.store.interrupt(self.fx.chat).await.expect("interrupt");
            }
            7 => {
                let busy =
                    if self.rng.bool() { BusyBehavior::Interrupt } else { BusyBehavior::Queue };
                self.cut().await;
                let send = SendMessage::text("more").with_busy(busy);
                match self.fx.store.send_message(self.fx.chat, send).await {
                    Ok(_) | Err(StoreError::QueueFull { .. }) => {}
                    Err(err) => panic!("send: {err}"),
                }
            }
            8 => {
                let first = self.fx.messages().await.into_iter().find(|m| m.role == Role::User);
                if let Some(first) = first {
                    self.cut().await;
                    self.fx
                        .store
                        .edit_message(self.fx.chat, first.id, vec![Part::text("again")])
                        .await
                        .expect("edit");
                }
            }
            _ => {
                self.fx.store.expire_tool_calls(100).await.expect("sweep");
                if self.rng.bool() {
                    let _ = self.fx.store.pause(self.fx.chat).await;
                } else {
                    let _ = self.fx.store.resume(self.fx.chat).await;
                }
            }
        }
        self.check_runs();
    }

    fn check_runs(&self) {
        for id in &self.denied {
            assert_eq!(self.runs.of(id), 0, "denied call {id} ran");
        }
        for id in self.made.iter().filter(|id| id.starts_with('p')) {
            assert!(
                self.runs.of(id) <= 1,
                "side-effecting call {id} ran {} times",
                self.runs.of(id)
            );
        }
    }

    /// Settles the chat: every open call denied, paused chats resumed, work run, until idle.
    async fn drain(&mut self) {
        // The scripted model keeps calling tools two times in three: a few rounds each.
        for _ in 0..1000 {
            let chat = self.chat().await;
            match chat.status {
                ChatStatus::RequiresAction => {
                    let open = chat.open_calls();
                    let deny: Vec<Decision> = open
                        .iter()
                        .map(|c| Decision::Deny {
                            tool_call_id: c.tool_call_id.clone(),
                            reason: None,
                        })
                        .collect();
                    for decision in &deny {
                        if let Decision::Deny { tool_call_id, .. } = decision {
                            self.denied.insert(tool_call_id.clone());
                        }
                    }
                    self.fx.store.resolve_tool_calls(self.fx.chat, deny).await.expect("deny");
                }
                ChatStatus::Paused => {
                    self.fx.store.resume(self.fx.chat).await.expect("resume");
                }
                ChatStatus::Pending => self.work(false).await,
                _ => return,
            }
        }
        panic!("the chat never settled: {:?}", self.chat().await);
    }

    /// Every step answers each call once, right after it; decisions were kept.
    async fn check_history(&self) {
        let messages =
            self.fx.store.list_messages(self.fx.chat, MessageQuery::all()).await.expect("list");
        let mut open: Vec<String> = Vec::new();
        let mut answered: HashMap<String, Value> = HashMap::new();
        for message in &messages {
            match message.role {
                Role::Assistant => {
                    assert!(open.is_empty(), "calls {open:?} were never answered: {messages:#?}");
                    open = message
                        .content
                        .iter()
                        .filter_map(|p| match p {
                            Part::ToolCall { tool_call_id, .. } => Some(tool_call_id.clone()),
                            _ => None,
                        })
                        .collect();
                }
                Role::Tool => {
                    for part in &message.content {
                        let Part::ToolResult { tool_call_id, result, .. } = part else { continue };
                        let at = open.iter().position(|id| id == tool_call_id);
                        let at = at.unwrap_or_else(|| {
                            panic!("result for {tool_call_id} without its call")
                        });
                        open.remove(at);
                        answered.insert(tool_call_id.clone(), result.clone());
                    }
                }
                _ => assert!(
                    open.is_empty(),
                    "a message came between calls {open:?} and their results"
                ),
            }
        }
        assert!(open.is_empty(), "calls {open:?} were never answered");
        for id in &self.denied {
            if let Some(result) = answered.get(id) {
                let text = result.as_str().unwrap_or_default();
                assert!(text.starts_with(Decision::DENIED_PREFIX), "denied {id} answered {result}");
            }
        }
        for (id, cut) in &self.approved {
            let Some(result) = answered.get(id) else { continue };
            match result.as_str() {
                // Its worker stopped while it ran: it may or may not have run, once at most.
                Some(chatd_core::testing::pinned::IN_DOUBT_RESULT) => {
                    assert!(self.runs.of(id) <= 1)
                }
                Some(chatd_core::testing::pinned::INTERRUPTED_TOOL_RESULT) => {
                    assert!(cut, "approved {id} was interrupted though its step was never cut");
                }
                _ => assert_eq!(self.runs.of(id), 1, "approved {id} did not run: {result}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_interleavings_keep_every_decision_and_answer_each_call_once() {
    let cases: u64 =
        std::env::var("CHATD_PROPERTY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let seeds: Vec<u64> =
        match std::env::var("CHATD_PROPERTY_SEED").ok().and_then(|v| v.parse().ok()) {
            Some(seed) => vec![seed],
            None => (0..cases).map(|n| 0x5eed_0000 + n).collect(),
        };
    let (mut steps, mut waits) = (0, 0);
    for seed in seeds {
        let mut world = World {
            fx: fixture(Vec::new()).await,
            runs: Runs::default(),
            next_call: 0,
            denied: HashSet::new(),
            approved: HashMap::new(),
            made: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        };
        for _ in 0..30 {
            world.step().await;
            steps += 1;
            if world.chat().await.status == ChatStatus::RequiresAction {
                waits += 1;
            }
        }
        world.drain().await;
        world.check_runs();
        world.check_history().await;
        println!(
            "seed {seed:#x}: {} calls made, {} denied, {} approved",
            world.made.len(),
            world.denied.len(),
            world.approved.len()
        );
    }
    println!("{steps} steps, {waits} of them left the chat waiting");
    assert!(waits > 0, "the sequences never made a chat wait: they test nothing");
}
