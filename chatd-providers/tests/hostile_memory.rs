//! Hostile servers that send too much (BEHAVIOUR §3 "Timeouts and bounds"): one 100 MiB SSE
//! event, a 100 MiB error body, an endless stream. Each is a typed error at its bound, and
//! the process's peak RSS grows by less than 64 MiB. One test in its own binary, so nothing
//! else runs while the peak is measured; the server generates its bodies on the fly.

use std::time::Duration;

use chatd_core::Secret;
use chatd_core::provider::ProviderErrorKind;
use chatd_providers::chat_completions::{ChatCompletionsProvider, Dialect};
use chatd_providers::{HttpLimits, HttpOptions};

mod hostile;
use hostile::{RawServer, Script, head};

const MIB: usize = 1024 * 1024;

fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("field")
        * 1024
}

fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    status_bytes("VmRSS:")
}

#[test]
fn oversized_and_endless_responses_are_cut_with_bounded_memory() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let megabyte = vec![b'a'; MIB];
        let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n";
        let endless: Vec<u8> = event.repeat(MIB / event.len()).into_bytes();
        let scripts: Vec<(&str, Script, ProviderErrorKind)> = vec![
            (
                "one 100 MiB event",
                Script::Stream {
                    head: head("200 OK", "text/event-stream"),
                    prefix: b"data: ".to_vec(),
                    filler: megabyte.clone(),
                    times: Some(100),
                    suffix: b"\n\n".to_vec(),
                },
                ProviderErrorKind::TooLarge,
            ),
            (
                "a 100 MiB error body",
                Script::Stream {
                    head: head("500 Internal Server Error", "application/json"),
                    prefix: b"{\"error\": {\"message\": \"".to_vec(),
                    filler: megabyte.clone(),
                    times: Some(100),
                    suffix: b"\"}}".to_vec(),
                },
                ProviderErrorKind::Server,
            ),
            (
                "an endless stream",
                Script::Stream {
                    head: head("200 OK", "text/event-stream"),
                    prefix: Vec::new(),
                    filler: endless,
                    times: None,
                    suffix: Vec::new(),
                },
                ProviderErrorKind::TooLarge,
            ),
        ];
        for (what, script, kind) in scripts {
            let server = RawServer::start(move |_| script.clone()).await;
            let provider = ChatCompletionsProvider::new(
                Dialect::OpenAiCompat,
                &server.url,
                Secret::new("sk-memory"),
            )
            .expect("provider")
            .with_http(&HttpOptions::new().with_limits(
                HttpLimits::default().with_idle_timeout(Duration::from_secs(10)),
            ));
            let before = reset_peak();
            let err = hostile::run_to_error(&provider).await;
            let growth = status_bytes("VmHWM:").saturating_sub(before);
            println!("{what}: {} ({}), peak RSS growth {} KiB", err.kind, err.message, growth / 1024);
            assert_eq!(err.kind, kind, "{what}: {err}");
            if let Some(body) = &err.body {
                assert!(body.len() <= 64 * 1024, "{what}: kept {} bytes of the body", body.len());
            }
            assert!(growth < 64 * MIB as u64, "{what}: peak RSS grew by {} MiB", growth / MIB as u64);
        }
    });
}
