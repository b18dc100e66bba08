//! Interleaved A/B of instance-pool settings: the sandboxed parse-webhook call through two
//! runtimes that differ only in their pool settings, alternating batches of calls in one
//! process so that the machine's swings (this VM's memory and kernel paths vary by up to
//! 2x within minutes) hit both sides alike. Prints the median batch time per call of each
//! side and the median of the per-round ratios B/A.
//!
//! `cargo bench -p tests --bench pool_ab` (ROUNDS and BATCH in the environment change the
//! run's length; AFTER_LARGE=1 times each call two calls after a 2 MiB webhook in the same
//! slot instead of back to back). Edit `variant_b` to try another setting, or set
//! COMPONENT_B to a connector file: side B then runs that build of Ecwid with the host's
//! own settings (for A/B of two builds of the connector, such as two stack sizes);
//! COMPONENT_A likewise replaces side A's build, so that the sides can be swapped.

use std::time::Instant;

mod ecwid_webhooks;

use runtime::{Enabled, Limits, LoadedConnector, PoolingAllocationConfig, Runtime};

/// The host binary's allocator, so the numbers are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Side B's change to the host's pool settings, applied to both of its pools (side A
/// keeps them).
fn variant_b(pool: &mut PoolingAllocationConfig) {
    pool.pagemap_scan(Enabled::Auto);
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a
    // quick smoke run.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 2 } else { env("ROUNDS", 60) };
    let batch = if quick { 10 } else { env("BATCH", 500) };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = std::fs::read(
        std::env::var_os("COMPONENT_A").map_or_else(|| tests::guest("ecwid"), Into::into),
    )
    .unwrap();
    let load =
        |runtime: std::sync::Arc<Runtime>| rt.block_on(runtime.load("ecwid.wasm", &bytes)).unwrap();
    let a = load(Runtime::new(Limits::default(), None).unwrap());
    let b = match std::env::var_os("COMPONENT_B") {
        Some(path) => rt
            .block_on(
                Runtime::new(Limits::default(), None)
                    .unwrap()
                    .load("ecwid-b.wasm", &std::fs::read(path).unwrap()),
            )
            .unwrap(),
        None => load(Runtime::with_pool(Limits::default(), None, variant_b).unwrap()),
    };

    let request = ecwid_webhooks::request();
    let ctx = ecwid_webhooks::context();
    let after_large = !quick && env("AFTER_LARGE", 0) == 1;
    let large = ecwid_webhooks::large_request();
    let run = |c: &LoadedConnector| {
        let mut timed = std::time::Duration::ZERO;
        for _ in 0..batch {
            if after_large {
                rt.block_on(c.parse_webhook(&ctx, &large)).unwrap();
                rt.block_on(c.parse_webhook(&ctx, &request)).unwrap();
            }
            let start = Instant::now();
            let events = rt.block_on(c.parse_webhook(&ctx, &request)).unwrap();
            timed += start.elapsed();
            assert_eq!(events.len(), 1);
        }
        timed.as_secs_f64() * 1e6 / batch as f64
    };
    // Warm both sides before measuring.
    run(&a);
    run(&b);
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which side goes first, so neither always follows the other.
        let (x, y) = if round % 2 == 0 {
            let x = run(&a);
            (x, run(&b))
        } else {
            let y = run(&b);
            (run(&a), y)
        };
        ta.push(x);
        tb.push(y);
        ratio.push(y / x);
    }
    let (ma, mb, mr) = (median(&mut ta), median(&mut tb), median(&mut ratio));
    println!(
        "pool A/B, {rounds} rounds of {batch} sandboxed parse-webhook calls{}: \
         A {ma:.2} µs, B {mb:.2} µs per call (medians); B/A {:+.1} %",
        if after_large {
            ", each two calls after a 2 MiB one"
        } else {
            ""
        },
        (mr - 1.0) * 100.0
    );
}
