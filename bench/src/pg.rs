//! PostgreSQL scenarios: `pg-claim`, `pg-append`, `pg-history`.
//!
//! Each runs in a throwaway database created next to `DATABASE_URL` (default: the local
//! server, `postgres://postgres@127.0.0.1:5432/postgres`) and dropped afterwards. Baselines
//! are hand-written sqlx statements doing the same work on the same rows in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chatd_core::ChatStatus;
use chatd_core::status::{StopKind, Trigger};
use chatd_core::store::{ChatStore, Compaction, Fence, Lease, Step};
use chatd_core::{
    ChatId, ModelConfigId, NewChat, NewMessage, NewModelConfig, NewProvider, Part, ProviderKind,
    TurnOutcome, UserId, WorkerId,
};
use chatd_store_postgres::{ACQUIRE_SQL, PostgresChatStore, RELEASE_SQL};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use uuid::Uuid;

use crate::report::{Report, Target, percentile};

pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A scratch database, dropped on [`Scratch::drop_database`].
pub(crate) struct Scratch {
    admin: PgConnectOptions,
    name: String,
    pub(crate) pool: PgPool,
    pub(crate) store: PostgresChatStore,
    pub(crate) config: ModelConfigId,
}

impl Scratch {
    pub(crate) async fn create(connections: u32) -> BenchResult<Self> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let admin: PgConnectOptions = url.parse()?;
        let name = format!("chatd_bench_{}", Uuid::new_v4().simple());
        let mut conn = admin.connect().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(admin.clone().database(&name))
            .await?;
        let store = PostgresChatStore::new(pool.clone());
        store.migrate().await?;
        store.create_provider(NewProvider::new(ProviderKind::OpenAi)).await?;
        let config = store
            .create_model_config(NewModelConfig::new(ProviderKind::OpenAi, "bench", 200_000))
            .await?
            .id;
        Ok(Scratch { admin, name, pool, store, config })
    }

    pub(crate) async fn drop_database(self) -> BenchResult<()> {
        // The change feed's listener holds a connection until its store is dropped: do
        // not wait for it (the drop below disconnects it).
        let _ = tokio::time::timeout(Duration::from_secs(2), self.pool.close()).await;
        let mut conn = self.admin.connect().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }

    /// The scratch database's URL (`DATABASE_URL` with its database name replaced), for
    /// other processes.
    pub(crate) fn url(&self) -> String {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let (base, query) =
            base.split_once('?').map_or((base.as_str(), None), |(b, q)| (b, Some(q)));
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        match query {
            Some(query) => format!("{root}/{}?{query}", self.name),
            None => format!("{root}/{}", self.name),
        }
    }

    /// `VACUUM ANALYZE` of the chats: dead rows of earlier runs gone, statistics fresh.
    async fn vacuum(&self) -> BenchResult<()> {
        sqlx::query("VACUUM ANALYZE chats").execute(&self.pool).await?;
        Ok(())
    }

    /// Inserts `n` pending chats in one statement (oldest first), spread over `owners`
    /// owners.
    async fn pending_chats(&self, n: i64, owners: i64) -> BenchResult<()> {
        sqlx::query(
            "INSERT INTO chats (owner_id, title, status, last_model_config_id, updated_at) \
             SELECT md5($1::text || (g % $4))::uuid, 'bench', 'pending', $2, \
               now() - (g * interval '1 millisecond') \
             FROM generate_series(1, $3) AS g",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(self.config.0)
        .bind(n)
        .bind(owners.max(1))
        .execute(&self.pool)
        .await?;
        sqlx::query("ANALYZE chats").execute(&self.pool).await?;
        Ok(())
    }
}

