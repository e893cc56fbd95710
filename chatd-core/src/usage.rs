//! What model calls cost ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): prices on model configs, the usage ledger (one
//! record per model call, kept whatever happens to the chat), running totals on chats, and
//! the reports a host reads them through.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ChatId, ModelConfigId, UserId};
use crate::message::Usage;
use crate::provider_config::ProviderKind;

/// The most a price may be: a million currency units per million tokens, in micro-units.
pub(crate) const MAX_PRICE_MICROS: i64 = 1_000_000_000_000;

/// A model's prices, in integer micro-units of one currency (the host's) per million tokens:
/// `2_500_000` is 2.50 per million.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per million uncached input (prompt) tokens.
    #[serde(default)]
    pub input: i64,
    /// Per million output tokens (reasoning included).
    #[serde(default)]
    pub output: i64,
    /// Per million prompt tokens read from the provider's cache.
    #[serde(default)]
    pub cache_read: i64,
    /// Per million prompt tokens written to the provider's cache.
    #[serde(default)]
    pub cache_write: i64,
}

impl Prices {
    /// Prices for input and output tokens (cache reads and writes at the input price).
    #[must_use]
    pub fn new(input: i64, output: i64) -> Self {
        Prices { input, output, cache_read: input, cache_write: input }
    }

    /// Sets the cache prices.
    #[must_use]
    pub fn with_cache(mut self, read: i64, write: i64) -> Self {
        self.cache_read = read;
        self.cache_write = write;
        self
    }

    /// What `usage` costs, in micro-units, rounded up (a limit never under-counts).
    #[must_use]
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let parts = [
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (usage.cache_read_tokens, self.cache_read),
            (usage.cache_creation_tokens, self.cache_write),
        ];
        let scaled: i128 = parts
            .iter()
            .map(|(tokens, price)| i128::from((*tokens).max(0)) * i128::from(*price))
            .sum();
        let micros = (scaled + 999_999) / 1_000_000;
        i64::try_from(micros).unwrap_or(i64::MAX)
    }
}

/// What kind of model call a usage record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallKind {
    /// A step of a turn (a sub-agent's steps are steps of its own chat).
    Step,
    /// A compaction summary.
    Compaction,
    /// A title.
    Title,
}

impl CallKind {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Step => "step",
            CallKind::Compaction => "compaction",
            CallKind::Title => "title",
        }
    }
}

impl std::str::FromStr for CallKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "step" => Ok(CallKind::Step),
            "compaction" => Ok(CallKind::Compaction),
            "title" => Ok(CallKind::Title),
            other => Err(format!("unknown call kind {other:?}")),
        }
    }
}

/// A model call to record ([`ChatStore::record_usage`](crate::ChatStore::record_usage)):
/// whose it was and what it used. The store prices it at the model config's prices now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewUsage {
    /// The chat it was made for.
    pub chat_id: ChatId,
    /// The root of that chat's tree.
    pub root_chat_id: ChatId,
    /// The chat's owner.
    pub owner_id: UserId,
    /// The model config called.
    pub model_config_id: ModelConfigId,
    /// What the call was.
    pub kind: CallKind,
    /// The tokens the call used (estimated when `estimated`).
    pub usage: Usage,
    /// Whether `usage` is the runtime's estimate: the call was cut before the provider
    /// reported it.
    pub estimated: bool,
}

impl NewUsage {
    /// A call made for `chat` with `model_config_id`.
    #[must_use]
    pub fn for_chat(
        chat: &crate::Chat,
        model_config_id: ModelConfigId,
        kind: CallKind,
        usage: Usage,
    ) -> Self {
        NewUsage {
            chat_id: chat.id,
            root_chat_id: chat.root_id(),
            owner_id: chat.owner_id,
            model_config_id,
            kind,
            usage,
            estimated: false,
        }
    }

    /// Marks the usage as the runtime's estimate (a call cut before the provider said).
    #[must_use]
    pub fn as_estimate(mut self) -> Self {
        self.estimated = true;
        self
    }
}

/// One model call in the ledger. Records are never rewritten: not by a price change, an
/// edit, or the chat's deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Its id (increasing).
    pub id: i64,
    /// The chat it was made for.
    pub chat_id: ChatId,
    /// The root of that chat's tree.
    pub root_chat_id: ChatId,
    /// The chat's owner.
    pub owner_id: UserId,
    /// The model config called.
    pub model_config_id: ModelConfigId,
    /// Its provider, as it was.
    pub provider: ProviderKind,
    /// Its model, as it was.
    pub model: String,
    /// What the call was.
    pub kind: CallKind,
    /// The tokens the call used (estimated when `estimated`).
    pub usage: Usage,
    /// What it cost at the prices then in force; `None` when the config had no prices.
    pub cost_micros: Option<i64>,
    /// Whether the usage is the runtime's estimate (the call was cut before the provider
    /// reported it).
    #[serde(default)]
    pub estimated: bool,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Running totals: model calls, tokens (prompt, cached or not, and output) and cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Model calls.
    pub calls: i64,
    /// Tokens: input, cache reads and writes, output.
    pub tokens: i64,
    /// Cost in micro-units (unpriced calls add nothing).
    pub cost_micros: i64,
}

