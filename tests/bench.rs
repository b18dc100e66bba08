//! Small helpers the benchmarks share: settings from the environment, percentiles,
//! `/metrics` values and CPU time from `/proc`.

use std::str::FromStr;
use std::time::Duration;

/// The environment variable `name` parsed, or `default` when unset or unreadable.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0–1) of `sorted`, the nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The value of the unlabelled metric `name` in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What `/proc/<pid>/stat` says of a process's CPU time, in clock ticks (100 a second).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    /// Its own user + system time.
    pub own_ticks: u64,
    /// User + system time of its children that have ended and been waited for.
    pub children_ticks: u64,
    /// Its parent's pid.
    pub ppid: u32,
}

impl ProcStat {
    /// Its own CPU time.
    pub fn own(&self) -> Duration {
        Duration::from_millis(self.own_ticks * 10)
    }
}

/// `/proc/<pid>/stat` of a process (`pid` may be `self`), if it is there.
pub fn proc_stat(pid: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command (which may hold spaces) and its closing parenthesis:
    // state is 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        own_ticks: n(11)? + n(12)?,
        children_ticks: n(13)? + n(14)?,
        ppid: n(1)? as u32,
    })
}
