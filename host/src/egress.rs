//! The outbound guard: every connection the host opens (callbacks, vendor calls, OAuth)
//! goes through [`GuardedConnector`], which resolves the name itself, checks every
//! resolved address with [`Egress::check`] and connects only to an address that passed.
//! The check is on the address actually connected to, so a name that resolves to a public
//! address when a URL is stored and to a private one later (DNS rebinding) is refused at
//! connect time.
//!
//! Refused by default ([`classify`]): loopback, unspecified, RFC 1918, link-local (with
//! the cloud metadata address 169.254.169.254), CGNAT, unique-local, multicast, broadcast
//! and reserved ranges, and the IPv6 forms that embed such an IPv4 address (mapped,
//! compatible, NAT64, 6to4). An operator opens ranges with `--allow-network CIDR`.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A network in CIDR form, as `--allow-network` takes it.
pub use ipnet::IpNet;

/// A range of addresses the host does not connect to unless allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `169.254.0.0/16` (cloud metadata at 169.254.169.254), `fe80::/10`.
    LinkLocal,
    /// RFC 6598 shared address space, `100.64.0.0/10`.
    Cgnat,
    /// `fc00::/7`, and the deprecated site-local `fec0::/10`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `240.0.0.0/4` and `255.255.255.255`; `192.0.0.0/24` (IETF protocol assignments).
    Reserved,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Range::Unspecified => "an unspecified address",
            Range::Loopback => "a loopback address",
            Range::Private => "a private (RFC 1918) address",
            Range::LinkLocal => "a link-local address",
            Range::Cgnat => "a shared (CGNAT) address",
            Range::UniqueLocal => "a unique-local address",
            Range::Multicast => "a multicast address",
            Range::Reserved => "a reserved address",
        })
    }
}

/// The refused range `ip` is in, or `None` for an address the host may connect to.
/// An IPv6 address that embeds an IPv4 one (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) is classified by it.
pub fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        (0, _) => Range::Unspecified,
        (127, _) => Range::Loopback,
        (10, _) | (192, 168) => Range::Private,
        (172, b) if (16..32).contains(&b) => Range::Private,
        (169, 254) => Range::LinkLocal,
        (100, b) if (64..128).contains(&b) => Range::Cgnat,
        (224..=239, _) => Range::Multicast,
        (240..=255, _) => Range::Reserved,
        (192, 0) if c == 0 => Range::Reserved,
        // Benchmarking (RFC 2544) and the deprecated 6to4 relay anycast.
        (198, 18 | 19) => Range::Reserved,
        (192, 88) if c == 99 => Range::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    if ip.is_unspecified() {
        return Some(Range::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Range::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let first = ip.segments()[0];
    Some(match first {
        f if f & 0xfe00 == 0xfc00 => Range::UniqueLocal,
        f if f & 0xffc0 == 0xfe80 => Range::LinkLocal,
        f if f & 0xffc0 == 0xfec0 => Range::UniqueLocal,
        f if f & 0xff00 == 0xff00 => Range::Multicast,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 one carries, in the forms that route to it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated) and
        // ::ffff:0:a.b.c.d (SIIT, translated).
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0, 0, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // 64:ff9b::a.b.c.d, the NAT64 well-known prefix, and 64:ff9b:1::/48, the local-use
        // one (RFC 8215).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        // 2001::/32, Teredo: the client's address is the last 32 bits inverted.
        [0x2001, 0, ..] => Some(Ipv4Addr::from(!u32::from(low))),
        // 2002:aabb:ccdd::/48, 6to4.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The outbound policy: the default refusals and the operator's allow-list.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Arc<Vec<IpNet>>,
}

/// Why the host did not connect to an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ip} is {range}, which the host does not connect to (an operator can allow it with --allow-network)"
)]
pub struct Refused {
    /// The address.
    pub ip: IpAddr,
    /// Its range.
    pub range: Range,
}

impl Egress {
    /// A policy that also allows the networks in `allow`.
    pub fn allowing(allow: Vec<IpNet>) -> Self {
        Egress {
            allow: Arc::new(allow),
        }
    }

    /// The allowed networks.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// `Ok` when the host may connect to `ip`: it is in no refused range, or in an allowed
    /// network (an IPv4-mapped address is matched in both its forms).
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        let canonical = ip.to_canonical();
        if self
            .allow
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(Refused { ip, range })
    }

    /// The refusal of an http(s) URL whose host is a literal address the host would not
    /// connect to (`http://127.1/`, `http://[::1]/`, `http://0x7f000001/` are literals
    /// too); `None` for any other value, names included: those are checked when
    /// connecting.
    pub fn refuses_literal(&self, url: &str) -> Option<Refused> {
        let parsed = url::Url::parse(url.trim()).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        let ip = match parsed.host()? {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(_) => return None,
        };
        self.check(ip).err()
    }
}

/// Why an outbound connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL has no host.
    #[error("the URL has no host")]
    NoHost,
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The cause.
        source: io::Error,
    },
    /// Every address of the host is refused by the guard.
    #[error("refused by the outbound guard: {host} has no address the host connects to: {refused}")]
    Refused {
        /// The host as the URL names it.
        host: String,
        /// The first refusal.
        refused: Refused,
    },
    /// No allowed address accepted a connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
}

