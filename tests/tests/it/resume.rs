//! The resume property against both stores (200 seeded cases each), through a reader of
//! the subscription's own and through the chat's shared reader: a client that disconnects
//! at random points and resubscribes from its last cursor receives exactly the whole
//! sequence — messages, parts, turn start and end, history rewrites; no gap, no duplicate,
//! cursors strictly increasing.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::events::SubscribeOptions;
use chatd_core::store::ChatStore;
use chatd_store_memory::InMemoryChatStore;
use chatd_tests::pg::FreshDb;
use chatd_tests::resume::Via;

const CASES: u64 = 200;
const SEED: u64 = 0x00c4_a7d0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_any_cursor_loses_and_repeats_nothing_in_memory() {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    chatd_tests::configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    chatd_tests::resume::run(store, CASES, SEED, options, Via::OwnReader)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_any_cursor_loses_and_repeats_nothing_on_postgres() {
    let db = FreshDb::create().await;
    let store: Arc<dyn ChatStore> = Arc::new(db.store().await);
    chatd_tests::configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    let outcome = chatd_tests::resume::run(store, CASES, SEED, options, Via::OwnReader).await;
    db.drop().await;
    outcome.unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_through_the_shared_reader_loses_and_repeats_nothing_in_memory() {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    chatd_tests::configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    chatd_tests::resume::run(store, CASES / 2, SEED, options, Via::SharedReader)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_through_the_shared_reader_loses_and_repeats_nothing_on_postgres() {
    let db = FreshDb::create().await;
    let store: Arc<dyn ChatStore> = Arc::new(db.store().await);
    chatd_tests::configure(store.as_ref()).await;
    let options = SubscribeOptions::default().with_poll(Duration::from_millis(200));
    let outcome =
        chatd_tests::resume::run(store, CASES / 2, SEED, options, Via::SharedReader).await;
    db.drop().await;
    outcome.unwrap_or_else(|err| panic!("{err}"));
}
