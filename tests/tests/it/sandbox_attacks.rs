//! The sandbox attacked as a prompt-injected model would (BEHAVIOUR §13): a real PostgreSQL
//! reached through its socket and over TCP with the real `psql`, raw TCP, UDP and link-local
//! connections, Unix sockets outside the workspace, device nodes, `/etc/shadow`, other
//! workspaces, the host's home and processes, escaping children (`setsid`, double fork)
//! after return, interrupt and timeout, and a fork bomb.
//!
//! Every attack is first shown to work **unconfined** (so the test can tell), then refused
//! confined. Every test prints the layers it ran with and fails — never skips — where a
//! layer, `psql` or `perl` is missing. Run as root, the suite runs itself a second time as
//! an unprivileged user (`the_attacks_fail_as_an_unprivileged_user_too`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chatd_core::runtime::tools::{
    ExecOutput, ExecRequest, LocalWorkspace, SandboxMode, SandboxPolicy, SandboxStatus,
    ToolContext, Workspace,
};
use chatd_core::{ChatId, UserId};
use tokio_util::sync::CancellationToken;

use crate::support::processes_with;

const PERL: &str = "/usr/bin/perl";

fn ctx() -> ToolContext {
    ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    )
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0)
}

/// A workspace confined by `policy`; fails where any layer is missing.
fn confined_with(dir: &Path, policy: &SandboxPolicy) -> LocalWorkspace {
    let ws = LocalWorkspace::open_with(dir, policy).expect("every layer is required here");
    let SandboxStatus::Confined(layers) = ws.sandbox_status() else {
        panic!("not confined: {:?}", ws.sandbox_status());
    };
    println!("ran with: {layers}; test process euid {}", euid());
    ws
}

fn confined(dir: &Path) -> LocalWorkspace {
    confined_with(dir, &SandboxPolicy::default())
}

fn unconfined(dir: &Path) -> LocalWorkspace {
    LocalWorkspace::open_with(dir, &SandboxPolicy::new(SandboxMode::Disabled)).expect("open")
}

async fn sh(ws: &LocalWorkspace, command: &str) -> ExecOutput {
    let request = ExecRequest::new(command).with_timeout(Duration::from_secs(20));
    ws.execute(&ctx(), &request).await.expect("the command starts")
}

fn require(path: &str) {
    assert!(Path::new(path).is_file(), "{path} is needed by this attack and is missing");
}

/// The PostgreSQL the suite's other tests use: host, port.
fn postgres() -> (String, u16) {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let parsed = url::Url::parse(&url).expect("DATABASE_URL is a URL");
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    (host, parsed.port().unwrap_or(5432))
}

/// The real `psql` binary (Debian's `/usr/bin/psql` is a wrapper needing `/etc`).
fn psql() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop().or_else(|| which("psql")).expect("psql is needed by this attack and is missing")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn marker() -> String {
    format!("chatd-mark-{}", uuid::Uuid::new_v4().simple())
}

// ----- the network ------------------------------------------------------------------------

#[tokio::test]
async fn the_database_is_unreachable_with_the_real_psql() {
    let (host, port) = postgres();
    let psql = psql();
    let dir = tempfile::tempdir().expect("dir");
    let socket_dir = ["/var/run/postgresql", "/run/postgresql", "/tmp"]
        .into_iter()
        .find(|d| Path::new(d).join(format!(".s.PGSQL.{port}")).exists());
    let mut attempts = vec![(
        "TCP",
        format!("{} -h {host} -p {port} -U postgres -d postgres -Atc 'select 42'", psql.display()),
    )];
    match socket_dir {
        Some(socket) => attempts.push((
            "Unix socket",
            format!(
                "{} -h {socket} -p {port} -U postgres -d postgres -Atc 'select 42'",
                psql.display()
            ),
        )),
        None => println!("no PostgreSQL socket on this machine: the TCP attack alone runs"),
    }
    let open = unconfined(dir.path());
    let ws = confined(dir.path());
    for (how, command) in attempts {
        let out = sh(&open, &command).await;
        assert_eq!(out.output.trim(), "42", "unconfined psql over {how} must work: {}", out.output);
        let out = sh(&ws, &command).await;
        assert_ne!(out.exit_code, 0, "psql over {how} reached the database:\n{}", out.output);
        assert!(!out.output.contains("42"), "{how}: {}", out.output);
        println!("refused: psql over {how} ({}): {}", psql.display(), out.output.trim());
    }
}

