//! The authorization matrix (BEHAVIOUR §11): every `Chatd` method × {owner, another user, an
//! administrator who is another user, the owner missing the method's scope, the system},
//! each on a fresh world, with the expected outcome; a completeness check that the table
//! names every public method of `Chatd`; and a seeded property test of random operation
//! sequences by several users in which nobody ever sees or changes another user's chat.

use std::sync::Arc;

use chatd_core::service::{ChatdError, Scope};
use chatd_core::store::{ChatStore, MessageQuery, SendMessage};
use chatd_core::{
    Actor, ChatFilter, ChatId, Chatd, MessageId, ModelConfigId, ModelConfigUpdate, NewChat,
    NewModelConfig, NewProvider, Part, ProviderKind, ProviderUpdate, QueuedMessageId, StoreError,
    UserId,
};
use chatd_store_memory::InMemoryChatStore;
use futures::future::BoxFuture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Authorization passed (the call succeeded, or failed for a domain reason).
    Allowed,
    /// The chat is "not found": existence does not leak.
    Hidden,
    /// Refused for a missing scope or administrator flag.
    Forbidden,
}

fn classify<T>(result: Result<T, ChatdError>) -> Outcome {
    match result {
        Err(ChatdError::Forbidden(_)) => Outcome::Forbidden,
        Err(ChatdError::Store(StoreError::NotFound {
            entity: chatd_core::store::Entity::Chat | chatd_core::store::Entity::File,
            ..
        })) => Outcome::Hidden,
        _ => Outcome::Allowed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Other,
    Admin,
    MissingScope,
    System,
}

const EVERYONE: [Who; 5] = [Who::Owner, Who::Other, Who::Admin, Who::MissingScope, Who::System];

/// What kind of operation: decides the expected outcome per actor.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Acts on the owner's chat.
    OnChat,
    /// Creates or lists the actor's own things.
    Own,
    /// Configuration: administrators (and the system) only.
    Admin,
    /// A user's own chat list: the system owns none (documented `Forbidden`).
    UserOnly,
}

fn expected(kind: Kind, who: Who) -> Outcome {
    match (kind, who) {
        (Kind::UserOnly, Who::System) => Outcome::Forbidden,
        (_, Who::System) => Outcome::Allowed,
        (_, Who::MissingScope) => Outcome::Forbidden,
        (Kind::OnChat, Who::Owner) => Outcome::Allowed,
        (Kind::OnChat, Who::Other | Who::Admin) => Outcome::Hidden,
        (Kind::Own | Kind::UserOnly, _) => Outcome::Allowed,
        (Kind::Admin, Who::Admin) => Outcome::Allowed,
        (Kind::Admin, _) => Outcome::Forbidden,
    }
}

struct World {
    chatd: Chatd,
    store: Arc<dyn ChatStore>,
    owner: UserId,
    chat: ChatId,
    message: MessageId,
    queued: QueuedMessageId,
    config: ModelConfigId,
    file: chatd_core::FileId,
}

async fn world() -> Arc<World> {
    let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
    let chatd = Chatd::new(Arc::clone(&store));
    store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
    let config = store
        .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "claude", 100_000))
        .await
        .expect("config");
    let owner = UserId::new();
    let chat = store.create_chat(NewChat::new(owner).with_text("first")).await.expect("chat");
    // Pending: the next message queues.
    store.send_message(chat.id, SendMessage::text("queued")).await.expect("queue");
    let queued = store.list_queued(chat.id).await.expect("queue")[0].id;
    let message = store.list_messages(chat.id, MessageQuery::all()).await.expect("messages")[0].id;
    let png = chatd_core::files::testing_png(1, 1);
    let limits = chatd_core::store::Limits::default();
    let new = chatd_core::NewFile::new(owner, Some(chat.id), "a.png", png, &limits).expect("file");
    let file = store.file_store().expect("files").put_file(new).await.expect("put").id;
    Arc::new(World { chatd, store, owner, chat: chat.id, message, queued, config: config.id, file })
}

fn actor(world: &World, who: Who, scope: Scope) -> Actor {
    match who {
        Who::Owner => Actor::user(world.owner),
        Who::Other => Actor::user(UserId::new()),
        Who::Admin => Actor::admin(UserId::new()),
        Who::MissingScope => {
            Actor::with_scopes(world.owner, Scope::ALL.into_iter().filter(|s| *s != scope))
        }
        Who::System => Actor::System,
    }
}

