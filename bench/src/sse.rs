//! `sse-parse`: the SSE decoder every adapter uses (`sse-stream`), on a recorded OpenAI-style
//! stream, against a baseline that splits the same bytes into lines with `memchr` (one owned,
//! validated `String` per line); and
//! one 8 MiB event fed in 1 024 chunks against the same event in one chunk (a parser that
//! re-scans its pending line per chunk is quadratic there).

use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;

use crate::report::{Report, Target};

const CHUNK: &str = r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764140000,"model":"gpt-test","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}"#;

fn recorded_stream(events: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(events * (CHUNK.len() + 2));
    for _ in 0..events {
        body.extend_from_slice(CHUNK.as_bytes());
        body.extend_from_slice(b"\n\n");
    }
    body.extend_from_slice(b"data: [DONE]\n\n");
    body
}

fn chunks(body: &[u8], size: usize) -> Vec<Bytes> {
    body.chunks(size.max(1)).map(Bytes::copy_from_slice).collect()
}

/// Seconds to decode `pieces` and the number of events found, through the adapters' own
/// decoder (`chatd_providers::sse::decode`: sse-stream behind the SSE event-size bound).
async fn decode(pieces: Vec<Bytes>) -> (f64, usize) {
    let started = Instant::now();
    let stream = futures::stream::iter(pieces.into_iter().map(Ok));
    let bound = chatd_providers::HttpLimits::default().max_event_bytes;
    let count = chatd_providers::sse::decode("bench", stream, bound)
        .filter(|event| std::future::ready(event.is_ok()))
        .count()
        .await;
    (started.elapsed().as_secs_f64(), count)
}

/// Seconds to decode `pieces` and the events found, by `sse-stream` alone (no event-size
/// bound, no error mapping, no boxing): what the adapters' decoder adds to the crate.
async fn decode_bare(pieces: Vec<Bytes>) -> (f64, usize) {
    let started = Instant::now();
    let stream = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let count = sse_stream::SseByteStream::new(stream)
        .filter(|event| std::future::ready(event.is_ok()))
        .count()
        .await;
    (started.elapsed().as_secs_f64(), count)
}

/// Seconds to split `pieces` into lines with `memchr`, carrying partial lines across
/// chunks and producing each line as an owned, UTF-8-validated `String` — what a line
/// splitter hands its caller (like `BufRead::lines`), and the least an SSE decoder must do.
fn split_lines(pieces: &[Bytes]) -> (f64, usize) {
    let started = Instant::now();
    let mut lines = 0;
    let mut carry = Vec::new();
    for piece in pieces {
        let mut rest: &[u8] = piece;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            carry.extend_from_slice(&rest[..at]);
            let line = String::from_utf8(std::mem::take(&mut carry)).unwrap_or_default();
            std::hint::black_box(line);
            lines += 1;
            rest = &rest[at + 1..];
        }
        carry.extend_from_slice(rest);
    }
    (started.elapsed().as_secs_f64(), lines)
}

/// Seconds to only find every line end with `memchr` (no line is produced): the floor of
/// any line-based parser, reported for information.
fn scan_lines(pieces: &[Bytes]) -> f64 {
    let started = Instant::now();
    let count: usize = pieces.iter().map(|piece| memchr::memchr_iter(b'\n', piece).count()).sum();
    std::hint::black_box(count);
    started.elapsed().as_secs_f64()
}

/// Runs the scenario (best of five for each measurement).
pub(crate) async fn run(quick: bool) -> Vec<Report> {
    let events = if quick { 20_000 } else { 100_000 };
    let body = recorded_stream(events);
    let megabytes = body.len() as f64 / 1_000_000.0;
    let pieces = chunks(&body, 16 * 1024);
    let (mut parse, mut split, mut scan, mut bare) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (seconds, count) = decode(pieces.clone()).await;
        assert_eq!(count, events + 1, "every event decoded");
        parse = parse.min(seconds);
        let (seconds, count) = decode_bare(pieces.clone()).await;
        assert_eq!(count, events + 1, "every event decoded by the crate alone");
        bare = bare.min(seconds);
        split = split.min(split_lines(&pieces).0);
        scan = scan.min(scan_lines(&pieces));
    }
    let parse_rate = megabytes / parse;
    let mut reports = vec![
        Report::new(
            "sse-parse",
            "mb_per_sec_vs_memchr_lines",
            "MB/s",
            parse_rate,
            megabytes / split,
            Target::AtLeast(0.5),
        ),
        Report::new(
            "sse-parse",
            "mb_per_sec_vs_sse_stream_alone",
            "MB/s",
            parse_rate,
            megabytes / bare,
            Target::None,
        ),
        Report::new(
            "sse-parse",
            "sse_stream_alone_mb_per_sec_vs_memchr_lines",
            "MB/s",
            megabytes / bare,
            megabytes / split,
            Target::None,
        ),
        Report::new(
            "sse-parse",
            "mb_per_sec_vs_memchr_scan_only",
            "MB/s",
            parse_rate,
            megabytes / scan,
            Target::None,
        ),
        Report::new(
            "sse-parse",
            "mb_per_sec_vs_200_floor",
            "MB/s",
            parse_rate,
            200.0,
            Target::AtLeast(1.0),
        ),
    ];
    let mut big = b"data: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 8 * 1024 * 1024));
    big.extend_from_slice(b"\n\n");
    let (mut whole, mut split_1024) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        whole = whole.min(decode(chunks(&big, big.len())).await.0);
        split_1024 = split_1024.min(decode(chunks(&big, big.len() / 1024)).await.0);
    }
    reports.push(Report::new(
        "sse-parse",
        "seconds_8mib_event_1024_chunks_vs_1_chunk",
        "s",
        split_1024,
        whole,
        Target::AtMost(2.0),
    ));
    reports
}