/// A Perl one-liner that connects (TCP), sends (UDP) or connects to a Unix socket, and
/// prints `reached` when it did.
fn perl_tcp(host: &str, port: u16) -> String {
    format!(
        "{PERL} -MIO::Socket::INET -e 'IO::Socket::INET->new(PeerAddr => \"{host}:{port}\", \
         Timeout => 3) or die \"failed: $!\\n\"; print \"reached\\n\"'"
    )
}

fn perl_udp(host: &str, port: u16) -> String {
    format!(
        "{PERL} -MSocket -e 'socket(S, PF_INET, SOCK_DGRAM, 0) or die \"failed: $!\\n\"; \
         send(S, \"x\", 0, pack_sockaddr_in({port}, inet_aton(\"{host}\"))) or die \
         \"failed: $!\\n\"; print \"reached\\n\"'"
    )
}

fn perl_unix(path: &Path) -> String {
    format!(
        "{PERL} -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => \"{}\") or die \
         \"failed: $!\\n\"; print \"reached\\n\"'",
        path.display()
    )
}

#[tokio::test]
async fn tcp_udp_link_local_and_outside_unix_sockets_are_refused() {
    require(PERL);
    // Listeners of our own on the host, so the unconfined runs prove each attack can work.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let tcp_port = tcp.local_addr().expect("addr").port();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let udp_port = udp.local_addr().expect("addr").port();
    let outside = tempfile::tempdir().expect("outside dir");
    let socket_path = outside.path().join("service.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&socket_path).expect("unix listener");
    // The socket must be reachable by the sandbox's user when unconfined.
    let _ = std::fs::set_permissions(
        outside.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    );
    let _ =
        std::fs::set_permissions(&socket_path, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    let dir = tempfile::tempdir().expect("dir");
    let open = unconfined(dir.path());
    let ws = confined(dir.path());
    let attacks = [
        ("TCP to a loopback service", perl_tcp("127.0.0.1", tcp_port), true),
        ("UDP to a loopback service", perl_udp("127.0.0.1", udp_port), true),
        ("a Unix socket outside the workspace", perl_unix(&socket_path), true),
        ("UDP to a public address", perl_udp("192.0.2.1", 53), true),
        // Link-local (a cloud metadata endpoint): nothing answers here, so only the
        // confined refusal is checked — and it must be the sandbox's, not a time-out.
        ("TCP to link-local 169.254.169.254", perl_tcp("169.254.169.254", 80), false),
    ];
    for (what, command, works_unconfined) in attacks {
        if works_unconfined {
            let out = sh(&open, &command).await;
            assert_eq!(out.output.trim(), "reached", "unconfined {what} must work: {}", out.output);
        }
        let started = Instant::now();
        let out = sh(&ws, &command).await;
        assert!(!out.output.contains("reached"), "{what} got through:\n{}", out.output);
        assert_ne!(out.exit_code, 0, "{what}: {}", out.output);
        assert!(
            out.output.contains("Operation not permitted")
                || out.output.contains("No such file or directory"),
            "{what} was not refused by the sandbox: {}",
            out.output
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: a time-out, not a refusal");
        println!("refused: {what}: {}", out.output.trim());
    }
    // A Unix socket inside the workspace still works: local tools talk to their servers.
    let inside = dir.path().join("inside.sock");
    let _inside = std::os::unix::net::UnixListener::bind(&inside).expect("inside listener");
    let _ = std::os::unix::fs::chown(&inside, Some(65534), Some(65534));
    let out = sh(&ws, &perl_unix(&inside)).await;
    assert_eq!(out.output.trim(), "reached", "a socket in the workspace: {}", out.output);
}

#[tokio::test]
async fn the_network_is_the_hosts_only_when_the_policy_says_so() {
    require(PERL);
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let port = tcp.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    assert!(!SandboxPolicy::default().network, "the default policy has no network");
    let ws = confined_with(dir.path(), &SandboxPolicy::default().with_network(true));
    let out = sh(&ws, &perl_tcp("127.0.0.1", port)).await;
    assert_eq!(out.output.trim(), "reached", "network opted in: {}", out.output);
}

// ----- the filesystem ---------------------------------------------------------------------

#[tokio::test]
async fn devices_shadow_other_workspaces_home_and_host_processes_are_out_of_reach() {
    let parent = tempfile::tempdir().expect("parent");
    let (alice, bob) = (parent.path().join("alice"), parent.path().join("bob"));
    std::fs::create_dir(&alice).expect("alice");
    std::fs::create_dir(&bob).expect("bob");
    std::fs::write(bob.join("secret.txt"), "bob's secret").expect("secret");
    let ws = confined(&alice);
    let me = std::process::id();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let attacks = [
        ("a character device", "mknod mem c 1 1".to_owned()),
        ("a block device", "mknod disk b 8 0".to_owned()),
        ("/etc/shadow", "cat /etc/shadow".to_owned()),
        ("another workspace", format!("cat {}", bob.join("secret.txt").display())),
        ("the host's home", format!("ls -a {home}")),
        ("this test process's environment", format!("cat /proc/{me}/environ")),
        ("the kernel log", "cat /dev/kmsg".to_owned()),
        ("a raw disk", "ls /dev/sda /dev/vda /dev/nvme0n1".to_owned()),
    ];
    for (what, command) in attacks {
        let out = sh(&ws, &command).await;
        assert_ne!(out.exit_code, 0, "{what}: `{command}` succeeded:\n{}", out.output);
        assert!(!out.output.contains("bob's secret"), "{what}: {}", out.output);
        println!("refused: {what}: {}", out.output.trim());
    }
    assert!(!alice.join("mem").exists() && !alice.join("disk").exists(), "a device was made");
    // What is there: the harmless devices, FIFOs, and no file of /etc beyond the few.
    let out = sh(
        &ws,
        "mkfifo pipe && test -p pipe && echo fifo; ls /dev; ls /etc; ls /proc | grep -c '^[0-9]'",
    )
    .await;
    assert!(out.output.starts_with("fifo\n"), "a FIFO can be made: {}", out.output);
    for absent in ["shadow", "gshadow", "sudoers", "kmsg", "mem", "sda"] {
        assert!(!out.output.lines().any(|l| l == absent), "{absent} is visible:\n{}", out.output);
    }
    let pids: usize = out.output.lines().last().and_then(|l| l.parse().ok()).expect("a count");
    assert!(pids <= 5, "the command sees {pids} processes: not only its own");
    println!("visible: {}", out.output.replace('\n', " "));
}

#[tokio::test]
async fn each_layer_is_in_force_inside_the_command() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path());
    let host_ns = |kind: &str| std::fs::read_link(format!("/proc/self/ns/{kind}")).expect("ns");
    let out = sh(
        &ws,
        "for k in user pid net ipc mnt uts; do echo \"$k $(readlink /proc/self/ns/$k)\"; done; \
         grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; touch owned",
    )
    .await;
    println!("{}", out.output);
    for kind in ["user", "pid", "net", "ipc", "mnt", "uts"] {
        let inside = out
            .output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{kind} ")))
            .unwrap_or_else(|| panic!("no {kind} namespace line: {}", out.output));
        assert_ne!(Path::new(inside), host_ns(kind), "{kind}: the host's namespace");
    }
    let field = |name: &str| {
        out.output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name}: {}", out.output))
            .to_owned()
    };
    assert_eq!(field("CapEff"), "0000000000000000", "capabilities");
    assert_eq!(field("CapBnd"), "0000000000000000", "bounding set");
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(field("Seccomp"), "2", "a seccomp filter");
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(dir.path().join("owned")).expect("the command's file"),
    );
    let expected = if euid() == 0 { 65534 } else { euid() };
    assert_eq!(owner, expected, "the command's files belong to the unprivileged user");
    assert_ne!(owner, 0, "a command ran as root");
}