/// A connector for hyper's client that resolves names itself and connects only to the
/// addresses [`Egress`] allows.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    egress: Egress,
    connect_timeout: Duration,
}

impl GuardedConnector {
    /// A connector with a per-address connect time-out.
    pub fn new(egress: Egress, connect_timeout: Duration) -> Self {
        GuardedConnector {
            egress,
            connect_timeout,
        }
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(ConnectError::NoHost)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| ConnectError::Resolve {
                    host: host.to_string(),
                    source,
                })?
                .collect(),
        };
        let mut refused = None;
        let mut last = None;
        for addr in addrs {
            if let Err(r) = self.egress.check(addr.ip()) {
                refused.get_or_insert(r);
                continue;
            }
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(source)) => last = Some(ConnectError::Connect { addr, source }),
                Err(_) => {
                    last = Some(ConnectError::Connect {
                        addr,
                        source: io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                    })
                }
            }
        }
        Err(match (last, refused) {
            (Some(e), _) => e,
            (None, Some(refused)) => ConnectError::Refused {
                host: host.to_string(),
                refused,
            },
            (None, None) => ConnectError::Resolve {
                host: host.to_string(),
                source: io::Error::new(io::ErrorKind::NotFound, "no address"),
            },
        })
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_refused_range_is_classified() {
        let cases = [
            ("0.0.0.0", Range::Unspecified),
            ("0.1.2.3", Range::Unspecified),
            ("::", Range::Unspecified),
            ("127.0.0.1", Range::Loopback),
            ("127.255.255.254", Range::Loopback),
            ("::1", Range::Loopback),
            ("10.0.0.1", Range::Private),
            ("10.255.255.255", Range::Private),
            ("172.16.0.1", Range::Private),
            ("172.31.255.255", Range::Private),
            ("192.168.1.1", Range::Private),
            ("169.254.169.254", Range::LinkLocal),
            ("169.254.0.1", Range::LinkLocal),
            ("fe80::1", Range::LinkLocal),
            ("febf::1", Range::LinkLocal),
            ("100.64.0.1", Range::Cgnat),
            ("100.127.255.255", Range::Cgnat),
            ("fc00::1", Range::UniqueLocal),
            ("fd12:3456::1", Range::UniqueLocal),
            ("fec0::1", Range::UniqueLocal),
            ("224.0.0.1", Range::Multicast),
            ("239.255.255.250", Range::Multicast),
            ("ff02::1", Range::Multicast),
            ("255.255.255.255", Range::Reserved),
            ("240.0.0.1", Range::Reserved),
            ("192.0.0.170", Range::Reserved),
            // IPv6 forms of refused IPv4 addresses.
            ("::ffff:127.0.0.1", Range::Loopback),
            ("::ffff:169.254.169.254", Range::LinkLocal),
            ("::ffff:10.0.0.1", Range::Private),
            ("::10.0.0.1", Range::Private),
            ("64:ff9b::192.168.0.1", Range::Private),
            ("64:ff9b::7f00:1", Range::Loopback),
            ("2002:a9fe:a9fe::1", Range::LinkLocal),
            ("2002:c0a8:0101::", Range::Private),
            ("::ffff:0:10.0.0.1", Range::Private),
            ("64:ff9b:1::a9fe:a9fe", Range::LinkLocal),
            // Teredo, client 127.0.0.1 (inverted: 80ff:fffe).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Range::Loopback),
            ("198.18.0.1", Range::Reserved),
            ("198.19.255.255", Range::Reserved),
            ("192.88.99.1", Range::Reserved),
        ];
        for (addr, range) in cases {
            assert_eq!(classify(ip(addr)), Some(range), "{addr}");
        }
    }

    #[test]
    fn public_addresses_and_the_edges_of_ranges_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "169.253.255.255",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "223.255.255.255",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "2606:4700:4700::1111",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "fbff::1",
            "fe7f::1",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_opens_ranges_in_both_forms() {
        let strict = Egress::default();
        assert_eq!(
            strict.check(ip("127.0.0.1")),
            Err(Refused {
                ip: ip("127.0.0.1"),
                range: Range::Loopback
            })
        );
        assert!(strict.check(ip("93.184.216.34")).is_ok());
        let open = Egress::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(open.check(ip("127.0.0.1")).is_ok());
        assert!(open.check(ip("127.9.9.9")).is_ok());
        assert!(open.check(ip("::ffff:127.0.0.1")).is_ok());
        assert!(open.check(ip("::1")).is_err());
        assert!(open.check(ip("10.0.0.1")).is_err());
        assert!(open.check(ip("169.254.169.254")).is_err());
    }

    #[test]
    fn literal_addresses_in_urls_are_refused_in_every_spelling() {
        let strict = Egress::default();
        for url in [
            "http://127.0.0.1:8080/in",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0.0.0.0/",
            "http://[::1]:9/",
            "https://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            " http://192.168.0.1/ ",
        ] {
            assert!(strict.refuses_literal(url).is_some(), "{url}");
        }
        for url in [
            "http://localhost:8080/",
            "https://hooks.example.com/in",
            "http://93.184.216.34/",
            "not a url",
            "ftp://127.0.0.1/",
        ] {
            assert!(strict.refuses_literal(url).is_none(), "{url}");
        }
        let open = Egress::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(open.refuses_literal("http://127.0.0.1:8080/in").is_none());
    }
}
