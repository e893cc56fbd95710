//! Start-up errors a person can read: the server binary, started as a person would start it,
//! with a busy port, a database that does not exist and a PostgreSQL that does not answer.
//! Each message names the problem and where, says what to do, and is no debug dump.

use std::process::{Command, Output};

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command.args(args).env_remove("DATABASE_URL");
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
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("does not answer") && first.contains("trying again"), "{stderr}");
    assert!(message.contains(&format!("127.0.0.1:{port}/test")), "{message}");
    assert!(message.contains("is it running?"), "{message}");
}
