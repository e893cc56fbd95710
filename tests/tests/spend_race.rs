//! Spend limits across processes (BEHAVIOUR §17): two worker processes on one PostgreSQL
//! database race on one owner's last micro-unit of a daily limit. Calls admitted anywhere
//! hold an upper bound of their cost, so the second call waits for the first to settle and
//! is refused: the overshoot is one model call, not one per worker.

use std::time::{Duration, Instant};

use chatd_core::store::ChatStore;
use chatd_core::usage::{CallKind, NewUsage, Prices, UsageQuery};
use chatd_core::{ChatStatus, NewChat, NewModelConfig, NewProvider, ProviderKind, Usage, UserId};
use chatd_providers::testing::{FakeResponse, FakeServer};
use chatd_tests::node::Node;
use chatd_tests::pg::FreshDb;

/// A Chat Completions answer streamed over about a second and a half, reporting 30 prompt
/// and 10 completion tokens.
fn answer() -> FakeResponse {
    let mut body = String::new();
    for word in 0..15 {
        body.push_str(&format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{word} \"}},\"finish_reason\":null}}]}}\n\n"
        ));
    }
    body.push_str(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
         data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
         \"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":10,\"total_tokens\":40}}\n\n\
         data: [DONE]\n\n",
    );
    let chunks = body.len().div_ceil(64) as u64;
    FakeResponse::sse(body).chunked(64).with_chunk_delay(Duration::from_millis(1500 / chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_overshoot_an_owners_last_budget_by_at_most_one_call() {
    const CHATS: usize = 4;
    const LIMIT: i64 = 1_001;
    let db = FreshDb::create().await;
    let server = FakeServer::start((0..CHATS).map(|_| answer()).collect()).await.expect("server");
    let store = db.store().await;
    store
        .create_provider(NewProvider::new(ProviderKind::OpenAiCompat).with_base_url(server.url()))
        .await
        .expect("provider");
    // 1 micro-unit per input token, 10 per output token: the answer above costs 130.
    let config = NewModelConfig::new(ProviderKind::OpenAiCompat, "m", 32_000)
        .with_prices(Prices::new(1_000_000, 10_000_000))
        .as_default();
    let config = store.create_model_config(config).await.expect("config");
    let owner = UserId::new();
    // Spent today before the race: 1 000 of 1 001.
    let earlier = store.create_chat(NewChat::new(owner)).await.expect("chat");
    let before = Usage { input_tokens: 1_000, total_tokens: 1_000, ..Usage::default() };
    let record = NewUsage::for_chat(&earlier, config.id, CallKind::Step, before);
    store.record_usage(record).await.expect("spent before");
    let mut chats = Vec::new();
    for n in 0..CHATS {
        let new = NewChat::new(owner).with_text(format!("question {n}"));
        chats.push(store.create_chat(new).await.expect("chat").id);
    }

    // One turn at a time per process: each worker takes its own chat, and they race.
    let limit = LIMIT.to_string();
    let args = ["--daily-spend-limit", limit.as_str(), "--max-turns", "1"];
    let workers = [Node::worker(&db, &args), Node::worker(&db, &args)];
    for worker in &workers {
        worker.wait_line(|l| l.starts_with("ready"), Duration::from_secs(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let mut ended = Vec::new();
        for id in &chats {
            let chat = store.get_chat(*id).await.expect("chat");
            if matches!(chat.status, ChatStatus::Waiting | ChatStatus::Error) {
                ended.push(chat);
            }
        }
        if ended.len() == CHATS {
            break ended;
        }
        assert!(Instant::now() < deadline, "chats still running: {} ended", ended.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let turns: Vec<String> = workers
        .iter()
        .flat_map(|w| w.lines().into_iter().filter(|l| l.starts_with("turn ")))
        .collect();
    let ran_on_both = workers.iter().all(|w| w.lines().iter().any(|l| l.starts_with("turn ")));
    println!("turns: {turns:?}");
    assert!(ran_on_both, "both workers ran turns (they raced): {turns:?}");

    let calls = server.requests().len();
    let spent: i64 = store
        .usage_report(UsageQuery::owner(owner))
        .await
        .expect("report")
        .iter()
        .map(|b| b.cost_micros)
        .sum();
    assert_eq!(calls, 1, "one call past the last micro-unit, not one per worker");
    assert_eq!(spent, 1_000 + 130, "the overshoot is that one call");
    let refusal = format!("spend limit reached: owner per day, {spent} of {LIMIT}");
    let finished = ended.iter().filter(|c| c.status == ChatStatus::Waiting).count();
    let refused: Vec<_> = ended.iter().filter(|c| c.status == ChatStatus::Error).collect();
    assert_eq!(finished, 1, "the admitted call's turn finished");
    for chat in &refused {
        assert_eq!(
            chat.last_error.as_deref(),
            Some(refusal.as_str()),
            "the refusal names the limit"
        );
    }
    println!(
        "two worker processes, {CHATS} chats of one owner at 1 000 of {LIMIT}: {calls} model call, \
         {spent} spent, {} turns refused with \"{refusal}\"",
        refused.len()
    );
    drop(workers);
    db.drop().await;
}
