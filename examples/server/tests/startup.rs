//! Start-up errors a person can read: the server binary, started as a person would start it,
//! with a busy port, a database that does not exist and a PostgreSQL that does not answer.
//! Each message names the problem and where, says what to do, and is no debug dump.

use std::process::{Command, Output};

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    // Its own directory: a server on PostgreSQL keeps files beside it (the key, the users).
    let dir = tempfile::tempdir().expect("a directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command.args(args).current_dir(dir.path()).env_remove("DATABASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the server binary runs")
}

/// What the server printed on standard error, after checking it failed without a dump.
fn failure(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("stderr: {stderr}");
    assert!(!output.status.success(), "the server must fail");
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("server: "), "{stderr}");
    for dump in ["{ ", " }", "Os {", "Backend {", "Unavailable {", "Error: "] {
        assert!(!stderr.contains(dump), "a debug dump ({dump:?}) in: {stderr}");
    }
    last
}

#[test]
fn a_busy_port_names_the_address_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("addr").to_string();
    let message = failure(&server(&["--listen", &addr, "--workers", "0"], &[]));
    assert!(message.contains(&format!("cannot listen on {addr}")), "{message}");
    assert!(message.contains("in use") && message.contains("--listen"), "{message}");
}

#[test]
fn a_missing_database_names_it_and_how_to_create_it() {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (server_url, _) = base.rsplit_once('/').expect("a database URL");
    let url = format!("{server_url}/chatd_no_such_database");
    let message = failure(&server(&["--database-url", &url, "--listen", "127.0.0.1:0"], &[]));
    assert!(message.contains("no such database"), "{message}");
    assert!(message.contains("createdb chatd_no_such_database"), "{message}");
}

#[test]
fn an_unreachable_postgres_is_said_at_once_then_given_up_on() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let output = server(
        &["--database-url", &url, "--listen", "127.0.0.1:0"],
        &[("CHATD_CONNECT_RETRY_SECS", "2")],
    );
    let message = failure(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Said at once: the first word about PostgreSQL is that it does not answer yet.
    let first = stderr.lines().find(|l| l.contains("PostgreSQL")).unwrap_or_default();
    assert!(first.contains("does not answer") && first.contains("trying again"), "{stderr}");
    assert!(message.contains(&format!("127.0.0.1:{port}/test")), "{message}");
    assert!(message.contains("is it running?"), "{message}");
}

/// A database of its own next to `DATABASE_URL`'s, dropped at the end.
struct Scratch {
    admin: String,
    name: String,
}

impl Scratch {
    async fn create() -> (Scratch, String) {
        use sqlx::Connection;
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let name = format!("chatd_users_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.expect("PostgreSQL");
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await.expect("create");
        let (server_url, _) = base.rsplit_once('/').expect("a database URL");
        let url = format!("{server_url}/{name}");
        (Scratch { admin: base, name }, url)
    }

    async fn drop(self) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.expect("PostgreSQL");
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.expect("drop");
    }
}

/// Starts the server in `dir` on PostgreSQL and returns the sign-in links it printed.
fn links_of_a_start(dir: &std::path::Path, url: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--database-url", url, "--listen", "127.0.0.1:0", "--workers", "0"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut links = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("| {line}");
        if let Some((_, link)) = line.split_once("#token=") {
            links.push(link.to_owned());
            if links.len() == 2 {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    links
}

/// On PostgreSQL the chats outlive the server, and so do the demo users that own them: a
/// restart signs in with the same links (kept in `chatd-users.json`, readable by its owner
/// only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_users_outlive_a_restart_on_postgres() {
    let (scratch, url) = Scratch::create().await;
    let dir = tempfile::tempdir().expect("a directory");
    let first = links_of_a_start(dir.path(), &url);
    let second = links_of_a_start(dir.path(), &url);
    scratch.drop().await;
    assert_eq!(first.len(), 2, "two sign-in links: {first:?}");
    assert_eq!(first, second, "the same users after a restart");
    let kept = dir.path().join("chatd-users.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kept).expect("kept").permissions(),
    );
    assert_eq!(mode & 0o077, 0, "only its owner can read it");
}
