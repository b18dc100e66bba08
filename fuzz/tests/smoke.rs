//! A short run of every target from its committed corpus (what CI runs through
//! `cargo test --workspace`); a campaign is `cargo run --release -p fuzz -- all`.

use fuzz::driver::{Config, campaign, read_corpus};

fn smoke(name: &str, inputs: u64) {
    let target = fuzz::target(name).expect("a target");
    let seeds = read_corpus(&fuzz::corpus_dir(name)).expect("the corpus");
    assert!(!seeds.is_empty(), "the corpus of {name} is empty");
    let config = Config {
        inputs,
        seed: 20,
        crash_dir: fuzz::crash_dir(),
        progress: None,
    };
    match campaign(target.as_ref(), seeds, &config) {
        Ok(report) => {
            assert_eq!(report.inputs, inputs);
            assert!(report.kinds > 1, "{name}: every input had the same outcome");
            eprintln!("{report}");
        }
        Err(crash) => panic!("{crash}"),
    }
}

#[test]
fn webhook() {
    smoke("webhook", 2_000);
}

#[test]
fn dates() {
    smoke("dates", 5_000);
}

#[test]
fn instance() {
    smoke("instance", 2_000);
}

#[test]
fn authorization() {
    smoke("authorization", 5_000);
}
