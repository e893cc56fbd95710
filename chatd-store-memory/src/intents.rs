//! User intents: send, edit, interrupt, pause, resume, complete, and the queue.

use chatd_core::StopRequest;
use chatd_core::status::{MessageAction, Trigger};
use chatd_core::store::CallRecords;
use chatd_core::store::{
    Delivery, EditOutcome, Entity, Result, SendMessage, SendOutcome, StoreError,
};
use chatd_core::{
    ChangeKind, Chat, ChatId, Deletion, Message, MessageId, Part, QueuedMessage, QueuedMessageId,
    Role,
};

use crate::state::{State, now};

impl State {
    pub(crate) fn send_message(&mut self, id: ChatId, send: SendMessage) -> Result<SendOutcome> {
        self.limits.check_send(&send)?;
        if let Some(config) = send.model_config_id {
            self.live_model_config(config)?;
        }
        let trigger = send.busy.trigger();
        let decision = self.decide(id, trigger)?;
        let at = now();
        let delivery = match decision.message {
            MessageAction::Queue => {
                let queued = self.enqueue(id, send.content, send.client_id, at)?;
                let entry = self.entry_mut(id)?;
                if let Some(config) = send.model_config_id {
                    entry.chat.last_model_config_id = config;
                }
                if let Some(kind) = decision.stop {
                    entry.chat.stop_request =
                        Some(StopRequest::merge(entry.chat.stop_request, kind, Some(queued.id)));
                    self.hint(id, ChangeKind::Chat);
                }
                Delivery::Queued(queued)
            }
            MessageAction::Insert | MessageAction::None
                if self.entry(id)?.chat.status.answers_queue_first()
                    && !self.entry(id)?.queue.is_empty() =>
            {
                // BEHAVIOUR §2: an idle chat that still has queued messages answers them first:
                // the head enters the history, then the new message joins the tail (so a full
                // queue takes it and stays at its cap).
                self.promote_from_queue(id, None, at)?;
                let queued = self.enqueue(id, send.content, send.client_id, at)?;
                if let Some(config) = send.model_config_id {
                    self.entry_mut(id)?.chat.last_model_config_id = config;
                }
                Delivery::Queued(queued)
            }
            MessageAction::Insert | MessageAction::None => {
                self.close_step(id, at)?;
                Delivery::Inserted(self.insert_message(id, send.into_new_message(), at, false)?)
            }
        };
        if !decision.keeps(self.entry(id)?.chat.status) {
            self.set_status(id, decision.next, None, at)?;
        }
        Ok(SendOutcome { chat: self.chat(id)?, delivery })
    }

