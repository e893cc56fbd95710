//! The memory store's files go with their chat by themselves (BEHAVIOUR §19): a deletion and
//! a retention purge remove them without `FileStore::delete_chat_files`.

use std::time::Duration;

use chatd_core::files::testing_png;
use chatd_core::store::Limits;
use chatd_core::store::{ChatStore, RetentionPolicy};
use chatd_core::{NewChat, NewFile, NewModelConfig, NewProvider, ProviderKind, UserId};
use chatd_store_memory::InMemoryChatStore;

#[tokio::test]
async fn a_chats_files_go_with_it() {
    let store = InMemoryChatStore::new();
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "m", 1000))
        .await
        .expect("config");
    let owner = UserId::new();
    let files = store.file_store().expect("files");
    let mut chats = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let chat = store.create_chat(NewChat::new(owner)).await.expect("chat").id;
        let file = NewFile::new(owner, Some(chat), "a.png", testing_png(1, 1), &Limits::default());
        ids.push(files.put_file(file.expect("file")).await.expect("put").id);
        chats.push(chat);
    }
    store.delete_chat(chats[0]).await.expect("delete");
    store.set_archived(chats[1], true).await.expect("archive");
    let policy = RetentionPolicy::off().with_purge_archived_after(Duration::ZERO);
    assert_eq!(store.apply_retention(&policy, 10).await.expect("purge").purged, [chats[1]]);
    for (id, kept) in ids.iter().zip([false, false, true]) {
        assert_eq!(files.read_file(None, *id).await.is_ok(), kept, "{id}");
    }
}