type Call = fn(Arc<World>, Actor) -> BoxFuture<'static, Outcome>;

macro_rules! case {
    ($name:literal, $scope:expr, $kind:expr, |$w:ident, $a:ident| $body:expr) => {
        (
            $name,
            $scope,
            $kind,
            (|$w: Arc<World>, $a: Actor| Box::pin(async move { classify($body) })) as Call,
        )
    };
}

fn table() -> Vec<(&'static str, Scope, Kind, Call)> {
    use Kind::{Admin, OnChat, Own, UserOnly};
    use Scope::{Create, Delete, Read, Update};
    vec![
        case!("create_chat", Create, Own, |w, a| w
            .chatd
            .create_chat(&a, NewChat::new(w.owner).with_text("hi"))
            .await),
        case!("get_chat", Read, OnChat, |w, a| w.chatd.get_chat(&a, w.chat).await),
        case!("list_chats", Read, Own, |w, a| w
            .chatd
            .list_chats(&a, ChatFilter::owner(w.owner))
            .await),
        case!("list_messages", Read, OnChat, |w, a| w.chatd.list_messages(&a, w.chat, None).await),
        case!("list_messages_with_deleted", Read, OnChat, |w, a| w
            .chatd
            .list_messages_with_deleted(&a, w.chat, None)
            .await),
        case!("fork_chat", Create, OnChat, |w, a| w.chatd.fork_chat(&a, w.chat, w.message).await),
        case!("set_labels", Update, OnChat, |w, a| w
            .chatd
            .set_labels(&a, w.chat, [("k".to_owned(), "v".to_owned())].into())
            .await),
        case!("send_message", Update, OnChat, |w, a| w
            .chatd
            .send_message(&a, w.chat, SendMessage::text("more"))
            .await),
        case!("rename", Update, OnChat, |w, a| w.chatd.rename(&a, w.chat, "Renamed").await),
        case!("edit_message", Update, OnChat, |w, a| w
            .chatd
            .edit_message(&a, w.chat, w.message, vec![Part::text("edited")])
            .await),
        case!("interrupt", Update, OnChat, |w, a| w.chatd.interrupt(&a, w.chat).await),
        case!("pause", Update, OnChat, |w, a| w.chatd.pause(&a, w.chat).await),
        case!("tool_calls", Read, OnChat, |w, a| w.chatd.tool_calls(&a, w.chat).await),
        case!("resolve_tool_calls", Update, OnChat, |w, a| {
            let deny =
                chatd_core::tool_call::Decision::Deny { tool_call_id: "c1".into(), reason: None };
            w.chatd.resolve_tool_calls(&a, w.chat, vec![deny]).await
        }),
        case!("resume", Update, OnChat, |w, a| w.chatd.resume(&a, w.chat).await),
        case!("complete", Update, OnChat, |w, a| w.chatd.complete(&a, w.chat).await),
        case!("set_archived", Update, OnChat, |w, a| w.chatd.set_archived(&a, w.chat, true).await),
        case!("delete_chat", Delete, OnChat, |w, a| w.chatd.delete_chat(&a, w.chat).await),
        case!("list_queued", Read, OnChat, |w, a| w.chatd.list_queued(&a, w.chat).await),
        case!("promote_queued", Update, OnChat, |w, a| w
            .chatd
            .promote_queued(&a, w.chat, w.queued)
            .await),
        case!("delete_queued", Update, OnChat, |w, a| w
            .chatd
            .delete_queued(&a, w.chat, w.queued)
            .await),
        case!("compact", Update, OnChat, |w, a| w.chatd.compact(&a, w.chat).await),
        case!("diff_status", Read, OnChat, |w, a| w.chatd.diff_status(&a, w.chat).await),
        case!("report_git_reference", Update, OnChat, |w, a| w
            .chatd
            .report_git_reference(&a, w.chat, "https://github.com/o/r", "main")
            .await),
        case!("subscribe", Read, OnChat, |w, a| w
            .chatd
            .subscribe(&a, w.chat, None)
            .await
            .map(|_| ())),
        case!("watch", Read, UserOnly, |w, a| w.chatd.watch(&a, None).await.map(|_| ())),
        case!("model_configs", Read, Own, |w, a| w.chatd.model_configs(&a).await),
        case!("usage", Read, Own, |w, a| w.chatd.usage(&a, chatd_core::UsageQuery::all()).await),
        case!("upload_file", Update, OnChat, |w, a| w
            .chatd
            .upload_file(&a, Some(w.chat), "b.png", chatd_core::files::testing_png(2, 2))
            .await),
        case!("read_file", Read, OnChat, |w, a| w.chatd.read_file(&a, w.file).await),
        case!("file_meta", Read, OnChat, |w, a| w.chatd.file_meta(&a, w.file).await),
        case!("chat_files", Read, OnChat, |w, a| w.chatd.chat_files(&a, w.chat).await),
        case!("providers", Read, Admin, |w, a| w.chatd.providers(&a).await),
        case!("create_provider", Create, Admin, |w, a| w
            .chatd
            .create_provider(&a, NewProvider::new(ProviderKind::Google))
            .await),
        case!("update_provider", Update, Admin, |w, a| w
            .chatd
            .update_provider(&a, ProviderKind::Anthropic, ProviderUpdate::default())
            .await),
        case!("delete_provider", Delete, Admin, |w, a| w
            .chatd
            .delete_provider(&a, ProviderKind::Anthropic)
            .await),
        case!("create_model_config", Create, Admin, |w, a| w
            .chatd
            .create_model_config(&a, NewModelConfig::new(ProviderKind::Anthropic, "other", 1000))
            .await),
        case!("update_model_config", Update, Admin, |w, a| w
            .chatd
            .update_model_config(&a, w.config, ModelConfigUpdate::default())
            .await),
        case!("delete_model_config", Delete, Admin, |w, a| w
            .chatd
            .delete_model_config(&a, w.config)
            .await),
    ]
}

