//! The resume property against both stores (200 seeded cases each): a client that
//! disconnects at random points and resubscribes from its last cursor receives exactly the
//! whole sequence — no gap, no duplicate, cursors strictly increasing.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::events::SubscribeOptions;
use chatd_core::store::ChatStore;
use chatd_core::{NewModelConfig, NewProvider, ProviderKind};
use chatd_store_memory::InMemoryChatStore;
use chatd_tests::pg::FreshDb;

const CASES: u64 = 200;
const SEED: u64 = 0x00c4_a7d0;

async fn configure(store: &dyn ChatStore) {
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    store
        .create_model_config(
            NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 200_000).as_default(),
        )
        .await
        .expect("config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_any_cursor_loses_and_repeats_nothing_in_memory() {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    chatd_tests::resume::run(store, CASES, SEED, options)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_any_cursor_loses_and_repeats_nothing_on_postgres() {
    let db = FreshDb::create().await;
    let store: Arc<dyn ChatStore> = Arc::new(db.store().await);
    configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    let outcome = chatd_tests::resume::run(store, CASES, SEED, options).await;
    db.drop().await;
    outcome.unwrap_or_else(|err| panic!("{err}"));
}