// ----- processes --------------------------------------------------------------------------

/// Children that leave the command's session (`setsid`) or fork twice, each writing a file
/// after `delay` s unless killed.
fn escapees(mark: &str, delay: u32) -> String {
    format!(
        "(setsid sh -c 'sleep {delay}; echo late > setsid.txt; : {mark}' &); \
         sh -c \"(sh -c 'sleep {delay}; echo late > double.txt; : {mark}' &) &\"; \
         nohup sh -c 'sleep {delay}; echo late > nohup.txt; : {mark}' >/dev/null 2>&1 &"
    )
}

fn assert_nothing_left(dir: &Path, mark: &str, when: &str) {
    let left = processes_with(mark);
    assert!(left.is_empty(), "{when}: processes outlived the call: {left:?}");
    for file in ["setsid.txt", "double.txt", "nohup.txt"] {
        assert!(!dir.join(file).exists(), "{when}: {file} was written after the call");
    }
    println!("{when}: no process left, nothing written afterwards");
}

#[tokio::test]
async fn escaped_children_die_when_the_call_returns() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path());
    let mark = marker();
    let out = sh(&ws, &format!("{}\necho started", escapees(&mark, 1))).await;
    assert_eq!((out.exit_code, out.output.trim()), (0, "started"));
    assert_nothing_left(dir.path(), &mark, "returned");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_nothing_left(dir.path(), &mark, "1.5 s after it returned");
}

