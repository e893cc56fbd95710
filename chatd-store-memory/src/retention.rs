//! Retention (BEHAVIOUR §18): one bounded batch of a host's policy.

use std::time::Duration;

use chatd_core::ChatId;
use chatd_core::status::ChatStatus;
use chatd_core::store::{Result, RetentionPass, RetentionPolicy};
use chrono::{DateTime, Utc};

use crate::state::{State, now};

impl State {
    pub(crate) fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        limit: usize,
    ) -> Result<RetentionPass> {
        let at = now();
        let older = |after: Duration, then: DateTime<Utc>| {
            chrono::Duration::from_std(after).is_ok_and(|after| then <= at - after)
        };
        let busy = |s: ChatStatus| {
            matches!(s, ChatStatus::Running | ChatStatus::Pending | ChatStatus::RequiresAction)
        };
        let mut pass = RetentionPass::default();
        if let Some(after) = policy.archive_idle_after {
            let idle = |s: ChatStatus| {
                matches!(
                    s,
                    ChatStatus::Waiting
                        | ChatStatus::Completed
                        | ChatStatus::Error
                        | ChatStatus::Paused
                )
            };
            let busy_trees: std::collections::HashSet<ChatId> = self
                .chats
                .values()
                .filter(|e| busy(e.chat.status))
                .filter_map(|e| e.chat.root_chat_id)
                .collect();
            let ids = self.oldest(limit, |c| {
                c.is_root()
                    && !c.archived
                    && idle(c.status)
                    && older(after, c.updated_at)
                    && !busy_trees.contains(&c.id)
            });
            for id in ids {
                self.set_archived(id, true)?;
                pass.archived.push(id);
            }
        }
        if let Some(after) = policy.purge_archived_after {
            let ids =
                self.oldest(limit, |c| c.archived && !busy(c.status) && older(after, c.updated_at));
            for id in ids {
                self.delete_chat(id)?;
                pass.purged.push(id);
            }
        }
        if let Some(after) = policy.purge_deleted_messages_after {
            let mut left = limit;
            for entry in self.chats.values_mut() {
                let before = entry.deleted.len();
                entry.deleted.retain(|m| {
                    let expired = left > 0 && m.deleted.is_some_and(|d| older(after, d.at));
                    if expired {
                        left -= 1;
                    }
                    !expired
                });
                pass.deleted_messages_purged += (before - entry.deleted.len()) as u64;
            }
        }
        Ok(pass)
    }

    /// At most `limit` chats passing `keep`, least recently changed first.
    fn oldest(&self, limit: usize, keep: impl Fn(&chatd_core::Chat) -> bool) -> Vec<ChatId> {
        let mut found: Vec<(DateTime<Utc>, ChatId)> = self
            .chats
            .values()
            .filter(|e| keep(&e.chat))
            .map(|e| (e.chat.updated_at, e.chat.id))
            .collect();
        found.sort();
        found.into_iter().take(limit).map(|(_, id)| id).collect()
    }
}
