//! Limits checked before money is spent ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)): a hook consulted before every model
//! call and every send, and a built-in limiter — spend per owner per day and per month, per
//! chat tree, and model calls and tokens per turn, with a default and per-owner overrides.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::chat::Chat;
use crate::ids::UserId;
use crate::model_config::ModelConfig;
use crate::store::{ChatStore, Held, Result};
use crate::usage::{Spend, UsageQuery};

/// What was spent before a model call (or a send), as the ledger says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpentSoFar {
    /// The owner's cost since the start of the UTC day, in micro-units.
    pub owner_today: i64,
    /// The owner's cost since the start of the UTC month.
    pub owner_month: i64,
    /// The chat tree's cost (its root's `tree_spent`).
    pub tree: i64,
    /// This turn's calls, tokens and cost so far (zero before a send).
    pub turn: Spend,
    /// What the owner's other model calls in flight hold (upper bounds of their cost; zero
    /// before a send). The built-in limiter counts them as spent.
    pub held: Held,
}

impl SpentSoFar {
    /// Reads the owner's day and month from the ledger and the tree's totals from its root
    /// chat (three indexed reads), as of `now`.
    ///
    /// # Errors
    /// The store's.
    pub async fn read(store: &dyn ChatStore, chat: &Chat, now: DateTime<Utc>) -> Result<Self> {
        Self::read_for(store, chat.owner_id, Some(chat.root_id()), now).await
    }

    /// As [`read`](Self::read) for an owner and a tree that may not exist yet (`None`: a new
    /// tree, which has spent nothing).
    ///
    /// # Errors
    /// The store's.
    pub async fn read_for(
        store: &dyn ChatStore,
        owner_id: UserId,
        root: Option<crate::ids::ChatId>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let day = Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default());
        let month =
            Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(day);
        let cost = |buckets: Vec<crate::usage::UsageBucket>| -> i64 {
            buckets.iter().map(|b| b.cost_micros).sum()
        };
        let owner = UsageQuery::owner(owner_id);
        let owner_month = cost(store.usage_report(owner.clone().between(Some(month), None)).await?);
        let owner_today = if day == month {
            owner_month
        } else {
            cost(store.usage_report(owner.between(Some(day), None)).await?)
        };
        let tree = match root {
            None => 0,
            Some(root) => match store.get_chat(root).await {
                Ok(root) => root.tree_spent.cost_micros,
                // A deleted root: its tree's records are still in the ledger.
                Err(err) if err.is_not_found() => {
                    cost(store.usage_report(UsageQuery::tree(root)).await?)
                }
                Err(err) => return Err(err),
            },
        };
        Ok(SpentSoFar {
            owner_today,
            owner_month,
            tree,
            turn: Spend::default(),
            held: Held::default(),
        })
    }
}

/// The most one model call with `config` can cost, in micro-units, for a prompt of
/// `prompt_bytes` serialised bytes: no more input tokens than bytes (nor than the context
/// window), priced at the dearer of input and cache writes, and no more output tokens than
/// `max_output_tokens` (else the context window). Unpriced: 0. A loose bound keeps the
/// guarantee; a config's `max_output_tokens` keeps it tight.
#[must_use]
pub(crate) fn call_upper_bound(config: &ModelConfig, prompt_bytes: usize) -> i64 {
    let Some(prices) = config.prices else { return 0 };
    let window = config.context_limit.max(0);
    let input = i64::try_from(prompt_bytes).unwrap_or(i64::MAX).min(window);
    let output = config.options.max_output_tokens.map_or(window, i64::from).min(window);
    let usage = crate::message::Usage {
        input_tokens: input,
        output_tokens: output,
        ..crate::message::Usage::default()
    };
    let dearer = crate::usage::Prices { input: prices.input.max(prices.cache_write), ..prices };
    dearer.cost_micros(&usage)
}

