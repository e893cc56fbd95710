//! Scenarios: labels and search ([BEHAVIOUR §18](crate::behaviour#18-history-you-keep)) — labels set and replaced, bounded; the list
//! filtered by labels (all must match) and by text over titles and user-visible messages,
//! owner-scoped, in pages with cursors.

use std::collections::{BTreeMap, BTreeSet};

use super::{Fixture, StoreRef};
use crate::chat::{ChatFilter, ChatUpdate};
use crate::{ChatId, NewChat, Part, UserId};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn ids(fx: &Fixture, filter: ChatFilter) -> BTreeSet<ChatId> {
    let page = fx.store.list_chats(filter).await.expect("list");
    page.items.iter().map(|c| c.id).collect()
}

/// Labels are set and replaced whole, read back with the chat, and bounded: too many, a bad
/// key or a bad value is refused with the label named, and changes nothing.
pub async fn labels_are_set_replaced_and_bounded(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let set = labels(&[("project", "apollo"), ("team/area", "search-ui")]);
    let updated = fx.store.update_chat(chat.id, ChatUpdate::labels(set.clone())).await;
    assert_eq!(updated.expect("set").labels, set);
    assert_eq!(fx.get(chat.id).await.labels, set);
    let replaced = labels(&[("project", "gemini")]);
    fx.store.update_chat(chat.id, ChatUpdate::labels(replaced.clone())).await.expect("replace");
    assert_eq!(fx.get(chat.id).await.labels, replaced);
    let too_many: BTreeMap<String, String> =
        (0..=crate::chat::MAX_LABELS).map(|n| (format!("k{n}"), "v".to_owned())).collect();
    let bad = [
        too_many,
        labels(&[("has space", "v")]),
        labels(&[("", "v")]),
        labels(&[("ok", "line\nbreak")]),
        labels(&[("ok", &"x".repeat(crate::chat::MAX_LABEL_VALUE_CHARS + 1))]),
    ];
    for labels in bad {
        let err = fx.store.update_chat(chat.id, ChatUpdate::labels(labels)).await.expect_err("bad");
        assert!(err.to_string().to_lowercase().contains("label"), "{err}");
    }
    assert_eq!(fx.get(chat.id).await.labels, replaced, "a refused update changes nothing");
    fx.store.update_chat(chat.id, ChatUpdate::labels(BTreeMap::new())).await.expect("clear");
    assert!(fx.get(chat.id).await.labels.is_empty());
}

/// The list keeps the chats carrying every label asked for, and only the owner's.
pub async fn the_list_filters_by_every_label(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let mut made = Vec::new();
    for pairs in [
        &[("project", "apollo"), ("kind", "bug")][..],
        &[("project", "apollo")][..],
        &[("project", "gemini"), ("kind", "bug")][..],
    ] {
        let chat = fx.idle_chat().await;
        fx.store.update_chat(chat.id, ChatUpdate::labels(labels(pairs))).await.expect("label");
        made.push(chat.id);
    }
    let stranger = UserId::new();
    let theirs = fx.store.create_chat(NewChat::new(stranger)).await.expect("theirs");
    let same = labels(&[("project", "apollo"), ("kind", "bug")]);
    fx.store.update_chat(theirs.id, ChatUpdate::labels(same)).await.expect("their labels");
    let mine = ChatFilter::owner(fx.owner);
    assert_eq!(
        ids(&fx, mine.clone().with_label("project", "apollo")).await,
        [made[0], made[1]].into()
    );
    let both = mine.clone().with_label("project", "apollo").with_label("kind", "bug");
    assert_eq!(ids(&fx, both).await, [made[0]].into());
    assert!(ids(&fx, mine.clone().with_label("project", "none")).await.is_empty());
    assert_eq!(ids(&fx, mine.with_label("kind", "bug")).await, [made[0], made[2]].into());
}

/// Search finds chats by title and by the text of their user-visible messages (every word
/// must match; case does not matter), never another owner's chat that matches too, and
/// never by text an edit took out or a model-only message.
pub async fn search_finds_titles_and_messages_of_the_owner_only(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let titled = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_title("Quarterly Budget review"))
        .await
        .expect("titled");
    let talked = fx.chat("where does the zeppelin land?").await;
    fx.run_turn(talked.id, "on the airfield near Lisbon").await;
    let prompted = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_system_prompt("secret marmalade recipe"))
        .await
        .expect("prompted");
    let edited = fx
        .store
        .create_chat(NewChat::new(fx.owner).with_title("Edited").with_text("the walrus question"))
        .await
        .expect("edited");
    fx.run_turn(edited.id, "walrus answer").await;
    let first = fx.store.list_messages(edited.id, crate::store::MessageQuery::all()).await;
    let first = first.expect("rows")[0].id;
    fx.store.edit_message(edited.id, first, vec![Part::text("about otters")]).await.expect("edit");
    let stranger = UserId::new();
    let theirs = fx
        .store
        .create_chat(
            NewChat::new(stranger).with_title("budget of the zeppelin").with_text("lisbon"),
        )
        .await
        .expect("theirs");
    let mine = ChatFilter::owner(fx.owner);
    let found = |q: &str| ids(&fx, mine.clone().with_query(q));
    assert_eq!(found("budget").await, [titled.id].into(), "by title, any case");
    assert_eq!(found("BUDGET review").await, [titled.id].into(), "every word");
    assert!(found("budget zeppelin").await.is_empty(), "words of two chats match neither");
    assert_eq!(found("zeppelin").await, [talked.id].into(), "a user message");
    assert_eq!(found("lisbon").await, [talked.id].into(), "an answer");
    assert!(found("marmalade").await.is_empty(), "a model-only prompt is not searched");
    assert!(found("walrus").await.is_empty(), "text an edit took out is not searched");
    assert_eq!(found("otters").await, [edited.id].into());
    assert!(!found("zeppelin").await.contains(&theirs.id));
    let everyone = ids(&fx, ChatFilter::everyone().with_query("zeppelin")).await;
    assert_eq!(everyone, [talked.id, theirs.id].into(), "a system actor searches everyone's");
    assert!(!found("budget").await.contains(&prompted.id));
    let long = "x".repeat(crate::chat::MAX_QUERY_CHARS + 1);
    let err = fx.store.list_chats(mine.with_query(long)).await.expect_err("too long");
    assert!(err.to_string().contains("search"), "{err}");
}

/// Filtered lists page with cursors like any other: every match once, newest first.
pub async fn filtered_lists_page_without_gaps_or_repeats(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let mut matching = Vec::new();
    for n in 0..7 {
        let chat = fx
            .store
            .create_chat(NewChat::new(fx.owner).with_title(format!("harbour plan {n}")))
            .await
            .expect("chat");
        fx.store
            .update_chat(chat.id, ChatUpdate::labels(labels(&[("area", "port")])))
            .await
            .expect("label");
        matching.push(chat.id);
        fx.store.create_chat(NewChat::new(fx.owner).with_title(format!("other {n}"))).await.ok();
    }
    let filter = ChatFilter { limit: 3, ..ChatFilter::owner(fx.owner) }
        .with_query("harbour")
        .with_label("area", "port");
    let mut seen = Vec::new();
    let mut page = fx.store.list_chats(filter.clone()).await.expect("first page");
    loop {
        seen.extend(page.items.iter().map(|c| c.id));
        let Some(next) = page.next else { break };
        page = fx
            .store
            .list_chats(ChatFilter { after: Some(next), ..filter.clone() })
            .await
            .expect("page");
    }
    matching.reverse();
    assert_eq!(seen, matching, "newest first, each once");
}
