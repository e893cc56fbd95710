//! Start-up errors a person can read (the example binaries print these instead of Rust's
//! debug dumps): what failed, where, and what to do.

use std::fmt;
use std::time::{Duration, Instant};

use chatd_store_postgres::PostgresChatStore;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// A start-up failure, said in a sentence or two.
#[derive(Debug)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

/// How long to keep trying a PostgreSQL that does not answer (`CHATD_CONNECT_RETRY_SECS`,
/// default 30 s), trying again every 2 s.
fn retry_for() -> Duration {
    let secs = std::env::var("CHATD_CONNECT_RETRY_SECS").ok().and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(30))
}

/// Where `url` points, for messages: `host:port/database` (never the password).
fn target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default database)")
    )
}

/// Checks that PostgreSQL at `url` answers before the store's pool is opened: says at once
/// when it does not, and tries again every 2 s (saying so) until `CHATD_CONNECT_RETRY_SECS`;
/// a missing database or a refused login fails at once, with what to do.
///
/// # Errors
/// A [`StartupError`] naming the server and the problem.
pub async fn reach_postgres(url: &str) -> Result<(), StartupError> {
    let options: PgConnectOptions = url.parse().map_err(|_| {
        StartupError(
            "--database-url is not a PostgreSQL URL (expected postgres://user@host:5432/database)"
                .into(),
        )
    })?;
    let at = target(&options);
    let deadline = Instant::now() + retry_for();
    let mut said = false;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(3), PgConnection::connect_with(&options));
        let problem = match attempt.await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                if said {
                    eprintln!("PostgreSQL at {at} answers now");
                }
                return Ok(());
            }
            Ok(Err(sqlx::Error::Database(err))) => {
                let what = match err.code().as_deref() {
                    Some("3D000") => format!(
                        "PostgreSQL at {at} has no such database: create it (createdb {}) or name \
                         another in --database-url",
                        options.get_database().unwrap_or("chatd")
                    ),
                    Some("28P01" | "28000") => format!(
                        "PostgreSQL at {at} refused the login: {}; check the user and password \
                         in --database-url",
                        err.message()
                    ),
                    _ => format!("PostgreSQL at {at} refused the connection: {}", err.message()),
                };
                return Err(StartupError(what));
            }
            Ok(Err(sqlx::Error::Io(err))) => format!("{err}"),
            Ok(Err(err)) => format!("{err}"),
            Err(_) => "no answer within 3 s".to_owned(),
        };
        if Instant::now() >= deadline {
            return Err(StartupError(format!(
                "PostgreSQL at {at} does not answer ({problem}); is it running? Start it, or \
                 leave out --database-url to use the in-memory store"
            )));
        }
        if !said {
            eprintln!(
                "PostgreSQL at {at} does not answer ({problem}); trying again every 2 s for up to \
                 {} s (Ctrl-C to stop)",
                retry_for().as_secs()
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Opens the store at `url` once [`reach_postgres`] succeeded, with its errors said plainly.
///
/// # Errors
/// A [`StartupError`].
pub async fn connect_postgres(url: &str) -> Result<PostgresChatStore, StartupError> {
    reach_postgres(url).await?;
    PostgresChatStore::connect(url)
        .await
        .map_err(|err| StartupError(format!("cannot open the PostgreSQL store: {err}")))
}

/// A listening address that cannot be bound, said plainly.
#[must_use]
pub fn cannot_listen(addr: impl fmt::Display, err: &std::io::Error) -> StartupError {
    let why = match err.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the address is in use (another server is running there? pick another port with \
             --listen)"
                .to_owned()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges; pick another with --listen)"
                .to_owned()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address (use 127.0.0.1 or 0.0.0.0)".to_owned()
        }
        _ => err.to_string(),
    };
    StartupError(format!("cannot listen on {addr}: {why}"))
}

/// Prints `program: error` (its `Display`, never a debug dump) and returns the failure code.
#[must_use]
pub fn report(program: &str, err: &dyn std::error::Error) -> std::process::ExitCode {
    eprintln!("{program}: {err}");
    std::process::ExitCode::FAILURE
}
