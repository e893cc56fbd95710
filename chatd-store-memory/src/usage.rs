//! The usage ledger (BEHAVIOUR §17): records kept in order, totals on the chats.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chatd_core::store::{Entity, Held, NewSpendHold, Result, SpendAdmission, StoreError};
use chatd_core::usage::{CallKind, NewUsage, UsageBucket, UsageQuery, UsageRecord};
use chatd_core::{ChatId, ModelConfigId, UserId};

use crate::state::{State, now};

impl State {
    pub(crate) fn record_usage(&mut self, new: NewUsage) -> Result<UsageRecord> {
        self.limits.check_usage(&new.usage)?;
        let config = self
            .model_configs
            .get(&new.model_config_id)
            .ok_or_else(|| StoreError::not_found(Entity::ModelConfig, new.model_config_id))?;
        let cost_micros = config.prices.map(|p| p.cost_micros(&new.usage));
        let record = UsageRecord {
            id: self.usage.last().map_or(1, |r| r.id + 1),
            chat_id: new.chat_id,
            root_chat_id: new.root_chat_id,
            owner_id: new.owner_id,
            model_config_id: new.model_config_id,
            provider: config.provider,
            model: config.model.clone(),
            kind: new.kind,
            usage: new.usage,
            cost_micros,
            estimated: new.estimated,
            created_at: now(),
        };
        if let Some(entry) = self.chats.get_mut(&new.chat_id) {
            entry.chat.spent = entry.chat.spent.plus(&new.usage, cost_micros);
        }
        if let Some(entry) = self.chats.get_mut(&new.root_chat_id) {
            entry.chat.tree_spent = entry.chat.tree_spent.plus(&new.usage, cost_micros);
        }
        if new.kind == CallKind::Step {
            self.spend_holds.remove(&new.chat_id);
        }
        self.usage.push(record.clone());
        Ok(record)
    }

    pub(crate) fn usage_report(&self, query: &UsageQuery) -> Vec<UsageBucket> {
        type Key = (Option<chrono::NaiveDate>, Option<ModelConfigId>, Option<UserId>);
        let mut buckets: BTreeMap<Key, UsageBucket> = BTreeMap::new();
        let (by_day, by_model, by_owner) = query.group.keys();
        for record in self.usage.iter().filter(|r| query.matches(r)) {
            let day = by_day.then(|| record.created_at.date_naive());
            let model = by_model.then_some(record.model_config_id);
            let owner = by_owner.then_some(record.owner_id);
            let bucket = buckets.entry((day, model, owner)).or_default();
            bucket.day = day;
            bucket.model_config_id = model;
            bucket.owner_id = owner;
            if model.is_some() {
                bucket.model = Some(record.model.clone());
            }
            bucket.add(record);
        }
        buckets.into_values().collect()
    }
}

/// One lock per owner with an admission open or waiting (an owner's entry goes with its
/// last admission).
pub(crate) type AdmissionLocks = Arc<Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>>;

/// An open spend admission: its owner's lock, held until it finishes.
pub(crate) struct Admission {
    state: Arc<Mutex<State>>,
    owner: UserId,
    locks: AdmissionLocks,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Admission {
    /// Waits for `owner`'s lock.
    pub(crate) async fn begin(
        locks: &AdmissionLocks,
        state: &Arc<Mutex<State>>,
        owner: UserId,
    ) -> Admission {
        let lock = Arc::clone(
            locks.lock().unwrap_or_else(PoisonError::into_inner).entry(owner).or_default(),
        );
        let guard = lock.lock_owned().await;
        Admission { state: Arc::clone(state), owner, locks: Arc::clone(locks), _guard: guard }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map and this guard hold the lock: nobody waits for it.
        if locks.get(&self.owner).is_some_and(|lock| Arc::strong_count(lock) <= 2) {
            locks.remove(&self.owner);
        }
    }
}

#[async_trait]
impl SpendAdmission for Admission {
    async fn held(&mut self, chat: ChatId, root: ChatId) -> Result<Held> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Holds whose turn has ended (or whose lease was taken over) have lapsed.
        let lapsed: Vec<ChatId> = state
            .spend_holds
            .iter()
            .filter(|(_, hold)| state.check_lease(&hold.lease).is_err())
            .map(|(id, _)| *id)
            .collect();
        for id in lapsed {
            state.spend_holds.remove(&id);
        }
        let owner = self.owner;
        let mut held = Held::default();
        for hold in state.spend_holds.values() {
            if hold.owner_id != owner || hold.lease.chat_id == chat {
                continue;
            }
            held.calls += 1;
            held.owner_micros = held.owner_micros.saturating_add(hold.cost_micros);
            if hold.root_chat_id == root {
                held.tree_micros = held.tree_micros.saturating_add(hold.cost_micros);
            }
        }
        Ok(held)
    }

    async fn finish(self: Box<Self>, hold: Option<NewSpendHold>) -> Result<()> {
        if let Some(hold) = hold {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.check_lease(&hold.lease)?;
            state.spend_holds.insert(hold.lease.chat_id, hold);
        }
        Ok(())
    }
}
