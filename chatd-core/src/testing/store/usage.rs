//! Scenarios: the usage ledger ([BEHAVIOUR §17](crate::behaviour#17-usage-cost-limits-and-fairness)) — a record per model call priced at the
//! prices then in force, running totals that equal the sum of the records, reports grouped
//! and filtered, and records that outlive edits and deletions.

use super::{Fixture, StoreRef};
use crate::store::StoreError;
use crate::usage::{CallKind, NewUsage, Prices, Spend, UsageBucket, UsageGroup, UsageQuery};
use crate::{ModelConfigUpdate, NewChat, NewModelConfig, Part, ProviderKind, Usage};

fn used(input: i64, output: i64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        ..Usage::default()
    }
}

/// $1 per million input tokens, $2 per million output tokens (cache at the input price).
fn dollars() -> Prices {
    Prices::new(1_000_000, 2_000_000)
}

async fn priced(fx: &Fixture, prices: Prices) {
    let update = ModelConfigUpdate { prices: Some(Some(prices)), ..ModelConfigUpdate::default() };
    fx.store.update_model_config(fx.config.id, update).await.expect("prices");
}

async fn report(fx: &Fixture, query: UsageQuery) -> Vec<UsageBucket> {
    fx.store.usage_report(query).await.expect("report")
}

/// Every kind of call is recorded with its chat, root, owner and config; the chat's totals
/// and its root's tree totals are the sums of the records; an unpriced config's calls are
/// counted without a cost.
pub async fn every_call_is_recorded_and_the_totals_are_their_sum(store: StoreRef) {
    let fx = Fixture::new(store).await;
    priced(&fx, dollars()).await;
    let root = fx.idle_chat().await;
    let child =
        fx.store.create_chat(NewChat::new(fx.owner).with_parent(root.id)).await.expect("child");
    let calls = [
        (&root, CallKind::Step, used(1_000, 500)),
        (&root, CallKind::Compaction, used(4_000, 300)),
        (&root, CallKind::Title, used(50, 10)),
        (&child, CallKind::Step, used(2_000, 1_000)),
    ];
    let mut records = Vec::new();
    for (chat, kind, usage) in calls {
        let new = NewUsage::for_chat(chat, fx.config.id, kind, usage);
        records.push(fx.store.record_usage(new).await.expect("record"));
    }
    let first = &records[0];
    assert_eq!((first.chat_id, first.root_chat_id, first.owner_id), (root.id, root.id, fx.owner));
    assert_eq!((first.kind, first.model.as_str()), (CallKind::Step, "gpt-test"));
    assert_eq!(first.provider, ProviderKind::OpenAi);
    assert_eq!(first.cost_micros, Some(2_000), "1000 × $1/M + 500 × $2/M = $0.002");
    assert_eq!(records[3].root_chat_id, root.id, "a sub-agent's call belongs to the tree");
    assert!(records.windows(2).all(|w| w[0].id < w[1].id), "ids increase");

    let root_now = fx.get(root.id).await;
    let child_now = fx.get(child.id).await;
    assert_eq!(root_now.spent, Spend { calls: 3, tokens: 5_860, cost_micros: 2_000 + 4_600 + 70 });
    assert_eq!(child_now.spent, Spend { calls: 1, tokens: 3_000, cost_micros: 4_000 });
    assert_eq!(
        root_now.tree_spent,
        Spend { calls: 4, tokens: 8_860, cost_micros: 10_670 },
        "the tree's totals on its root"
    );
    assert_eq!(child_now.tree_spent, Spend::default(), "kept on the root only");
    let tree = report(&fx, UsageQuery::tree(root.id)).await;
    assert_eq!(tree.len(), 1);
    assert_eq!((tree[0].calls, tree[0].cost_micros), (4, 10_670), "the ledger agrees");
    assert_eq!((tree[0].input_tokens, tree[0].output_tokens), (7_050, 1_810));

    // A config without prices: counted, not priced.
    let unpriced = NewModelConfig::new(ProviderKind::OpenAi, "free-model", 1000);
    let unpriced = fx.store.create_model_config(unpriced).await.expect("config");
    let new = NewUsage::for_chat(&root, unpriced.id, CallKind::Step, used(10, 10));
    let record = fx.store.record_usage(new).await.expect("record");
    assert_eq!(record.cost_micros, None);
    let owner = report(&fx, UsageQuery::owner(fx.owner)).await;
    assert_eq!((owner[0].calls, owner[0].unpriced_calls, owner[0].cost_micros), (5, 1, 10_670));
    assert_eq!(fx.get(root.id).await.tree_spent.tokens, 8_880);
}

