//! What request headers a connector is handed.

/// The hop-by-hop headers of HTTP/1.1 (RFC 9110 §7.6.1, with the legacy `keep-alive` and
/// `proxy-connection`), which describe one connection rather than the request, and
/// `content-length`, which the body's length already says.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// `headers` without the hop-by-hop ones: those of [`HOP_BY_HOP`] and those a `connection`
/// header names. Names compare without regard to case; the order of the rest is kept.
pub fn without_hop_by_hop(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter(|t| !t.is_empty())
        .collect();
    headers
        .into_iter()
        .filter(|(k, _)| {
            !HOP_BY_HOP.iter().any(|h| k.eq_ignore_ascii_case(h))
                && !named.iter().any(|n| k.eq_ignore_ascii_case(n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let given = h(&[
            ("Host", "example.com"),
            ("Connection", "keep-alive, X-Trace"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "12"),
            ("x-trace", "abc"),
            ("Content-Type", "application/json"),
            ("X-Shopify-Hmac-Sha256", "c2ln"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
        ]);
        assert_eq!(
            without_hop_by_hop(given),
            h(&[
                ("Host", "example.com"),
                ("Content-Type", "application/json"),
                ("X-Shopify-Hmac-Sha256", "c2ln"),
            ])
        );
    }
}
