//! An instance's configuration and the context of a call.

use crate::{Credentials, Error};

/// An instance's configuration: string values by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// A configuration from key/value pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Config {
            entries: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, if present and not blank.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The value of `key`, or an `invalid-config` error naming it.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.non_empty(key)
            .ok_or_else(|| Error::invalid_config(key, "is required"))
    }

    /// The value of `key` with any trailing `/` removed, or `default`. Used for `base.url`.
    pub fn base_url<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.non_empty(key).unwrap_or(default).trim_end_matches('/')
    }

    /// All entries.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

/// What a call runs with: the configuration and the vendor credentials the host keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The instance configuration.
    pub config: Config,
    /// The current vendor credentials, if any.
    pub credentials: Option<Credentials>,
}

impl Context {
    /// A context with a configuration and no credentials.
    pub fn new(config: Config) -> Self {
        Context {
            config,
            credentials: None,
        }
    }

    /// Adds credentials holding `access_token`.
    pub fn with_token(mut self, access_token: &str) -> Self {
        self.credentials = Some(Credentials {
            access_token: access_token.into(),
            refresh_token: None,
            expires_in_secs: None,
        });
        self
    }

    /// The access token, or an `unauthorized` error telling the host to authenticate.
    pub fn access_token(&self) -> Result<&str, Error> {
        self.credentials
            .as_ref()
            .map(|c| c.access_token.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::unauthorized("no access token yet"))
    }
}