#[tokio::test]
async fn every_method_for_every_kind_of_actor() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (name, scope, kind, call) in table() {
        for who in EVERYONE {
            let w = world().await;
            let actor = actor(&w, who, scope);
            let before = w.store.get_chat(w.chat).await.expect("chat");
            let got = call(Arc::clone(&w), actor).await;
            cases += 1;
            let want = expected(kind, who);
            if got != want {
                failures.push(format!("{name} as {who:?}: expected {want:?}, got {got:?}"));
            }
            if got != Outcome::Allowed {
                // A refused call changed nothing.
                let after = w.store.get_chat(w.chat).await.expect("chat still there");
                assert_eq!(before, after, "{name} as {who:?} was refused but changed the chat");
            }
        }
    }
    println!("{cases} (method, actor) cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_names_every_public_method_of_chatd() {
    let source = [
        include_str!("../../../chatd-core/src/service/mod.rs"),
        include_str!("../../../chatd-core/src/service/files.rs"),
    ]
    .concat();
    let methods: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split(['(', '<']).next())
        .collect();
    let named: Vec<&str> = table().iter().map(|(name, ..)| *name).collect();
    for method in &methods {
        assert!(named.contains(method), "Chatd::{method} is missing from the matrix");
    }
    assert_eq!(methods.len(), named.len(), "the matrix names a method Chatd lacks");
}

#[tokio::test]
async fn a_disabled_model_config_is_refused_for_users_wherever_an_id_is_accepted() {
    let w = world().await;
    let disabled = w
        .store
        .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "retired", 1000))
        .await
        .expect("config");
    let mut update = ModelConfigUpdate::default();
    update.enabled = Some(false);
    w.store.update_model_config(disabled.id, update).await.expect("disable");
    let user = Actor::user(w.owner);
    let is_refused = |r: Result<_, ChatdError>| matches!(r, Err(ChatdError::Store(StoreError::Validation { ref field, .. })) if field == "model_config_id");
    assert!(is_refused(
        w.chatd
            .create_chat(&user, NewChat::new(w.owner).with_text("x").with_model_config(disabled.id))
            .await
            .map(|_| ())
    ));
    assert!(is_refused(
        w.chatd
            .send_message(&user, w.chat, SendMessage::text("x").with_model_config(disabled.id))
            .await
            .map(|_| ())
    ));
    let listed = w.chatd.model_configs(&user).await.expect("catalog");
    assert!(listed.iter().all(|c| c.id != disabled.id), "users do not see it");
    let admin = Actor::admin(UserId::new());
    w.chatd
        .create_chat(&admin, NewChat::new(w.owner).with_text("x").with_model_config(disabled.id))
        .await
        .expect("administrators may still use it");
}

