//! The conformance suite's `files` scenarios against `ObjectFileStore` on the local
//! filesystem (`object_store`), with the chats in `InMemoryChatStore`.

use std::sync::Arc;

use chatd_core::files::ObjectFileStore;
use chatd_core::testing::store::{StoreRef, files};
use chatd_store_memory::InMemoryChatStore;
use object_store::local::LocalFileSystem;

/// Memory chats whose files live in a fresh directory (removed when the guard drops).
fn store() -> (StoreRef, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = LocalFileSystem::new_with_prefix(dir.path()).expect("local object store");
    let chats = InMemoryChatStore::new();
    let files = ObjectFileStore::new(Arc::new(objects), Arc::new(chats.clone()));
    println!("object store: local filesystem at {}", dir.path().display());
    (Arc::new(chats.with_file_store(Arc::new(files))), dir)
}

#[tokio::test]
async fn files_are_stored_with_their_sniffed_type() {
    let (store, dir) = store();
    files::files_are_stored_with_their_sniffed_type(store).await;
    assert!(dir.path().join("data").is_dir(), "the bytes are on disk");
}

#[tokio::test]
async fn files_are_scoped_to_their_owner() {
    let (store, _dir) = store();
    files::files_are_scoped_to_their_owner(store).await;
}

#[tokio::test]
async fn a_chat_holds_at_most_its_cap() {
    let (store, _dir) = store();
    files::a_chat_holds_at_most_its_cap(store).await;
}

#[tokio::test]
async fn files_go_with_their_chat() {
    let (store, _dir) = store();
    files::files_go_with_their_chat(store).await;
}
