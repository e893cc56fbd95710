//! Scenarios: chat lifecycle.

use std::collections::HashSet;

use super::{Fixture, StoreRef};
use crate::store::{MessageQuery, StoreError};
use crate::{
    ChatFilter, ChatStatus, ChatUpdate, ModelConfigId, NewChat, NewModelConfig, Part, ProviderKind,
    Role, UserId, Visibility, WorkspaceId,
};

/// A chat created with a first message is `pending`, holds the message, and gets the
/// automatic title and the default model config.
pub async fn create_with_message_is_pending(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("please fix the failing build on main today").await;
    assert_eq!(chat.status, ChatStatus::Pending);
    assert_eq!(chat.title, "please fix the failing build on…");
    assert_eq!(chat.last_model_config_id, fx.config.id);
    assert_eq!(chat.root_chat_id, None);
    assert_eq!(chat.root_id(), chat.id);
    assert!(chat.worker_id.is_none() && chat.last_error.is_none() && !chat.archived);
    let messages = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("list");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].role, Role::User);
    assert_eq!(messages[0].visibility, Visibility::Both);
    assert_eq!(messages[0].model_config_id, Some(fx.config.id));
    assert_eq!(messages[0].text(), "please fix the failing build on main today");
    assert_eq!(fx.get(chat.id).await, chat, "get returns what create returned");
}

/// A chat created without a message is `waiting` and titled `New Chat`.
pub async fn create_without_message_is_waiting(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    assert_eq!(chat.status, ChatStatus::Waiting);
    assert_eq!(chat.title, "New Chat");
    assert!(fx.texts(chat.id).await.is_empty());
    assert!(fx.store.acquire(fx.worker, 10).await.expect("acquire").is_empty());
}

/// The system prompt is a model-only `system` row before the first message.
pub async fn create_stores_system_prompt_for_the_model_only(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_system_prompt("You are terse.").with_text("hi"))
        .await
        .expect("create");
    let all = fx.store.list_messages(chat.id, MessageQuery::all()).await.expect("all");
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].role, all[0].visibility), (Role::System, Visibility::Model));
    assert_eq!(all[0].text(), "You are terse.");
    let visible = fx
        .store
        .list_messages(chat.id, MessageQuery::user_visible_after(None))
        .await
        .expect("visible");
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].role, Role::User);
    let prompt = fx.store.prompt_messages(chat.id).await.expect("prompt");
    assert_eq!(prompt.iter().map(|m| m.role).collect::<Vec<_>>(), vec![Role::System, Role::User]);
}

/// An explicit title and model config are used as given.
pub async fn create_uses_explicit_title_and_model_config(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let other = fx
        .store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "gpt-other", 5000))
        .await
        .expect("config");
    let chat = fx
        .store
        .create_chat(
            NewChat::new(fx.owner)
                .with_title("  My chat  ")
                .with_model_config(other.id)
                .with_text("x"),
        )
        .await
        .expect("create");
    assert_eq!(chat.title, "My chat");
    assert_eq!(chat.last_model_config_id, other.id);
}

/// Without a named config and without a default, creation fails with the documented text.
pub async fn create_without_default_config_fails(store: StoreRef) {
    let err = store
        .create_chat(NewChat::new(UserId::new()).with_text("hi"))
        .await
        .expect_err("no config");
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    assert_eq!(err.to_string(), "no default chat model config is available");
    let page = store.list_chats(ChatFilter::everyone()).await.expect("list");
    assert!(page.items.is_empty(), "nothing was created");
}

/// An unknown model config is `NotFound`.
pub async fn create_with_unknown_model_config_is_not_found(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_model_config(ModelConfigId::new()))
        .await
        .expect_err("unknown");
    assert!(err.is_not_found(), "{err:?}");
}

/// A soft-deleted model config cannot be used for a new chat.
pub async fn create_with_deleted_model_config_is_not_found(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let other = fx
        .store
        .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "old", 10))
        .await
        .expect("config");
    fx.store.delete_model_config(other.id).await.expect("delete");
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_model_config(other.id))
        .await
        .expect_err("deleted");
    assert!(err.is_not_found(), "{err:?}");
}

/// A child stores its parent and the root of the tree; a grandchild stores the same root.
pub async fn create_child_links_parent_and_root(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.idle_chat().await;
    let child =
        fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("child");
    let grandchild = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_parent(child.id))
        .await
        .expect("grandchild");
    assert_eq!(child.parent_chat_id, Some(root.id));
    assert_eq!(child.root_chat_id, Some(root.id));
    assert_eq!(grandchild.parent_chat_id, Some(child.id));
    assert_eq!(grandchild.root_chat_id, Some(root.id));
    assert_eq!(grandchild.root_id(), root.id);
    assert!(!child.is_root() && root.is_root());
}

