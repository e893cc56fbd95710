//! Chat lifecycle: create, read, list, update, archive, delete.

use std::collections::VecDeque;
use std::ops::Bound;

use chatd_core::status::ChatStatus;
use chatd_core::store::{ChatChange, Entity, FieldClocks, ListCursor, Result, StoreError};
use chatd_core::{
    ChangeKind, Chat, ChatCursor, ChatFilter, ChatId, ChatUpdate, ForkedFrom, Message, MessageId,
    ModelConfigId, NewChat, NewMessage, Page, UserId,
};

use crate::state::{ChatEntry, State, Tombstone, now};

/// Whether every word (lowercased) is in the chat's title, or every word in one of its
/// user-visible messages' text (case-insensitively); no words match everything.
fn matches_words(entry: &ChatEntry, words: &[String]) -> bool {
    let all_in = |text: &str| {
        let text = text.to_lowercase();
        words.iter().all(|w| text.contains(w.as_str()))
    };
    words.is_empty()
        || all_in(&entry.chat.title)
        || entry.messages.iter().any(|m| m.visibility.is_user_visible() && all_in(&m.text()))
}

/// A new root chat of `owner` with nothing in it yet: `waiting`, no lease, no spend.
fn fresh(owner: UserId, config: ModelConfigId, at: chrono::DateTime<chrono::Utc>) -> Chat {
    Chat {
        id: ChatId::new(),
        owner_id: owner,
        workspace_id: None,
        workspace_agent_id: None,
        title: String::new(),
        status: ChatStatus::Waiting,
        worker_id: None,
        started_at: None,
        heartbeat_at: None,
        created_at: at,
        updated_at: at,
        parent_chat_id: None,
        root_chat_id: None,
        last_model_config_id: config,
        archived: false,
        last_error: None,
        lease_epoch: 0,
        stop_request: None,
        last_turn: None,
        previous_turn: None,
        previous_turn_started_after: 0,
        turn_started_after: 0,
        history_version: 0,
        rewritten_after: 0,
        tool_calls: Vec::new(),
        spent: chatd_core::Spend::default(),
        tree_spent: chatd_core::Spend::default(),
        labels: std::collections::BTreeMap::new(),
        forked_from: None,
    }
}

impl State {
    pub(crate) fn create_chat(&mut self, new: NewChat) -> Result<Chat> {
        let title = self.limits.check_new_chat(&new)?;
        let model_config_id = match new.model_config_id {
            Some(id) => self.live_model_config(id)?.id,
            None => self
                .model_configs
                .values()
                .find(|config| config.is_default && !config.deleted)
                .map(|config| config.id)
                .ok_or_else(|| {
                    StoreError::validation(
                        "model_config_id",
                        "no default chat model config is available",
                    )
                })?,
        };
        let root_chat_id = match new.parent_chat_id {
            Some(parent) => Some(self.entry(parent)?.chat.root_id()),
            None => None,
        };
        if let (Some(parent), Some(limit)) = (new.parent_chat_id, new.open_children_limit) {
            let open = self
                .chats
                .values()
                .filter(|e| e.chat.parent_chat_id == Some(parent) && !e.chat.archived)
                .count();
            if open >= limit {
                return Err(StoreError::too_many_children(open, limit));
            }
        }
        let at = now();
        let chat = Chat {
            workspace_id: new.workspace_id,
            workspace_agent_id: new.workspace_agent_id,
            title,
            status: ChatStatus::initial(new.message.is_some()),
            parent_chat_id: new.parent_chat_id,
            root_chat_id,
            ..fresh(new.owner_id, model_config_id, at)
        };
        let id = chat.id;
        self.idx.add_chat(&chat);
        let clock = self.tick();
        let mut entry = ChatEntry::new(chat);
        entry.clocks = FieldClocks::all(clock);
        self.chats.insert(id, entry);
        if let Some(parent) = new.parent_chat_id {
            self.entry_mut(parent)?.children.push(id);
        }
        if let Some(prompt) = new.system_prompt.filter(|p| !p.trim().is_empty()) {
            self.insert_message(id, NewMessage::system(prompt), at, false)?;
        }
        self.hint(id, ChangeKind::Chat);
        if new.message.is_some() {
            self.hint(id, ChangeKind::Pending);
        }
        if let Some(content) = new.message {
            self.insert_message(
                id,
                NewMessage::user(content).with_model_config(model_config_id),
                at,
                false,
            )?;
        }
        self.chat(id)
    }

