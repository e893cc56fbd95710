//! Memory bounds of the local workspace's tools (BEHAVIOUR §13): 256 MiB of command output and
//! a 256 MiB file keep the process's peak RSS growth under 16 MiB. One test in its own
//! binary, so nothing else runs in the process while the peak is measured.

use std::time::Duration;

use chatd_core::runtime::tools::{ExecRequest, LocalWorkspace, ToolContext, Workspace};
use chatd_core::{ChatId, UserId};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;
const LIMIT: u64 = 16 * MIB;

/// A field of /proc/self/status, in bytes.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("field")
        * 1024
}

/// Resets the peak RSS (VmHWM) to the current RSS and returns the current RSS.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    status_kib("VmRSS:")
}

fn ctx() -> ToolContext {
    ToolContext::new(
        ChatId::new(),
        UserId::new(),
        chatd_core::ChatKind::Root,
        CancellationToken::new(),
    )
}

#[test]
fn huge_outputs_and_files_keep_peak_memory_small() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let ws = LocalWorkspace::open(dir.path()).expect("workspace");
        let file = std::fs::File::create(dir.path().join("big.bin")).expect("file");
        file.set_len(256 * MIB).expect("256 MiB (sparse)");
        // Warm up: the first command and read allocate the runtime's buffers.
        ws.execute(&ctx(), &ExecRequest::new("echo warm")).await.expect("warm");
        ws.read_file(&ctx(), "big.bin", None, Some(1)).await.expect("warm read");

        let before = reset_peak();
        let request = ExecRequest::new("head -c 268435456 /dev/zero; yes | head -c 16777216")
            .with_timeout(Duration::from_secs(120));
        let out = ws.execute(&ctx(), &request).await.expect("run");
        let growth = status_kib("VmHWM:").saturating_sub(before);
        println!("execute: {} bytes written, {} kept, peak RSS growth {} KiB", out.total_bytes, out.output.len(), growth / 1024);
        assert_eq!(out.total_bytes, 256 * MIB + 16 * MIB, "every byte counted");
        assert!(out.truncated && out.output.len() <= 32 * 1024);
        assert!(growth < LIMIT, "execute grew the peak RSS by {} MiB", growth / MIB);

        for (offset, limit) in [(None, Some(1)), (Some(2), Some(10)), (None, None)] {
            let before = reset_peak();
            let window = ws.read_file(&ctx(), "big.bin", offset, limit).await.expect("read");
            let growth = status_kib("VmHWM:").saturating_sub(before);
            println!(
                "read_file offset {offset:?} limit {limit:?}: {} bytes, truncated {}, peak RSS growth {} KiB",
                window.content.len(),
                window.truncated,
                growth / 1024
            );
            assert!(window.content.len() <= 256 * 1024 * 3, "bounded window");
            assert!(growth < LIMIT, "read_file grew the peak RSS by {} MiB", growth / MIB);
        }
    });
}
