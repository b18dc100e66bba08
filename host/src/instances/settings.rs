//! An instance's configuration as the user gives it, and the event keys the host reads.
//!
//! Values arrive as JSON values or as strings (`true` or `"true"`, `15` or `"15"`, an object
//! or its JSON text); the host keeps every value as a string, structured ones as JSON text.

use std::borrow::Cow;

use serde_json::{Map, Value};

use runtime::types::{ConnectorInfo, Modes};

/// Enables events on the instance.
pub const ENABLED: &str = "event.notification.enabled";
/// `polling` or `webhooks`.
pub const VENDOR_TYPE: &str = "event.vendor.type";
/// Where notifications go. It may carry secrets (userinfo, a `?token=`): the API shows it
/// through [`mask_url`], deliveries use it as stored.
pub const CALLBACK_URL: &str = "event.notification.callback.url";
/// The HMAC key of the notification signatures.
pub const SIGNATURE_KEY: &str = "event.notification.signature.key";
/// Extra headers on every notification, a JSON object.
pub const CALLBACK_HEADERS: &str = "event.notification.callback.headers";
/// Basic-auth user name on the callback.
pub const BASIC_USERNAME: &str = "event.notification.basic.username";
/// Basic-auth password on the callback.
pub const BASIC_PASSWORD: &str = "event.notification.basic.password";
/// How many of the instance's notifications may be in flight at once (default 1: strict
/// acceptance order; more keeps the order per object id).
pub const MAX_IN_FLIGHT: &str = "event.notification.max.in.flight";
/// The largest [`MAX_IN_FLIGHT`] accepted: the host's cap on attempts in flight across all
/// instances (`delivery::ATTEMPTS_IN_FLIGHT`), so one instance can use all of it and no
/// more; past a few dozen, one URL gains nothing on a host of a few cores.
pub const MAX_IN_FLIGHT_CAP: usize = 256;
/// Minutes between polls.
pub const REFRESH_INTERVAL: &str = "event.poller.refresh_interval";
/// The poll resources, a JSON object.
pub const POLLER_CONFIGURATION: &str = "event.poller.configuration";
/// Legacy resource selection, `contacts|leads`.
pub const POLLER_URLS: &str = "event.poller.urls";

/// The longest poll interval accepted: four weeks, in minutes.
pub const MAX_REFRESH_MINUTES: f64 = 40_320.0;

/// The mask every secret value is shown as.
pub const MASK: &str = "********";

/// A bad input field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, e.g. `configuration.event.notification.callback.url`.
    pub field: String,
    /// Why it is refused.
    pub reason: String,
}

impl FieldError {
    /// An error on `configuration.<key>`.
    pub fn config(key: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: format!("configuration.{key}"),
            reason: reason.into(),
        }
    }

    /// An error on a top-level field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// How events reach the host for an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorType {
    /// The vendor pushes webhooks.
    Webhooks,
    /// The host polls.
    Polling,
}

/// The event keys of an instance, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSettings {
    /// Events on or off.
    pub enabled: bool,
    /// Webhooks or polling.
    pub vendor_type: VendorType,
    /// The callback URL (set whenever `enabled`).
    pub callback_url: Option<String>,
    /// How notifications are sent.
    pub callback: CallbackSettings,
    /// Minutes between polls.
    pub refresh_interval_minutes: Option<f64>,
    /// Attempts of the instance in flight at once ([`MAX_IN_FLIGHT`]).
    pub max_in_flight: usize,
}

/// The value of [`MAX_IN_FLIGHT`] in `config`: 1 when unset, `None` when it is not an
/// integer from 1 to [`MAX_IN_FLIGHT_CAP`].
pub fn max_in_flight(config: &[(String, String)]) -> Option<usize> {
    match get(config, MAX_IN_FLIGHT) {
        None => Some(1),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_IN_FLIGHT_CAP).contains(n)),
    }
}

/// How an instance's notifications are sent: signature key, extra headers, basic auth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackSettings {
    /// The signature key, if set.
    pub signature_key: Option<String>,
    /// Extra callback headers.
    pub headers: Vec<(String, String)>,
    /// Basic auth on the callback.
    pub basic_auth: Option<(String, String)>,
}

impl CallbackSettings {
    /// Reads the callback keys of a configuration that was checked when it was stored;
    /// anything unreadable is left out.
    pub fn read(config: &[(String, String)]) -> Self {
        callback_settings(config, false).unwrap_or_default()
    }
}

