//! The store conformance suite against `InMemoryChatStore`: one test per scenario, each on
//! a fresh store.

use chatd_store_memory::InMemoryChatStore;

chatd_core::store_conformance_tests!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    || InMemoryChatStore::new()
);