// ----- the property ------------------------------------------------------------------------

/// What a user can observe of a chat, through the store (the ground truth).
async fn snapshot(store: &Arc<dyn ChatStore>, chat: ChatId) -> Option<String> {
    let found = store.get_chat(chat).await.ok()?;
    let messages = store.list_messages(chat, MessageQuery::all()).await.ok()?;
    let queue = store.list_queued(chat).await.ok()?;
    let diff = store.get_diff_status(chat).await.ok()?;
    Some(format!("{found:?}|{messages:?}|{queue:?}|{diff:?}"))
}

#[tokio::test]
async fn random_operations_by_several_users_never_cross_owners() {
    let seeds = 200;
    for seed in 0..seeds {
        let mut rng = fastrand::Rng::with_seed(seed);
        let store: Arc<dyn ChatStore> = Arc::new(InMemoryChatStore::new());
        let chatd = Chatd::new(Arc::clone(&store));
        store.create_provider(NewProvider::new(ProviderKind::Anthropic)).await.expect("provider");
        store
            .create_model_config(NewModelConfig::new(ProviderKind::Anthropic, "claude", 100_000))
            .await
            .expect("config");
        let users: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
        let mut chats: Vec<(ChatId, UserId)> = Vec::new();
        for user in &users {
            for _ in 0..2 {
                let chat = chatd
                    .create_chat(&Actor::user(*user), NewChat::new(*user).with_text("start"))
                    .await
                    .expect("create");
                chats.push((chat.id, *user));
            }
        }
        for step in 0..25 {
            let user = users[rng.usize(..users.len())];
            let actor = Actor::user(user);
            let (chat, owner) = chats[rng.usize(..chats.len())];
            let before = snapshot(&store, chat).await;
            let op = rng.usize(..12);
            let outcome = match op {
                0 => classify(chatd.send_message(&actor, chat, SendMessage::text("m")).await),
                1 => classify(chatd.rename(&actor, chat, "t").await),
                2 => {
                    let first = store
                        .list_messages(chat, MessageQuery::all())
                        .await
                        .ok()
                        .and_then(|m| m.first().map(|m| m.id));
                    match first {
                        Some(id) => classify(
                            chatd.edit_message(&actor, chat, id, vec![Part::text("e")]).await,
                        ),
                        None => classify(chatd.get_chat(&actor, chat).await),
                    }
                }
                3 => classify(chatd.interrupt(&actor, chat).await),
                4 => classify(chatd.pause(&actor, chat).await),
                5 => classify(chatd.resume(&actor, chat).await),
                6 => classify(chatd.set_archived(&actor, chat, rng.bool()).await),
                7 => {
                    let queued =
                        store.list_queued(chat).await.ok().and_then(|q| q.first().map(|q| q.id));
                    match queued {
                        Some(id) => classify(chatd.promote_queued(&actor, chat, id).await),
                        None => classify(chatd.list_queued(&actor, chat).await),
                    }
                }
                8 => classify(chatd.list_messages(&actor, chat, None).await),
                9 => classify(chatd.subscribe(&actor, chat, None).await.map(|_| ())),
                10 => classify(chatd.diff_status(&actor, chat).await),
                _ => classify(chatd.complete(&actor, chat).await),
            };
            if user == owner {
                assert_ne!(
                    outcome,
                    Outcome::Hidden,
                    "seed {seed} step {step}: owner hidden from op {op}"
                );
            } else {
                assert_eq!(
                    outcome,
                    Outcome::Hidden,
                    "seed {seed} step {step}: op {op} reached another user's chat"
                );
                assert_eq!(
                    before,
                    snapshot(&store, chat).await,
                    "seed {seed} step {step}: op {op} changed another user's chat"
                );
            }
        }
        for user in &users {
            let page = chatd
                .list_chats(&Actor::user(*user), ChatFilter::owner(UserId::new()))
                .await
                .expect("list");
            assert!(
                page.items.iter().all(|c| c.owner_id == *user),
                "seed {seed}: a list shows another user's chat"
            );
        }
    }
    println!("{seeds} seeded sequences of 25 operations by 3 users");
}
