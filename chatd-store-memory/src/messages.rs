//! Message reads and compaction writes.

use chatd_core::status::Trigger;
use chatd_core::store::{Compaction, Fence, MessageQuery, Result};
use chatd_core::{ChatId, Message, Role};

use crate::state::{State, now};

impl State {
    pub(crate) fn list_messages(&self, chat: ChatId, query: MessageQuery) -> Result<Vec<Message>> {
        let entry = self.entry(chat)?;
        let start = match query.after {
            Some(after) => entry.messages.partition_point(|m| m.id <= after),
            None => 0,
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        if query.include_deleted {
            // Both in id order, a replaced content before the current one of its id.
            let mut all: Vec<&Message> = entry.messages[start..]
                .iter()
                .chain(entry.deleted.iter().filter(|m| query.after.is_none_or(|a| m.id > a)))
                .collect();
            all.sort_by_key(|m| (m.id, m.deleted.map_or(i64::MAX, |d| d.revision)));
            return Ok(all
                .into_iter()
                .filter(|m| query.visibility.admits(m.visibility))
                .take(limit)
                .cloned()
                .collect());
        }
        Ok(entry.messages[start..]
            .iter()
            .filter(|m| query.visibility.admits(m.visibility))
            .take(limit)
            .cloned()
            .collect())
    }

    /// BEHAVIOUR §5. The latest boundary is found by scanning back from the end, and the
    /// uncompressed system rows come from their own index, so the cost depends on the rows
    /// after the boundary, not on the history before it.
    pub(crate) fn prompt_messages(&self, chat: ChatId) -> Result<Vec<Message>> {
        let entry = self.entry(chat)?;
        let is_boundary =
            |m: &Message| m.compressed && m.role == Role::System && m.visibility.is_model_visible();
        let boundary = entry.messages.iter().rposition(is_boundary);
        let mut prompt = Vec::new();
        let tail_start = match boundary {
            Some(index) => {
                prompt.extend(
                    entry
                        .system_rows
                        .iter()
                        .filter(|&&row| row < index)
                        .map(|&row| entry.messages[row].clone()),
                );
                prompt.push(entry.messages[index].clone());
                index + 1
            }
            None => 0,
        };
        prompt.extend(
            entry.messages[tail_start..]
                .iter()
                .filter(|m| !m.compressed && m.visibility.is_model_visible())
                .cloned(),
        );
        Ok(prompt)
    }

    pub(crate) fn write_compaction(
        &mut self,
        fence: Fence,
        mut compaction: Compaction,
    ) -> Result<Vec<Message>> {
        self.limits.check_compaction(&mut compaction)?;
        let chat = fence.chat_id();
        match fence {
            Fence::Lease(lease) => self.check_lease(&lease)?,
            Fence::Idle(id) => {
                self.decide(id, Trigger::Compact)?;
            }
        }
        if let Some(config) = compaction.model_config_id {
            self.known_model_config(config)?;
        }
        let at = now();
        let rows = compaction.into_rows();
        rows.into_iter().map(|row| self.insert_message(chat, row, at, true)).collect()
    }
}
