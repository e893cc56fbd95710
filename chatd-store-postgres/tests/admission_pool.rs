//! Spend admissions hold a pooled connection (a transaction with the owner's lock) while the
//! runtime reads what was spent through the same pool (BEHAVIOUR §17). Admissions of many
//! owners at once must never take every connection, or each would wait for a read no
//! connection is left to serve.

use std::time::Duration;

use chatd_core::{ChatStore, NewChat, NewModelConfig, NewProvider, ProviderKind, UserId};
use chatd_store_postgres::PostgresChatStore;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn admissions_of_many_owners_leave_connections_for_their_reads(pool: PgPool) {
    // A pool of two connections, and four owners' calls admitted at once.
    let small = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .expect("pool");
    let store = PostgresChatStore::new(small);
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    let config = NewModelConfig::new(ProviderKind::OpenAi, "gpt-test", 1_000).as_default();
    store.create_model_config(config).await.expect("config");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = UserId::new();
            let chat = store.create_chat(NewChat::new(owner)).await.expect("chat");
            let mut admission = store.begin_spend_admission(owner).await.expect("admission");
            // What the runner does inside an admission: read the chat through the pool.
            store.get_chat(chat.id).await.expect("a read while admitted");
            admission.held(chat.id, chat.id).await.expect("held");
            admission.finish(None).await.expect("finish");
        }));
    }
    let all = async {
        for task in tasks {
            task.await.expect("task");
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("every admission finished: none starved its own reads of connections");
}