    /// BEHAVIOUR §18: see [`ChatStore::fork_chat`](chatd_core::store::ChatStore::fork_chat).
    pub(crate) fn fork_chat(&mut self, source: ChatId, at: MessageId) -> Result<Chat> {
        let entry = self.entry(source)?;
        let cut = chatd_core::store::fork_cut(&entry.messages, at)
            .ok_or_else(|| StoreError::not_found(Entity::Message, at))?;
        let rows: Vec<Message> = entry.messages[..cut].to_vec();
        let from = entry.chat.clone();
        let title = self.limits.fork_title(&from.title);
        let at_time = now();
        let chat = Chat {
            id: ChatId::new(),
            title,
            status: ChatStatus::Waiting,
            created_at: at_time,
            updated_at: at_time,
            labels: from.labels.clone(),
            forked_from: Some(ForkedFrom { chat_id: source, message_id: at }),
            ..fresh(from.owner_id, from.last_model_config_id, at_time)
        };
        let id = chat.id;
        self.idx.add_chat(&chat);
        let clock = self.tick();
        let mut entry = ChatEntry::new(chat);
        entry.clocks = FieldClocks::all(clock);
        self.chats.insert(id, entry);
        for row in rows {
            let mut copy = NewMessage::new(row.role, row.content).with_visibility(row.visibility);
            copy.model_config_id = row.model_config_id;
            copy.usage = row.usage;
            copy.context_limit = row.context_limit;
            self.insert_message(id, copy, row.created_at, row.compressed)?;
        }
        // The copies name the source's configs; the fork keeps the source's latest.
        self.entry_mut(id)?.chat.last_model_config_id = from.last_model_config_id;
        self.hint(id, ChangeKind::Chat);
        if self.entry(id)?.has_unanswered_message() {
            self.set_status(id, ChatStatus::Pending, None, at_time)?;
        }
        self.chat(id)
    }

    pub(crate) fn list_chats(&self, filter: &ChatFilter) -> Page<Chat> {
        let source = match filter.owner_id {
            Some(owner) => self.idx.by_owner.get(&owner),
            None => Some(&self.idx.by_created),
        };
        let Some(source) = source else {
            return Page { items: Vec::new(), next: None };
        };
        let upper = match filter.after {
            Some(cursor) => Bound::Excluded((cursor.created_at, cursor.id)),
            None => Bound::Unbounded,
        };
        let size = filter.page_size();
        let mut items = Vec::with_capacity(size);
        let mut more = false;
        let words = filter.query_words();
        for (_, id) in source.range((Bound::Unbounded, upper)).rev() {
            let Some(entry) = self.chats.get(id) else { continue };
            if !filter.matches(&entry.chat) || !matches_words(entry, &words) {
                continue;
            }
            if items.len() == size {
                more = true;
                break;
            }
            items.push(entry.chat.clone());
        }
        let next = if more { items.last().map(ChatCursor::after) } else { None };
        Page { items, next }
    }

    pub(crate) fn update_chat(&mut self, id: ChatId, update: ChatUpdate) -> Result<Chat> {
        let title = self.limits.check_chat_update(&update)?;
        let entry = self.entry_mut(id)?;
        if let (Some(expected), Some(_)) = (&update.expected_title, &title)
            && &entry.chat.title != expected
        {
            return Ok(entry.chat.clone());
        }
        let retitled = title.as_ref().is_some_and(|t| *t != entry.chat.title);
        let chat = &mut entry.chat;
        if let Some(title) = title {
            chat.title = title;
        }
        if let Some(workspace) = update.workspace_id {
            chat.workspace_id = workspace;
        }
        if let Some(agent) = update.workspace_agent_id {
            chat.workspace_agent_id = agent;
        }
        if let Some(labels) = update.labels {
            chat.labels = labels;
        }
        chat.updated_at = now();
        let chat = chat.clone();
        if retitled {
            self.touch(id, |c| &mut c.title);
        }
        self.hint(id, ChangeKind::Chat);
        Ok(chat)
    }

    /// The chat and, for a root, every descendant.
    fn tree(&self, id: ChatId) -> Result<Vec<ChatId>> {
        let mut ids = vec![id];
        let mut frontier: VecDeque<ChatId> = self.entry(id)?.children.iter().copied().collect();
        if self.entry(id)?.chat.is_root() {
            while let Some(child) = frontier.pop_front() {
                ids.push(child);
                if let Some(entry) = self.chats.get(&child) {
                    frontier.extend(entry.children.iter().copied());
                }
            }
        }
        Ok(ids)
    }

