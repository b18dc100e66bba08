//! Reading JSON by dotted paths such as `data.orderId` or `_info.lastUpdated`.

use serde_json::Value;

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
    fn records_accept_array_object_or_nothing() {
        let v = json!({"many": [{"id": 1}, {"id": 2}], "one": {"id": 3}, "none": null});
        assert_eq!(records_at(&v, "many").len(), 2);
        assert_eq!(records_at(&v, "one"), vec![&json!({"id": 3})]);
        assert!(records_at(&v, "none").is_empty());
        assert!(records_at(&v, "absent").is_empty());
    }
}
