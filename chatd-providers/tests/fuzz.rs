//! Property-based fuzzing of the decoders a hostile server feeds (BEHAVIOUR §12): the SSE
//! decoder on arbitrary bytes, and every adapter's stream decoder on its fixtures split at
//! arbitrary points and on mutated fixtures (bytes flipped, inserted, removed, cut). No
//! input may panic, and a bounded decoder stays bounded.
//!
//! The smoke run in `scripts/test` uses each property's default case count (well under a
//! minute in all). Longer runs: `PROPTEST_CASES=20000 cargo test --release -p
//! chatd-providers --test fuzz`.

use bytes::Bytes;
use chatd_core::provider::ProviderErrorKind;
use chatd_providers::testing::{Decoder, replay};
use proptest::prelude::*;

mod support;

/// The fixtures each decoder is fuzzed from.
fn corpus() -> Vec<(Decoder, Vec<u8>)> {
    let sse = |dir: &str, name: &str| support::fixture(dir, name);
    let quirk = |dir: &str, name: &str| support::fixture("quirks", &format!("{dir}/{name}"));
    vec![
        (Decoder::ChatCompletions, sse("chat-completions", "tool-call.sse")),
        (Decoder::ChatCompletions, sse("chat-completions", "parallel-tools.sse")),
        (Decoder::ChatCompletions, sse("chat-completions", "reasoning.sse")),
        (Decoder::ChatCompletions, quirk("chat-completions", "reasoning-tail-with-call.sse")),
        (Decoder::Anthropic, sse("anthropic", "tool-use.sse")),
        (Decoder::Anthropic, sse("anthropic", "thinking.sse")),
        (Decoder::Google, sse("google", "function-calls.sse")),
        (Decoder::Google, sse("google", "thinking.sse")),
        (Decoder::Responses, sse("openai-responses", "tool-calls.sse")),
        (Decoder::Responses, sse("openai-responses", "reasoning.sse")),
        (Decoder::Bedrock, support::bedrock_frames("tool-use.jsonl")),
        (Decoder::Bedrock, support::bedrock_frames("reasoning.jsonl")),
    ]
}

/// Splits `bytes` at the given cut points (each taken modulo the length).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| Bytes::copy_from_slice(&bytes[w[0]..w[1]])).collect()
}

fn run(decoder: Decoder, chunks: Vec<Bytes>, max_event: usize) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime
        .block_on(replay(decoder, chunks, max_event))
        .into_iter()
        .map(|item| match item {
            Ok(event) => format!("{event:?}"),
            Err(err) => format!("error {}", err.kind),
        })
        .collect()
}

/// One mutation of a fixture.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Cut(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1_usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Cut),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::Flip(at, bits) => {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b ^= bits;
                }
            }
            Mutation::Insert(at, extra) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::Cut(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any split of a fixture decodes exactly as the whole fixture does.
    #[test]
    fn every_adapter_decodes_any_split_of_its_fixtures_the_same(
        pick in 0_usize..12,
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
    ) {
        let (decoder, bytes) = corpus().swap_remove(pick);
        let whole = run(decoder, vec![Bytes::from(bytes.clone())], 1 << 20);
        let pieces = run(decoder, split(&bytes, &cuts), 1 << 20);
        prop_assert_eq!(whole, pieces);
    }

    /// Mutated fixtures never panic; whatever comes out ends with at most one error.
    #[test]
    fn every_adapter_survives_mutated_fixtures(
        pick in 0_usize..12,
        mutations in proptest::collection::vec(mutation(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let (decoder, bytes) = corpus().swap_remove(pick);
        let mutated = apply(bytes, &mutations);
        let out = run(decoder, split(&mutated, &cuts), 1 << 20);
        let errors = out.iter().filter(|e| e.starts_with("error")).count();
        prop_assert!(errors <= 1);
        if errors == 1 {
            prop_assert!(out.last().is_some_and(|e| e.starts_with("error")), "the error ends the stream");
        }
    }

    /// Arbitrary bytes through the SSE decoder: no panic, and an event over the bound is a
    /// `TooLarge` error rather than a buffer.
    #[test]
    fn the_sse_decoder_takes_arbitrary_bytes(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        bound in 16_usize..512,
    ) {
        let out = run(Decoder::ChatCompletions, split(&body, &cuts), bound);
        prop_assert!(out.iter().filter(|e| e.starts_with("error")).count() <= 1);
    }
}

#[test]
fn a_long_line_is_cut_at_the_event_bound_whatever_the_split() {
    let mut body = b"data: ".to_vec();
    body.extend(std::iter::repeat_n(b'x', 10_000));
    for chunk in [1, 7, 4096, 20_000] {
        let pieces: Vec<Bytes> = body.chunks(chunk).map(Bytes::copy_from_slice).collect();
        let out = run(Decoder::ChatCompletions, pieces, 1000);
        assert_eq!(
            out,
            vec![format!("error {}", ProviderErrorKind::TooLarge)],
            "chunks of {chunk}"
        );
    }
}
