//! Worker-side operations, all fenced by the lease.

use std::collections::HashMap;
use std::time::Duration;

use chatd_core::status::{ChatStatus, Trigger, TurnEnding, TurnOutcome};
use chatd_core::store::{
    Lease, LeaseStatus, NewPart, PartPosition, PartRecord, Result, RunningCaps, Step, fair_window,
};
use chatd_core::{Chat, ChatId, Message, UserId, WorkerId};

use crate::state::{State, now};

impl State {
    /// The pending chats to claim, owners interleaved within the caps (see
    /// `ChatStore::acquire_capped`).
    fn fair_picks(&self, limit: usize, caps: RunningCaps) -> Vec<ChatId> {
        let running = || self.chats.values().filter(|e| e.chat.status == ChatStatus::Running);
        let room =
            caps.total.map_or(limit, |total| limit.min(total.saturating_sub(running().count())));
        let mut busy: HashMap<UserId, usize> = HashMap::new();
        if caps.per_owner.is_some() {
            for entry in running() {
                *busy.entry(entry.chat.owner_id).or_default() += 1;
            }
        }
        let mut rank: HashMap<UserId, usize> = HashMap::new();
        let mut candidates = Vec::new();
        // Owners already at their cap are left out of the window, so that it holds chats
        // that can run.
        let full = |owner: &UserId| {
            caps.per_owner.is_some_and(|cap| busy.get(owner).copied().unwrap_or(0) >= cap)
        };
        let open = self.idx.pending.iter().filter_map(|(_, id)| {
            let entry = self.chats.get(id)?;
            (!full(&entry.chat.owner_id)).then_some((*id, entry.chat.owner_id))
        });
        for (position, (id, owner)) in open.take(fair_window(limit)).enumerate() {
            let round = rank.entry(owner).or_default();
            *round += 1;
            let fits = caps
                .per_owner
                .is_none_or(|cap| busy.get(&owner).copied().unwrap_or(0) + *round <= cap);
            if fits {
                candidates.push((*round, position, id));
            }
        }
        candidates.sort_unstable();
        candidates.into_iter().take(room).map(|(_, _, id)| id).collect()
    }

    pub(crate) fn acquire(
        &mut self,
        worker: WorkerId,
        limit: usize,
        caps: RunningCaps,
    ) -> Result<Vec<Lease>> {
        let at = now();
        let mut leases = Vec::new();
        for id in self.fair_picks(limit, caps) {
            let decision = ChatStatus::Pending.decide(Trigger::Acquire)?;
            self.set_status(id, decision.next, None, at)?;
            let entry = self.entry_mut(id)?;
            let chat = &mut entry.chat;
            chat.worker_id = Some(worker);
            chat.started_at = Some(at);
            chat.heartbeat_at = Some(at);
            chat.lease_epoch += 1;
            chat.turn_started_after = entry.messages.last().map_or(0, |m| m.id.0);
            leases.push(Lease { chat_id: id, worker_id: worker, epoch: chat.lease_epoch });
        }
        Ok(leases)
    }

    pub(crate) fn heartbeat(&mut self, worker: WorkerId, leases: &[Lease]) -> Vec<LeaseStatus> {
        let at = now();
        leases
            .iter()
            .map(|lease| {
                if lease.worker_id != worker || self.check_lease(lease).is_err() {
                    return LeaseStatus::Lost;
                }
                match self.chats.get_mut(&lease.chat_id) {
                    Some(entry) => {
                        entry.chat.heartbeat_at = Some(at);
                        match entry.chat.stop_request {
                            Some(stop) => LeaseStatus::StopRequested(stop.kind),
                            None => LeaseStatus::Held,
                        }
                    }
                    None => LeaseStatus::Lost,
                }
            })
            .collect()
    }

