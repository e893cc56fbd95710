//! The runtime records every model call it makes (BEHAVIOUR §17): each step of a turn, the
//! compaction summary and the title, priced at the config's prices.

use chatd_core::runtime::title::{TitleOptions, TitleOutcome, generate_title};
use chatd_core::runtime::turn::{TurnEnd, TurnSignal};
use chatd_core::testing::{ScriptedCall, ScriptedProvider};
use chatd_core::usage::{Prices, Spend, UsageGroup, UsageQuery};
use chatd_core::{NewModelConfig, ProviderKind, TurnOutcome, Usage};
use serde_json::json;

use crate::support::*;

fn used(input: i64, output: i64) -> Option<Usage> {
    Some(Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        ..Usage::default()
    })
}

/// $1 per million input tokens, $10 per million output tokens; a 100-token window.
fn priced_small_window() -> NewModelConfig {
    NewModelConfig::new(ProviderKind::Anthropic, "claude-test", 100)
        .with_compression_threshold(70)
        .with_prices(Prices::new(1_000_000, 10_000_000))
}

#[tokio::test]
async fn a_turn_records_each_step_and_its_compaction() {
    let fx = fixture_with(
        priced_small_window(),
        vec![
            ScriptedCall::tool_calls(&[("c1", "echo", json!({"n": 1}))], used(30, 10)),
            ScriptedCall::text("answer", used(80, 5)),
            ScriptedCall::text("the summary", used(300, 7)),
            ScriptedCall::text("carrying on", used(20, 3)),
        ],
    )
    .await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    assert_eq!(fx.provider.requests().len(), 4);
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    // Tokens 40 + 85 + 307 + 23; cost (30+80+300+20)×1 + (10+5+7+3)×10 micro-units.
    let expected = Spend { calls: 4, tokens: 455, cost_micros: 430 + 250 };
    assert_eq!(chat.spent, expected, "three steps and the summary");
    assert_eq!(chat.tree_spent, expected);
    let report = fx.store.usage_report(UsageQuery::tree(fx.chat).grouped(UsageGroup::Model));
    let report = report.await.expect("report");
    assert_eq!(report.len(), 1);
    assert_eq!((report[0].calls, report[0].model.as_deref()), (4, Some("claude-test")));
    assert_eq!((report[0].input_tokens, report[0].output_tokens), (430, 25));
}

#[tokio::test]
async fn a_call_without_reported_usage_records_nothing() {
    let fx = fixture(vec![ScriptedCall::text("answer", None)]).await;
    let end = fx.runner().run(fx.lease, TurnSignal::new()).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Finished));
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(chat.spent, Spend::default(), "no usage reported: nothing to record");
    assert!(fx.store.usage_report(UsageQuery::tree(fx.chat)).await.expect("report").is_empty());
}

/// An interrupt cuts the step before the provider reports usage: what was streamed was
/// still paid for, so the step is recorded with the runtime's estimate, marked as one.
#[tokio::test]
async fn an_interrupted_step_is_recorded_with_an_estimate() {
    use chatd_core::provider::StreamEvent;
    use chatd_core::runtime::turn::StopReason;
    let partial = "x".repeat(400);
    let fx = fixture_with(
        priced_small_window(),
        vec![ScriptedCall::StreamThenHang(vec![
            Ok(StreamEvent::TextStart { id: "t".into() }),
            Ok(StreamEvent::TextDelta { id: "t".into(), delta: partial.clone() }),
        ])],
    )
    .await;
    let signal = TurnSignal::new();
    let stopper = signal.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stopper.stop(StopReason::Interrupt);
    });
    let end = fx.runner().run(fx.lease, signal).await;
    assert_eq!(end, TurnEnd::Release(TurnOutcome::Interrupted));
    let report = fx.store.usage_report(UsageQuery::tree(fx.chat)).await.expect("report");
    assert_eq!(report.len(), 1, "the cut step is in the ledger");
    assert_eq!((report[0].calls, report[0].estimated_calls), (1, 1));
    // A quarter token per byte: the 400 streamed characters are at least 100 tokens.
    assert!(report[0].output_tokens >= 100, "{:?}", report[0]);
    assert!(report[0].input_tokens > 0, "{:?}", report[0]);
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(chat.spent.cost_micros, report[0].cost_micros);
    assert!(chat.spent.cost_micros > 1_000, "priced at $10/M output: {:?}", chat.spent);
}

#[tokio::test]
async fn a_title_call_is_recorded() {
    let fx = fixture(vec![]).await;
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    let config = fx.store.get_model_config(chat.last_model_config_id).await.expect("config");
    let titler = ScriptedProvider::new(
        ProviderKind::Anthropic,
        vec![ScriptedCall::text("Doing it", used(12, 3))],
    );
    let outcome =
        generate_title(fx.store.as_ref(), &titler, &config, fx.chat, &TitleOptions::default())
            .await;
    assert_eq!(outcome, TitleOutcome::Saved("Doing it".into()));
    let chat = fx.store.get_chat(fx.chat).await.expect("chat");
    assert_eq!(chat.spent, Spend { calls: 1, tokens: 15, cost_micros: 0 });
    let report = fx.store.usage_report(UsageQuery::tree(fx.chat)).await.expect("report");
    assert_eq!((report[0].calls, report[0].unpriced_calls), (1, 1), "an unpriced config");
}

