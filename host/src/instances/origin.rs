//! Secrets follow their origin: when a change moves a URL the host sends secrets to (the
//! callback URL, `base.url`, a token URL) to another origin (scheme, host, port), the
//! secrets that went to the old origin must be given again in the same change, and the
//! vendor credentials the host obtained there are dropped. Otherwise whoever may change
//! the instance, without seeing its secrets (they are masked), could send them to a server
//! of their choosing.

use runtime::types::ConnectorInfo;

use super::settings::{
    BASIC_PASSWORD, CALLBACK_HEADERS, CALLBACK_URL, MASK, get, is_secret, is_url_key,
};

/// Where a change moves the instance's URLs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Moves {
    /// The callback URL's origin changes.
    pub callback: bool,
    /// The vendor URL keys whose origin changes (`base.url`, `oauth.token.url`, …).
    pub vendor: Vec<String>,
}

impl Moves {
    /// True when no origin changes.
    pub fn is_empty(&self) -> bool {
        !self.callback && self.vendor.is_empty()
    }
}

/// The `scheme://host:port` of a URL (default ports made explicit), or the trimmed value
/// when it is not a URL.
pub fn origin(value: &str) -> String {
    match url::Url::parse(value.trim()) {
        Ok(u) if u.has_host() => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or(0)
        ),
        _ => value.trim().to_string(),
    }
}

/// True for a key whose URL the host connects to with the connector's secrets: a URL key
/// other than the callback URL and `oauth.callback.url` (the OAuth redirect, which the
/// vendor, not the host, calls).
fn is_vendor_url_key(key: &str) -> bool {
    is_url_key(key) && key != CALLBACK_URL && key != "oauth.callback.url"
}

/// The origins that change from `before` to `after`. A URL key set where it was unset, or
/// unset where it was set, is a move too: a connector falls back to a default origin (and
/// derives others, such as a token URL, from it) when a key is unset.
pub fn moves(before: &[(String, String)], after: &[(String, String)]) -> Moves {
    let changed = |key: &str| get(before, key).map(origin) != get(after, key).map(origin);
    let mut vendor: Vec<String> = before
        .iter()
        .chain(after)
        .map(|(k, _)| k)
        .filter(|k| is_vendor_url_key(k) && changed(k))
        .cloned()
        .collect();
    vendor.sort();
    vendor.dedup();
    Moves {
        callback: changed(CALLBACK_URL),
        vendor,
    }
}

/// The fingerprint of where a configuration's vendor calls go: each vendor URL key set,
/// with its origin, in key order. Vendor credentials carry the fingerprint they were
/// obtained under, and are sent only while the instance's is the same.
pub fn vendor_fingerprint(config: &[(String, String)]) -> String {
    let mut keys: Vec<&str> = config
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| is_vendor_url_key(k) && get(config, k).is_some())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .map(|k| format!("{k}={}", origin(get(config, k).unwrap_or_default())))
        .collect::<Vec<_>>()
        .join(";")
}

/// The stored secrets that `moves` would send to a new origin and that the change does
/// not give again (`given`: the keys the change sets, masked values not counted), in
/// configuration order.
pub fn secrets_to_give_again(
    info: &ConnectorInfo,
    before: &[(String, String)],
    moves: &Moves,
    given: &[(String, String)],
) -> Vec<String> {
    let is_given = |key: &str| {
        given
            .iter()
            .any(|(k, v)| k == key && !v.trim().is_empty() && v.trim() != MASK)
    };
    let callback_secret = |key: &str| key == BASIC_PASSWORD || key == CALLBACK_HEADERS;
    let vendor_secret = |key: &str| !key.starts_with("event.notification.") && is_secret(info, key);
    let mut missing: Vec<String> = before
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| get(before, k).is_some())
        .filter(|k| {
            (moves.callback && callback_secret(k)) || (!moves.vendor.is_empty() && vendor_secret(k))
        })
        .filter(|k| !is_given(k))
        .map(str::to_string)
        .collect();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::test_pairs;
    use runtime::types::{ConfigKey, Modes, ValueType};

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            key: "v".into(),
            display_name: "V".into(),
            hub: "crm".into(),
            modes: Modes::POLLING,
            config_keys: vec![ConfigKey {
                key: "api.key".into(),
                description: String::new(),
                required: true,
                value_type: ValueType::Secret,
            }],
            poll_resources: vec![],
            instance_finder: None,
        }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("https://a.example/x"),
            origin("https://a.example:443/y?z")
        );
        assert_ne!(origin("https://a.example/"), origin("http://a.example/"));
        assert_ne!(origin("https://a.example/"), origin("https://b.example/"));
        assert_ne!(origin("http://127.0.0.1:1/"), origin("http://127.0.0.1:2/"));
        assert_ne!(
            origin("https://u:p@a.example/"),
            origin("https://a.example.evil/")
        );
    }

    #[test]
    fn a_new_origin_needs_the_secrets_sent_to_the_old_one() {
        let before = test_pairs(&[
            ("base.url", "https://api.vendor.example/v1"),
            ("api.key", "k-123"),
            ("user.password", "pw"),
            (
                "event.notification.callback.url",
                "https://hooks.me.example/in",
            ),
            ("event.notification.basic.password", "bp"),
            ("event.notification.signature.key", "sk"),
        ]);
        // A path change on the same origin needs nothing.
        let mut after = before.clone();
        after[0].1 = "https://api.vendor.example/v2".into();
        let m = moves(&before, &after);
        assert!(m.is_empty());
        assert!(secrets_to_give_again(&info(), &before, &m, &[]).is_empty());

        // Another vendor origin: the connector's secrets, not the host's.
        after[0].1 = "https://evil.example/v1".into();
        let m = moves(&before, &after);
        assert_eq!(m.vendor, vec!["base.url".to_string()]);
        assert_eq!(
            secrets_to_give_again(&info(), &before, &m, &test_pairs(&[("api.key", MASK)])),
            vec!["api.key", "user.password"]
        );
        assert_eq!(
            secrets_to_give_again(&info(), &before, &m, &test_pairs(&[("api.key", "k-9")])),
            vec!["user.password"]
        );

        // Set where it was unset (the connector's default origin), or unset: a move too.
        let unset: Vec<(String, String)> = before[1..].to_vec();
        assert_eq!(moves(&unset, &after).vendor, vec!["base.url".to_string()]);
        assert_eq!(moves(&before, &unset).vendor, vec!["base.url".to_string()]);
        let mut blank = before.clone();
        blank[0].1 = " ".into();
        assert_eq!(moves(&before, &blank).vendor, vec!["base.url".to_string()]);
        assert_ne!(vendor_fingerprint(&before), vendor_fingerprint(&unset));
        assert_ne!(vendor_fingerprint(&before), vendor_fingerprint(&after));
        let mut same_origin = before.clone();
        same_origin[0].1 = "https://api.vendor.example:443/v9".into();
        assert_eq!(
            vendor_fingerprint(&before),
            vendor_fingerprint(&same_origin)
        );

        // Another callback origin: what the callback received (Basic auth, headers).
        let mut after = before.clone();
        after[3].1 = "https://evil.example/in".into();
        let m = moves(&before, &after);
        assert!(m.callback && m.vendor.is_empty());
        assert_eq!(
            secrets_to_give_again(&info(), &before, &m, &[]),
            vec!["event.notification.basic.password"]
        );
    }
}
