//! The campaign: seeds from the corpus, mutated (bit flips, byte edits, interesting
//! values, dictionary tokens, splices) or generated from random entropy; each input runs
//! under `catch_unwind`, and the first panic stops the campaign with the input written
//! to the crash directory.

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use arbitrary::Unstructured;

use crate::Target;

/// The largest input the mutator makes.
pub const MAX_INPUT: usize = 16 << 10;
/// The most inputs kept in memory besides the seeds (those that reached a new outcome kind).
const MAX_KEPT: usize = 4096;

/// How a campaign runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many inputs to run.
    pub inputs: u64,
    /// The PRNG seed: the same seed, seeds and target give the same inputs.
    pub seed: u64,
    /// Where a crashing input is written.
    pub crash_dir: PathBuf,
    /// Print a progress line this often (`None`: quiet).
    pub progress: Option<Duration>,
}

/// A finished campaign.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Seeds read from the corpus.
    pub seeds: usize,
    /// Inputs kept because they reached a new outcome kind.
    pub kept: usize,
    /// Distinct outcome kinds seen.
    pub kinds: usize,
    /// The target's notes (guest traps, …).
    pub notes: Vec<String>,
}

impl Report {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} inputs in {:.1} s ({:.0}/s), 0 crashes; {} seeds, {} kept, {} outcome kinds",
            self.target,
            self.inputs,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.seeds,
            self.kept,
            self.kinds
        )?;
        for n in &self.notes {
            write!(f, "; {n}")?;
        }
        Ok(())
    }
}

/// A panic in a target.
#[derive(Debug)]
pub struct Crash {
    /// The target.
    pub target: &'static str,
    /// Which input (0-based) crashed.
    pub index: u64,
    /// The panic's message and location.
    pub message: String,
    /// Where the input was written (`None` if it could not be).
    pub path: Option<PathBuf>,
    /// The input.
    pub input: Vec<u8>,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} crashed on input {}: {}",
            self.target, self.index, self.message
        )?;
        match &self.path {
            Some(p) => write!(
                f,
                " (input written to {}; replay: cargo run -p fuzz -- {} --replay {})",
                p.display(),
                self.target,
                p.display()
            ),
            None => write!(f, " (input: {:?})", String::from_utf8_lossy(&self.input)),
        }
    }
}

impl std::error::Error for Crash {}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records each panic's message and location for [`Crash::message`] (the default hook
/// still prints it).
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// Runs one input; `Err` with the panic's message when it panics.
pub fn run_one(target: &dyn Target, input: &[u8]) -> Result<u64, String> {
    install_hook();
    catch_unwind(AssertUnwindSafe(|| target.run(input))).map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// The files of a corpus directory, sorted by name (so campaigns are reproducible).
pub fn read_corpus(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.is_file());
    paths.sort();
    paths.iter().map(std::fs::read).collect()
}

/// Runs `config.inputs` inputs against `target`, starting from `seeds` (each is also run
/// as it is). Returns the first crash.
pub fn campaign(
    target: &dyn Target,
    seeds: Vec<Vec<u8>>,
    config: &Config,
) -> Result<Report, Box<Crash>> {
    let start = Instant::now();
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut mutator = Mutator {
        dictionary: target.dictionary(),
        scratch: Vec::new(),
    };
    let n_seeds = seeds.len();
    let mut pool: Vec<Vec<u8>> = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    let mut kinds: HashSet<u64> = HashSet::new();
    let mut kept = 0usize;
    let mut last_progress = Instant::now();
    let mut entropy = Vec::new();
    for index in 0..config.inputs {
        let input = if (index as usize) < n_seeds {
            pool[index as usize].clone()
        } else if rng.u8(..) < 40 {
            // Structured: the target builds an input from fresh random bytes.
            entropy.clear();
            entropy.extend((0..rng.usize(16..1024)).map(|_| rng.u8(..)));
            let mut u = Unstructured::new(&entropy);
            target.generate(&mut u).unwrap_or_default()
        } else {
            let base = &pool[rng.usize(..pool.len())];
            let other = &pool[rng.usize(..pool.len())];
            mutator.mutate(&mut rng, base, other)
        };
        match run_one(target, &input) {
            Ok(kind) => {
                if kinds.insert(kind) && kept < MAX_KEPT && !input.is_empty() {
                    pool.push(input);
                    kept += 1;
                }
            }
            Err(message) => {
                let path = write_crash(&config.crash_dir, target.name(), &input).ok();
                return Err(Box::new(Crash {
                    target: target.name(),
                    index,
                    message,
                    path,
                    input,
                }));
            }
        }
        if let Some(every) = config.progress
            && last_progress.elapsed() >= every
        {
            last_progress = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{}: {} inputs, {:.0}/s, {} kinds",
                target.name(),
                index + 1,
                (index + 1) as f64 / secs,
                kinds.len()
            );
        }
    }
    Ok(Report {
        target: target.name(),
        inputs: config.inputs,
        elapsed: start.elapsed(),
        seeds: n_seeds,
        kept,
        kinds: kinds.len(),
        notes: target.notes(),
    })
}