/// What a spend policy is asked about: whose call, on which model, and what was spent.
#[derive(Debug, Clone, Copy)]
pub struct SpendContext<'a> {
    /// Whose money it is.
    pub owner: UserId,
    /// The chat the call or message is for (`None`: a chat being created with its first
    /// message).
    pub chat: Option<&'a Chat>,
    /// The model config about to be called.
    pub model_config: &'a ModelConfig,
    /// What was spent so far.
    pub spent: SpentSoFar,
    /// Whether this is a send (before any turn) rather than a model call.
    pub before_send: bool,
}

/// Why a call or a send was refused: `spend limit reached: <which>, <spent> of <limit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRefusal {
    /// Which limit (`owner per day`, `chat tree`, `model calls per turn`, …).
    pub limit: String,
    /// What was spent (micro-units, calls or tokens, as the limit counts).
    pub spent: i64,
    /// The most the limit allows, in the same unit as `spent`.
    pub allowed: i64,
}

impl fmt::Display for SpendRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spend limit reached: {}, {} of {}", self.limit, self.spent, self.allowed)
    }
}

impl std::error::Error for SpendRefusal {}

/// The hook consulted before every model call and every send ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)). It decides
/// from what it is given; it must be quick (it runs before each step).
#[async_trait]
pub trait SpendPolicy: Send + Sync + fmt::Debug {
    /// `Ok` to allow, `Err` to refuse.
    ///
    /// # Errors
    /// The refusal, whose text becomes the turn's `last_error` or the send's answer.
    async fn check(&self, context: &SpendContext<'_>) -> std::result::Result<(), SpendRefusal>;
}

/// Limits, each optional (`None`: unlimited). Costs are in micro-units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpendLimits {
    /// An owner's cost per UTC day.
    pub owner_per_day: Option<i64>,
    /// An owner's cost per UTC month.
    pub owner_per_month: Option<i64>,
    /// A chat tree's cost in all.
    pub per_tree: Option<i64>,
    /// Model calls in one turn.
    pub calls_per_turn: Option<i64>,
    /// Tokens in one turn.
    pub tokens_per_turn: Option<i64>,
}

impl SpendLimits {
    /// No limit.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the owner's daily cost limit.
    #[must_use]
    pub fn owner_per_day(mut self, micros: i64) -> Self {
        self.owner_per_day = Some(micros);
        self
    }

    /// Sets the owner's monthly cost limit.
    #[must_use]
    pub fn owner_per_month(mut self, micros: i64) -> Self {
        self.owner_per_month = Some(micros);
        self
    }

    /// Sets a chat tree's cost limit.
    #[must_use]
    pub fn per_tree(mut self, micros: i64) -> Self {
        self.per_tree = Some(micros);
        self
    }

    /// Sets the model calls one turn may make.
    #[must_use]
    pub fn calls_per_turn(mut self, calls: i64) -> Self {
        self.calls_per_turn = Some(calls);
        self
    }

    /// Sets the tokens one turn may use.
    #[must_use]
    pub fn tokens_per_turn(mut self, tokens: i64) -> Self {
        self.tokens_per_turn = Some(tokens);
        self
    }

    /// The first limit `spent` has reached, if any, counting what other calls in flight hold
    /// as spent. Per-turn limits apply to model calls only (a send starts a new turn).
    #[must_use]
    pub fn reached(&self, spent: &SpentSoFar, before_send: bool) -> Option<SpendRefusal> {
        let turn = if before_send { Spend::default() } else { spent.turn };
        let held = spent.held;
        let checks = [
            (
                "owner per day",
                spent.owner_today.saturating_add(held.owner_micros),
                self.owner_per_day,
            ),
            (
                "owner per month",
                spent.owner_month.saturating_add(held.owner_micros),
                self.owner_per_month,
            ),
            ("chat tree", spent.tree.saturating_add(held.tree_micros), self.per_tree),
            ("model calls per turn", turn.calls, self.calls_per_turn.filter(|_| !before_send)),
            ("tokens per turn", turn.tokens, self.tokens_per_turn.filter(|_| !before_send)),
        ];
        checks.into_iter().find_map(|(limit, spent, allowed)| {
            let allowed = allowed?;
            (spent >= allowed).then(|| SpendRefusal { limit: limit.to_owned(), spent, allowed })
        })
    }
}

