//! Clients no one here wrote: the Vercel AI SDK (`js/ai_sdk.mjs`, the `ai` package) and a real
//! browser (`js/browser.mjs`, headless Chromium over the DevTools protocol), each against a
//! server started here. Both need Node and the packages of `js/package-lock.json`
//! (`scripts/test` runs `npm ci`); the browser test needs Chromium (`.ci/run` installs it).
//! Neither passes without running: a missing tool fails the test with the command to run.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use support::{ADMIN, USER, start};

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

fn require_node() -> String {
    let version = std::process::Command::new("node").arg("--version").output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!("these tests need Node.js 18 or later on PATH"),
    };
    assert!(
        js_dir().join("node_modules/ai").is_dir()
            && js_dir().join("node_modules/puppeteer-core").is_dir(),
        "the client packages are not installed: run `npm ci --prefix examples/server/js` (scripts/test does)"
    );
    version
}

/// `name` as an absolute path: itself if it has a slash, else found on `PATH`.
fn resolve(name: &str) -> Option<String> {
    if name.contains('/') {
        return Some(name.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
        .map(|file| file.display().to_string())
}

fn chromium() -> String {
    let candidates =
        [std::env::var("CHROMIUM").ok(), Some("chromium".into()), Some("chromium-browser".into())];
    for candidate in candidates.into_iter().flatten().filter_map(|c| resolve(&c)) {
        if let Ok(out) = std::process::Command::new(&candidate).arg("--version").output()
            && out.status.success()
        {
            println!("browser: {candidate}: {}", String::from_utf8_lossy(&out.stdout).trim());
            return candidate;
        }
    }
    panic!(
        "the browser test needs Chromium: apt-get install -y chromium (.ci/run does), or set CHROMIUM"
    );
}

/// Runs `node script` with `env`; prints its output; fails on a non-zero exit.
async fn node(script: &str, env: &[(&str, String)]) {
    let mut command = tokio::process::Command::new("node");
    command.arg(script).current_dir(js_dir()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("node starts");
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the client finishes within 4 minutes")
        .expect("node ran");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ai_sdk_reads_and_resumes_turns() {
    println!("node {}", require_node());
    let server = start(Duration::from_millis(10)).await;
    node("ai_sdk.mjs", &[("CHATD_URL", server.url.clone()), ("CHATD_TOKEN", ADMIN.into())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_holds_a_conversation_and_survives_a_dropped_stream() {
    println!("node {}", require_node());
    let browser = chromium();
    let server = start(Duration::from_millis(15)).await;
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&target).expect("target dir");
    let screenshot = target.join("browser-test.png");
    node(
        "browser.mjs",
        &[
            ("CHATD_URL", server.url.clone()),
            ("CHATD_TOKEN", ADMIN.into()),
            ("CHATD_OTHER_TOKEN", USER.into()),
            ("CHROMIUM", browser),
            ("SCREENSHOT", screenshot.display().to_string()),
        ],
    )
    .await;
    assert!(screenshot.is_file(), "the screenshot is saved");
}
