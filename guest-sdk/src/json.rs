//! Reading JSON by dotted paths such as `data.orderId` or `_info.lastUpdated`.

use serde_json::Value;

/// The deepest nesting of arrays and objects that [`from_slice`] reads.
///
/// Reading a [`Value`] takes shadow stack for every level (about 0.4 KiB in a release
/// build), and the SDK's connectors run on a 16 KiB stack (see the guide), which would
/// overflow, and trap, at about 40 levels. Vendor answers nest a handful of levels.
pub const MAX_DEPTH: usize = 32;

/// `bytes` read as a JSON [`Value`], like `serde_json::from_slice`, but refused with an
/// error (never a stack overflow) when arrays and objects nest deeper than [`MAX_DEPTH`].
///
/// Typed reads through `#[derive(Deserialize)]` need no such guard: serde_json skips the
/// fields they do not name without recursion, however deep.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    if let Some(depth) = too_deep(bytes) {
        return Err(serde::de::Error::custom(format!(
            "arrays and objects nest deeper than {MAX_DEPTH} levels (at least {depth})"
        )));
    }
    serde_json::from_slice(bytes)
}

/// The depth past [`MAX_DEPTH`] that `bytes` reach, if they do: brackets are counted
/// outside strings only. Malformed JSON is left for the parser to report.
fn too_deep(bytes: &[u8]) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The value at a dotted `path` (`a.b.0.c`; numeric segments index arrays).
pub fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The value at `path` as a string: strings as they are, numbers and booleans printed;
/// `None` for null, missing, objects and arrays.
pub fn string_at(value: &Value, path: &str) -> Option<String> {
    match at(value, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The value at `path` as an integer, from a JSON number or a numeric string.
pub fn i64_at(value: &Value, path: &str) -> Option<i64> {
    match at(value, path)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The records at `path`: an array's items, a single object as one record (as Pardot
/// answers when exactly one record matches), nothing for null or missing.
pub fn records_at<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    match at(value, path) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    }
}

/// A JSON scalar read as text: a string as it is, a number or a boolean printed.
///
/// For typed parses with serde (`#[derive(Deserialize)]`) of vendor bodies whose ids and
/// timestamps come as numbers from one vendor and as strings from another; much faster
/// than going through a [`Value`]. `Option<Text>` reads `null` and a missing key as `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl Text {
    /// The text as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.trim().parse().ok()
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_reach_nested_values() {
        let v = json!({"data": {"orderId": "XJ12H", "n": 5, "items": [{"id": 7}]}});
        assert_eq!(string_at(&v, "data.orderId").as_deref(), Some("XJ12H"));
        assert_eq!(string_at(&v, "data.n").as_deref(), Some("5"));
        assert_eq!(i64_at(&v, "data.items.0.id"), Some(7));
        assert_eq!(at(&v, "data.missing"), None);
    }

    #[test]
    fn text_reads_strings_numbers_and_booleans() {
        #[derive(serde::Deserialize)]
        struct T {
            a: Text,
            b: Text,
            c: Option<Text>,
            d: Option<Text>,
            e: Text,
        }
        let t: T = serde_json::from_str(r#"{"a":"x","b":103878161,"c":null,"e":true}"#).unwrap();
        assert_eq!(
            (t.a.0.as_str(), t.b.0.as_str(), t.e.0.as_str()),
            ("x", "103878161", "true")
        );
        assert_eq!((t.c, t.d), (None, None));
        assert_eq!(t.b.as_i64(), Some(103878161));
        assert!(serde_json::from_str::<Text>("{}").is_err());
    }

    #[test]
    fn values_nest_up_to_the_limit_and_no_deeper() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(from_slice(nested(MAX_DEPTH).as_bytes()).is_ok());
        let e = from_slice(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("deeper than 32 levels"), "{e}");
        // Brackets inside strings, escaped quotes included, do not count.
        let inside = format!(r#"{{"a":"\"{}","b":[1]}}"#, "[".repeat(100));
        assert_eq!(from_slice(inside.as_bytes()).unwrap()["b"][0], 1);
        // Malformed JSON is still the parser's error.
        assert!(from_slice(b"{\"a\":").is_err());
    }

    #[test]
    fn records_accept_array_object_or_nothing() {
        let v = json!({"many": [{"id": 1}, {"id": 2}], "one": {"id": 3}, "none": null});
        assert_eq!(records_at(&v, "many").len(), 2);
        assert_eq!(records_at(&v, "one"), vec![&json!({"id": 3})]);
        assert!(records_at(&v, "none").is_empty());
        assert!(records_at(&v, "absent").is_empty());
    }
}
