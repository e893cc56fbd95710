//! The terminal chat on a real terminal (a pseudo-terminal): the prompt, a line typed while an
//! answer streams (not echoed into it, queued, and its answer labelled), Ctrl-C that stops
//! the printing at once, and the terminal's echo given back at exit.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::openpty;
use nix::sys::signal::{Signal, kill};
use nix::sys::termios::{LocalFlags, tcgetattr};
use nix::unistd::Pid;

/// Everything the chat printed so far, without colour codes.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<String>>);

impl Screen {
    fn text(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until what was printed after `from` contains `needle`; returns the offset just
    /// after it.
    fn until(&self, from: usize, needle: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            if let Some(at) = text.get(from..).and_then(|rest| rest.find(needle)) {
                return from + at + needle.len();
            }
            assert!(Instant::now() < deadline, "no {needle:?} after {from} in:\n{text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes ANSI escape sequences (colours, line clears).
fn plain(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// The chat's process, killed if the test ends first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(slave: &OwnedFd) -> Running {
    let io = || Stdio::from(slave.try_clone().expect("a pty fd"));
    let child = Command::new(env!("CARGO_BIN_EXE_chat-cli"))
        .args(["--word-delay-ms", "40"])
        .stdin(io())
        .stdout(io())
        .stderr(Stdio::null())
        .spawn()
        .expect("chat-cli starts");
    Running(child)
}

#[test]
fn on_a_terminal_typing_never_mixes_into_an_answer() {
    let pty = openpty(None, None).expect("a pseudo-terminal");
    let mut running = spawn(&pty.slave);
    let child = &mut running.0;
    let mut master = std::fs::File::from(pty.master);
    let screen = Screen::default();
    let mut reader = master.try_clone().expect("master");
    let sink = screen.clone();
    std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                return;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Ok(mut shown) = sink.0.lock() {
                *shown = plain(&raw);
            }
        }
    });
    println!("ran chat-cli on a pseudo-terminal (openpty), stdin a tty: echo and prompt checked");

    // The prompt, once the chat is ready.
    let at = screen.until(0, "› ");
    master.write_all(b"tell me a slow story\n").expect("type");
    let at = screen.until(at, "Once upon a time");
    // Typed while the story streams: shown once, on its own line, and queued.
    master.write_all(b"hello there\n").expect("type");
    let queued = screen.until(at, "[queued as");
    let during = screen.text()[at..queued].to_owned();
    assert_eq!(during.matches("hello there").count(), 1, "echoed once only: {during:?}");
    assert!(during.contains("\n› hello there\n"), "on a line of its own: {during:?}");

    // Ctrl-C: nothing more of the story is printed after the notice.
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGINT).expect("Ctrl-C");
    let notice = screen.until(queued, "[interrupting — Ctrl-C again to exit]");
    let ended = screen.until(notice, "[turn interrupted]");
    let between = screen.text()[notice..ended - "[turn interrupted]".len()].to_owned();
    assert!(between.trim().is_empty(), "printed after the Ctrl-C notice: {between:?}");

    // The queued message is answered next, and the answer says which message it answers.
    let label = screen.until(ended, "── now answering: “hello there”");
    let answer = screen.until(label, "You said: “hello there”");
    let finished = screen.until(answer, "[turn finished]");
    screen.until(finished, "› ");

    // Ctrl-D (end of input) while a turn streams, with the echo off, exits and gives the
    // echo back.
    master.write_all(b"another slow story please\n").expect("type");
    screen.until(finished, "Once upon a time");
    assert!(
        !tcgetattr(pty.slave.as_fd()).expect("settings").local_flags.contains(LocalFlags::ECHO),
        "no echo while the answer streams"
    );
    master.write_all(b"\x04").expect("Ctrl-D");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        assert!(Instant::now() < deadline, "chat-cli did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let settings = tcgetattr(pty.slave.as_fd()).expect("terminal settings");
    assert!(settings.local_flags.contains(LocalFlags::ECHO), "echo is back on at exit");
}
