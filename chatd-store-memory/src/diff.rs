//! Diff statuses (BEHAVIOUR §10).

use std::time::Duration;

use chatd_core::store::Result;
use chatd_core::{ChatId, DiffReference, DiffRefresh, DiffStatus};
use chrono::{DateTime, Utc};

use crate::state::{State, now};

fn blank(chat_id: ChatId, at: DateTime<Utc>) -> DiffStatus {
    DiffStatus {
        chat_id,
        url: None,
        pull_request_state: None,
        changes_requested: false,
        additions: 0,
        deletions: 0,
        changed_files: 0,
        refreshed_at: None,
        stale_at: at,
        created_at: at,
        updated_at: at,
        git_branch: String::new(),
        git_remote_origin: String::new(),
    }
}

impl State {
    pub(crate) fn get_diff_status(&self, chat: ChatId) -> Result<Option<DiffStatus>> {
        Ok(self.entry(chat)?.diff.clone())
    }

    pub(crate) fn upsert_diff_reference(
        &mut self,
        chat: ChatId,
        reference: DiffReference,
    ) -> Result<DiffStatus> {
        let at = now();
        let entry = self.entry_mut(chat)?;
        let row = entry.diff.get_or_insert_with(|| blank(chat, at));
        if !reference.git_branch.trim().is_empty() {
            row.git_branch = reference.git_branch.trim().to_owned();
        }
        if !reference.git_remote_origin.trim().is_empty() {
            row.git_remote_origin = reference.git_remote_origin.trim().to_owned();
        }
        if let Some(url) = reference.url.filter(|u| !u.trim().is_empty()) {
            row.url = Some(url);
        }
        row.stale_at = at;
        row.updated_at = at;
        let row = row.clone();
        self.touch(chat, |c| &mut c.diff);
        self.hint(chat, chatd_core::ChangeKind::Diff);
        Ok(row)
    }

    pub(crate) fn upsert_diff_refresh(
        &mut self,
        chat: ChatId,
        refresh: DiffRefresh,
    ) -> Result<DiffStatus> {
        let at = now();
        let entry = self.entry_mut(chat)?;
        let row = entry.diff.get_or_insert_with(|| blank(chat, at));
        row.url = refresh.url;
        row.pull_request_state = refresh.pull_request_state;
        row.changes_requested = refresh.changes_requested;
        row.additions = refresh.additions;
        row.deletions = refresh.deletions;
        row.changed_files = refresh.changed_files;
        row.refreshed_at = Some(at);
        row.stale_at = refresh.stale_at;
        row.updated_at = at;
        let row = row.clone();
        self.touch(chat, |c| &mut c.diff);
        self.hint(chat, chatd_core::ChangeKind::Diff);
        Ok(row)
    }

    pub(crate) fn claim_stale_diff_statuses(
        &mut self,
        limit: usize,
        hold_for: Duration,
    ) -> Vec<DiffStatus> {
        let at = now();
        let held_until = chrono::Duration::from_std(hold_for)
            .ok()
            .and_then(|d| at.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut stale: Vec<(DateTime<Utc>, ChatId)> = self
            .chats
            .values()
            .filter_map(|e| e.diff.as_ref())
            .filter(|d| d.stale_at <= at)
            .map(|d| (d.stale_at, d.chat_id))
            .collect();
        stale.sort();
        stale
            .into_iter()
            .take(limit)
            .filter_map(|(_, id)| {
                let row = self.chats.get_mut(&id)?.diff.as_mut()?;
                row.stale_at = held_until;
                Some(row.clone())
            })
            .collect()
    }
}