    fn enqueue(
        &mut self,
        id: ChatId,
        content: Vec<Part>,
        client_id: Option<String>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<QueuedMessage> {
        let max = self.limits.max_queued_messages;
        if self.entry(id)?.queue.len() >= max {
            return Err(StoreError::QueueFull { max });
        }
        let queued = QueuedMessage {
            id: self.seq.next_queued(),
            chat_id: id,
            content,
            created_at: at,
            client_id,
        };
        self.entry_mut(id)?.queue.push_back(queued.clone());
        self.hint(id, ChangeKind::Queue);
        Ok(queued)
    }

    pub(crate) fn edit_message(
        &mut self,
        id: ChatId,
        message: MessageId,
        content: Vec<Part>,
    ) -> Result<EditOutcome> {
        self.limits.check_content(&content)?;
        let entry = self.entry(id)?;
        let index = entry
            .messages
            .binary_search_by_key(&message, |m| m.id)
            .map_err(|_| StoreError::not_found(Entity::Message, message))?;
        if entry.messages[index].role != Role::User {
            return Err(StoreError::validation("message_id", "Only user messages can be edited."));
        }
        let decision = self.decide(id, Trigger::Edit)?;
        let at = now();
        let entry = self.entry_mut(id)?;
        let deletion = Deletion { at, revision: entry.chat.history_version };
        entry.chat.history_version += 1;
        entry.chat.rewritten_after = message.0 - 1;
        let replaced = std::mem::replace(&mut entry.messages[index].content, content);
        entry.deleted.push(Message {
            content: replaced,
            deleted: Some(deletion),
            ..entry.messages[index].clone()
        });
        let deleted_messages = entry.truncate_after(index, deletion);
        let deleted_queued = entry.queue.len();
        entry.queue.clear();
        entry.parts.clear();
        // The recorded step's rows came after the edited message: its calls go with them.
        entry.chat.tool_calls.clear();
        let edited = entry.messages[index].clone();
        self.hint(id, ChangeKind::Messages);
        if deleted_queued > 0 {
            self.hint(id, ChangeKind::Queue);
        }
        self.set_status(id, decision.next, None, at)?;
        Ok(EditOutcome { chat: self.chat(id)?, message: edited, deleted_messages, deleted_queued })
    }

    /// Applies a stop request or a direct status change, as decided for `trigger`.
    fn stop_or_transition(&mut self, id: ChatId, trigger: Trigger) -> Result<Chat> {
        let decision = self.decide(id, trigger)?;
        let entry = self.entry_mut(id)?;
        if let Some(kind) = decision.stop {
            entry.chat.stop_request = Some(StopRequest::merge(entry.chat.stop_request, kind, None));
            self.hint(id, ChangeKind::Chat);
        } else if !decision.keeps(entry.chat.status) {
            self.apply_idle(id, &decision)?;
        }
        self.chat(id)
    }

    /// Applies a decision that changes the status of a chat no worker holds: closes its
    /// recorded step when the decision says so, promotes the queue head when it says so (the
    /// chat is then `pending`), and writes the status.
    fn apply_idle(&mut self, id: ChatId, decision: &chatd_core::status::Decision) -> Result<()> {
        let at = now();
        if decision.close_calls {
            self.close_step(id, at)?;
        }
        let promoted =
            if decision.promote_queue_head { self.promote_from_queue(id, None, at)? } else { None };
        let next = if promoted.is_some() { chatd_core::ChatStatus::Pending } else { decision.next };
        self.set_status(id, next, None, at)
    }

    pub(crate) fn interrupt(&mut self, id: ChatId) -> Result<Chat> {
        self.stop_or_transition(id, Trigger::Interrupt)
    }

    pub(crate) fn pause(&mut self, id: ChatId) -> Result<Chat> {
        self.stop_or_transition(id, Trigger::Pause)
    }

    pub(crate) fn complete(&mut self, id: ChatId) -> Result<Chat> {
        self.stop_or_transition(id, Trigger::Complete)
    }

    pub(crate) fn resume(&mut self, id: ChatId) -> Result<Chat> {
        let entry = self.entry(id)?;
        let trigger = Trigger::resume(
            &entry.chat.tool_calls,
            entry.has_unanswered_message(),
            entry.queue.len(),
        );
        let decision = self.decide(id, trigger)?;
        self.apply_idle(id, &decision)?;
        self.chat(id)
    }

    pub(crate) fn list_queued(&self, id: ChatId) -> Result<Vec<QueuedMessage>> {
        Ok(self.entry(id)?.queue.iter().cloned().collect())
    }

    pub(crate) fn promote_queued(
        &mut self,
        id: ChatId,
        queued: QueuedMessageId,
    ) -> Result<SendOutcome> {
        if !self.entry(id)?.queue.iter().any(|q| q.id == queued) {
            return Err(StoreError::not_found(Entity::QueuedMessage, queued));
        }
        let decision = self.decide(id, Trigger::PromoteQueued)?;
        let at = now();
        let delivery = match (decision.message, decision.stop) {
            (MessageAction::Insert, _) => match self.promote_from_queue(id, Some(queued), at)? {
                Some(message) => Delivery::Inserted(message),
                None => return Err(StoreError::not_found(Entity::QueuedMessage, queued)),
            },
            (_, Some(kind)) => {
                let entry = self.entry_mut(id)?;
                entry.chat.stop_request =
                    Some(StopRequest::merge(entry.chat.stop_request, kind, Some(queued)));
                self.hint(id, ChangeKind::Chat);
                Delivery::AfterStop
            }
            _ => Delivery::AfterStop,
        };
        if !decision.keeps(self.entry(id)?.chat.status) {
            self.set_status(id, decision.next, None, at)?;
        }
        Ok(SendOutcome { chat: self.chat(id)?, delivery })
    }

    pub(crate) fn delete_queued(
        &mut self,
        id: ChatId,
        queued: QueuedMessageId,
    ) -> Result<Vec<QueuedMessage>> {
        let entry = self.entry_mut(id)?;
        let position = entry
            .queue
            .iter()
            .position(|q| q.id == queued)
            .ok_or_else(|| StoreError::not_found(Entity::QueuedMessage, queued))?;
        entry.queue.remove(position);
        if let Some(stop) = entry.chat.stop_request.as_mut()
            && stop.promote == Some(queued)
        {
            stop.promote = None;
        }
        let rest = entry.queue.iter().cloned().collect();
        self.hint(id, ChangeKind::Queue);
        Ok(rest)
    }
}

impl State {
    pub(crate) fn resolve_tool_calls(
        &mut self,
        id: ChatId,
        mut decisions: Vec<chatd_core::tool_call::Decision>,
    ) -> Result<Chat> {
        self.limits.check_decisions(&mut decisions)?;
        let entry = self.entry(id)?;
        let mut calls = entry.chat.tool_calls.clone();
        calls.apply_decisions(&decisions)?;
        let decision =
            if calls.any_open() { None } else { Some(self.decide(id, Trigger::ActionsResolved)?) };
        self.settle_calls(id, calls, decision)
    }

    /// Writes decided records and, when nothing is left open, the status `decision` says.
    fn settle_calls(
        &mut self,
        id: ChatId,
        mut calls: Vec<chatd_core::ToolCall>,
        decision: Option<chatd_core::status::Decision>,
    ) -> Result<Chat> {
        self.limits.check_tool_calls(&mut calls);
        self.entry_mut(id)?.chat.tool_calls = calls;
        self.hint(id, ChangeKind::Chat);
        if let Some(decision) = decision
            && !decision.keeps(self.entry(id)?.chat.status)
        {
            self.set_status(id, decision.next, None, now())?;
        }
        self.chat(id)
    }

    pub(crate) fn expire_tool_calls(&mut self, limit: usize) -> Result<Vec<ChatId>> {
        let at = now();
        let due: Vec<ChatId> = self
            .chats
            .values()
            .filter(|entry| {
                entry.chat.tool_calls.earliest_deadline().is_some_and(|deadline| deadline <= at)
            })
            .map(|entry| entry.chat.id)
            .take(limit)
            .collect();
        for id in &due {
            let mut calls = self.entry(*id)?.chat.tool_calls.clone();
            calls.expire(at);
            let decision = if calls.any_open() {
                None
            } else {
                self.entry(*id)?.chat.status.decide(Trigger::ActionsResolved).ok()
            };
            self.settle_calls(*id, calls, decision)?;
        }
        Ok(due)
    }
}
