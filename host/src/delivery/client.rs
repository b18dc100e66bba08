//! One delivery attempt: a POST of the exact notification body to the callback URL.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use crate::http::{HttpClient, error_chain};

/// What a callback answered, or why it could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The status code, when an answer came.
    pub status: Option<u16>,
    /// Time to the answer or the failure.
    pub latency: Duration,
    /// Why the attempt failed (`None` on a 2xx).
    pub error: Option<String>,
}

impl Outcome {
    /// True on a 2xx answer.
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// The most of a callback's answer read; the rest is dropped with its connection.
pub const MAX_ANSWER: usize = 64 << 10;

/// A keep-alive HTTP client for callbacks.
#[derive(Clone)]
pub struct CallbackClient {
    client: HttpClient,
    timeout: Duration,
}

/// The parts of one POST.
pub struct Post<'a> {
    /// The callback URL.
    pub url: &'a str,
    /// Headers besides `content-type`.
    pub headers: Vec<(String, String)>,
    /// Basic auth, if configured.
    pub basic_auth: Option<(&'a str, &'a str)>,
    /// The exact body.
    pub body: Bytes,
}

impl CallbackClient {
    /// A client whose attempts time out after `timeout`, connecting where `egress` allows.
    pub fn new(timeout: Duration, egress: crate::egress::Egress) -> Self {
        CallbackClient {
            client: crate::http::client(timeout.min(Duration::from_secs(3)), egress),
            timeout,
        }
    }

    /// Sends one attempt. Never fails: every failure is an [`Outcome`] with an error.
    pub async fn post(&self, post: Post<'_>) -> Outcome {
        let start = Instant::now();
        let fail = |error: String| Outcome {
            status: None,
            latency: start.elapsed(),
            error: Some(error),
        };
        // `https://user:password@host/…`: the credentials go in a Basic authorization header
        // (as curl sends them), not in the request line; explicit Basic-auth keys win.
        let (url, userinfo) = split_userinfo(post.url);
        let mut req = Request::post(url.as_ref())
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("connector-host/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &post.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let basic = post
            .basic_auth
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .or(userinfo);
        if let Some((user, password)) = basic {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req = req.header("authorization", format!("Basic {token}"));
        }
        let req = match req.body(Full::new(post.body)) {
            Ok(r) => r,
            Err(e) => return fail(format!("cannot build the request: {e}")),
        };
        let attempt = async {
            let resp = self.client.request(req).await?;
            let status = resp.status().as_u16();
            // Read (and discard) the answer so the connection can be reused, but no more
            // than `MAX_ANSWER`: an endless answer must not hold the attempt.
            let _ = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Err(_) => fail(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => fail(format!("cannot reach the callback: {}", error_chain(&e))),
            Ok(Ok(status)) => Outcome {
                status: Some(status),
                latency: start.elapsed(),
                error: (!(200..300).contains(&status))
                    .then(|| format!("the callback answered {status}")),
            },
        }
    }
}

/// `url` without its userinfo, and the userinfo's user and password (percent-decoded, `+`
/// kept as it is), when it has one.
fn split_userinfo(url: &str) -> (std::borrow::Cow<'_, str>, Option<(String, String)>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.into(), None);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.into(), None);
    };
    let (user, password) = rest[..at].split_once(':').unwrap_or((&rest[..at], ""));
    let stripped = format!("{scheme}://{}", &rest[at + 1..]);
    (stripped.into(), Some((decode(user), decode(password))))
}

/// `s` with its `%XX` escapes decoded, malformed ones kept; bytes that are not UTF-8 become
/// U+FFFD.
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_split_off_and_decoded() {
        let (url, info) = split_userinfo("https://us%40er:p%3Ass@h.example:8443/cb?x=1#f");
        assert_eq!(url, "https://h.example:8443/cb?x=1#f");
        assert_eq!(info, Some(("us@er".into(), "p:ss".into())));
        let (url, info) = split_userinfo("http://only-user@h/");
        assert_eq!(url, "http://h/");
        assert_eq!(info, Some(("only-user".into(), String::new())));
        // `+` is itself in a userinfo; malformed escapes are kept, non-UTF-8 bytes are U+FFFD.
        let (_, info) = split_userinfo("http://a%20b+c%2Bd:100%25%zz%4%e9%41@h/");
        assert_eq!(info, Some(("a b+c+d".into(), "100%%zz%4\u{fffd}A".into())));
    }

    #[test]
    fn urls_without_userinfo_are_left_alone() {
        for u in [
            "https://h.example/cb",
            "https://h.example/a@b?c=d@e",
            "https://h.example?x=a@b",
            "not a url",
        ] {
            assert_eq!(split_userinfo(u), (u.into(), None), "{u}");
        }
    }
}
