//! The ids of what the store keeps, as types of their own: an organization id cannot be
//! passed where an instance id is wanted, nor a notification id where a token is.
//!
//! Each shows (`Display`) and serializes as the bare value it wraps, so the API's JSON and
//! every message keep the numbers and strings they always had.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An organization's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A connector instance's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub i64);

/// A notification's id (`message.eventId`, a UUID v7).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationId(pub String);

impl InstanceId {
    /// The id as the API writes it in a path (`/instances/{id}`) or a header
    /// (`Element-Instances`): an `i64` in decimal (`i64::from_str`); `None` for anything
    /// else.
    pub fn parse(s: &str) -> Option<InstanceId> {
        s.parse().ok().map(InstanceId)
    }
}

impl NotificationId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for NotificationId {
    fn from(s: String) -> Self {
        NotificationId(s)
    }
}

impl From<&str> for NotificationId {
    fn from(s: &str) -> Self {
        NotificationId(s.to_string())
    }
}

impl AsRef<str> for NotificationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for NotificationId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NotificationId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(OrgId, InstanceId, NotificationId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_serialize_as_their_bare_values() {
        assert_eq!(InstanceId(7).to_string(), "7");
        assert_eq!(OrgId(3).to_string(), "3");
        assert_eq!(
            serde_json::json!({"id": InstanceId(7)}).to_string(),
            r#"{"id":7}"#
        );
        let n = NotificationId::from("0190-ab");
        assert_eq!(serde_json::to_string(&n).unwrap(), r#""0190-ab""#);
        assert_eq!(n.to_string(), "0190-ab");
        assert_eq!(InstanceId::parse("12"), Some(InstanceId(12)));
        assert_eq!(InstanceId::parse("x"), None);
    }
}
