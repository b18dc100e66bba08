//! The host's checks of a typed connector's configuration (contract 0.2 on): each value
//! against its key's declared type, and the required keys present.
//!
//! Values are checked twice: as given (a JSON value, so `[1, 2]` is refused as a text key
//! even though its JSON text is a string), and as stored (strings), against the whole
//! configuration after a change, for the types and the required keys.

use serde_json::{Map, Value};

use runtime::types::{ConfigKey, ConnectorInfo, ValueType};

use super::settings::{FieldError, check_url};

/// Checks the values of a `configuration` object as given, each against the type of the
/// key it sets (keys the connector does not declare are the host's or free-form).
pub fn check_given(info: &ConnectorInfo, given: &Map<String, Value>) -> Result<(), FieldError> {
    for (key, value) in given {
        if let Some(k) = declared(info, key) {
            check_value(k, value)?;
        }
    }
    Ok(())
}

/// Checks a whole configuration as stored: every declared key's value against its type,
/// and every required key given a value.
pub fn check_stored(info: &ConnectorInfo, config: &[(String, String)]) -> Result<(), FieldError> {
    for k in &info.config_keys {
        // The last value of a key is the one in effect; a blank one leaves the key unset.
        match config.iter().rev().find(|(key, _)| *key == k.key) {
            Some((_, v)) if !v.trim().is_empty() => check_text(k, v)?,
            _ if k.required => {
                return Err(FieldError::config(&k.key, "is required"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn declared<'a>(info: &'a ConnectorInfo, key: &str) -> Option<&'a ConfigKey> {
    info.config_keys.iter().find(|k| k.key == key)
}

/// A given JSON value against its key's type. `null` and a blank string leave a key unset,
/// which the stored check refuses when the key is required.
fn check_value(k: &ConfigKey, value: &Value) -> Result<(), FieldError> {
    let wrong = |what: &str| {
        Err(FieldError::config(
            &k.key,
            format!(
                "must be {what} (its type is {}), not {}",
                k.value_type.as_str(),
                kind(value)
            ),
        ))
    };
    match (k.value_type, value) {
        (_, Value::Null) => Ok(()),
        (_, Value::String(s)) if s.trim().is_empty() => Ok(()),
        (ValueType::Json, _) => match value {
            Value::String(s) => check_text(k, s),
            _ => Ok(()),
        },
        (ValueType::Boolean, Value::Bool(_)) => Ok(()),
        (ValueType::Boolean, Value::String(s)) => check_text(k, s),
        (ValueType::Boolean, _) => wrong("true or false"),
        (ValueType::Integer, Value::Number(n)) if n.is_i64() => Ok(()),
        (ValueType::Integer, Value::String(s)) => check_text(k, s),
        (ValueType::Integer, _) => wrong("a whole number"),
        (ValueType::Text | ValueType::Url | ValueType::Secret, Value::String(s)) => {
            check_text(k, s)
        }
        (ValueType::Text | ValueType::Url, _) => wrong("a string"),
        (ValueType::Secret, _) => wrong("a non-empty string"),
    }
}

/// A value as text (not blank) against its key's type.
fn check_text(k: &ConfigKey, value: &str) -> Result<(), FieldError> {
    let v = value.trim();
    let bad = |reason: &str| Err(FieldError::config(&k.key, reason.to_string()));
    match k.value_type {
        ValueType::Text | ValueType::Secret => Ok(()),
        ValueType::Boolean if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") => {
            Ok(())
        }
        ValueType::Boolean => bad("must be true or false (its type is boolean)"),
        ValueType::Integer if v.parse::<i64>().is_ok() => Ok(()),
        ValueType::Integer => bad("must be a whole number (its type is integer)"),
        ValueType::Url => check_url(&k.key, v).map(|_| ()),
        ValueType::Json => match serde_json::from_str::<Value>(v) {
            Ok(_) => Ok(()),
            Err(e) => bad(&format!("must be JSON (its type is json): {e}")),
        },
    }
}

/// A JSON value's kind in words, for errors: never the value itself, which may be secret.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::types::Modes;
    use serde_json::json;

    fn info() -> ConnectorInfo {
        let key = |key: &str, value_type, required| ConfigKey {
            key: key.into(),
            description: String::new(),
            value_type,
            required,
        };
        ConnectorInfo {
            key: "shop".into(),
            display_name: "Shop".into(),
            hub: "ecommerce".into(),
            modes: Modes::WEBHOOKS,
            config_keys: vec![
                key("shop.name", ValueType::Text, true),
                key("shop.live", ValueType::Boolean, false),
                key("shop.id", ValueType::Integer, false),
                key("shop.url", ValueType::Url, false),
                key("shop.extra", ValueType::Json, false),
                key("shop.secret", ValueType::Secret, false),
            ],
            poll_resources: vec![],
            instance_finder: None,
        }
    }

    fn given(v: Value) -> Result<(), FieldError> {
        check_given(&info(), v.as_object().unwrap())
    }

    fn field(r: Result<(), FieldError>) -> String {
        r.unwrap_err().field
    }

    #[test]
    fn given_values_of_the_wrong_json_kind_are_refused_naming_the_key() {
        assert_eq!(
            field(given(json!({"shop.name": [1, 2]}))),
            "configuration.shop.name"
        );
        assert_eq!(
            field(given(json!({"shop.name": {"a": 1}}))),
            "configuration.shop.name"
        );
        assert_eq!(
            field(given(json!({"shop.name": -5}))),
            "configuration.shop.name"
        );
        assert_eq!(
            field(given(json!({"shop.live": "yes"}))),
            "configuration.shop.live"
        );
        assert_eq!(
            field(given(json!({"shop.id": 1.5}))),
            "configuration.shop.id"
        );
        assert_eq!(
            field(given(json!({"shop.id": "12a"}))),
            "configuration.shop.id"
        );
        assert_eq!(
            field(given(json!({"shop.url": "ftp://x"}))),
            "configuration.shop.url"
        );
        assert_eq!(
            field(given(json!({"shop.extra": "{nope"}))),
            "configuration.shop.extra"
        );
        assert_eq!(
            field(given(json!({"shop.secret": 42}))),
            "configuration.shop.secret"
        );
        let err = given(json!({"shop.secret": 42})).unwrap_err();
        assert!(!err.reason.contains("42"), "{}", err.reason);
    }

    #[test]
    fn given_values_of_the_right_kind_pass() {
        given(json!({
            "shop.name": "x", "shop.live": true, "shop.id": -5, "shop.url": "https://x.example",
            "shop.extra": {"a": [1]}, "shop.secret": "s3cret", "other.key": [1, 2],
        }))
        .unwrap();
        given(json!({"shop.live": "false", "shop.id": "15", "shop.extra": "[1]"})).unwrap();
    }

    #[test]
    fn stored_configurations_need_their_required_keys_and_values_of_their_types() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            check_stored(&info(), &pairs(&[])).unwrap_err().field,
            "configuration.shop.name"
        );
        assert_eq!(
            check_stored(&info(), &pairs(&[("shop.name", "  ")]))
                .unwrap_err()
                .field,
            "configuration.shop.name"
        );
        assert_eq!(
            check_stored(&info(), &pairs(&[("shop.name", "a"), ("shop.id", "x")]))
                .unwrap_err()
                .field,
            "configuration.shop.id"
        );
        check_stored(&info(), &pairs(&[("shop.name", "a"), ("shop.id", "7")])).unwrap();
        // A blank optional value leaves the key unset.
        check_stored(&info(), &pairs(&[("shop.name", "a"), ("shop.url", "")])).unwrap();
    }
}