    pub(crate) fn set_archived(&mut self, id: ChatId, archived: bool) -> Result<Vec<ChatId>> {
        let ids = self.tree(id)?;
        let at = now();
        for chat_id in &ids {
            if let Some(entry) = self.chats.get_mut(chat_id) {
                let changed = entry.chat.archived != archived;
                entry.chat.archived = archived;
                entry.chat.updated_at = at;
                if changed {
                    self.touch(*chat_id, |c| &mut c.archived);
                }
            }
            self.hint(*chat_id, ChangeKind::Chat);
        }
        Ok(ids)
    }

    pub(crate) fn delete_chat(&mut self, id: ChatId) -> Result<()> {
        let entry =
            self.chats.remove(&id).ok_or_else(|| StoreError::not_found(Entity::Chat, id))?;
        self.idx.remove_chat(&entry.chat);
        // A chat's files go with it (BEHAVIOUR §19).
        self.files.retain(|_, file| file.meta.chat_id != Some(id));
        let clock = self.tick();
        self.tombstones.push(Tombstone {
            owner: entry.chat.owner_id,
            chat: id,
            created: entry.clocks.created,
            clock,
            at: now(),
        });
        self.hint(id, ChangeKind::Deleted);
        if let Some(parent) = entry.chat.parent_chat_id.and_then(|p| self.chats.get_mut(&p)) {
            parent.children.retain(|child| *child != id);
        }
        for child in &entry.children {
            if let Some(child) = self.chats.get_mut(child) {
                child.chat.parent_chat_id = None;
            }
        }
        for other in self.chats.values_mut() {
            if other.chat.root_chat_id == Some(id) {
                other.chat.root_chat_id = None;
            }
        }
        Ok(())
    }

    pub(crate) fn list_children(&self, id: ChatId) -> Result<Vec<Chat>> {
        let mut children: Vec<Chat> = self
            .entry(id)?
            .children
            .iter()
            .filter_map(|child| self.chats.get(child).map(|e| e.chat.clone()))
            .collect();
        children.sort_by_key(|chat| (chat.created_at, chat.id));
        Ok(children)
    }

    pub(crate) fn list_chat_changes(
        &self,
        owner: UserId,
        after: Option<ListCursor>,
        limit: usize,
    ) -> Vec<ChatChange> {
        let is_after =
            |position: ListCursor| after.is_none_or(|a| position > ListCursor::at(a.clock, a.chat));
        let mut changes: Vec<ChatChange> = self
            .chats
            .values()
            .filter(|entry| entry.chat.owner_id == owner)
            .filter_map(|entry| {
                let position = ListCursor::at(entry.clocks.latest(), entry.chat.id.0);
                if !is_after(position) {
                    return None;
                }
                let diff = entry.diff.clone();
                Some(ChatChange::present(position, entry.chat.clone(), diff, entry.clocks))
            })
            .collect();
        if let Some(after) = after {
            changes.extend(
                self.tombstones
                    .iter()
                    .filter(|t| t.owner == owner)
                    .filter(|t| {
                        ListCursor::at(t.clock, t.chat.0) > ListCursor::at(after.clock, after.chat)
                    })
                    .map(|t| {
                        ChatChange::deleted(ListCursor::at(t.clock, t.chat.0), t.chat, t.created)
                    }),
            );
        }
        changes.sort_by_key(|c| c.position);
        changes.truncate(limit);
        changes
    }

    /// Whether `after` is older than the newest pruned tombstone.
    pub(crate) fn list_cursor_expired(&self, after: Option<ListCursor>) -> bool {
        after
            .zip(self.pruned_through)
            .is_some_and(|(after, pruned)| (after.clock, ChatId(after.chat)) < pruned)
    }

    pub(crate) fn prune_tombstones(&mut self, older_than: std::time::Duration) -> u64 {
        let cutoff = chrono::Duration::from_std(older_than)
            .ok()
            .and_then(|age| now().checked_sub_signed(age));
        let Some(cutoff) = cutoff else { return 0 };
        let before = self.tombstones.len();
        let mut newest = self.pruned_through;
        self.tombstones.retain(|t| {
            let keep = t.at > cutoff;
            if !keep {
                newest = newest.max(Some((t.clock, t.chat)));
            }
            keep
        });
        self.pruned_through = newest;
        (before - self.tombstones.len()) as u64
    }
}