/// A price change applies to later calls only: the records already written keep the cost
/// they were recorded with.
pub async fn a_price_change_does_not_rewrite_old_records(store: StoreRef) {
    let fx = Fixture::new(store).await;
    priced(&fx, dollars()).await;
    let chat = fx.idle_chat().await;
    let usage = used(1_000_000, 0);
    let before = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, usage);
    let before = fx.store.record_usage(before).await.expect("record");
    priced(&fx, Prices::new(3_000_000, 6_000_000)).await;
    let after = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, usage);
    let after = fx.store.record_usage(after).await.expect("record");
    assert_eq!((before.cost_micros, after.cost_micros), (Some(1_000_000), Some(3_000_000)));
    let total = report(&fx, UsageQuery::owner(fx.owner)).await;
    assert_eq!(total[0].cost_micros, 4_000_000, "the old record kept its price");
    // A fraction of a micro-unit is rounded up: 1 token at 1.5 per million.
    priced(&fx, Prices::new(1_500_000, 0)).await;
    let one = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, used(1, 0));
    assert_eq!(fx.store.record_usage(one).await.expect("record").cost_micros, Some(2));
    let cleared = ModelConfigUpdate { prices: Some(None), ..ModelConfigUpdate::default() };
    let config = fx.store.update_model_config(fx.config.id, cleared).await.expect("clear");
    assert_eq!(config.prices, None);
    let bad = ModelConfigUpdate {
        prices: Some(Some(Prices::new(-1, 0))),
        ..ModelConfigUpdate::default()
    };
    match fx.store.update_model_config(fx.config.id, bad).await {
        Err(StoreError::Validation { field, .. }) => assert_eq!(field, "prices.input"),
        other => panic!("a negative price is refused: {other:?}"),
    }
}

/// Records outlive the rows they were for: an edit that removes the answer, the chat's
/// deletion, and the model config's.
pub async fn records_outlive_edits_and_deletions(store: StoreRef) {
    let fx = Fixture::new(store).await;
    priced(&fx, dollars()).await;
    let chat = fx.chat("question").await;
    fx.run_turn(chat.id, "answer").await;
    let new = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, used(100, 100));
    fx.store.record_usage(new).await.expect("record");
    let messages = fx.store.list_messages(chat.id, crate::store::MessageQuery::all()).await;
    let question = messages.expect("messages")[0].id;
    fx.store.edit_message(chat.id, question, vec![Part::text("again")]).await.expect("edit");
    assert_eq!(fx.get(chat.id).await.spent.calls, 1, "an edit keeps the totals");
    fx.store.delete_chat(chat.id).await.expect("delete");
    fx.store.delete_model_config(fx.config.id).await.expect("delete config");
    let kept = report(&fx, UsageQuery::owner(fx.owner)).await;
    assert_eq!((kept[0].calls, kept[0].cost_micros), (1, 300));
    // A deleted (soft-deleted) config can still be charged: a call that ran before.
    let late = NewUsage::for_chat(&chat, fx.config.id, CallKind::Title, used(1, 1));
    let late = fx.store.record_usage(late).await.expect("a late record of a gone chat");
    assert_eq!(late.cost_micros, Some(3));
}

