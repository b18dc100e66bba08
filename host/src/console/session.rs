//! The console's server-side sessions: a random id in an HttpOnly cookie maps to the
//! `Authorization` value the user signed in with and a CSRF token. The value never leaves
//! the host; the page holds only the CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "console_session";

/// How the console's sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session unused this long is dropped.
    pub idle: Duration,
    /// The most sessions alive at once; beyond it the least recently used one is dropped.
    pub max_sessions: usize,
    /// Mark the cookie `Secure` on every answer (a host behind a TLS proxy that does not
    /// send `X-Forwarded-Proto: https`).
    pub secure_cookie: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle: Duration::from_secs(12 * 3600),
            max_sessions: 1024,
            secure_cookie: false,
        }
    }
}

/// One signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The `Authorization` value every API call of this session is made with.
    pub authorization: String,
    /// The token every change must carry in `X-CSRF-Token`.
    pub csrf: String,
    created: Instant,
    last_used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the Authorization value nor the token is ever printed.
        f.debug_struct("Session")
            .field("created", &self.created)
            .field("last_used", &self.last_used)
            .finish_non_exhaustive()
    }
}

/// The live sessions, by id.
pub struct Sessions {
    config: SessionConfig,
    live: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// No session yet.
    pub fn new(config: SessionConfig) -> Self {
        Sessions {
            config,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How sessions are kept.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Starts a session for `authorization`; its id and the session.
    pub fn create(&self, authorization: String) -> (String, Session) {
        let now = Instant::now();
        let id = random_token();
        let session = Session {
            authorization,
            csrf: random_token(),
            created: now,
            last_used: now,
        };
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, s| now.duration_since(s.last_used) < self.config.idle);
        while live.len() >= self.config.max_sessions.max(1) {
            let oldest = live
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => live.remove(&k),
                None => break,
            };
        }
        live.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The session of `id` if it is alive, marked as used now; an expired one is dropped.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut live = self.live.lock().expect("sessions lock");
        let session = live.get_mut(id)?;
        if now.duration_since(session.last_used) >= self.config.idle {
            live.remove(id);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends the session of `id`.
    pub fn remove(&self, id: &str) {
        self.live.lock().expect("sessions lock").remove(id);
    }

    /// How many sessions are alive (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.live.lock().expect("sessions lock").len()
    }

    /// True when no session is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 32 random bytes from the OS, hex-encoded.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex::encode(bytes)
}

/// Compares a token the client sent with the session's in constant time.
pub fn token_matches(sent: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    sent.len() == expected.len() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that stores `id`; `secure` adds `Secure`.
pub fn set_cookie(id: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{secure}",
        max_age.as_secs()
    )
}

/// The `Set-Cookie` value that clears the cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(idle: Duration, max: usize) -> Sessions {
        Sessions::new(SessionConfig {
            idle,
            max_sessions: max,
            secure_cookie: false,
        })
    }

    #[test]
    fn ids_and_tokens_are_random_and_long() {
        let s = sessions(Duration::from_secs(60), 10);
        let (a, sa) = s.create("User a, Organization b".into());
        let (b, sb) = s.create("User a, Organization b".into());
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(s.touch(&a).unwrap().authorization, "User a, Organization b");
        assert!(s.touch("nope").is_none());
    }

    #[test]
    fn an_idle_session_expires() {
        let s = sessions(Duration::ZERO, 10);
        let (id, _) = s.create("x".into());
        assert!(s.touch(&id).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn the_cap_drops_the_least_recently_used() {
        let s = sessions(Duration::from_secs(60), 2);
        let (a, _) = s.create("a".into());
        let (b, _) = s.create("b".into());
        assert!(s.touch(&a).is_some());
        let (c, _) = s.create("c".into());
        assert_eq!(s.len(), 2);
        assert!(s.touch(&b).is_none(), "b was used least recently");
        assert!(s.touch(&a).is_some());
        assert!(s.touch(&c).is_some());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("abcd", "abcd"));
        assert!(!token_matches("abce", "abcd"));
        assert!(!token_matches("abc", "abcd"));
        assert!(!token_matches("", "abcd"));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        assert_eq!(cookie_value("a=1; console_session=xyz; b=2"), Some("xyz"));
        assert_eq!(cookie_value("console_session="), None);
        assert_eq!(cookie_value("other_console_session=1"), None);
        let set = set_cookie("xyz", Duration::from_secs(10), true);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(set.ends_with("; Secure"));
        assert!(!clear_cookie(false).contains("Secure"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let s = sessions(Duration::from_secs(60), 2);
        let (_, session) = s.create("User sekrit, Organization sekrit".into());
        let shown = format!("{session:?}");
        assert!(!shown.contains("sekrit") && !shown.contains(&session.csrf));
    }
}
