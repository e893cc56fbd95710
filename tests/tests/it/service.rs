//! The `Chatd` facade (BEHAVIOUR §11): owners only, scopes, admin-only configuration, keys never
//! shown, and the chat-list watch.

use std::sync::Arc;
use std::time::Duration;

use chatd_core::events::{OwnerEvent, OwnerEventKind};
use chatd_core::service::{ChatdError, Scope};
use chatd_core::store::{ChatStore, SendMessage};
use chatd_core::{
    Actor, ChatFilter, ChatStatus, ChatUpdate, Chatd, NewChat, NewModelConfig, NewProvider,
    ProviderKind, Secret, StoreError, UserId,
};
use chatd_store_memory::InMemoryChatStore;
use futures::StreamExt;

async fn service() -> (Chatd, Actor) {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    let chatd = Chatd::new(store);
    let admin = Actor::admin(UserId::new());
    chatd
        .create_provider(
            &admin,
            NewProvider::new(ProviderKind::Anthropic).with_api_key(Secret::new("sk-ant-secret")),
        )
        .await
        .expect("provider");
    chatd
        .create_model_config(
            &admin,
            NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 200_000).as_default(),
        )
        .await
        .expect("config");
    (chatd, admin)
}

fn is_not_found(result: &Result<impl std::fmt::Debug, ChatdError>) -> bool {
    matches!(result, Err(ChatdError::Store(StoreError::NotFound { .. })))
}

#[tokio::test]
async fn another_users_chat_is_not_found_for_every_operation() {
    let (chatd, _) = service().await;
    let (alice, bob) = (Actor::user(UserId::new()), Actor::user(UserId::new()));
    let chat = chatd
        .create_chat(&alice, NewChat::new(UserId::new()).with_text("mine"))
        .await
        .expect("create");
    assert_eq!(
        Some(chat.owner_id),
        alice.user_id(),
        "the owner is the actor, whatever the request said"
    );
    assert!(is_not_found(&chatd.get_chat(&bob, chat.id).await));
    assert!(is_not_found(&chatd.send_message(&bob, chat.id, SendMessage::text("hi")).await));
    assert!(is_not_found(&chatd.interrupt(&bob, chat.id).await));
    assert!(is_not_found(&chatd.set_archived(&bob, chat.id, true).await));
    assert!(is_not_found(&chatd.delete_chat(&bob, chat.id).await));
    assert!(is_not_found(&chatd.list_queued(&bob, chat.id).await));
    assert!(is_not_found(&chatd.list_messages(&bob, chat.id, None).await));
    assert!(chatd.subscribe(&bob, chat.id, None).await.is_err());
    assert!(
        chatd.list_chats(&bob, ChatFilter::everyone()).await.expect("list").items.is_empty(),
        "bob lists only his own"
    );
    assert_eq!(
        chatd.list_chats(&alice, ChatFilter::everyone()).await.expect("list").items.len(),
        1
    );
    // The system sees everything.
    assert_eq!(chatd.get_chat(&Actor::System, chat.id).await.expect("system").id, chat.id);
    assert!(chatd.get_chat(&alice, chat.id).await.is_ok());
}

#[tokio::test]
async fn scopes_gate_each_kind_of_operation() {
    let (chatd, _) = service().await;
    let owner = UserId::new();
    let full = Actor::user(owner);
    let chat = chatd.create_chat(&full, NewChat::new(owner).with_text("x")).await.expect("create");
    let reader = Actor::with_scopes(owner, [Scope::Read]);
    assert!(chatd.get_chat(&reader, chat.id).await.is_ok());
    let forbidden = |r: Result<_, ChatdError>| matches!(r, Err(ChatdError::Forbidden(_)));
    assert!(forbidden(
        chatd.send_message(&reader, chat.id, SendMessage::text("no")).await.map(|_| ())
    ));
    assert!(forbidden(chatd.delete_chat(&reader, chat.id).await));
    assert!(forbidden(
        chatd.create_chat(&reader, NewChat::new(owner).with_text("no")).await.map(|_| ())
    ));
    let updater = Actor::with_scopes(owner, [Scope::Update]);
    assert!(forbidden(chatd.get_chat(&updater, chat.id).await.map(|_| ())));
    assert!(forbidden(chatd.delete_chat(&updater, chat.id).await), "delete needs chat:delete");
    assert!(chatd.send_message(&updater, chat.id, SendMessage::text("queued")).await.is_ok());
    assert!(chatd.delete_chat(&Actor::with_scopes(owner, [Scope::Delete]), chat.id).await.is_ok());
    assert_eq!(Scope::parse("chat:*").map(|s| s.len()), Some(4));
    assert_eq!(Scope::parse("chat:read"), Some(vec![Scope::Read]));
    assert_eq!(Scope::parse("chat:admin"), None);
}

