//! A guided run of one chat's life on `InMemoryChatStore`, the embedded default: create,
//! queue while a turn runs, commit steps under a fenced lease, promote the queue, edit,
//! compact, and a zombie worker being refused.
//!
//! Needs nothing (no database, no API key). Run:
//!
//! ```text
//! cargo run -p example-store-tour
//! ```
//!
//! The model is simulated by hand-written steps: the agent loop that calls real providers
//! is not part of chatd yet.

use std::error::Error;
use std::time::Duration;

use chatd_core::store::{
    BusyBehavior, ChatStore, Compaction, Delivery, Fence, MessageQuery, SendMessage, Step,
};
use chatd_core::{
    Chat, NewChat, NewMessage, NewModelConfig, NewProvider, Part, ProviderKind, TurnOutcome,
    UserId, WorkerId,
};
use chatd_store_memory::InMemoryChatStore;
use serde_json::json;

fn show(what: &str, chat: &Chat) {
    println!("{what:<48} status={:<9} title={:?}", chat.status.as_str(), chat.title);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    println!("chatd store tour (in-memory store, simulated model)\n");
    let store = InMemoryChatStore::new();
    store.create_provider(NewProvider::new(ProviderKind::OpenAi).with_api_key("sk-demo")).await?;
    let config = store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-5", 400_000))
        .await?;
    println!("model config {} is the default: {}", config.model, config.is_default);

    let owner = UserId::new();
    let chat = store
        .create_chat(
            NewChat::new(owner)
                .with_system_prompt("You are a careful coding agent.")
                .with_text("Why does the release build fail on CI?"),
        )
        .await?;
    show("created with a first message", &chat);

    let worker = WorkerId::new();
    let lease = store.acquire(worker, 1).await?[0];
    show("acquired by a worker", &store.get_chat(chat.id).await?);

    let queued =
        store.send_message(chat.id, SendMessage::text("Also check the Windows job.")).await?;
    if let Delivery::Queued(q) = &queued.delivery {
        println!("{:<48} queue position id={}", "a follow-up while the turn runs is queued", q.id);
    }

    let step = Step::new(
        Some(NewMessage::assistant(vec![
            Part::text("Let me look at the CI config."),
            Part::tool_call("call_1", "read_file", json!({"path": ".ci/run"})),
        ])),
        vec![NewMessage::tool(Part::tool_result(
            "call_1",
            "read_file",
            json!({"content": "cargo build --release"}),
            false,
        ))],
    );
    let rows = store.commit_step(&lease, step).await?;
    println!("{:<48} {} rows (assistant + tool)", "step committed under the lease", rows.len());
    store
        .commit_step(
            &lease,
            Step::new(
                Some(NewMessage::assistant(vec![Part::text("The linker runs out of memory.")])),
                vec![],
            ),
        )
        .await?;
    show(
        "turn released; queue head promoted",
        &store.release(&lease, TurnOutcome::Finished).await?,
    );

    let lease = store.acquire(worker, 1).await?[0];
    let interrupt = SendMessage::text("Stop, look at the macOS job instead.")
        .with_busy(BusyBehavior::Interrupt);
    show(
        "an interrupting message asks the turn to stop",
        &store.send_message(chat.id, interrupt).await?.chat,
    );
    store
        .commit_step(
            &lease,
            Step::new(Some(NewMessage::assistant(vec![Part::text("The Windows job…")])), vec![]),
        )
        .await?;
    show(
        "partial answer kept, interrupting msg promoted",
        &store.release(&lease, TurnOutcome::Interrupted).await?,
    );

    let zombie = store.acquire(worker, 1).await?[0];
    tokio::time::sleep(Duration::from_millis(20)).await;
    let recovered = store.recover_stale(Duration::from_millis(10)).await?;
    println!(
        "{:<48} {} chat(s) back to pending",
        "the worker went silent: stale recovery",
        recovered.len()
    );
    let late = store
        .commit_step(
            &zombie,
            Step::new(Some(NewMessage::assistant(vec![Part::text("late")])), vec![]),
        )
        .await;
    println!(
        "{:<48} {}",
        "the zombie's late write",
        late.err().map(|e| e.to_string()).unwrap_or_default()
    );

    let lease = store.acquire(WorkerId::new(), 1).await?[0];
    store
        .commit_step(
            &lease,
            Step::new(
                Some(NewMessage::assistant(vec![Part::text("macOS uses an old Xcode.")])),
                vec![],
            ),
        )
        .await?;
    let summary = Compaction::new(
        vec![Part::text(
            "Summary so far: CI release build OOMs in the linker; macOS uses an old Xcode.",
        )],
        Part::tool_call("sum_1", "chat_summarized", json!({})),
        Part::tool_result(
            "sum_1",
            "chat_summarized",
            json!({"summary": "…", "source": "automatic"}),
            false,
        ),
    )
    .with_model_config(config.id);
    store.write_compaction(Fence::Lease(lease), summary).await?;
    store.release(&lease, TurnOutcome::Finished).await?;
    let all = store.list_messages(chat.id, MessageQuery::all()).await?;
    let prompt = store.prompt_messages(chat.id).await?;
    println!(
        "{:<48} {} stored, {} sent to the model",
        "after a compaction",
        all.len(),
        prompt.len()
    );

    let first_user = all
        .iter()
        .find(|m| m.role == chatd_core::Role::User)
        .map(|m| m.id)
        .ok_or("no user message")?;
    let edited = store
        .edit_message(chat.id, first_user, vec![Part::text("Why does the debug build fail?")])
        .await?;
    show("edited the first message: history cut", &edited.chat);
    println!("{:<48} {} later messages deleted", "", edited.deleted_messages);
    Ok(())
}
