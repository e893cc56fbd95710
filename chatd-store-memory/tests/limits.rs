//! A store given its own input limits uses them.

use chatd_core::store::Limits;
use chatd_core::store::{ChatStore, StoreError};
use chatd_core::{NewChat, NewModelConfig, NewProvider, Part, ProviderKind, UserId};
use chatd_store_memory::InMemoryChatStore;

#[tokio::test]
async fn configured_limits_replace_the_defaults() {
    let store = InMemoryChatStore::new()
        .with_limits(Limits::default().with_max_parts(2).with_max_message_bytes(10));
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "m", 1000))
        .await
        .expect("config");
    let parts = vec![Part::text("a"), Part::text("b"), Part::text("c")];
    let err = store
        .create_chat(NewChat::new(UserId::new()).with_message(parts))
        .await
        .expect_err("parts");
    assert!(
        matches!(err, StoreError::Validation { ref reason, .. } if reason.contains("at most 2 parts")),
        "{err}"
    );
    let err = store
        .create_chat(NewChat::new(UserId::new()).with_text("eleven byte"))
        .await
        .expect_err("size");
    assert!(
        matches!(err, StoreError::Validation { ref reason, .. } if reason.contains("at most 10 bytes")),
        "{err}"
    );
    store
        .create_chat(NewChat::new(UserId::new()).with_text("ten bytes!"))
        .await
        .expect("at the limit");
}

#[tokio::test]
async fn the_queue_cap_is_configurable() {
    use chatd_core::store::SendMessage;
    let store = InMemoryChatStore::new().with_limits(Limits::default().with_max_queued_messages(1));
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "m", 1000))
        .await
        .expect("config");
    let chat =
        store.create_chat(NewChat::new(UserId::new()).with_text("busy")).await.expect("chat");
    store.send_message(chat.id, SendMessage::text("one")).await.expect("queued");
    let err = store.send_message(chat.id, SendMessage::text("two")).await.expect_err("full");
    assert!(matches!(err, StoreError::QueueFull { max: 1 }), "{err}");
}