/// The open-children limit is one atomic check: 24 concurrent creations against a limit
/// of 16 create exactly 16; archiving one makes room for one more.
pub async fn concurrent_children_never_pass_the_open_children_limit(store: StoreRef) {
    let fx = Fixture::new(store).await;
    // Several rounds, each under a new parent: a race that a round misses, another meets.
    let mut root = fx.idle_chat().await;
    for round in 0..4 {
        if round > 0 {
            root = fx.idle_chat().await;
        }
        let attempts = (0..24).map(|_| {
            let store = std::sync::Arc::clone(&fx.store);
            let new = NewChat::new(fx.owner).with_parent(root.id).with_open_children_limit(16);
            tokio::spawn(async move { store.create_chat(new).await })
        });
        let results: Vec<_> = futures::future::join_all(attempts).await;
        let created = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let refused: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                Ok(Err(err)) => Some(err.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(created, 16, "round {round}: refusals: {refused:?}");
        assert_eq!(refused.len(), 8);
        assert!(
            refused.iter().all(|e| e.contains("already has 16 open sub-agents")),
            "{refused:?}"
        );
    }
    let children = fx.store.list_children(root.id).await.expect("children");
    assert_eq!(children.len(), 16);
    // An archived child does not count.
    fx.store.set_archived(children[0].id, true).await.expect("archive one");
    let one_more = NewChat::new(fx.owner).with_parent(root.id).with_open_children_limit(16);
    fx.store.create_chat(one_more).await.expect("room for one more");
    let again = NewChat::new(fx.owner).with_parent(root.id).with_open_children_limit(16);
    assert!(fx.store.create_chat(again).await.is_err(), "full again");
}

/// A child of an unknown parent is refused.
pub async fn create_child_of_unknown_parent_is_not_found(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_parent(crate::ChatId::new()))
        .await
        .expect_err("unknown parent");
    assert!(err.is_not_found(), "{err:?}");
}

/// Empty content and blank text parts are refused with the documented texts; nothing is created.
pub async fn create_rejects_invalid_content(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let err =
        fx.store.create_chat(NewChat::new(fx.owner).with_message(vec![])).await.expect_err("empty");
    assert_eq!(err.to_string(), "Content is required.");
    let err = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_message(vec![Part::text("")]))
        .await
        .expect_err("blank");
    assert_eq!(err.to_string(), "content[0].text cannot be empty.");
    let err =
        fx.store.create_chat(NewChat::new(fx.owner).with_title("   ")).await.expect_err("title");
    assert_eq!(err.to_string(), "Title is required.");
    let page = fx.store.list_chats(ChatFilter::owner(fx.owner)).await.expect("list");
    assert!(page.items.is_empty());
}

/// Reading an unknown chat is `NotFound` with the entity in the message.
pub async fn get_unknown_chat_is_not_found(store: StoreRef) {
    let err = store.get_chat(crate::ChatId::new()).await.expect_err("unknown");
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.to_string(), "Chat not found.");
}

/// Listing filters by owner, status and archived flag.
pub async fn list_filters_by_owner_status_and_archived(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let pending = fx.chat("one").await;
    let waiting = fx.idle_chat().await;
    let archived = fx.idle_chat().await;
    fx.store.set_archived(archived.id, true).await.expect("archive");
    let stranger = fx.store.create_chat(NewChat::new(UserId::new())).await.expect("other owner");

    let mine = fx.store.list_chats(ChatFilter::owner(fx.owner)).await.expect("mine");
    let ids: Vec<_> = mine.items.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![waiting.id, pending.id], "newest first, unarchived only");

    let mut filter = ChatFilter::owner(fx.owner);
    filter.statuses = vec![ChatStatus::Pending];
    let only_pending = fx.store.list_chats(filter).await.expect("pending");
    assert_eq!(only_pending.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![pending.id]);

    let mut filter = ChatFilter::owner(fx.owner);
    filter.archived = Some(true);
    let only_archived = fx.store.list_chats(filter).await.expect("archived");
    assert_eq!(only_archived.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![archived.id]);

    let everyone = fx.store.list_chats(ChatFilter::everyone()).await.expect("everyone");
    assert_eq!(everyone.items.len(), 4);
    assert!(everyone.items.iter().any(|c| c.id == stranger.id));
}

/// Keyset pagination visits every chat exactly once, newest first.
pub async fn list_paginates_without_gaps_or_repeats(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let mut created = Vec::new();
    for _ in 0..23 {
        created.push(fx.idle_chat().await.id);
    }
    let mut seen = Vec::new();
    let mut filter = ChatFilter::owner(fx.owner);
    filter.limit = 5;
    let mut pages = 0;
    loop {
        let page = fx.store.list_chats(filter.clone()).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|c| c.id));
        match page.next {
            Some(next) => filter.after = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 5);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 23, "no repeats");
    created.reverse();
    assert_eq!(seen, created, "every chat, newest first, no gaps");
}

/// `roots_only` hides sub-agent chats.
pub async fn list_roots_only_hides_children(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.idle_chat().await;
    fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("child");
    let mut filter = ChatFilter::owner(fx.owner);
    filter.roots_only = true;
    let page = fx.store.list_chats(filter).await.expect("roots");
    assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![root.id]);
    assert_eq!(fx.store.list_chats(ChatFilter::owner(fx.owner)).await.expect("all").items.len(), 2);
}

