//! Percent-decoding (`%XX`), for form bodies, query strings and URL userinfo.

/// How `+` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// A space, as in form bodies and query strings.
    Space,
    /// Itself, as in the other parts of a URL.
    Literal,
}

/// `s` with its `%XX` escapes decoded (malformed ones kept as they are) and `+` read as
/// `plus` says; bytes that are not UTF-8 become U+FFFD.
pub fn decode(s: &str, plus: Plus) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus == Plus::Space => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push((hex(bytes[i + 1]) << 4) | hex(bytes[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_plus_reads_as_asked() {
        assert_eq!(decode("a%20b+c%2Bd", Plus::Space), "a b c+d");
        assert_eq!(decode("a%20b+c%2Bd", Plus::Literal), "a b+c+d");
        assert_eq!(decode("us%40er:p%3Ass", Plus::Literal), "us@er:p:ss");
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(decode("100%", Plus::Space), "100%");
        assert_eq!(decode("%zz%4", Plus::Space), "%zz%4");
        assert_eq!(decode("%e9", Plus::Space), "\u{fffd}");
        assert_eq!(decode("%41", Plus::Space), "A");
    }
}
