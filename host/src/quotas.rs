//! Quotas per organization: how many instances, how large a configuration, how many polled
//! resources an instance, how often it may poll. One tenant cannot take the host's store,
//! memory or vendor calls from the others. Each limit has a `serve` flag.

use std::time::Duration;

/// The limits every organization gets.
#[derive(Debug, Clone)]
pub struct Quotas {
    /// Instances of one organization (`--max-instances-per-org`).
    pub instances_per_org: usize,
    /// Bytes of one instance's configuration, keys and values (`--max-config-bytes`).
    pub config_bytes: usize,
    /// Polled resources of one instance (`--max-poll-resources`).
    pub poll_resources: usize,
    /// The shortest refresh interval (`--min-poll-interval-ms`).
    pub min_poll_interval: Duration,
}

impl Default for Quotas {
    /// 1,000 instances, 64 KiB of configuration, 50 resources, one poll a minute.
    fn default() -> Self {
        Quotas {
            instances_per_org: 1_000,
            config_bytes: 64 << 10,
            poll_resources: 50,
            min_poll_interval: Duration::from_secs(60),
        }
    }
}

/// A quota an input goes over.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaError {
    /// The organization has as many instances as it may.
    #[error(
        "the organization has {have} instances, its quota (--max-instances-per-org); delete one first"
    )]
    Instances {
        /// How many it has.
        have: usize,
    },
    /// The configuration is too large.
    #[error("`configuration` is {size} bytes, more than the quota of {limit} (--max-config-bytes)")]
    ConfigBytes {
        /// Its size: every key and value.
        size: usize,
        /// The quota.
        limit: usize,
    },
    /// Too many polled resources.
    #[error(
        "`{field}` names {count} resources, more than the quota of {limit} (--max-poll-resources)"
    )]
    Resources {
        /// The key that names them.
        field: String,
        /// How many.
        count: usize,
        /// The quota.
        limit: usize,
    },
    /// The refresh interval is shorter than allowed.
    #[error(
        "`configuration.event.poller.refresh_interval` is {minutes} minutes, shorter than the least allowed, {least} minutes (--min-poll-interval-ms)"
    )]
    Interval {
        /// The interval asked for.
        minutes: f64,
        /// The least allowed, in minutes.
        least: f64,
    },
}

impl QuotaError {
    /// The input field the error is about, if one.
    pub fn field(&self) -> Option<String> {
        match self {
            QuotaError::Instances { .. } => None,
            QuotaError::ConfigBytes { .. } => Some("configuration".into()),
            QuotaError::Resources { field, .. } => Some(field.clone()),
            QuotaError::Interval { .. } => {
                Some("configuration.event.poller.refresh_interval".into())
            }
        }
    }
}

impl Quotas {
    /// Checks that an organization holding `have` instances may create one more.
    pub fn check_instances(&self, have: usize) -> Result<(), QuotaError> {
        if have >= self.instances_per_org {
            return Err(QuotaError::Instances { have });
        }
        Ok(())
    }

    /// Checks the size of a configuration: the bytes of its keys and values.
    pub fn check_config(&self, config: &[(String, String)]) -> Result<(), QuotaError> {
        let size: usize = config.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > self.config_bytes {
            return Err(QuotaError::ConfigBytes {
                size,
                limit: self.config_bytes,
            });
        }
        Ok(())
    }

    /// Checks the number of polled resources, named by `field`.
    pub fn check_resources(&self, field: &str, count: usize) -> Result<(), QuotaError> {
        if count > self.poll_resources {
            return Err(QuotaError::Resources {
                field: field.to_string(),
                count,
                limit: self.poll_resources,
            });
        }
        Ok(())
    }

    /// Checks a refresh interval given in minutes.
    pub fn check_interval(&self, minutes: f64) -> Result<(), QuotaError> {
        let least = self.min_poll_interval.as_secs_f64() / 60.0;
        if minutes < least {
            return Err(QuotaError::Interval { minutes, least });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quota_refuses_one_past_its_limit() {
        let q = Quotas {
            instances_per_org: 2,
            config_bytes: 10,
            poll_resources: 3,
            min_poll_interval: Duration::from_secs(30),
        };
        assert!(q.check_instances(1).is_ok());
        assert_eq!(q.check_instances(2), Err(QuotaError::Instances { have: 2 }));
        let pairs = |v: &str| vec![("k".to_string(), v.to_string())];
        assert!(q.check_config(&pairs("123456789")).is_ok());
        assert!(q.check_config(&pairs("1234567890")).is_err());
        assert!(q.check_resources("f", 3).is_ok());
        assert!(q.check_resources("f", 4).is_err());
        assert!(q.check_interval(0.5).is_ok());
        let e = q.check_interval(0.25).unwrap_err();
        assert_eq!(
            e.field().as_deref(),
            Some("configuration.event.poller.refresh_interval")
        );
        assert!(e.to_string().contains("--min-poll-interval-ms"), "{e}");
    }
}
