//! `execute-overhead`: a trivial command (`true`) through the local workspace, confined by
//! every layer (bubblewrap namespaces, seccomp, Landlock, an unprivileged uid) vs
//! unconfined, in the same run (goal: ≤ 1.3×); informational: confined without namespaces
//! (Landlock, seccomp, uid) vs unconfined, and unconfined vs a bare
//! `tokio::process::Command` spawn (what the supervisor, the pipe and the group termination
//! cost).

use std::time::Instant;

use chatd_core::runtime::tools::{
    ExecRequest, LocalWorkspace, SandboxMode, SandboxPolicy, SandboxStatus, ToolContext, Workspace,
};
use chatd_core::{ChatId, UserId};
use tokio_util::sync::CancellationToken;

use crate::report::{Report, Target, percentile};

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn median_ms(ws: &LocalWorkspace, runs: usize) -> Result<f64, Error> {
    let ctx = ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    );
    let request = ExecRequest::new("true");
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let out = ws.execute(&ctx, &request).await?;
        if out.exit_code != 0 {
            return Err(format!("`true` exited {}", out.exit_code).into());
        }
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(percentile(&mut samples, 0.5))
}

async fn raw_median_ms(dir: &std::path::Path, runs: usize) -> Result<f64, Error> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg("true")
            .current_dir(dir)
            .status()
            .await?;
        if !status.success() {
            return Err("raw `true` failed".into());
        }
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(percentile(&mut samples, 0.5))
}

/// Runs the scenario.
pub(crate) async fn run(quick: bool) -> Result<Vec<Report>, Error> {
    let runs = if quick { 50 } else { 400 };
    let dir = tempfile_dir()?;
    let confined = LocalWorkspace::open(&dir)?;
    let SandboxStatus::Confined(layers) = confined.sandbox_status() else {
        return Err(
            format!("not every layer is available here: {:?}", confined.sandbox_status()).into()
        );
    };
    eprintln!("execute-overhead: {layers}; {runs} runs each, interleaved");
    let mut flat = SandboxPolicy::new(SandboxMode::BestEffort);
    flat.bwrap = Some(dir.join("no-bwrap-here"));
    let no_namespaces = LocalWorkspace::open_with(&dir, &flat)?;
    let unconfined = LocalWorkspace::open_with(&dir, &SandboxPolicy::new(SandboxMode::Disabled))?;
    // Interleave the four so that machine noise hits them alike.
    let (mut c, mut f, mut u, mut r) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..4 {
        c.push(median_ms(&confined, runs / 4).await?);
        f.push(median_ms(&no_namespaces, runs / 4).await?);
        u.push(median_ms(&unconfined, runs / 4).await?);
        r.push(raw_median_ms(&dir, runs / 4).await?);
    }
    let (c, u, r) = (percentile(&mut c, 0.5), percentile(&mut u, 0.5), percentile(&mut r, 0.5));
    let f = percentile(&mut f, 0.5);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(vec![
        Report::new(
            "execute-overhead",
            "confined_vs_unconfined_p50",
            "ms",
            c,
            u,
            Target::AtMost(1.3),
        ),
        Report::new(
            "execute-overhead",
            "no_namespaces_vs_unconfined_p50",
            "ms",
            f,
            u,
            Target::None,
        ),
        Report::new("execute-overhead", "unconfined_vs_raw_spawn_p50", "ms", u, r, Target::None),
    ])
}

fn tempfile_dir() -> Result<std::path::PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!("chatd-bench-exec-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
