//! `cargo run --release -p fuzz -- <target|all> --inputs N [--seed S]`: a campaign per
//! target from its corpus (`fuzz/corpus/<target>/`); `--replay FILE` runs one input.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fuzz::driver::{Config, campaign, read_corpus, run_one};

/// Runs fuzz campaigns.
#[derive(Parser)]
#[command(name = "fuzz")]
struct Args {
    /// `webhook`, `dates`, `instance`, `authorization` or `all`.
    target: String,
    /// Inputs per target.
    #[arg(long, default_value_t = 100_000)]
    inputs: u64,
    /// The PRNG seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Runs this one input instead of a campaign.
    #[arg(long)]
    replay: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let names: Vec<&str> = if args.target == "all" {
        fuzz::TARGETS.to_vec()
    } else {
        vec![args.target.as_str()]
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    for name in names {
        let Some(target) = fuzz::target(name) else {
            eprintln!(
                "unknown target `{name}`; targets: {}",
                fuzz::TARGETS.join(", ")
            );
            return ExitCode::from(2);
        };
        if let Some(path) = &args.replay {
            let input = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            return match run_one(target.as_ref(), &input) {
                Ok(_) => {
                    println!("{name}: no crash");
                    ExitCode::SUCCESS
                }
                Err(m) => {
                    println!("{name}: crash: {m}");
                    ExitCode::FAILURE
                }
            };
        }
        let seeds = match read_corpus(&fuzz::corpus_dir(name)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot read the corpus of {name}: {e}");
                return ExitCode::from(2);
            }
        };
        let config = Config {
            inputs: args.inputs,
            seed,
            crash_dir: fuzz::crash_dir(),
            progress: Some(Duration::from_secs(30)),
        };
        eprintln!("{name}: {} inputs, seed {seed}", args.inputs);
        match campaign(target.as_ref(), seeds, &config) {
            Ok(report) => println!("{report}"),
            Err(crash) => {
                println!("{crash}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
