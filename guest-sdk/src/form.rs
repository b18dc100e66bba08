//! Query strings and `application/x-www-form-urlencoded` bodies.

/// Encodes pairs as `a=1&b=x%20y` (form encoding, spaces as `%20`).
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&escape(k));
        out.push('=');
        out.push_str(&escape(v));
    }
    out
}

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`).
// By hand: `percent_encoding::utf8_percent_encode` would bring its 768-byte table of
// escapes into the connectors' data image, which the host copies back after every call.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Appends encoded pairs to `url`, with `?` or `&` as needed.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", encode(pairs))
}

/// Parses `a=1&b=x+y` into decoded pairs (`+` is a space).
pub fn parse(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as written.
pub fn unescape(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_reserved_characters() {
        let pairs = [("email", "a+b@x.com"), ("q", "x y&z=1")];
        let encoded = encode(&pairs);
        assert_eq!(encoded, "email=a%2Bb%40x.com&q=x%20y%26z%3D1");
        let parsed = parse(&encoded);
        assert_eq!(parsed[0], ("email".into(), "a+b@x.com".into()));
        assert_eq!(parsed[1], ("q".into(), "x y&z=1".into()));
    }

    #[test]
    fn appends_to_urls_with_or_without_query() {
        assert_eq!(with_query("/a", &[("x", "1")]), "/a?x=1");
        assert_eq!(with_query("/a?y=2", &[("x", "1")]), "/a?y=2&x=1");
        assert_eq!(
            parse("a=%zz&b=1+2"),
            vec![("a".into(), "%zz".into()), ("b".into(), "1 2".into())]
        );
    }

    #[test]
    fn escapes_all_but_unreserved_characters() {
        assert_eq!(escape("aZ0-._~ *+/%é"), "aZ0-._~%20%2A%2B%2F%25%C3%A9");
    }

    #[test]
    fn decodes_plus_as_space_and_keeps_malformed_escapes() {
        assert_eq!(unescape("a%20b+c%2Bd"), "a b c+d");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz%4"), "%zz%4");
        assert_eq!(unescape("%e9"), "\u{fffd}");
        assert_eq!(unescape("%41"), "A");
        assert_eq!(
            parse("&&a&=b&c=%e9=x&"),
            vec![
                ("a".into(), String::new()),
                (String::new(), "b".into()),
                ("c".into(), "\u{fffd}=x".into())
            ]
        );
    }
}
