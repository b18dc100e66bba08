//! `Authorization` parsing: the header value as hyper accepts it, read as `authorize` reads
//! it (`to_str`), then [`host::tenancy::parse_authorization`].

use arbitrary::Unstructured;
use host::tenancy::{Credential, digest, parse_authorization};
use hyper::header::HeaderValue;

use super::pick_or_text;
use crate::{Target, Trace};

/// The target.
pub struct Authorization;

impl Target for Authorization {
    fn name(&self) -> &'static str {
        "authorization"
    }

    fn run(&self, data: &[u8]) -> u64 {
        let mut trace = Trace::default();
        // What reaches `authorize`: a header value hyper accepted, as text when it is ASCII.
        let value = HeaderValue::from_bytes(data).ok();
        let text = value.as_ref().and_then(|v| v.to_str().ok());
        trace.hit(u64::from(value.is_some()) | u64::from(text.is_some()) << 1);
        check(&mut trace, text.unwrap_or(""));
        // And any text at all (the parser must not rely on hyper's checks).
        check(&mut trace, &String::from_utf8_lossy(data));
        trace.finish()
    }

    fn generate(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
        let mut out = String::new();
        for _ in 0..u.int_in_range(1..=4)? {
            out.push_str(&pick_or_text(
                u,
                &["User", "Organization", "Element", "user", "Bearer"],
            )?);
            out.push_str(&pick_or_text(u, &[" ", "\t", "  ", ""])?);
            out.push_str(&pick_or_text(u, &["abc", "", "a b", "x,y", "🦀"])?);
            out.push_str(&pick_or_text(u, &[", ", ",", " , ", ""])?);
        }
        Ok(out.into_bytes())
    }

    fn dictionary(&self) -> &'static [&'static str] {
        &[
            "User ",
            "Organization ",
            "Element ",
            ", ",
            ",",
            " ",
            "\t",
            "\u{a0}",
            "\u{3000}",
        ]
    }
}

/// Parses `value` and checks what the parse promises: a non-empty token, non-empty
/// secrets, none with blanks at either end nor (for the pair) a comma.
fn check(trace: &mut Trace, value: &str) {
    match parse_authorization(value) {
        None => trace.hit(1),
        Some(Credential::Element(token)) => {
            trace.hit(2);
            assert!(!token.is_empty(), "an empty Element token from {value:?}");
            assert_eq!(token.trim(), token, "an untrimmed token from {value:?}");
            assert_eq!(digest(&token).len(), 64);
        }
        Some(Credential::UserOrg { user, org }) => {
            trace.hit(3);
            for s in [&user, &org] {
                assert!(!s.is_empty(), "an empty secret from {value:?}");
                assert_eq!(s.trim(), s, "an untrimmed secret from {value:?}");
                assert!(!s.contains(','), "a secret with a comma from {value:?}");
            }
        }
    }
}
