//! A fuzzer on the stable toolchain: each target reads an input as bytes and must never
//! panic (a panic is a crash); [`driver`] mutates a corpus of seeds, and generates
//! structured inputs through [`arbitrary::Unstructured`], for a number of inputs.
//!
//! Targets: `webhook` (the host's reading of a webhook and the bundled connectors' verify
//! and parse), `dates` (Java patterns, epoch formats, zones and `${…}` templates),
//! `instance` (the body of `POST /instances` and its configuration checks) and
//! `authorization` (the `Authorization` header).

pub mod driver;
pub mod targets;

use std::path::PathBuf;

use arbitrary::Unstructured;

/// A fuzz target.
pub trait Target {
    /// The name, also the corpus directory's.
    fn name(&self) -> &'static str;

    /// Runs one input; a panic is a crash. Returns the outcome's kind, a small hash of the
    /// branches taken (not of the input's text), so that the driver keeps inputs that reach
    /// a new kind.
    fn run(&self, data: &[u8]) -> u64;

    /// An input in this target's format, built from the entropy in `u`.
    fn generate(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>>;

    /// Tokens the mutator inserts (JSON punctuation, header names, pattern letters, …).
    fn dictionary(&self) -> &'static [&'static str];

    /// What the target counted that is not a crash but worth a line in a report (guest
    /// traps, for instance).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The names of every target, in the order `all` runs them.
pub const TARGETS: [&str; 4] = ["webhook", "dates", "instance", "authorization"];

/// The target called `name`.
pub fn target(name: &str) -> Option<Box<dyn Target>> {
    Some(match name {
        "webhook" => Box::new(targets::webhook::Webhook::new()),
        "dates" => Box::new(targets::dates::Dates),
        "instance" => Box::new(targets::instance::InstanceJson::new()),
        "authorization" => Box::new(targets::authorization::Authorization),
        _ => return None,
    })
}

/// The committed corpus of a target: `fuzz/corpus/<name>/`.
pub fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(name)
}

/// Where crashing inputs are written: `fuzz/crashes/` (not committed).
pub fn crash_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crashes")
}

/// Folds the branches an input takes into an outcome kind.
#[derive(Debug, Clone, Copy)]
pub struct Trace(u64);

impl Default for Trace {
    fn default() -> Self {
        Trace(0xcbf2_9ce4_8422_2325)
    }
}

impl Trace {
    /// Records a branch or a small value.
    pub fn hit(&mut self, tag: u64) {
        self.0 = (self.0 ^ tag).wrapping_mul(0x0100_0000_01b3).rotate_left(5);
    }

    /// Records an error's kind: its text up to the first quoted or numeric part (so the
    /// input's own text, which errors quote, does not make every input a new kind).
    pub fn error(&mut self, text: &str) {
        let kind = text
            .split([
                '`', '\'', '"', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
            ])
            .next()
            .unwrap_or("");
        let kind = &kind.as_bytes()[..kind.len().min(24)];
        let mut h: u64 = 0;
        for b in kind {
            h = h.wrapping_mul(31).wrapping_add(u64::from(*b));
        }
        self.hit(h);
    }

    /// The kind.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The input as lines: `n` first lines (each without its `\n`), then the rest. Missing
/// lines are empty.
pub fn split_lines(data: &[u8], n: usize) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 0..n {
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                lines.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                lines.push(rest);
                rest = &[];
            }
        }
    }
    (lines, rest)
}

/// Bytes as text, the way the host reads header values it accepted (`from_utf8_lossy`).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