/// The headers a callback's configuration may not set: those that frame the request
/// (`Host`, `Content-Length`, the hop-by-hop ones) and the signature headers the host
/// computes. Compared case-insensitively.
pub fn is_reserved_header(name: &str) -> bool {
    const RESERVED: [&str; 16] = [
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "elements-webhook-signature",
        "elements-webhook-id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name.trim()))
}

/// The callback settings of `config`. `checking` a configuration refuses a header the host
/// sets; reading a stored one (checked by an older host, perhaps) skips such a header, so
/// it never costs the instance its signature key or Basic auth.
fn callback_settings(
    config: &[(String, String)],
    checking: bool,
) -> Result<CallbackSettings, FieldError> {
    let headers = match get(config, CALLBACK_HEADERS) {
        None => Vec::new(),
        Some(v) => json_object(CALLBACK_HEADERS, v)?
            .into_iter()
            .filter(|(name, _)| checking || !is_reserved_header(name))
            .map(|(name, value)| {
                let value = value_string(&value).unwrap_or_default();
                let ok = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && hyper::header::HeaderValue::from_str(&value).is_ok();
                if !ok {
                    Err(FieldError::config(
                        &format!("{CALLBACK_HEADERS}.{name}"),
                        "is not a valid HTTP header",
                    ))
                } else if is_reserved_header(&name) {
                    Err(FieldError::config(
                        &format!("{CALLBACK_HEADERS}.{name}"),
                        "is set by the host and cannot be configured",
                    ))
                } else {
                    Ok((name, value))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let basic_auth = match (get(config, BASIC_USERNAME), get(config, BASIC_PASSWORD)) {
        (Some(u), p) => Some((u.to_string(), p.unwrap_or("").to_string())),
        (None, Some(_)) => {
            return Err(FieldError::config(
                BASIC_USERNAME,
                "is required when a basic-auth password is set",
            ));
        }
        (None, None) => None,
    };
    Ok(CallbackSettings {
        signature_key: get(config, SIGNATURE_KEY).map(str::to_string),
        headers,
        basic_auth,
    })
}

/// Turns a `configuration` JSON object into key/value strings, in order. `null` values are
/// left out.
pub fn flatten(config: &Map<String, Value>) -> Vec<(String, String)> {
    config
        .iter()
        .filter_map(|(k, v)| value_string(v).map(|s| (k.clone(), s)))
        .collect()
}

/// A JSON value as the string the host keeps: strings as they are, other values as JSON.
pub fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The last non-blank value of `key`.
pub fn get<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

fn boolean(config: &[(String, String)], key: &str) -> Result<Option<bool>, FieldError> {
    match get(config, key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v == "true" => Ok(Some(true)),
        Some(v) if v == "false" => Ok(Some(false)),
        Some(_) => Err(FieldError::config(key, "must be true or false")),
    }
}

/// Checks an http(s) URL with a host; returns it trimmed.
pub fn check_url(key: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let uri: hyper::Uri = value
        .parse()
        .map_err(|e| FieldError::config(key, format!("is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(FieldError::config(key, "must be an http or https URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(FieldError::config(key, "must name a host"));
    }
    Ok(value.to_string())
}

/// Reads a JSON object given as an object or as its JSON text.
pub fn json_object(key: &str, value: &str) -> Result<Map<String, Value>, FieldError> {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FieldError::config(key, "must be a JSON object")),
        Err(e) => Err(FieldError::config(key, format!("is not valid JSON: {e}"))),
    }
}

/// Checks the poll resources: each an object with a non-empty `url` and `idField`.
fn check_poller_configuration(value: &str) -> Result<(), FieldError> {
    let key = POLLER_CONFIGURATION;
    let resources = json_object(key, value)?;
    if resources.is_empty() {
        return Err(FieldError::config(key, "names no resource"));
    }
    for (name, r) in &resources {
        let Value::Object(r) = r else {
            return Err(FieldError::config(
                &format!("{key}.{name}"),
                "must be an object with url and idField",
            ));
        };
        for field in ["url", "idField"] {
            match r.get(field) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                _ => {
                    return Err(FieldError::config(
                        &format!("{key}.{name}.{field}"),
                        "is required and must be a non-empty string",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Reads and checks the event keys of a configuration for a connector.
pub fn event_settings(
    info: &ConnectorInfo,
    config: &[(String, String)],
) -> Result<EventSettings, FieldError> {
    let enabled = boolean(config, ENABLED)?.unwrap_or(false);
    let signature_key = config.iter().rev().find(|(k, _)| k == SIGNATURE_KEY);
    if signature_key.is_some_and(|(_, v)| v.trim().is_empty()) {
        return Err(FieldError::config(
            SIGNATURE_KEY,
            "must not be empty: an empty key would sign nothing; leave the key out to send unsigned notifications",
        ));
    }
    let vendor_type = match get(config, VENDOR_TYPE).map(|v| v.trim().to_ascii_lowercase()) {
        None if info.modes.contains(Modes::WEBHOOKS) => VendorType::Webhooks,
        None => VendorType::Polling,
        Some(v) if v == "webhooks" || v == "webhook" => VendorType::Webhooks,
        Some(v) if v == "polling" => VendorType::Polling,
        Some(v) => {
            return Err(FieldError::config(
                VENDOR_TYPE,
                format!("`{v}` is neither polling nor webhooks"),
            ));
        }
    };
    let supported = match vendor_type {
        VendorType::Webhooks => info.modes.contains(Modes::WEBHOOKS),
        VendorType::Polling => info.modes.contains(Modes::POLLING),
    };
    if enabled && !supported {
        return Err(FieldError::config(
            VENDOR_TYPE,
            format!(
                "connector `{}` does not support {}; it supports: {}",
                info.key,
                match vendor_type {
                    VendorType::Webhooks => "webhooks",
                    VendorType::Polling => "polling",
                },
                info.mode_names().join(", ")
            ),
        ));
    }
    let callback_url = match get(config, CALLBACK_URL) {
        Some(v) => Some(check_url(CALLBACK_URL, v)?),
        None if enabled => {
            return Err(FieldError::config(
                CALLBACK_URL,
                "is required when events are enabled",
            ));
        }
        None => None,
    };
    let refresh_interval_minutes = match get(config, REFRESH_INTERVAL) {
        None => None,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 && n <= MAX_REFRESH_MINUTES => Some(n),
            _ => {
                return Err(FieldError::config(
                    REFRESH_INTERVAL,
                    format!("must be a positive number of minutes, at most {MAX_REFRESH_MINUTES}"),
                ));
            }
        },
    };
    if let Some(v) = get(config, POLLER_CONFIGURATION) {
        check_poller_configuration(v)?;
    }
    let max_in_flight = max_in_flight(config).ok_or_else(|| {
        FieldError::config(
            MAX_IN_FLIGHT,
            format!("must be an integer from 1 to {MAX_IN_FLIGHT_CAP}"),
        )
    })?;
    Ok(EventSettings {
        enabled,
        vendor_type,
        callback_url,
        callback: callback_settings(config, true)?,
        refresh_interval_minutes,
        max_in_flight,
    })
}

/// True when the value of `key` is a secret for this connector: a key the connector marks
/// secret, the signature key, the basic-auth password, the callback headers (they often
/// carry a token), or a key whose last part says password, secret or token.
pub fn is_secret(info: &ConnectorInfo, key: &str) -> bool {
    if key == SIGNATURE_KEY || key == BASIC_PASSWORD || key == CALLBACK_HEADERS {
        return true;
    }
    if info
        .config_keys
        .iter()
        .any(|k| k.key == key && k.is_secret())
    {
        return true;
    }
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|w| last.contains(w))
}

/// True when the API shows the value of `key` through [`mask_url`]: for the URL keys
/// ([`is_url_key`]), and for any other value that is an http(s) URL.
pub fn is_shown_as_url(key: &str, value: &str) -> bool {
    let v = value.trim_start().as_bytes();
    let starts = |p: &[u8]| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
    is_url_key(key) || starts(b"http://") || starts(b"https://")
}

/// True for the URL keys: the callback URL, and any key whose last part is `url`
/// (`base.url`, `oauth.callback.url`, …).
pub fn is_url_key(key: &str) -> bool {
    key == CALLBACK_URL
        || key
            .rsplit('.')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case("url"))
}

/// True when a URL query parameter named `name` carries a secret. The name is
/// percent-decoded and compared case-insensitively; it is secret when it contains
/// `password`, `passwd`, `secret`, `token`, `key`, `auth`, `signature` or `credential`
/// (`access_token`, `apiKey`, `X-Amz-Signature`, `oauth_consumer_key`, …), or when one of
/// its words (the runs of letters and digits) is `sig`, `pwd` or `pass` (Azure SAS `sig`).
/// The rule errs on the side of masking: a false positive only hides a harmless value.
pub fn is_secret_param(name: &str) -> bool {
    const CONTAINS: [&str; 8] = [
        "password",
        "passwd",
        "secret",
        "token",
        "key",
        "auth",
        "signature",
        "credential",
    ];
    const WORDS: [&str; 3] = ["sig", "pwd", "pass"];
    // Decoded as a form field name (`+` a space) but whole: `form_urlencoded::parse` would
    // also split it on `&` and `=`.
    let name = percent_encoding::percent_decode_str(&name.replace('+', " "))
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    CONTAINS.iter().any(|w| name.contains(w))
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| WORDS.contains(&word))
}

/// A URL as the API shows it, with its secrets masked: the password of the userinfo
/// (`https://user:pass@host/`, the user name is kept), a userinfo that is a user name
/// alone (`https://<token>@host/`, most often a token), and the values of the query
/// parameters whose names look secret (see [`is_secret_param`]) become [`MASK`].
/// Everything else is kept byte for byte: nothing is decoded, normalized or reordered,
/// and the fragment is left alone (it is never sent). A URL with nothing to mask comes
/// back borrowed, unchanged.
///
/// The URL is split by hand, as RFC 3986 does: the fragment from the first `#`, the query
/// from the first `?` before it, the authority between `scheme://` and the next `/`, and
/// the userinfo up to the authority's last `@` (as `http::Uri` reads it).
// By hand because the output must be byte-exact: `url` re-serializes (`http://u:p@h` comes
// back as `http://u:p@h/`), and `http::Uri` drops the fragment and refuses spaces and non-URLs.
pub fn mask_url(url: &str) -> Cow<'_, str> {
    let (rest, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let (rest, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut changed = false;
    let mut out = String::with_capacity(url.len() + MASK.len());
    match rest.find("://").filter(|&i| !rest[..i].contains('/')) {
        Some(i) => {
            let (scheme, after) = rest.split_at(i + 3);
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            out.push_str(scheme);
            match authority.rfind('@') {
                Some(at) => {
                    let (userinfo, host) = authority.split_at(at);
                    match userinfo.split_once(':') {
                        Some((user, password)) if !password.is_empty() => {
                            changed = true;
                            out.push_str(user);
                            out.push(':');
                            out.push_str(MASK);
                        }
                        // A user with no password is most often a token
                        // (`https://<token>@host/`): masked whole.
                        None if !userinfo.is_empty() => {
                            changed = true;
                            out.push_str(MASK);
                        }
                        _ => out.push_str(userinfo),
                    }
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(rest),
    }
    if let Some(query) = query {
        out.push('?');
        for (n, pair) in query.split('&').enumerate() {
            if n > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                    changed = true;
                    out.push_str(name);
                    out.push('=');
                    out.push_str(MASK);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out.push_str(fragment);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instances::test_pairs as cfg;
    use runtime::types::{ConfigKey, ValueType};

    fn info(modes: Modes) -> ConnectorInfo {
        ConnectorInfo {
            key: "shop".into(),
            display_name: "Shop".into(),
            hub: "ecommerce".into(),
            modes,
            config_keys: vec![ConfigKey {
                key: "shop.key".into(),
                description: String::new(),
                value_type: ValueType::Secret,
                required: false,
            }],
            poll_resources: vec![],
            instance_finder: None,
        }
    }

    #[test]
    fn a_stored_reserved_callback_header_is_skipped_not_the_whole_callback() {
        let stored = cfg(&[
            (CALLBACK_HEADERS, r#"{"Host": "evil.example", "x-a": "1"}"#),
            (SIGNATURE_KEY, "k"),
        ]);
        let read = CallbackSettings::read(&stored);
        assert_eq!(read.signature_key.as_deref(), Some("k"));
        assert_eq!(read.headers, cfg(&[("x-a", "1")]));
        assert!(callback_settings(&stored, true).is_err());
        for name in ["HOST", " te ", "Webhook-Signature", "proxy-connection"] {
            assert!(is_reserved_header(name), "{name}");
        }
        for name in ["x-host", "authorization", "content-type"] {
            assert!(!is_reserved_header(name), "{name}");
        }
    }

    #[test]
    fn flattens_json_values_to_strings() {
        let v: Value = serde_json::json!({"a": true, "b": 15, "c": "x", "d": {"e": 1}, "f": null});
        assert_eq!(
            flatten(v.as_object().unwrap()),
            cfg(&[("a", "true"), ("b", "15"), ("c", "x"), ("d", r#"{"e":1}"#)])
        );
    }

    #[test]
    fn an_empty_signature_key_is_refused() {
        for blank in ["", "   "] {
            let err = event_settings(&info(Modes::WEBHOOKS), &cfg(&[(SIGNATURE_KEY, blank)]))
                .unwrap_err();
            assert_eq!(err.field, format!("configuration.{SIGNATURE_KEY}"));
        }
        event_settings(&info(Modes::WEBHOOKS), &cfg(&[(SIGNATURE_KEY, "k")])).unwrap();
    }

    #[test]
    fn enabled_events_need_a_callback_url() {
        let err = event_settings(&info(Modes::WEBHOOKS), &cfg(&[(ENABLED, "true")])).unwrap_err();
        assert_eq!(err.field, "configuration.event.notification.callback.url");
        let err = event_settings(
            &info(Modes::WEBHOOKS),
            &cfg(&[(ENABLED, "true"), (CALLBACK_URL, "ftp://x")]),
        )
        .unwrap_err();
        assert!(err.reason.contains("http"), "{err:?}");
    }

    #[test]
    fn the_vendor_type_must_be_supported() {
        let err = event_settings(
            &info(Modes::WEBHOOKS),
            &cfg(&[
                (ENABLED, "true"),
                (CALLBACK_URL, "http://a"),
                (VENDOR_TYPE, "polling"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.field, "configuration.event.vendor.type");
        let s = event_settings(
            &info(Modes::WEBHOOKS),
            &cfg(&[(ENABLED, "true"), (CALLBACK_URL, "http://a")]),
        )
        .unwrap();
        assert_eq!(s.vendor_type, VendorType::Webhooks);
    }

    #[test]
    fn refresh_interval_and_poller_configuration_are_checked() {
        let base = [
            (ENABLED, "true"),
            (CALLBACK_URL, "http://a"),
            (VENDOR_TYPE, "polling"),
        ];
        let mut c = cfg(&base);
        c.push((REFRESH_INTERVAL.into(), "-1".into()));
        let err = event_settings(&info(Modes::POLLING), &c).unwrap_err();
        assert_eq!(err.field, "configuration.event.poller.refresh_interval");
        let mut c = cfg(&base);
        c.push((
            POLLER_CONFIGURATION.into(),
            r#"{"contacts":{"url":"/x"}}"#.into(),
        ));
        let err = event_settings(&info(Modes::POLLING), &c).unwrap_err();
        assert_eq!(
            err.field,
            "configuration.event.poller.configuration.contacts.idField"
        );
        let mut c = cfg(&base);
        c.push((REFRESH_INTERVAL.into(), "0.05".into()));
        let s = event_settings(&info(Modes::POLLING), &c).unwrap();
        assert_eq!(s.refresh_interval_minutes, Some(0.05));
    }

    #[test]
    fn secrets_are_recognised() {
        let i = info(Modes::WEBHOOKS);
        assert!(is_secret(&i, "shop.key"));
        assert!(is_secret(&i, SIGNATURE_KEY));
        assert!(is_secret(&i, "oauth.api.secret"));
        assert!(is_secret(&i, "password"));
        assert!(!is_secret(&i, CALLBACK_URL));
        assert!(!is_secret(&i, "ecwid.store.id"));
    }

    #[test]
    fn mask_url_hides_the_userinfo_password_and_keeps_the_user() {
        assert_eq!(
            mask_url("https://user:s3cr3t@hooks.example.com:8443/in?x=1#top"),
            "https://user:********@hooks.example.com:8443/in?x=1#top"
        );
        assert_eq!(mask_url("http://u:p@h"), "http://u:********@h");
        // The userinfo ends at the authority's last `@`, as `http::Uri` reads it.
        assert_eq!(
            mask_url("http://me:p@ss@host/a@b"),
            "http://me:********@host/a@b"
        );
        // A password with escapes is masked whole; the user name is kept as written.
        assert_eq!(
            mask_url("https://us%40er:p%3Ass%2F@host/"),
            "https://us%40er:********@host/"
        );
        // A user alone is most often a token: masked whole.
        assert_eq!(
            mask_url("https://ghp_t0k3n@hooks.example.com/p"),
            "https://********@hooks.example.com/p"
        );
        // An empty password, or empty userinfo: nothing to mask.
        for url in ["https://user:@host/p", "https://@host/"] {
            assert!(
                matches!(mask_url(url), Cow::Borrowed(u) if u == url),
                "{url}"
            );
        }
    }

    #[test]
    fn mask_url_hides_secret_query_values_and_keeps_the_rest() {
        assert_eq!(
            mask_url("https://h/cb?token=t0k3n&page=2&api_key=k&Signature=abc&plain"),
            "https://h/cb?token=********&page=2&api_key=********&Signature=********&plain"
        );
        assert_eq!(
            mask_url("https://h/?a=1&&AccessToken=x%20y%26z&sig=s&author=bob&b="),
            "https://h/?a=1&&AccessToken=********&sig=********&author=********&b="
        );
        // Names are compared percent-decoded; the name itself is kept as written.
        assert_eq!(
            mask_url("https://h/?%74oken=abc&pass+word=x&client%5Fsecret=y"),
            "https://h/?%74oken=********&pass+word=********&client%5Fsecret=********"
        );
        // An empty secret, or a secret name without a value, is kept.
        for url in [
            "https://h/?token=",
            "https://h/?token",
            "https://h/?tok=1&id=2",
        ] {
            assert!(
                matches!(mask_url(url), Cow::Borrowed(u) if u == url),
                "{url}"
            );
        }
        // Both at once; the path and the host are untouched even when they look secret.
        assert_eq!(
            mask_url("https://bot:pw@token.example/secret/key?password=p&q=%E2%9C%93"),
            "https://bot:********@token.example/secret/key?password=********&q=%E2%9C%93"
        );
    }

    #[test]
    fn mask_url_leaves_the_fragment_and_clean_urls_alone() {
        // A `?` or `@` after the `#` is the fragment's, and the fragment is never sent.
        assert_eq!(
            mask_url("https://h/p?token=a#frag?token=b"),
            "https://h/p?token=********#frag?token=b"
        );
        for url in [
            "https://hooks.example.com/in",
            "http://127.0.0.1:9000/hook?x=1&y=%20z#token=frag",
            "https://h/p#user:pw@x",
            "https://h/a%40b:c@d",
            "  https://h/p?id=1  ",
            "",
            "not a url",
            "https://[::1]:8080/p",
        ] {
            assert!(
                matches!(mask_url(url), Cow::Borrowed(u) if u == url),
                "{url}"
            );
        }
        // Surrounding whitespace is kept.
        assert_eq!(mask_url(" http://u:p@h "), " http://u:********@h ");
    }

    #[test]
    fn masked_urls_are_still_urls() {
        let masked = mask_url("https://user:pw@h.example/cb?token=t&x=1");
        assert_eq!(
            check_url(CALLBACK_URL, &masked).unwrap(),
            "https://user:********@h.example/cb?token=********&x=1"
        );
    }

    #[test]
    fn secret_param_names_are_read_percent_decoded_with_plus_a_space() {
        for name in [
            "%70wd",
            "pass+word",
            "my+sig",
            "%zz+sig",
            "%E9pwd",
            "%4B%45%59",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in ["compass+x", "%zz", "%7", "page%2Bid"] {
            assert!(!is_secret_param(name), "{name}");
        }
    }

    #[test]
    fn secret_param_names_and_url_keys_are_recognised() {
        for name in [
            "token",
            "access_token",
            "apiKey",
            "X-Amz-Signature",
            "sig",
            "sv_sig",
            "PWD",
            "pass",
            "auth",
            "Authorization",
            "client_secret",
            "password",
            "oauth_consumer_key",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in ["page", "id", "x", "design", "compass", "store", ""] {
            assert!(!is_secret_param(name), "{name}");
        }
        assert!(is_url_key(CALLBACK_URL));
        assert!(is_url_key("base.url"));
        assert!(is_url_key("oauth.callback.url"));
        assert!(!is_url_key("event.notification.callback.headers"));
        assert!(!is_url_key("event.poller.urls"));
        assert!(is_shown_as_url("vendor.endpoint", " HTTPS://t0k3n@h/"));
        assert!(is_shown_as_url("vendor.endpoint", "http://h/?token=t"));
        assert!(is_shown_as_url("base.url", "not a url"));
        assert!(!is_shown_as_url("event.poller.urls", "contacts|leads"));
        assert!(!is_shown_as_url("vendor.endpoint", "ftp://u:p@h/"));
    }
}
