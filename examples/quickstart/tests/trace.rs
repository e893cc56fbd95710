//! `quickstart --trace` keeps the answer readable: the spans come after the turn, never in
//! the middle of a streamed line (stdout and stderr on one terminal, as a person runs it).

use std::process::Command;

#[test]
fn trace_lines_never_cut_the_streamed_answer() {
    let exe = env!("CARGO_BIN_EXE_quickstart");
    let out = Command::new("sh")
        .args(["-c", "\"$0\" --trace 2>&1", exe])
        .output()
        .expect("quickstart runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    for whole in [
        "assistant: I'll write the note, then list the workspace.",
        "Done: `notes.md` now says \"hello from chatd\", and it is the only file in the workspace.",
    ] {
        assert!(lines.contains(&whole), "the line {whole:?} is whole in:\n{text}");
    }
    let ended = lines.iter().position(|l| l.starts_with("turn ended; chat is waiting"));
    let heading = lines.iter().position(|l| l.starts_with("── trace:"));
    let (Some(ended), Some(heading)) = (ended, heading) else { panic!("{text}") };
    assert!(heading > ended, "the trace follows the turn");
    let spans = lines[heading..].iter().filter(|l| l.contains("invoke_agent")).count();
    assert_eq!(spans, 6, "the turn's six spans (3 model calls, 2 tools, the turn):\n{text}");
    assert!(lines[..heading].iter().all(|l| !l.contains("invoke_agent")), "{text}");
}