#[tokio::test]
async fn escaped_children_die_when_the_call_times_out() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path());
    let mark = marker();
    let request = ExecRequest::new(format!("{}\nsleep 30", escapees(&mark, 2)))
        .with_timeout(Duration::from_millis(700));
    let out = ws.execute(&ctx(), &request).await.expect("runs");
    assert!(out.timed_out, "{out:?}");
    assert_nothing_left(dir.path(), &mark, "timed out");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_nothing_left(dir.path(), &mark, "2.5 s after the time-out");
}

#[tokio::test]
async fn escaped_children_die_when_the_call_is_interrupted() {
    let dir = tempfile::tempdir().expect("dir");
    let ws = confined(dir.path());
    let mark = marker();
    let context = ctx();
    let cancel = context.cancel.clone();
    let tracker = context.tasks.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel();
    });
    let request = ExecRequest::new(format!("{}\nsleep 30", escapees(&mark, 2)));
    let result = ws.execute(&context, &request).await;
    assert!(result.is_err(), "the interrupted call: {result:?}");
    tracker.close();
    tracker.wait().await;
    assert_nothing_left(dir.path(), &mark, "interrupted");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_nothing_left(dir.path(), &mark, "2.5 s after the interrupt");
}

#[tokio::test]
async fn a_fork_bomb_is_bounded_and_ends_with_the_call() {
    require(PERL);
    let dir = tempfile::tempdir().expect("dir");
    let limit = 64;
    let ws = confined_with(dir.path(), &SandboxPolicy::default().with_max_processes(limit));
    let mark = marker();
    let bomb = format!(
        "{PERL} -e 'my $n = 0; for (1 .. 5000) {{ my $p = fork(); last unless defined $p; \
         if ($p == 0) {{ sleep 30; exit 0 }} $n++ }} print \"forked $n\\n\"; # {mark}'"
    );
    let out = sh(&ws, &bomb).await;
    let forked: u64 = out
        .output
        .trim()
        .strip_prefix("forked ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the bomb's report: {}", out.output));
    println!("the bomb forked {forked} children under a limit of {limit}");
    assert!(forked < limit, "{forked} processes: the limit did not hold");
    assert!(forked >= 8, "the bomb could not fork at all ({forked}): the test proves nothing");
    let left = processes_with(&mark);
    assert!(left.is_empty(), "{} bomb processes outlived the call", left.len());
}

// ----- the same, as an unprivileged user ----------------------------------------------------

