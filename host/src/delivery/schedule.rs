//! When a failed notification is tried again.

use std::time::Duration;

/// The retry schedule: the delay before each retry, then the dead letter.
///
/// The default follows the original Events Framework: 9 retries, the x-th 4^x seconds after
/// the one before (4 s, 16 s, 64 s, … 72.8 h; about 4 days from the first attempt to the
/// dead letter), each delay spread by ±20 % jitter so that notifications failing together
/// do not retry together.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    /// Delay before retry 1, 2, … ; its length is the number of retries.
    pub delays: Vec<Duration>,
    /// Jitter as a fraction of each delay (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            delays: (1..=9u32)
                .map(|x| Duration::from_secs(4u64.pow(x)))
                .collect(),
            jitter: 0.2,
        }
    }
}

impl RetrySchedule {
    /// A schedule from a comma-separated list of delays in milliseconds, e.g. `50,100,200`.
    pub fn parse_millis(list: &str) -> Result<Self, String> {
        let delays = list
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("`{s}` is not a number of milliseconds"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule {
            delays,
            jitter: 0.2,
        })
    }

    /// The delay after attempt `attempts` (1-based) failed, or `None` when that was the
    /// last one. `seed` spreads the jitter (e.g. a hash of the notification id).
    pub fn after_failure(&self, attempts: u32, seed: u64) -> Option<Duration> {
        let base = *self.delays.get(attempts.checked_sub(1)? as usize)?;
        // A fraction in [-1, 1) from the seed and the attempt, stable for both.
        let mixed = splitmix(seed ^ u64::from(attempts));
        let unit = (mixed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        Some(base.mul_f64((1.0 + self.jitter * unit).max(0.0)))
    }

    /// How many attempts a notification gets in one delivery round.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_nine_retries_of_four_to_the_x_seconds() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 10);
        assert_eq!(s.delays[0], Duration::from_secs(4));
        assert_eq!(s.delays[8], Duration::from_secs(262_144));
        let total: Duration = s.delays.iter().sum();
        assert!(total > Duration::from_secs(72 * 3600), "{total:?}");
    }

    #[test]
    fn jitter_stays_within_its_bounds_and_the_last_attempt_is_final() {
        let s = RetrySchedule::parse_millis("1000, 2000").unwrap();
        for seed in 0..200 {
            let d = s.after_failure(1, seed).unwrap();
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
            let d = s.after_failure(2, seed).unwrap();
            assert!(d >= Duration::from_millis(1600) && d <= Duration::from_millis(2400));
            assert_eq!(s.after_failure(3, seed), None);
        }
        assert!(RetrySchedule::parse_millis("10,x").is_err());
    }
}
