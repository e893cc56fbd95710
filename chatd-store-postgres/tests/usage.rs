//! The usage ledger on PostgreSQL: every report reads the ledger through its indexes and
//! never touches the messages (BEHAVIOUR §17 "Queries").

use chatd_core::usage::{CallKind, NewUsage, UsageGroup, UsageQuery};
use chatd_core::{ChatStore, NewChat, NewModelConfig, NewProvider, ProviderKind, Usage, UserId};
use chatd_store_postgres::PostgresChatStore;
use sqlx::PgPool;

#[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
async fn usage_reports_use_the_ledger_indexes_and_never_the_messages(pool: PgPool) {
    let store = PostgresChatStore::new(pool);
    store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await.expect("provider");
    let config = NewModelConfig::new(ProviderKind::OpenAi, "gpt-test", 100_000);
    let config = store.create_model_config(config).await.expect("config");
    let owner = UserId::new();
    let chat = store.create_chat(NewChat::new(owner).with_text("q")).await.expect("chat");
    let usage = Usage { input_tokens: 10, output_tokens: 5, total_tokens: 15, ..Usage::default() };
    for _ in 0..20 {
        let new = NewUsage::for_chat(&chat, config.id, CallKind::Step, usage);
        store.record_usage(new).await.expect("record");
    }
    let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
    for (query, index) in [
        (UsageQuery::owner(owner).grouped(UsageGroup::DayAndModel), "idx_chat_usage_owner"),
        (UsageQuery::tree(chat.id).between(Some(day_ago), None), "idx_chat_usage_root"),
        (
            UsageQuery::all().with_model_config(config.id).grouped(UsageGroup::Day),
            "idx_chat_usage_config",
        ),
    ] {
        let plan = store.explain_usage_report(query.clone()).await.expect("explain");
        println!("{query:?}:\n{plan}");
        assert!(plan.contains(index), "{index} in:\n{plan}");
        assert!(!plan.contains("chat_messages"), "no messages read:\n{plan}");
        let buckets = store.usage_report(query).await.expect("report");
        assert_eq!(buckets.iter().map(|b| b.calls).sum::<i64>(), 20);
    }
}