#[tokio::test]
async fn the_attacks_fail_as_an_unprivileged_user_too() {
    if euid() != 0 {
        println!("this process is already unprivileged (euid {}): the suite ran as it", euid());
        return;
    }
    // Run this binary's other tests as nobody, from a copy nobody can reach (the checkout
    // may sit below a directory only root may enter, as `mktemp -d` makes them).
    let exe = std::env::current_exe().expect("test binary");
    let copy_dir = tempfile::tempdir().expect("a directory for the copy");
    let open = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(copy_dir.path(), open).expect("chmod");
    let copy = copy_dir.path().join("sandbox_attacks");
    std::fs::copy(&exe, &copy).expect("copy the test binary");
    let mut child = std::process::Command::new(&copy);
    child
        .args([
            // This module's tests only (the binary holds every area's).
            "sandbox_attacks::",
            "--skip",
            "the_attacks_fail_as_an_unprivileged_user_too",
            "--test-threads",
            "2",
            "--nocapture",
        ])
        .env("HOME", "/nonexistent")
        .env("TMPDIR", "/tmp")
        .current_dir("/");
    std::os::unix::process::CommandExt::uid(&mut child, 65534);
    std::os::unix::process::CommandExt::gid(&mut child, 65534);
    let out = child.output().expect("run the suite as nobody");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary = BufReader::new(text.as_bytes())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("test result:"))
        .unwrap_or_default();
    println!("as uid 65534: {summary}");
    assert!(out.status.success(), "the suite failed as an unprivileged user:\n{text}");
    assert!(summary.contains(" 0 failed") && !summary.contains(" 0 passed"), "{text}");
    assert!(text.contains("the worker's own uid 65534"), "it did not run unprivileged:\n{text}");
}

// ----- where bubblewrap is missing ---------------------------------------------------------

#[tokio::test]
async fn without_bubblewrap_required_refuses_and_best_effort_keeps_the_other_layers() {
    require(PERL);
    let dir = tempfile::tempdir().expect("dir");
    let missing = SandboxPolicy::default().with_bwrap("/nonexistent/bwrap");
    let err = LocalWorkspace::open_with(dir.path(), &missing).expect_err("Required fails closed");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    let text = err.to_string();
    assert!(text.contains("namespaces: bubblewrap not found at /nonexistent/bwrap"), "{text}");
    println!("Required without bubblewrap: {text}");

    let mut policy = missing.clone();
    policy.mode = SandboxMode::BestEffort;
    let ws = LocalWorkspace::open_with(dir.path(), &policy).expect("BestEffort opens");
    let SandboxStatus::Partial(layers) = ws.sandbox_status() else {
        panic!("not partial: {:?}", ws.sandbox_status());
    };
    println!("ran with: {layers}; test process euid {}", euid());
    assert!(!layers.namespaces.is_enforced(), "{layers}");
    assert!(layers.landlock.is_enforced() && layers.seccomp.is_enforced(), "{layers}");
    assert!(layers.user.is_enforced(), "{layers}");
    let planted = format!("/var/tmp/chatd-planted-{}", uuid::Uuid::new_v4());
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let port = tcp.local_addr().expect("addr").port();
    let attacks = [
        ("a write to the host's /var/tmp (Landlock)", format!("echo x > {planted}")),
        ("TCP to a loopback service (seccomp)", perl_tcp("127.0.0.1", port)),
        ("UDP (seccomp)", perl_udp("127.0.0.1", 53)),
        ("a character device (seccomp, Landlock)", "mknod mem c 1 1".to_owned()),
        ("/etc/shadow (Landlock)", "cat /etc/shadow".to_owned()),
    ];
    for (what, command) in attacks {
        let out = sh(&ws, &command).await;
        assert_ne!(out.exit_code, 0, "{what}: `{command}` succeeded:\n{}", out.output);
        assert!(!out.output.contains("reached"), "{what}: {}", out.output);
        println!("refused without namespaces: {what}: {}", out.output.trim());
    }
    assert!(!Path::new(&planted).exists(), "a file was planted in /var/tmp");
    let out = sh(&ws, "echo ok > f && cat f").await;
    assert_eq!(out.output, "ok\n", "ordinary work");
}
