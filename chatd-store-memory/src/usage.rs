//! The usage ledger (BEHAVIOUR §17): records kept in order, totals on the chats.

use std::collections::BTreeMap;

use chatd_core::store::{Entity, Result, StoreError};
use chatd_core::usage::{NewUsage, UsageBucket, UsageQuery, UsageRecord};
use chatd_core::{ModelConfigId, UserId};

use crate::state::{State, now};

impl State {
    pub(crate) fn record_usage(&mut self, new: NewUsage) -> Result<UsageRecord> {
        chatd_core::validate::usage(&new.usage)?;
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
            created_at: now(),
        };
        if let Some(entry) = self.chats.get_mut(&new.chat_id) {
            entry.chat.spent = entry.chat.spent.plus(&new.usage, cost_micros);
        }
        if let Some(entry) = self.chats.get_mut(&new.root_chat_id) {
            entry.chat.tree_spent = entry.chat.tree_spent.plus(&new.usage, cost_micros);
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
