//! An instance as the host holds it in memory: the stored record, its event settings
//! parsed once (when it is stored or changed), and the configuration its connector is
//! called with. Webhook intake, polling and delivery read these fields; none of them
//! re-reads the configuration.

use std::ops::Deref;

use store::Instance;

use super::settings::{CALLBACK_URL, CallbackSettings, ENABLED, get, max_in_flight};

/// A stored instance with its parsed settings. Derefs to the stored [`Instance`].
#[derive(Debug)]
pub struct LiveInstance {
    record: Instance,
    /// The event settings, parsed once.
    pub settings: Settings,
    /// The configuration connector calls take: the instance's without the host's own
    /// `event.notification.*` keys (see [`without_host_keys`]).
    pub connector_config: Vec<(String, String)>,
}

/// The event settings every webhook and delivery reads, parsed from a configuration that
/// was checked when it was stored (`settings::event_settings`). What depends on the
/// connector (the vendor type it defaults to, the poll interval and resources) is decided
/// when a poll schedule starts, where the connector is at hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `event.notification.enabled`.
    pub enabled: bool,
    /// The callback URL, trimmed; empty when none is set.
    pub callback_url: String,
    /// Signature key, extra headers and Basic auth of the callbacks.
    pub callback: CallbackSettings,
    /// `event.notification.max.in.flight`: attempts in flight at once (1 when unset).
    pub max_in_flight: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            callback_url: String::new(),
            callback: CallbackSettings::default(),
            max_in_flight: 1,
        }
    }
}

impl Settings {
    /// Reads the event keys of a stored configuration; anything unreadable is left at its
    /// default (a stored configuration was checked, so that happens only to keys a later
    /// host version reads differently).
    pub fn read(config: &[(String, String)]) -> Settings {
        Settings {
            enabled: get(config, ENABLED).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            callback_url: get(config, CALLBACK_URL)
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            callback: CallbackSettings::read(config),
            max_in_flight: max_in_flight(config).unwrap_or(1),
        }
    }
}

impl LiveInstance {
    /// Parses the settings of a stored instance.
    pub fn new(record: Instance) -> LiveInstance {
        let pairs = config_pairs(&record);
        LiveInstance {
            settings: Settings::read(&pairs),
            connector_config: without_host_keys(&pairs),
            record,
        }
    }

    /// The whole configuration as key/value pairs, in stored order.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        config_pairs(&self.record)
    }

    /// True when events are on and the instance is not disabled.
    pub fn events_on(&self) -> bool {
        self.settings.enabled && !self.record.disabled
    }
}

impl Deref for LiveInstance {
    type Target = Instance;

    fn deref(&self) -> &Instance {
        &self.record
    }
}

fn config_pairs(i: &Instance) -> Vec<(String, String)> {
    i.config
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

/// The configuration a connector is called with: `config` without the host's own
/// `event.notification.*` keys (callback URL and headers, Basic-auth password, signature
/// key). A connector never needs them, so it can neither log nor send them. For stored
/// instances, read [`LiveInstance::connector_config`].
pub fn without_host_keys(config: &[(String, String)]) -> Vec<(String, String)> {
    config
        .iter()
        .filter(|(k, _)| !k.starts_with("event.notification."))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::test_pairs as pairs;

    #[test]
    fn settings_are_read_once_into_fields() {
        let s = Settings::read(&pairs(&[
            (ENABLED, " TRUE "),
            (CALLBACK_URL, " http://127.0.0.1:9/hook "),
            ("event.notification.signature.key", "k"),
            ("event.notification.callback.headers", r#"{"x-a": "1"}"#),
        ]));
        assert!(s.enabled);
        assert_eq!(s.callback_url, "http://127.0.0.1:9/hook");
        assert_eq!(s.callback.signature_key.as_deref(), Some("k"));
        assert_eq!(s.callback.headers, pairs(&[("x-a", "1")]));
        assert_eq!(Settings::read(&[]), Settings::default());
    }

    #[test]
    fn connectors_never_get_the_hosts_keys() {
        let config = pairs(&[
            ("ecwid.store.id", "1003"),
            ("event.notification.signature.key", "k"),
            ("event.vendor.type", "webhooks"),
        ]);
        assert_eq!(
            without_host_keys(&config),
            pairs(&[
                ("ecwid.store.id", "1003"),
                ("event.vendor.type", "webhooks")
            ])
        );
    }
}
