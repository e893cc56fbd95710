//! `chatd-bench`: chatd's benchmarks.
//!
//! Every scenario measures chatd **and a raw baseline doing the same work in the same run**,
//! and prints one JSON object per measurement:
//!
//! ```text
//! {"scenario","metric","unit","value","baseline","ratio","target","pass"}
//! ```
//!
//! The ratio is the figure that matters; absolute numbers depend on the machine.
//!
//! Run: `cargo run --release -p chatd-bench -- <scenario|all> [--quick]`
//! (see `BENCHMARKS.md` for the latest numbers).

mod memory_store;
mod report;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// chatd benchmarks: each measurement next to a raw baseline from the same run.
#[derive(Debug, Parser)]
#[command(name = "chatd-bench", version)]
struct Args {
    /// The scenario to run.
    scenario: Scenario,
    /// Smaller sizes, for a smoke run (seconds instead of minutes).
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Every scenario.
    All,
    /// `InMemoryChatStore` turn cycles vs a plain `Mutex<HashMap>`.
    MemoryStore,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("chatd-bench: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports = Vec::new();
    runtime.block_on(async {
        if matches!(args.scenario, Scenario::All | Scenario::MemoryStore) {
            reports.extend(memory_store::run(args.quick).await);
        }
    });
    for report in &reports {
        println!("{}", report.to_json());
    }
    ExitCode::SUCCESS
}
