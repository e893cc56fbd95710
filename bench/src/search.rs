//! `search`: the chat list's text search (BEHAVIOUR §18) on PostgreSQL with 100 000 chats and
//! 1 000 000 messages (`--quick`: 10 000 and 100 000), through the store against the same
//! `tsquery` written by hand, and the hand query's plan, which must use the message index.

use std::time::Instant;

use chatd_core::ChatFilter;
use chatd_core::store::ChatStore;
use uuid::Uuid;

use crate::pg::{BenchResult, Scratch};
use crate::report::{Report, Target, percentile};

/// The word searched for: in one message of every 2 000.
const RARE: &str = "kingfisher";

/// The hand-written query: the owner's unarchived chats whose title or a user-visible
/// message matches, newest first, one page.
const HAND: &str = "SELECT id, title, created_at FROM chats \
     WHERE owner_id = $1 AND archived = false \
     AND (to_tsvector('simple', title) @@ websearch_to_tsquery('simple', $2) \
          OR id IN (SELECT chat_id FROM chat_messages WHERE visibility IN ('user', 'both') \
                    AND to_tsvector('simple', chat_message_text(content)) \
                        @@ websearch_to_tsquery('simple', $2))) \
     ORDER BY created_at DESC, id DESC LIMIT 51";

/// `chats` chats over 1 000 owners, ten messages each, of words from a vocabulary of 2 048
/// (and [`RARE`] in one message of 2 000); returns an owner with matches.
async fn fill(scratch: &Scratch, chats: i64) -> BenchResult<Uuid> {
    sqlx::query(
        "INSERT INTO chats (id, owner_id, title, status, last_model_config_id) \
         SELECT gen_random_uuid(), \
                ('00000000-0000-0000-0000-' || lpad(to_hex(g % 1000), 12, '0'))::uuid, \
                'chat ' || g || ' about w' || (g % 2048), 'waiting', $2 \
         FROM generate_series(1, $1) AS g",
    )
    .bind(chats)
    .bind(scratch.config.0)
    .execute(&scratch.pool)
    .await?;
    sqlx::query(
        "INSERT INTO chat_messages (chat_id, role, content) \
         SELECT c.id, CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END, \
                jsonb_build_array(jsonb_build_object('type', 'text', 'text', \
                  'w' || (abs(hashtext(c.id::text || k)) % 2048) || ' w' || \
                  (abs(hashtext(k || c.id::text)) % 2048) || ' and w' || (k * 7 % 2048) || \
                  CASE WHEN abs(hashtext(c.id::text || k || 'r')) % 2000 = 0 \
                       THEN ' ' || $1 ELSE '' END)) \
         FROM chats c, generate_series(1, 10) AS k",
    )
    .bind(RARE)
    .execute(&scratch.pool)
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(&scratch.pool).await?;
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT c.owner_id FROM chats c JOIN chat_messages m ON m.chat_id = c.id \
         WHERE chat_message_text(m.content) LIKE '%' || $1 || '%' \
         GROUP BY c.owner_id ORDER BY count(*) DESC LIMIT 1",
    )
    .bind(RARE)
    .fetch_optional(&scratch.pool)
    .await?;
    owner.ok_or_else(|| "no message holds the rare word".into())
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> BenchResult<Vec<Report>> {
    let chats: i64 = if quick { 10_000 } else { 100_000 };
    let iterations = if quick { 100 } else { 300 };
    let scratch = Scratch::create(4).await?;
    let owner = fill(&scratch, chats).await?;
    let filter = ChatFilter::owner(chatd_core::UserId(owner)).with_query(RARE);
    let store = || async {
        let started = Instant::now();
        let found = scratch.store.list_chats(filter.clone()).await?.items.len();
        BenchResult::Ok((started.elapsed().as_secs_f64() * 1000.0, found))
    };
    let hand = || async {
        let started = Instant::now();
        let rows = sqlx::query(HAND).bind(owner).bind(RARE).fetch_all(&scratch.pool).await?;
        BenchResult::Ok((started.elapsed().as_secs_f64() * 1000.0, rows.len()))
    };
    // Warm both, then alternate so that drift affects both alike.
    let (_, found) = store().await?;
    let (_, expected) = hand().await?;
    if found != expected || found == 0 {
        return Err(format!("the store found {found} chats, the hand query {expected}").into());
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        ours.push(store().await?.0);
        theirs.push(hand().await?.0);
    }
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {HAND}")))
        .bind(owner)
        .bind(RARE)
        .fetch_all(&scratch.pool)
        .await?;
    let uses_index = plan.iter().any(|line| line.contains("idx_chat_messages_search"));
    // The plan, for the record (stderr: the JSON lines stay on stdout).
    for line in &plan {
        eprintln!("search plan: {line}");
    }
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages").fetch_one(&scratch.pool).await?;
    scratch.drop_database().await?;
    let (p50, hand_p50) = (percentile(&mut ours, 0.5), percentile(&mut theirs, 0.5));
    Ok(vec![
        // Queries per second: the store's against the hand query's (≥ 0.8).
        Report::new(
            "search",
            format!("queries_per_sec_{chats}_chats_{messages}_messages_vs_hand_tsquery"),
            "queries/s",
            1000.0 / p50,
            1000.0 / hand_p50,
            Target::AtLeast(0.8),
        ),
        Report::new("search", "query_ms_p50", "ms", p50, hand_p50, Target::None),
        Report::new(
            "search",
            "hand_query_plan_uses_the_message_index",
            "bool",
            f64::from(u8::from(uses_index)),
            1.0,
            Target::AtLeast(1.0),
        ),
    ])
}