    pub(crate) fn commit_step(&mut self, lease: &Lease, mut step: Step) -> Result<Vec<Message>> {
        self.limits.check_step(&mut step)?;
        self.check_lease(lease)?;
        for config in
            step.assistant.iter().chain(&step.tool_results).filter_map(|m| m.model_config_id)
        {
            self.known_model_config(config)?;
        }
        let at = now();
        let mut written = Vec::with_capacity(step.tool_results.len() + 1);
        for row in step.assistant.into_iter().chain(step.tool_results) {
            written.push(self.insert_message(lease.chat_id, row, at, false)?);
        }
        let entry = self.entry_mut(lease.chat_id)?;
        entry.parts.clear();
        if let Some(calls) = step.calls {
            entry.chat.tool_calls = calls;
            self.hint(lease.chat_id, chatd_core::ChangeKind::Chat);
        }
        Ok(written)
    }

    pub(crate) fn release(&mut self, lease: &Lease, outcome: TurnOutcome) -> Result<Chat> {
        self.check_lease(lease)?;
        let stop = self.entry(lease.chat_id)?.chat.stop_request;
        let trigger = Trigger::release(&outcome, stop.map(|s| s.kind));
        let decision = self.decide(lease.chat_id, trigger)?;
        let at = now();
        if decision.close_calls {
            self.close_step(lease.chat_id, at)?;
        }
        let promoted = if decision.promote_queue_head {
            self.promote_from_queue(lease.chat_id, stop.and_then(|s| s.promote), at)?
        } else {
            None
        };
        let next = if promoted.is_some() { ChatStatus::Pending } else { decision.next };
        let calls = &self.entry(lease.chat_id)?.chat.tool_calls;
        let next = next.settle_release(calls);
        let last_error = match &outcome {
            TurnOutcome::Failed(reason) => Some(self.limits.failure_text(reason)),
            _ => None,
        };
        let ending = match (TurnEnding::of_release(trigger, &outcome), &last_error) {
            (TurnEnding::Failed { .. }, Some(reason)) => {
                TurnEnding::Failed { reason: reason.clone() }
            }
            (ending, _) => ending,
        };
        self.entry_mut(lease.chat_id)?.chat.last_turn = Some(ending);
        self.set_status(lease.chat_id, next, last_error, at)?;
        self.chat(lease.chat_id)
    }

    pub(crate) fn recover_stale(&mut self, stale_after: Duration) -> Result<Vec<ChatId>> {
        let at = now();
        let cutoff = chrono::Duration::from_std(stale_after)
            .ok()
            .and_then(|d| at.checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let stale: Vec<ChatId> = self
            .idx
            .running
            .iter()
            .filter(|id| {
                self.chats
                    .get(id)
                    .and_then(|e| e.chat.heartbeat_at)
                    .is_some_and(|beat| beat < cutoff)
            })
            .copied()
            .collect();
        for id in &stale {
            let decision = self.decide(*id, Trigger::RecoverStale)?;
            self.entry_mut(*id)?.chat.last_turn = Some(TurnEnding::Lost);
            self.set_status(*id, decision.next, None, at)?;
        }
        Ok(stale)
    }

    pub(crate) fn append_parts(&mut self, lease: &Lease, mut parts: Vec<NewPart>) -> Result<()> {
        self.check_lease(lease)?;
        let limits = self.limits;
        let entry = self.entry_mut(lease.chat_id)?;
        let last = limits.check_parts(entry.parts.last().map(|p| p.position), &mut parts)?;
        let at = now();
        entry.parts.extend(parts.into_iter().map(|part| PartRecord {
            chat_id: lease.chat_id,
            position: part.position,
            payload: part.payload,
            created_at: at,
        }));
        if let Some(last) = last {
            self.outbox.push(
                chatd_core::ChangeHint::new(lease.chat_id, chatd_core::ChangeKind::Parts)
                    .at(format_args!("{}.{}", last.episode, last.seq)),
            );
        }
        Ok(())
    }

    pub(crate) fn read_parts(
        &self,
        chat: ChatId,
        after: Option<PartPosition>,
    ) -> Result<Vec<PartRecord>> {
        let entry = self.entry(chat)?;
        let start = match after {
            Some(after) => entry.parts.partition_point(|p| p.position <= after),
            None => 0,
        };
        Ok(entry.parts[start..].to_vec())
    }
}
