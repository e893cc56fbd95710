//! The terminal chat driven through its stdin and signals, as a person would drive it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn spawn(delay_ms: u64) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-cli"))
        .args(["--word-delay-ms", &delay_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("chat-cli starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("| {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Reads output until a line contains `needle`; returns everything read.
fn until(rx: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no line with {needle:?} in {seen:#?}");
}

fn wait(mut child: Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("status") {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "chat-cli did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_scripted_conversation_with_tools_commands_and_an_edit() {
    let (mut child, rx) = spawn(1);
    let mut stdin = child.stdin.take().expect("stdin");
    // The demo asks before write_file and execute: yes to the first; the second's command is
    // edited at the prompt, then run.
    writeln!(stdin, "hello\nplease write a file\ny\ne\n{{\"command\": \"ls notes.md\"}}\n/list\n/history\n/edit 1 hi again\n/queue\n/models\n/model 1\n/bogus\n/switch 7\n/quit")
        .expect("script");
    let mut out = until(&rx, "[turn finished]");
    // Each turn's cost follows it (the demo model's made-up prices).
    out.extend(until(&rx, "[1 model call, "));
    assert!(out.last().is_some_and(|l| l.contains(" tokens, cost 0.00")), "{out:#?}");
    out.extend(until(&rx, "⚙ write_file"));
    out.extend(until(&rx, "[run write_file"));
    out.extend(until(&rx, "[turn waits for your answer]"));
    out.extend(until(&rx, "⚙ execute"));
    out.extend(until(&rx, "[run execute"));
    out.extend(until(&rx, "[new arguments as JSON"));
    out.extend(until(&rx, "← execute"));
    assert!(out.last().is_some_and(|l| l.contains("notes.md")), "the edited command ran: {out:#?}");
    out.extend(until(&rx, "[turn finished]"));
    out.extend(until(&rx, "[1 model call, "));
    out.extend(until(&rx, "1. hello (waiting)"));
    out.extend(until(&rx, "[3] user: please write a file"));
    // A tool step's rows say what they were, not an empty line.
    out.extend(until(&rx, "[5] tool: ← write_file ok"));
    out.extend(until(&rx, "[6] assistant: ⚙ execute"));
    out.extend(until(&rx, "[history rewritten after message 0]"));
    out.extend(until(&rx, "“hi again”"));
    out.extend(until(&rx, "[the queue is empty]"));
    out.extend(until(&rx, "openai-compat chatd-demo"));
    out.extend(until(&rx, "[next messages use chatd-demo]"));
    out.extend(until(&rx, "[unknown command /bogus (try /help)]"));
    out.extend(until(&rx, "[no such number: /list first]"));
    assert_eq!(wait(child), 0);
    let answer =
        out.iter().position(|l| l.starts_with("Done. `write_file` worked")).expect("the answer");
    assert!(out[..answer].iter().any(|l| l.contains("notes.md")), "tool results before the answer");
}

#[test]
fn fork_and_search_from_the_terminal() {
    let (mut child, rx) = spawn(1);
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "hello\n/fork\n/search fork\n/search nothing-like-it\n/search\n/quit")
        .expect("script");
    let mut out = until(&rx, "[turn finished]");
    out.extend(until(&rx, "── hello (fork) (waiting)"));
    // The fork, found by its title; the source is not (every word must match).
    out.extend(until(&rx, "1. hello (fork) (waiting)"));
    out.extend(until(&rx, "[no chat matches]"));
    out.extend(until(&rx, "[usage: /search <words>]"));
    assert_eq!(wait(child), 0);
    let found = out.iter().filter(|l| l.contains(". hello")).count();
    assert_eq!(found, 1, "only the fork matched: {out:#?}");
}

#[test]
fn attach_sends_a_file_with_the_next_message() {
    let dir = std::env::temp_dir().join(format!("chat-cli-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let png = dir.join("shot.png");
    std::fs::write(&png, chatd_core::files::testing_png(8, 2)).expect("png");
    let bogus = dir.join("run.sh");
    std::fs::write(&bogus, b"\x7fELF\x02\x01\x01\x00").expect("binary");
    let (mut child, rx) = spawn(1);
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        "/attach {}\n/attach {}\n/attach\nwhat is this?\n/history\n/quit",
        bogus.display(),
        png.display()
    )
    .expect("script");
    let mut out =
        until(&rx, "[Only PNG, JPEG, GIF and WebP images, PDF and plain text can be attached.]");
    out.extend(until(&rx, "[attached shot.png: image/png, "));
    out.extend(until(&rx, "[usage: /attach <path>]"));
    out.extend(until(&rx, "I see shot.png: a 8×2 PNG image of "));
    out.extend(until(&rx, "[1] user: what is this? [📎 shot.png]"));
    assert_eq!(wait(child), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ctrl_c_interrupts_the_turn_and_a_second_one_exits() {
    let (mut child, rx) = spawn(40);
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "tell me a slow story").expect("send");
    let mut out = until(&rx, "── tell me a slow story");
    // Wait for the story to start streaming (a line is printed when the reasoning ends).
    out.extend(until(&rx, "thinking:"));
    std::thread::sleep(Duration::from_millis(300));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    kill(pid, Signal::SIGINT).expect("Ctrl-C");
    out.extend(until(&rx, "[interrupting — Ctrl-C again to exit]"));
    out.extend(until(&rx, "[turn interrupted]"));
    assert!(out.iter().any(|l| l.contains("Once upon a time")), "{out:?}");
    assert!(child.try_wait().expect("status").is_none(), "still running after one Ctrl-C");
    kill(pid, Signal::SIGINT).expect("Ctrl-C again");
    until(&rx, "[bye]");
    drop(stdin);
    assert_eq!(wait(child), 0);
}