impl Spend {
    /// The totals after `record`.
    #[must_use]
    pub fn plus(self, usage: &Usage, cost_micros: Option<i64>) -> Self {
        Spend {
            calls: self.calls.saturating_add(1),
            tokens: self.tokens.saturating_add(usage.billed_tokens()),
            cost_micros: self.cost_micros.saturating_add(cost_micros.unwrap_or(0)),
        }
    }
}

/// How a usage report is grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    /// One bucket.
    #[default]
    Total,
    /// One bucket per UTC day.
    Day,
    /// One bucket per model config.
    Model,
    /// One bucket per UTC day and model config.
    DayAndModel,
    /// One bucket per owner (an administrator's view of everyone).
    Owner,
}

impl UsageGroup {
    /// Whether buckets are per day, per model config, per owner.
    #[must_use]
    pub fn keys(self) -> (bool, bool, bool) {
        match self {
            UsageGroup::Total => (false, false, false),
            UsageGroup::Day => (true, false, false),
            UsageGroup::Model => (false, true, false),
            UsageGroup::DayAndModel => (true, true, false),
            UsageGroup::Owner => (false, false, true),
        }
    }
}

/// Which records a usage report sums (every filter is optional; all must match).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageQuery {
    /// One owner's calls.
    pub owner: Option<UserId>,
    /// One chat tree's calls (by its root).
    pub root_chat: Option<ChatId>,
    /// One model config's calls.
    pub model_config: Option<ModelConfigId>,
    /// Calls at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Calls before this time.
    pub to: Option<DateTime<Utc>>,
    /// How to group them.
    #[serde(default)]
    pub group: UsageGroup,
}

impl UsageQuery {
    /// Every record, in one bucket.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// One owner's records.
    #[must_use]
    pub fn owner(owner: UserId) -> Self {
        UsageQuery { owner: Some(owner), ..Self::default() }
    }

    /// One chat tree's records.
    #[must_use]
    pub fn tree(root: ChatId) -> Self {
        UsageQuery { root_chat: Some(root), ..Self::default() }
    }

    /// Only calls of `config`.
    #[must_use]
    pub fn with_model_config(mut self, config: ModelConfigId) -> Self {
        self.model_config = Some(config);
        self
    }

    /// Only calls in `[from, to)`.
    #[must_use]
    pub fn between(mut self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Self {
        self.from = from;
        self.to = to;
        self
    }

    /// Grouped by `group`.
    #[must_use]
    pub fn grouped(mut self, group: UsageGroup) -> Self {
        self.group = group;
        self
    }

    /// Whether `record` is one of the records this query sums.
    #[must_use]
    pub fn matches(&self, record: &UsageRecord) -> bool {
        self.owner.is_none_or(|o| o == record.owner_id)
            && self.root_chat.is_none_or(|r| r == record.root_chat_id)
            && self.model_config.is_none_or(|m| m == record.model_config_id)
            && self.from.is_none_or(|from| record.created_at >= from)
            && self.to.is_none_or(|to| record.created_at < to)
    }
}

/// One bucket of a usage report: the sums over its records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBucket {
    /// The UTC day (grouped by day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    /// The model config (grouped by model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_config_id: Option<ModelConfigId>,
    /// Its model name, as last recorded (grouped by model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The owner (grouped by owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// Model calls.
    pub calls: i64,
    /// Uncached input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache reads.
    pub cache_read_tokens: i64,
    /// Cache writes.
    pub cache_write_tokens: i64,
    /// Cost in micro-units.
    pub cost_micros: i64,
    /// Calls recorded without a price (their cost is not in `cost_micros`).
    pub unpriced_calls: i64,
    /// Calls whose usage is the runtime's estimate (cut before the provider reported it).
    #[serde(default)]
    pub estimated_calls: i64,
}

impl UsageBucket {
    /// Adds `record` to the bucket.
    pub fn add(&mut self, record: &UsageRecord) {
        self.calls += 1;
        self.input_tokens += record.usage.input_tokens;
        self.output_tokens += record.usage.output_tokens;
        self.cache_read_tokens += record.usage.cache_read_tokens;
        self.cache_write_tokens += record.usage.cache_creation_tokens;
        match record.cost_micros {
            Some(cost) => self.cost_micros += cost,
            None => self.unpriced_calls += 1,
        }
        self.estimated_calls += i64::from(record.estimated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_times_price_per_million_rounded_up() {
        let prices = Prices::new(2_500_000, 10_000_000).with_cache(250_000, 3_125_000);
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 200,
            cache_read_tokens: 4_000,
            cache_creation_tokens: 1,
            ..Usage::default()
        };
        // 1000×2.5 + 200×10 + 4000×0.25 + 1×3.125 = 2500 + 2000 + 1000 + 3.125 → 5504.
        assert_eq!(prices.cost_micros(&usage), 5_504);
        assert_eq!(Prices::default().cost_micros(&usage), 0);
        let huge = Usage { input_tokens: i64::MAX, output_tokens: i64::MAX, ..Usage::default() };
        let max = Prices::new(MAX_PRICE_MICROS, MAX_PRICE_MICROS);
        assert_eq!(max.cost_micros(&huge), i64::MAX, "saturates, never wraps");
        let negative = Usage { input_tokens: -5, ..Usage::default() };
        assert_eq!(Prices::new(1_000_000, 0).cost_micros(&negative), 0);
    }
}