/// The built-in limiter: a default for every owner and overrides for some.
#[derive(Debug, Clone, Default)]
pub struct SpendLimiter {
    default: SpendLimits,
    overrides: HashMap<UserId, SpendLimits>,
}

impl SpendLimiter {
    /// A limiter with `default` for every owner.
    #[must_use]
    pub fn new(default: SpendLimits) -> Self {
        SpendLimiter { default, overrides: HashMap::new() }
    }

    /// Gives `owner` its own limits instead of the default.
    #[must_use]
    pub fn with_owner(mut self, owner: UserId, limits: SpendLimits) -> Self {
        self.overrides.insert(owner, limits);
        self
    }

    /// The limits that apply to `owner`.
    #[must_use]
    pub fn limits_for(&self, owner: UserId) -> &SpendLimits {
        self.overrides.get(&owner).unwrap_or(&self.default)
    }
}

#[async_trait]
impl SpendPolicy for SpendLimiter {
    async fn check(&self, context: &SpendContext<'_>) -> std::result::Result<(), SpendRefusal> {
        let limits = self.limits_for(context.owner);
        match limits.reached(&context.spent, context.before_send) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_limit_reached_is_named_with_its_numbers() {
        let limits = SpendLimits::none().owner_per_day(1_000).per_tree(5_000).calls_per_turn(3);
        let mut spent = SpentSoFar { owner_today: 999, tree: 4_000, ..SpentSoFar::default() };
        assert_eq!(limits.reached(&spent, false), None, "just under");
        spent.owner_today = 1_000;
        let refusal = limits.reached(&spent, false).expect("reached");
        assert_eq!(refusal.to_string(), "spend limit reached: owner per day, 1000 of 1000");
        spent.owner_today = 0;
        spent.turn.calls = 3;
        let per_turn = limits.reached(&spent, false).expect("per turn");
        assert_eq!(per_turn.to_string(), "spend limit reached: model calls per turn, 3 of 3");
        assert_eq!(limits.reached(&spent, true), None, "a send starts a new turn");
        spent.tree = 5_000;
        assert_eq!(limits.reached(&spent, true).map(|r| r.limit), Some("chat tree".into()));
    }

    #[test]
    fn what_calls_in_flight_hold_counts_as_spent() {
        let limits = SpendLimits::none().owner_per_day(1_000).per_tree(5_000);
        let mut spent = SpentSoFar { owner_today: 600, tree: 600, ..SpentSoFar::default() };
        spent.held = Held { calls: 1, owner_micros: 399, tree_micros: 0 };
        assert_eq!(limits.reached(&spent, false), None, "599 + 399 is under 1000");
        spent.held.owner_micros = 400;
        let refusal = limits.reached(&spent, false).expect("600 + 400 held");
        assert_eq!(refusal.to_string(), "spend limit reached: owner per day, 1000 of 1000");
        spent.held = Held { calls: 1, owner_micros: 0, tree_micros: 4_400 };
        assert_eq!(limits.reached(&spent, false).map(|r| r.limit), Some("chat tree".into()));
    }

    #[test]
    fn an_owner_override_replaces_the_default() {
        let vip = UserId::new();
        let limiter = SpendLimiter::new(SpendLimits::none().owner_per_day(10))
            .with_owner(vip, SpendLimits::none());
        assert_eq!(limiter.limits_for(vip), &SpendLimits::none());
        assert_eq!(limiter.limits_for(UserId::new()).owner_per_day, Some(10));
    }
}