/// Runs `claimers` tasks doing `cycle` for `duration`; returns cycles per second.
async fn throughput<F, Fut>(claimers: usize, duration: Duration, cycle: F) -> f64
where
    F: Fn(WorkerId) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let cycle = Arc::new(cycle);
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..claimers)
        .map(|_| {
            let cycle = Arc::clone(&cycle);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let worker = WorkerId::new();
                while Instant::now() < deadline {
                    if cycle(worker).await {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn store_cycle(store: PostgresChatStore, worker: WorkerId) -> bool {
    match store.acquire(worker, 1).await {
        Ok(leases) => match leases.first() {
            Some(lease) => store.release(lease, TurnOutcome::Shutdown).await.is_ok(),
            None => false,
        },
        Err(_) => false,
    }
}

/// The store's own acquire and release statements, bound by hand: what the library adds on
/// top of its SQL is the difference.
async fn same_sql_cycle(pool: PgPool, worker: WorkerId) -> bool {
    let mut nexts = Vec::new();
    let mut promotes = Vec::new();
    let mut endings = Vec::new();
    for stop in [None, Some(StopKind::Interrupt), Some(StopKind::Pause)] {
        let trigger = Trigger::release(&TurnOutcome::Shutdown, stop);
        let Ok(decision) = ChatStatus::Running.decide(trigger) else {
            return false;
        };
        nexts.push(decision.next.as_str());
        promotes.push(decision.promote_queue_head);
        let ending = chatd_core::status::TurnEnding::of_release(trigger, &TurnOutcome::Shutdown);
        endings.push(serde_json::to_value(ending).unwrap_or_default());
    }
    let claimed: Option<(Uuid, i64, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(ACQUIRE_SQL)
        .bind(worker.0)
        .bind(1i64)
        .bind("running")
        .bind(i64::try_from(chatd_core::store::fair_window(1)).unwrap_or(i64::MAX))
        .bind(None::<i64>)
        .bind(None::<i64>)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
    let Some((id, epoch, _)) = claimed else { return false };
    sqlx::query(RELEASE_SQL)
        .bind(id)
        .bind(worker.0)
        .bind(epoch)
        .bind(&nexts)
        .bind(&promotes)
        .bind(None::<String>)
        .bind(&endings)
        .fetch_optional(&pool)
        .await
        .is_ok()
}

/// The simplest claim and release that still skip locked rows and check the owner: no
/// queue promotion, no part-log cleanup, no stop requests (informational).
async fn minimal_sql_cycle(pool: PgPool, worker: WorkerId) -> bool {
    let claimed: Option<(Uuid, i64)> = sqlx::query_as(
        "WITH picked AS (SELECT id FROM chats WHERE status = 'pending' \
           ORDER BY updated_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE chats SET status = 'running', worker_id = $1, started_at = now(), \
           heartbeat_at = now(), updated_at = now(), lease_epoch = chats.lease_epoch + 1 \
         FROM picked WHERE chats.id = picked.id RETURNING chats.id, chats.lease_epoch",
    )
    .bind(worker.0)
    .fetch_optional(&pool)
    .await
    .ok()
    .flatten();
    let Some((id, epoch)) = claimed else { return false };
    sqlx::query(
        "UPDATE chats SET status = 'pending', worker_id = NULL, started_at = NULL, \
         heartbeat_at = NULL, updated_at = now() \
         WHERE id = $1 AND worker_id = $2 AND lease_epoch = $3 AND status = 'running'",
    )
    .bind(id)
    .bind(worker.0)
    .bind(epoch)
    .execute(&pool)
    .await
    .is_ok()
}

/// `pg-claim`: acquire + release cycles per second.
pub(crate) async fn claim(quick: bool) -> BenchResult<Vec<Report>> {
    let duration = if quick { Duration::from_secs(2) } else { Duration::from_secs(6) };
    let backlog: i64 = if quick { 20_000 } else { 100_000 };
    let mut reports = Vec::new();
    let scratch = Scratch::create(40).await?;
    scratch.pending_chats(2000, 1).await?;
    let mut store_rates = Vec::new();
    for claimers in [1usize, 8, 32] {
        let store = scratch.store.clone();
        let value = throughput(claimers, duration, move |w| store_cycle(store.clone(), w)).await;
        let pool = scratch.pool.clone();
        let baseline =
            throughput(claimers, duration, move |w| same_sql_cycle(pool.clone(), w)).await;
        store_rates.push(value);
        let target = if claimers == 8 { Target::AtLeast(0.9) } else { Target::None };
        let metric = match claimers {
            1 => "cycles_per_sec_1_claimer",
            8 => "cycles_per_sec_8_claimers",
            _ => "cycles_per_sec_32_claimers",
        };
        reports.push(Report::new("pg-claim", metric, "cycles/s", value, baseline, target));
    }
    let pool = scratch.pool.clone();
    let minimal = throughput(8, duration, move |w| minimal_sql_cycle(pool.clone(), w)).await;
    reports.push(Report::new(
        "pg-claim",
        "cycles_per_sec_8_claimers_vs_minimal_sql",
        "cycles/s",
        store_rates[1],
        minimal,
        Target::None,
    ));
    let best = store_rates.iter().copied().fold(0.0, f64::max);
    reports.push(Report::new(
        "pg-claim",
        "scaling_32_vs_best",
        "cycles/s",
        store_rates[2],
        best,
        Target::AtLeast(0.8),
    ));
    // The backlog pair: the same 8-claimer cycle on the 2 000 pending chats of one owner,
    // then with `backlog` more over 1 000 owners — back to back, each right after a VACUUM,
    // so that neither pays for the dead rows of the runs before it (autovacuum's timing,
    // not the backlog, decided this ratio when the small figure came from the first runs).
    scratch.vacuum().await?;
    let store = scratch.store.clone();
    let small = throughput(8, duration, move |w| store_cycle(store.clone(), w)).await;
    scratch.pending_chats(backlog, 1000).await?;
    scratch.vacuum().await?;
    let store = scratch.store.clone();
    let large = throughput(8, duration, move |w| store_cycle(store.clone(), w)).await;
    let metric = if quick {
        "backlog_20k_1000_owners_vs_2k_8_claimers"
    } else {
        "backlog_100k_1000_owners_vs_2k_8_claimers"
    };
    reports.push(Report::new("pg-claim", metric, "cycles/s", large, small, Target::AtLeast(0.8)));
    scratch.drop_database().await?;
    Ok(reports)
}

fn kib_text(i: usize) -> String {
    let line = format!(
        "Step {i}: the linker failed on target x86_64; retrying with lld and more memory. "
    );
    line.repeat(1024 / line.len() + 1)[..1024].to_owned()
}

/// Rows per second for `writers` tasks each running `write(writer, i)` `per_writer` times.
async fn rows_per_sec<F, Fut>(writers: usize, per_writer: usize, write: F) -> f64
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let write = Arc::new(write);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let write = Arc::clone(&write);
            tokio::spawn(async move {
                for i in 0..per_writer {
                    write(writer, i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    (writers * per_writer) as f64 / started.elapsed().as_secs_f64()
}

/// One way of writing a step's row, for `pg-append`.
#[derive(Clone, Copy)]
enum Way {
    CommitStep,
    Raw,
    Fenced(&'static str),
    Cleaned(&'static str),
}

/// `pg-append`: `commit_step` of 1 KiB assistant rows vs a raw INSERT of the same rows, 4
/// writers on 4 chats, seven rounds in rotating order, the median of each.
pub(crate) async fn append(quick: bool) -> BenchResult<Vec<Report>> {
    let per_writer = if quick { 1000 } else { 4000 };
    let writers = 4;
    let scratch = Scratch::create(16).await?;
    let owner = UserId::new();
    let mut leases: Vec<Lease> = Vec::new();
    for _ in 0..writers {
        scratch.store.create_chat(NewChat::new(owner).with_text("go")).await?;
        leases.extend(scratch.store.acquire(WorkerId::new(), 1).await?);
    }
    let leases = Arc::new(leases);
    // Where the gap goes: the raw insert behind the lease fence, then also with the
    // part-log cleanup — the two things `commit_step` does besides inserting.
    let fenced = "WITH fence AS (SELECT id FROM chats WHERE id = $1 AND status = 'running' \
                  AND worker_id = $3 AND lease_epoch = $4 FOR SHARE) \
                  INSERT INTO chat_messages (chat_id, role, content, visibility) \
                  SELECT fence.id, 'assistant', $2, 'both' FROM fence";
    let cleaned = "WITH fence AS (SELECT id FROM chats WHERE id = $1 AND status = 'running' \
                   AND worker_id = $3 AND lease_epoch = $4 FOR SHARE), \
                   parts AS (DELETE FROM chat_stream_parts WHERE chat_id IN (SELECT id FROM fence)) \
                   INSERT INTO chat_messages (chat_id, role, content, visibility) \
                   SELECT fence.id, 'assistant', $2, 'both' FROM fence";
    // Four ways to write the same rows, measured in rotating order so no way always runs
    // right after another (the server's checkpoints and fsync latency move a lot from one
    // second to the next here); the figure is each way's median.
    let ways = [Way::CommitStep, Way::Raw, Way::Fenced(fenced), Way::Cleaned(cleaned)];
    let mut rates: [Vec<f64>; 4] = Default::default();
    let rounds = if quick { 3 } else { 7 };
    for round in 0..rounds {
        for k in 0..ways.len() {
            let which = (round + k) % ways.len();
            let rate = match ways[which] {
                Way::CommitStep => {
                    let (store, l) = (scratch.store.clone(), Arc::clone(&leases));
                    rows_per_sec(writers, per_writer, move |writer, i| {
                        let (store, lease) = (store.clone(), l[writer]);
                        async move {
                            let row = NewMessage::assistant(vec![Part::text(kib_text(i))]);
                            let step = Step::new(Some(row), vec![]);
                            store.commit_step(&lease, step).await.expect("commit");
                        }
                    })
                    .await
                }
                Way::Raw => {
                    let (pool, l) = (scratch.pool.clone(), Arc::clone(&leases));
                    rows_per_sec(writers, per_writer, move |writer, i| {
                        let (pool, chat) = (pool.clone(), l[writer].chat_id);
                        async move {
                            let content = json!([{"type": "text", "text": kib_text(i)}]);
                            sqlx::query(
                                "INSERT INTO chat_messages (chat_id, role, content, visibility) \
                                 VALUES ($1, 'assistant', $2, 'both')",
                            )
                            .bind(chat.0)
                            .bind(content)
                            .execute(&pool)
                            .await
                            .expect("insert");
                        }
                    })
                    .await
                }
                Way::Fenced(sql) | Way::Cleaned(sql) => {
                    let (pool, l) = (scratch.pool.clone(), Arc::clone(&leases));
                    rows_per_sec(writers, per_writer, move |writer, i| {
                        let (pool, lease) = (pool.clone(), l[writer]);
                        async move {
                            let content = json!([{"type": "text", "text": kib_text(i)}]);
                            sqlx::query(sql)
                                .bind(lease.chat_id.0)
                                .bind(content)
                                .bind(lease.worker_id.0)
                                .bind(lease.epoch)
                                .execute(&pool)
                                .await
                                .expect("fenced insert");
                        }
                    })
                    .await
                }
            };
            rates[which].push(rate);
        }
    }
    let [mut value, mut baseline, mut with_fence, mut with_cleanup] = rates;
    let value = percentile(&mut value, 0.5);
    let baseline = percentile(&mut baseline, 0.5);
    let with_fence = percentile(&mut with_fence, 0.5);
    let with_cleanup = percentile(&mut with_cleanup, 0.5);
    scratch.drop_database().await?;
    Ok(vec![
        Report::new(
            "pg-append",
            "commits_per_sec_4_writers",
            "rows/s",
            value,
            baseline,
            Target::AtLeast(0.8),
        ),
        Report::new(
            "pg-append",
            "raw_insert_behind_the_fence_vs_raw",
            "rows/s",
            with_fence,
            baseline,
            Target::None,
        ),
        Report::new(
            "pg-append",
            "fence_and_part_cleanup_vs_raw",
            "rows/s",
            with_cleanup,
            baseline,
            Target::None,
        ),
        Report::new(
            "pg-append",
            "commit_step_vs_fence_and_cleanup",
            "rows/s",
            value,
            with_cleanup,
            Target::None,
        ),
    ])
}

/// A chat with `before` messages, a compaction boundary, then the same 50-message tail.
async fn history_chat(scratch: &Scratch, before: i64) -> BenchResult<ChatId> {
    let store = &scratch.store;
    let chat = store
        .create_chat(
            NewChat::new(UserId::new()).with_system_prompt("You are a bench.").with_text("q"),
        )
        .await?;
    sqlx::query(
        "INSERT INTO chat_messages (chat_id, role, content, visibility) \
         SELECT $1, CASE WHEN g % 2 = 0 THEN 'user' ELSE 'assistant' END, \
           jsonb_build_array(jsonb_build_object('type', 'text', 'text', repeat('x', 200))), 'both' \
         FROM generate_series(1, $2) AS g",
    )
    .bind(chat.id.0)
    .bind(before)
    .execute(&scratch.pool)
    .await?;
    let lease = store.acquire(WorkerId::new(), 1).await?[0];
    let compaction = Compaction::new(
        vec![Part::text("Summary of everything so far.")],
        Part::tool_call("sum", "chat_summarized", json!({})),
        Part::tool_result("sum", "chat_summarized", json!({"summary": "..."}), false),
    );
    store.write_compaction(Fence::Lease(lease), compaction).await?;
    for i in 0..25 {
        let step = Step::new(
            Some(NewMessage::assistant(vec![Part::tool_call(
                format!("c{i}"),
                "read_file",
                json!({"path": "a"}),
            )])),
            vec![NewMessage::tool(Part::tool_result(
                format!("c{i}"),
                "read_file",
                json!("x".repeat(200)),
                false,
            ))],
        );
        store.commit_step(&lease, step).await?;
    }
    store.release(&lease, TurnOutcome::Finished).await?;
    Ok(chat.id)
}

/// `pg-history`: `prompt_messages` latency with 100 000 messages before the latest boundary
/// vs 100 (the same tail).
pub(crate) async fn history(quick: bool) -> BenchResult<Vec<Report>> {
    let iterations = if quick { 200 } else { 1000 };
    let scratch = Scratch::create(4).await?;
    let long = history_chat(&scratch, 100_000).await?;
    let short = history_chat(&scratch, 100).await?;
    sqlx::query("ANALYZE").execute(&scratch.pool).await?;
    let measure = async |chat: ChatId| -> BenchResult<(f64, usize)> {
        let mut samples = Vec::with_capacity(iterations);
        let mut rows = 0;
        for _ in 0..iterations {
            let started = Instant::now();
            rows = scratch.store.prompt_messages(chat).await?.len();
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((percentile(&mut samples, 0.5), rows))
    };
    // Warm both, then measure alternately so drift affects both equally.
    measure(long).await?;
    measure(short).await?;
    let (long_p50, long_rows) = measure(long).await?;
    let (short_p50, short_rows) = measure(short).await?;
    if long_rows != short_rows {
        return Err(format!("prompts differ: {long_rows} vs {short_rows} rows").into());
    }
    scratch.drop_database().await?;
    Ok(vec![Report::new(
        "pg-history",
        "prompt_p50_ms_100k_vs_100_before_boundary",
        "ms",
        long_p50,
        short_p50,
        Target::AtMost(1.5),
    )])
}
