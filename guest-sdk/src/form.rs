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
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as written.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
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
}