fn write_crash(dir: &Path, target: &str, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let path = dir.join(format!("{target}-{h:016x}"));
    std::fs::write(&path, input)?;
    Ok(path)
}

/// Byte-level mutations.
struct Mutator {
    dictionary: &'static [&'static str],
    scratch: Vec<u8>,
}

/// Numbers and texts that break parsers: overflows, signs, exponents, escapes, NULs.
const INTERESTING: &[&str] = &[
    "0",
    "-1",
    "-0",
    "255",
    "65536",
    "2147483647",
    "-2147483648",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "1e999",
    "-1e-999",
    "0.0000001",
    "1.5",
    "NaN",
    "inf",
    "\\u0000",
    "\\ud800",
    "\\uDFFF",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "é",
    "\r\n",
    "%",
    "%00",
    "%zz",
    "+",
    "",
];

impl Mutator {
    fn mutate(&mut self, rng: &mut fastrand::Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        for _ in 0..rng.usize(1..=6) {
            self.one(rng, &mut out, other);
        }
        out.truncate(MAX_INPUT);
        out
    }

    fn one(&mut self, rng: &mut fastrand::Rng, out: &mut Vec<u8>, other: &[u8]) {
        let len = out.len();
        let at = |rng: &mut fastrand::Rng| rng.usize(..=len);
        match rng.u8(..12) {
            // Flip a bit.
            0 if len > 0 => {
                let i = rng.usize(..len);
                out[i] ^= 1 << rng.u8(..8);
            }
            // A random byte.
            1 if len > 0 => {
                let i = rng.usize(..len);
                out[i] = rng.u8(..);
            }
            // Insert random bytes.
            2 => {
                let i = at(rng);
                let n = rng.usize(1..8);
                self.scratch.clear();
                self.scratch.extend((0..n).map(|_| rng.u8(..)));
                out.splice(i..i, self.scratch.iter().copied());
            }
            // Delete a range.
            3 if len > 0 => {
                let i = rng.usize(..len);
                let n = rng.usize(1..=(len - i).min(16));
                out.drain(i..i + n);
            }
            // Duplicate a range (repetition finds quadratic paths and deep nesting).
            4 if len > 0 => {
                let i = rng.usize(..len);
                let n = rng.usize(1..=(len - i).min(64));
                let piece = out[i..i + n].to_vec();
                let most = if rng.bool() { 2 } else { 64 };
                let times = rng.usize(1..=most);
                for _ in 0..times {
                    out.splice(i..i, piece.iter().copied());
                    if out.len() > MAX_INPUT {
                        break;
                    }
                }
            }
            // A dictionary token.
            5 | 6 if !self.dictionary.is_empty() => {
                let i = at(rng);
                let t = self.dictionary[rng.usize(..self.dictionary.len())];
                out.splice(i..i, t.bytes());
            }
            // An interesting value, replacing a run of digits when there is one.
            7 => {
                let t = INTERESTING[rng.usize(..INTERESTING.len())].as_bytes();
                match find_digits(out, rng) {
                    Some((s, e)) => {
                        out.splice(s..e, t.iter().copied());
                    }
                    None => {
                        let i = at(rng);
                        out.splice(i..i, t.iter().copied());
                    }
                }
            }
            // Splice another input in.
            8 | 9 if !other.is_empty() => {
                let s = rng.usize(..other.len());
                let e = rng.usize(s..=other.len());
                let i = at(rng);
                let cut = rng.usize(i..=len);
                out.splice(i..cut, other[s..e].iter().copied());
            }
            // Truncate.
            10 if len > 0 => out.truncate(rng.usize(..len)),
            // Swap two bytes.
            _ if len > 1 => {
                let (a, b) = (rng.usize(..len), rng.usize(..len));
                out.swap(a, b);
            }
            _ => out.push(rng.u8(..)),
        }
    }
}

/// A run of ASCII digits starting at or after a random place.
fn find_digits(data: &[u8], rng: &mut fastrand::Rng) -> Option<(usize, usize)> {
    if data.is_empty() {
        return None;
    }
    let from = rng.usize(..data.len());
    let s = data[from..].iter().position(u8::is_ascii_digit)? + from;
    let e = data[s..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(data.len(), |n| s + n);
    Some((s, e))
}
