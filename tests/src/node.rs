//! [`Node`]: a `chatd-test-node` child process (a worker or a subscriber) and the lines it
//! prints, for the tests that run chatd in several processes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::pg::FreshDb;

/// A child process and the lines it printed.
pub struct Node {
    /// The process (killed when dropped).
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts `chatd-test-node` (found beside the running test binary) with `args`.
    ///
    /// # Panics
    /// If it cannot start.
    #[must_use]
    pub fn spawn(args: &[&str]) -> Node {
        let mut child = Command::new(binary())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chatd-test-node");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("lines").push(line);
            }
        });
        Node { child, lines }
    }

    /// A worker on `db` (heartbeat 1 s, stale 3 s, poll 200 ms) with `extra` arguments.
    #[must_use]
    pub fn worker(db: &FreshDb, extra: &[&str]) -> Node {
        let mut args = vec![
            "worker",
            "--database-url",
            &db.url,
            "--heartbeat-ms",
            "1000",
            "--stale-ms",
            "3000",
            "--poll-ms",
            "200",
        ];
        args.extend_from_slice(extra);
        Node::spawn(&args)
    }

    /// What it printed so far.
    ///
    /// # Panics
    /// If a reader panicked.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The first printed line `what` accepts, waiting up to `within`.
    ///
    /// # Panics
    /// When none comes in time.
    pub async fn wait_line(&self, what: impl Fn(&str) -> bool, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| what(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no such line within {within:?}; printed: {:?}",
                self.lines()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Its process id.
    ///
    /// # Panics
    /// When it has exited.
    #[must_use]
    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id().expect("running")).expect("pid"))
    }

    /// Sends it `signal`.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal");
    }
}

/// `chatd-test-node` beside the test binary (`target/<profile>/`; test binaries live in
/// `deps/` below it).
fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    dir.join("chatd-test-node")
}