/// Reports group by day, by model or both, and filter by owner, tree, model config and time.
pub async fn reports_group_and_filter(store: StoreRef) {
    let fx = Fixture::new(store).await;
    priced(&fx, dollars()).await;
    let other = NewModelConfig::new(ProviderKind::OpenAi, "gpt-other", 1000);
    let other = fx.store.create_model_config(other).await.expect("config");
    let a = fx.idle_chat().await;
    let b = fx.idle_chat().await;
    let stranger = fx.store.create_chat(NewChat::new(crate::UserId::new())).await.expect("chat");
    for (chat, config) in
        [(&a, fx.config.id), (&a, other.id), (&b, fx.config.id), (&stranger, fx.config.id)]
    {
        let new = NewUsage::for_chat(chat, config, CallKind::Step, used(1_000, 0));
        fx.store.record_usage(new).await.expect("record");
    }
    let mine = UsageQuery::owner(fx.owner);
    let by_model = report(&fx, mine.clone().grouped(UsageGroup::Model)).await;
    let mut models: Vec<(Option<&str>, i64)> =
        by_model.iter().map(|b| (b.model.as_deref(), b.calls)).collect();
    models.sort_unstable();
    assert_eq!(models, vec![(Some("gpt-other"), 1), (Some("gpt-test"), 2)], "{by_model:?}");
    assert!(by_model.iter().all(|b| b.model_config_id.is_some() && b.day.is_none()));
    let today = chrono::Utc::now().date_naive();
    let by_day = report(&fx, mine.clone().grouped(UsageGroup::Day)).await;
    assert_eq!(by_day.len(), 1);
    assert!(by_day[0].day.is_some_and(|d| (d - today).num_days().abs() <= 1), "{by_day:?}");
    assert_eq!(by_day[0].calls, 3, "another owner's call is not mine");
    let both = report(&fx, mine.clone().grouped(UsageGroup::DayAndModel)).await;
    assert_eq!(both.len(), 2);
    let tree = report(&fx, UsageQuery::tree(a.id)).await;
    assert_eq!(tree[0].calls, 2);
    let everyone = report(&fx, UsageQuery::all().grouped(UsageGroup::Owner)).await;
    let mine_row = everyone.iter().find(|b| b.owner_id == Some(fx.owner)).expect("my row");
    let theirs = everyone.iter().find(|b| b.owner_id == Some(stranger.owner_id));
    assert_eq!((mine_row.calls, theirs.map(|b| b.calls)), (3, Some(1)), "{everyone:?}");
    let one_model = report(&fx, mine.clone().with_model_config(other.id)).await;
    assert_eq!(one_model[0].calls, 1);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(report(&fx, mine.clone().between(Some(later), None)).await.is_empty());
    let earlier = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(report(&fx, mine.between(Some(earlier), Some(later))).await[0].calls, 3);
}

/// A record with negative token counts, or for an unknown model config, is refused and
/// changes nothing.
pub async fn a_bad_record_is_refused(store: StoreRef) {
    let fx = Fixture::new(store).await;
    let chat = fx.idle_chat().await;
    let negative = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, used(-1, 5));
    match fx.store.record_usage(negative).await {
        Err(StoreError::Validation { field, .. }) => assert_eq!(field, "usage"),
        other => panic!("negative tokens are refused: {other:?}"),
    }
    let unknown =
        NewUsage::for_chat(&chat, crate::ModelConfigId::new(), CallKind::Step, used(1, 1));
    let err = fx.store.record_usage(unknown).await.expect_err("unknown config");
    assert!(err.is_not_found(), "{err}");
    assert!(report(&fx, UsageQuery::owner(fx.owner)).await.is_empty());
    assert_eq!(fx.get(chat.id).await.spent, Spend::default());
}

/// A record of the runtime's estimate (a call cut before its provider reported usage) says
/// so, and reports count such calls.
pub async fn an_estimate_is_marked_as_one(store: StoreRef) {
    let fx = Fixture::new(store).await;
    priced(&fx, dollars()).await;
    let chat = fx.idle_chat().await;
    let reported = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, used(100, 10));
    let reported = fx.store.record_usage(reported).await.expect("record");
    assert!(!reported.estimated, "a provider's figures are not an estimate");
    let cut = NewUsage::for_chat(&chat, fx.config.id, CallKind::Step, used(400, 50));
    let cut = fx.store.record_usage(cut.as_estimate()).await.expect("estimate");
    assert!(cut.estimated);
    assert_eq!(cut.cost_micros, Some(500), "priced like any record");
    let buckets = report(&fx, UsageQuery::tree(chat.id)).await;
    assert_eq!((buckets[0].calls, buckets[0].estimated_calls), (2, 1));
    assert_eq!(fx.get(chat.id).await.spent.cost_micros, 120 + 500, "and counted in the totals");
}