/// Title and workspace can be changed; `updated_at` moves.
pub async fn update_title_and_workspace(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let workspace = WorkspaceId::new();
    let updated = fx.store.update_chat(chat.id, ChatUpdate::title("Renamed")).await.expect("title");
    assert_eq!(updated.title, "Renamed");
    let updated = fx
        .store
        .update_chat(chat.id, ChatUpdate::workspace(Some(workspace), None))
        .await
        .expect("ws");
    assert_eq!(updated.workspace_id, Some(workspace));
    assert_eq!(updated.title, "Renamed");
    assert!(updated.updated_at >= chat.updated_at);
    let cleared =
        fx.store.update_chat(chat.id, ChatUpdate::workspace(None, None)).await.expect("clear");
    assert_eq!(cleared.workspace_id, None);
    let err = fx
        .store
        .update_chat(crate::ChatId::new(), ChatUpdate::title("x"))
        .await
        .expect_err("unknown");
    assert!(err.is_not_found());
}

/// A compare-and-set title update never overwrites a title a person changed.
pub async fn update_title_if_expected_never_overwrites(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.chat("hello there").await;
    let auto = chat.title.clone();
    fx.store.update_chat(chat.id, ChatUpdate::title("Mine")).await.expect("person renames");
    let after = fx
        .store
        .update_chat(chat.id, ChatUpdate::title_if(auto.clone(), "Generated"))
        .await
        .expect("cas");
    assert_eq!(after.title, "Mine");
    let other = fx.chat("another one").await;
    let after = fx
        .store
        .update_chat(other.id, ChatUpdate::title_if(other.title.clone(), "Generated"))
        .await
        .expect("cas");
    assert_eq!(after.title, "Generated");
}

/// An empty title is refused and changes nothing.
pub async fn update_rejects_empty_title(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let err = fx.store.update_chat(chat.id, ChatUpdate::title("  ")).await.expect_err("empty");
    assert!(matches!(err, StoreError::Validation { .. }));
    assert_eq!(fx.get(chat.id).await.title, "New Chat");
}

/// Archiving a root archives its whole tree; unarchiving restores it.
pub async fn archive_root_archives_whole_tree(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.idle_chat().await;
    let child =
        fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("child");
    let unrelated = fx.idle_chat().await;
    let changed = fx.store.set_archived(root.id, true).await.expect("archive");
    let changed: HashSet<_> = changed.into_iter().collect();
    assert_eq!(changed, HashSet::from([root.id, child.id]));
    assert!(fx.get(root.id).await.archived && fx.get(child.id).await.archived);
    assert!(!fx.get(unrelated.id).await.archived);
    fx.store.set_archived(root.id, false).await.expect("unarchive");
    assert!(!fx.get(root.id).await.archived && !fx.get(child.id).await.archived);
    assert!(
        fx.store
            .set_archived(crate::ChatId::new(), true)
            .await
            .expect_err("unknown")
            .is_not_found()
    );
}

/// Archiving a child leaves its root and siblings alone.
pub async fn archive_child_archives_only_the_child(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.idle_chat().await;
    let a = fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("a");
    let b = fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("b");
    assert_eq!(fx.store.set_archived(a.id, true).await.expect("archive"), vec![a.id]);
    assert!(fx.get(a.id).await.archived);
    assert!(!fx.get(b.id).await.archived && !fx.get(root.id).await.archived);
}

/// Deleting a chat removes it and its messages; its children survive as roots.
pub async fn delete_removes_chat_and_orphans_children(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.chat("parent").await;
    let child =
        fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("child");
    fx.store.delete_chat(root.id).await.expect("delete");
    assert!(fx.store.get_chat(root.id).await.expect_err("gone").is_not_found());
    assert!(
        fx.store
            .list_messages(root.id, MessageQuery::all())
            .await
            .expect_err("gone")
            .is_not_found()
    );
    let child = fx.get(child.id).await;
    assert_eq!(child.parent_chat_id, None);
    assert_eq!(child.root_chat_id, None);
    assert!(fx.store.delete_chat(root.id).await.expect_err("twice").is_not_found());
    assert!(
        fx.store.acquire(fx.worker, 5).await.expect("acquire").is_empty(),
        "deleted chat is not pending work"
    );
}

/// `list_children` returns direct children, oldest first.
pub async fn list_children_returns_direct_children(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let root = fx.idle_chat().await;
    let a = fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("a");
    let b = fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("b");
    fx.store.create_chat(NewChat::new(fx.owner).with_parent(a.id)).await.expect("grandchild");
    let children = fx.store.list_children(root.id).await.expect("children");
    assert_eq!(children.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id, b.id]);
    assert!(fx.store.list_children(b.id).await.expect("none").is_empty());
    assert!(
        fx.store.list_children(crate::ChatId::new()).await.expect_err("unknown").is_not_found()
    );
}