#[tokio::test]
async fn a_user_reads_only_their_own_usage_and_an_administrator_reads_everyone_s() {
    use chatd_core::usage::{CallKind, NewUsage};
    use chatd_core::{Actor, Chatd, ChatdError, NewChat, UserId};
    let fx = fixture(vec![]).await;
    let chatd = Chatd::new(std::sync::Arc::clone(&fx.store));
    let mine = fx.store.get_chat(fx.chat).await.expect("chat");
    let theirs = fx.store.create_chat(NewChat::new(UserId::new())).await.expect("chat");
    for chat in [&mine, &mine, &theirs] {
        let new = NewUsage::for_chat(
            chat,
            mine.last_model_config_id,
            CallKind::Step,
            used(1, 1).unwrap_or_default(),
        );
        fx.store.record_usage(new).await.expect("record");
    }
    let me = Actor::user(mine.owner_id);
    let all = chatd.usage(&me, UsageQuery::all()).await.expect("mine");
    assert_eq!(all[0].calls, 2, "narrowed to my own records");
    let their_tree = chatd.usage(&me, UsageQuery::tree(theirs.id)).await.expect("narrowed");
    assert!(their_tree.is_empty(), "another owner's tree shows nothing");
    let asked = chatd.usage(&me, UsageQuery::owner(theirs.owner_id)).await;
    assert!(matches!(asked, Err(ChatdError::Forbidden(_))), "{asked:?}");
    let admin = Actor::admin(UserId::new());
    let everyone = chatd.usage(&admin, UsageQuery::all().grouped(UsageGroup::Owner)).await;
    assert_eq!(everyone.expect("everyone").len(), 2);
}

mod limits {
    use std::sync::Arc;

    use chatd_core::limits::{SpendLimiter, SpendLimits};
    use chatd_core::runtime::turn::{TurnEnd, TurnSignal};
    use chatd_core::store::{MessageQuery, SendMessage};
    use chatd_core::testing::ScriptedCall;
    use chatd_core::{Actor, ChatStatus, Chatd, ChatdError, NewChat, Role, TurnOutcome, WorkerId};
    use serde_json::json;

    use super::{priced_small_window, used};
    use crate::support::*;