#[tokio::test]
async fn configuration_is_admin_only_and_keys_are_never_shown() {
    let (chatd, admin) = service().await;
    let user = Actor::user(UserId::new());
    assert!(matches!(chatd.providers(&user).await, Err(ChatdError::Forbidden(_))));
    assert!(matches!(
        chatd
            .create_model_config(&user, NewModelConfig::new(ProviderKind::Anthropic, "other", 1000))
            .await,
        Err(ChatdError::Forbidden(_))
    ));
    let views = chatd.providers(&admin).await.expect("providers");
    assert_eq!(views.len(), 1);
    assert!(views[0].has_api_key);
    let shown = format!("{views:?} {}", serde_json::to_string(&views).expect("json"));
    assert!(!shown.contains("sk-ant-secret"), "{shown}");
    let mut disabled = NewModelConfig::new(ProviderKind::Anthropic, "hidden-model", 1000);
    disabled.enabled = false;
    chatd.create_model_config(&admin, disabled).await.expect("disabled config");
    let names = |configs: Vec<chatd_core::ModelConfig>| {
        configs.into_iter().map(|c| c.model).collect::<Vec<_>>()
    };
    assert_eq!(names(chatd.model_configs(&user).await.expect("catalog")), vec!["claude-test"]);
    assert_eq!(names(chatd.model_configs(&admin).await.expect("catalog")).len(), 2);
}

async fn next(events: &mut futures::stream::BoxStream<'static, OwnerEvent>) -> OwnerEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("in time")
        .expect("open")
}

#[tokio::test]
async fn watch_reports_the_owners_chats_only() {
    let (chatd, _) = service().await;
    let owner = UserId::new();
    let alice = Actor::user(owner);
    let mut events = chatd.watch(&alice, None).await.expect("watch");
    // Someone else's chat is not reported.
    chatd
        .create_chat(&Actor::user(UserId::new()), NewChat::new(owner).with_text("not hers"))
        .await
        .expect("other");
    let chat =
        chatd.create_chat(&alice, NewChat::new(owner).with_text("hers")).await.expect("create");
    let created = next(&mut events).await;
    assert_eq!(created.chat_id, chat.id);
    assert!(matches!(created.kind, OwnerEventKind::Created { .. }));
    chatd.store().update_chat(chat.id, ChatUpdate::title("Renamed")).await.expect("title");
    assert_eq!(
        next(&mut events).await.kind,
        OwnerEventKind::TitleChange { title: "Renamed".into() }
    );
    chatd.pause(&alice, chat.id).await.expect("pause");
    assert_eq!(
        next(&mut events).await.kind,
        OwnerEventKind::StatusChange { status: ChatStatus::Paused }
    );
    chatd.delete_chat(&alice, chat.id).await.expect("delete");
    assert_eq!(next(&mut events).await.kind, OwnerEventKind::Deleted);
}

#[tokio::test]
async fn a_config_created_with_a_provider_keeps_it_and_its_model_id_verbatim() {
    let (chatd, admin) = service().await;
    // BEHAVIOUR §9.4: OpenRouter's and Vercel's own ids are `vendor/model`; a config created
    // for them must never move to the vendor's provider.
    for (kind, model) in [
        (ProviderKind::OpenRouter, "anthropic/claude-sonnet-4"),
        (ProviderKind::Vercel, "openai/gpt-5"),
        (ProviderKind::OpenRouter, "google:gemini-2.5-pro"),
    ] {
        chatd.create_provider(&admin, NewProvider::new(kind)).await.ok();
        let config = chatd
            .create_model_config(&admin, NewModelConfig::new(kind, model, 1000))
            .await
            .expect("config");
        assert_eq!((config.provider, config.model.as_str()), (kind, model));
    }
    // Resolution applies to a bare model spec only.
    let spec = NewModelConfig::from_spec("openrouter:meta-llama/llama-4", 1000).expect("named");
    assert_eq!(
        (spec.provider, spec.model.as_str()),
        (ProviderKind::OpenRouter, "meta-llama/llama-4")
    );
    let spec = NewModelConfig::from_spec("claude-sonnet-9", 1000).expect("a prefix names it");
    assert_eq!(spec.provider, ProviderKind::Anthropic);
    assert!(NewModelConfig::from_spec("mystery-model", 1000).is_err());
}
