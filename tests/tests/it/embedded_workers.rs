//! Several simulated workers share one `InMemoryChatStore` (the embedded default), as the
//! runtime will: every chat is answered exactly once per user message, queued follow-ups
//! are answered in order, and nothing is lost or duplicated.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::store::{ChatStore, LeaseStatus, MessageQuery, SendMessage, Step};
use chatd_core::{
    ChatStatus, NewChat, NewMessage, NewModelConfig, NewProvider, Part, ProviderKind, Role,
    TurnOutcome, UserId, WorkerId,
};
use chatd_store_memory::InMemoryChatStore;

/// A worker that answers each pending chat with one assistant message echoing the last user
/// message, until `stop` turns true and nothing is pending.
async fn simulated_worker(
    store: Arc<dyn ChatStore>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let worker = WorkerId::new();
    let mut turns = 0;
    loop {
        let leases = store.acquire(worker, 2).await.expect("acquire");
        if leases.is_empty() {
            if *stop.borrow() {
                return turns;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let statuses = store.heartbeat(worker, &leases).await.expect("heartbeat");
        assert!(statuses.iter().all(|s| *s == LeaseStatus::Held));
        for lease in leases {
            let prompt = store.prompt_messages(lease.chat_id).await.expect("prompt");
            let last_user =
                prompt.iter().rev().find(|m| m.role == Role::User).expect("a user message");
            let answer =
                NewMessage::assistant(vec![Part::text(format!("echo: {}", last_user.text()))]);
            store.commit_step(&lease, Step::new(Some(answer), vec![])).await.expect("commit");
            tokio::task::yield_now().await;
            store.release(&lease, TurnOutcome::Finished).await.expect("release");
            turns += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_answer_every_message_once_in_order() {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-test", 128_000))
        .await
        .expect("config");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(simulated_worker(Arc::clone(&store), stopped.clone())))
        .collect();

    let owner = UserId::new();
    let mut chats = Vec::new();
    for i in 0..40 {
        let chat = store
            .create_chat(NewChat::new(owner).with_text(format!("c{i} m0")))
            .await
            .expect("create");
        chats.push(chat.id);
    }
    for round in 1..=3 {
        for (i, chat) in chats.iter().enumerate() {
            store
                .send_message(*chat, SendMessage::text(format!("c{i} m{round}")))
                .await
                .expect("send");
        }
    }
    // Wait until every chat is idle with all four messages answered.
    for _ in 0..2000 {
        let mut idle = 0;
        for chat in &chats {
            let c = store.get_chat(*chat).await.expect("get");
            let queued = store.list_queued(*chat).await.expect("queue").len();
            if c.status == ChatStatus::Waiting && queued == 0 {
                idle += 1;
            }
        }
        if idle == chats.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(true).expect("workers listen");
    let mut total_turns = 0;
    for worker in workers {
        total_turns += worker.await.expect("worker");
    }

    for (i, chat) in chats.iter().enumerate() {
        let texts: Vec<String> = store
            .list_messages(*chat, MessageQuery::all())
            .await
            .expect("messages")
            .iter()
            .map(|m| m.text())
            .collect();
        // A queued message is promoted as soon as the previous turn ends, so each user
        // message is followed by exactly one answer. Messages sent while a chat was idle
        // join the history directly; in that case two user messages may precede one answer,
        // which echoes the later of them.
        let users: Vec<_> = texts.iter().filter(|t| !t.starts_with("echo: ")).cloned().collect();
        assert_eq!(
            users,
            (0..=3).map(|r| format!("c{i} m{r}")).collect::<Vec<_>>(),
            "chat {i}: {texts:?}"
        );
        let last = texts.last().expect("non-empty");
        assert_eq!(
            last,
            &format!("echo: c{i} m3"),
            "chat {i} ends with the answer to its last message"
        );
        assert!(
            texts.windows(2).all(|w| !(w[0].starts_with("echo: ") && w[1].starts_with("echo: "))),
            "no message answered twice: {texts:?}"
        );
    }
    assert!(total_turns >= chats.len(), "each chat ran at least one turn");
}