    #[tokio::test]
    async fn a_per_turn_limit_ends_the_turn_before_the_next_call_and_keeps_its_steps() {
        let fx = fixture(vec![
            // The first call reports no usage: it still counts as a call.
            ScriptedCall::tool_calls(&[("c1", "echo", json!({"n": 1}))], None),
            ScriptedCall::tool_calls(&[("c2", "echo", json!({"n": 2}))], used(10, 1)),
            ScriptedCall::text("never asked for", used(10, 1)),
        ])
        .await;
        let limiter = SpendLimiter::new(SpendLimits::none().calls_per_turn(2));
        let runner = fx.runner().with_spend_policy(Arc::new(limiter));
        let end = runner.run(fx.lease, TurnSignal::new()).await;
        assert_eq!(
            end,
            TurnEnd::Release(TurnOutcome::Failed(
                "spend limit reached: model calls per turn, 2 of 2".into()
            ))
        );
        assert_eq!(fx.provider.requests().len(), 2, "the third call was never made");
        let rows = fx.store.list_messages(fx.chat, MessageQuery::all()).await.expect("rows");
        let roles: Vec<Role> = rows.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::Assistant,
                Role::Tool
            ],
            "both steps kept"
        );
    }

    #[tokio::test]
    async fn a_tree_limit_reached_mid_turn_stops_it_and_a_send_past_a_limit_changes_nothing() {
        // $1 / $10 per million: the first step costs 30 + 100 = 130 micro-units.
        let fx = fixture_with(
            priced_small_window(),
            vec![
                ScriptedCall::tool_calls(&[("c1", "echo", json!({"n": 1}))], used(30, 10)),
                ScriptedCall::text("never asked for", used(10, 1)),
            ],
        )
        .await;
        let limiter = Arc::new(SpendLimiter::new(SpendLimits::none().per_tree(100)));
        let runner = fx.runner().with_spend_policy(limiter.clone());
        let end = runner.run(fx.lease, TurnSignal::new()).await;
        let reason = "spend limit reached: chat tree, 130 of 100";
        assert_eq!(end, TurnEnd::Release(TurnOutcome::Failed(reason.into())));
        fx.store.release(&fx.lease, TurnOutcome::Failed(reason.into())).await.expect("release");

        let chatd = Chatd::new(Arc::clone(&fx.store)).with_spend_policy(limiter.clone());
        let chat = fx.store.get_chat(fx.chat).await.expect("chat");
        let owner = Actor::user(chat.owner_id);
        let before = fx.store.list_messages(fx.chat, MessageQuery::all()).await.expect("rows");
        let refused = chatd.send_message(&owner, fx.chat, SendMessage::text("more")).await;
        match refused {
            Err(ChatdError::SpendLimit(refusal)) => assert_eq!(refusal.to_string(), reason),
            other => panic!("refused at once: {other:?}"),
        }
        let after = fx.store.list_messages(fx.chat, MessageQuery::all()).await.expect("rows");
        assert_eq!(after.len(), before.len(), "nothing was sent");
        assert_eq!(fx.store.get_chat(fx.chat).await.expect("chat").status, ChatStatus::Error);
        assert!(fx.store.list_queued(fx.chat).await.expect("queue").is_empty());
        // A new tree has spent nothing: the same owner may start one.
        let fresh = chatd.create_chat(&owner, NewChat::new(chat.owner_id).with_text("hi")).await;
        assert!(fresh.is_ok(), "{fresh:?}");
        // An owner's daily limit holds across their trees.
        let daily = SpendLimiter::new(SpendLimits::none().owner_per_day(100));
        let chatd = Chatd::new(Arc::clone(&fx.store)).with_spend_policy(Arc::new(daily));
        let new = chatd.create_chat(&owner, NewChat::new(chat.owner_id).with_text("hi")).await;
        match new {
            Err(ChatdError::SpendLimit(refusal)) => {
                assert_eq!(refusal.to_string(), "spend limit reached: owner per day, 130 of 100");
            }
            other => panic!("refused at once: {other:?}"),
        }
    }

    /// A provider whose every call waits `delay` before it streams.
    struct Slow(Arc<chatd_core::testing::ScriptedProvider>, std::time::Duration);

    #[async_trait::async_trait]
    impl chatd_core::provider::ModelProvider for Slow {
        fn kind(&self) -> chatd_core::ProviderKind {
            self.0.kind()
        }
        async fn stream(
            &self,
            request: chatd_core::provider::ModelRequest,
            cancel: tokio_util::sync::CancellationToken,
        ) -> Result<chatd_core::provider::EventStream, chatd_core::provider::ProviderError>
        {
            tokio::time::sleep(self.1).await;
            self.0.stream(request, cancel).await
        }
    }

    #[async_trait::async_trait]
    impl chatd_core::runtime::turn::ProviderSource for Slow {
        async fn provider(
            &self,
            _config: &chatd_core::ModelConfig,
        ) -> Result<Arc<dyn chatd_core::provider::ModelProvider>, chatd_core::provider::ProviderError>
        {
            Ok(Arc::new(Slow(Arc::clone(&self.0), self.1)))
        }
    }

    /// Two turns of one owner racing on the owner's last micro-unit: the first call admitted
    /// holds its upper bound, the second waits for it to settle and is then refused. The
    /// overshoot is that one call.
    #[tokio::test]
    async fn two_turns_racing_on_the_last_budget_overshoot_by_at_most_one_call() {
        let fx = fixture_with(
            priced_small_window(),
            vec![ScriptedCall::text("one", used(30, 10)), ScriptedCall::text("two", used(30, 10))],
        )
        .await;
        let first = fx.store.get_chat(fx.chat).await.expect("chat");
        let owner = first.owner_id;
        let other = NewChat::new(owner).with_text("me too");
        let other = fx.store.create_chat(other).await.expect("second chat");
        let other_lease = fx.store.acquire(WorkerId::new(), 1).await.expect("acquire")[0];
        assert_eq!(other_lease.chat_id, other.id);
        // Spent before: 1 000 micro-units; the limit leaves one.
        let before = chatd_core::usage::NewUsage::for_chat(
            &first,
            first.last_model_config_id,
            chatd_core::usage::CallKind::Title,
            used(1_000, 0).expect("usage"),
        );
        fx.store.record_usage(before).await.expect("spent before");
        let limiter = SpendLimiter::new(SpendLimits::none().owner_per_day(1_001));
        let slow = Slow(Arc::clone(&fx.provider), std::time::Duration::from_millis(300));
        let runner = chatd_core::runtime::turn::TurnRunner::new(
            Arc::clone(&fx.store),
            Arc::new(slow),
            chatd_core::runtime::tools::ToolSet::new(),
        )
        .with_titles(false)
        .with_spend_policy(Arc::new(limiter));
        let both = async {
            tokio::join!(
                runner.run(fx.lease, TurnSignal::new()),
                runner.run(other_lease, TurnSignal::new())
            )
        };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(30), both)
            .await
            .expect("the second turn stops waiting once the first call settles");
        assert_eq!(fx.provider.requests().len(), 1, "one call past the budget, not two");
        let mut ends = [a, b];
        ends.sort_by_key(|end| format!("{end:?}"));
        // 1 000 before + 30 × 1 + 10 × 10 for the admitted call.
        let refused = "spend limit reached: owner per day, 1130 of 1001";
        assert_eq!(
            ends,
            [
                TurnEnd::Release(TurnOutcome::Failed(refused.into())),
                TurnEnd::Release(TurnOutcome::Finished),
            ]
        );
    }
}
