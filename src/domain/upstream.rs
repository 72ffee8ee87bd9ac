//! Product upstreams: the form of an upstream URL, and where the admin API
//! lets one point.
//!
//! An upstream is an absolute `http(s)` URL without credentials, fragment or
//! backslash. Its host is a DNS name, a dotted quad written the canonical way
//! (four decimal parts without leading zeros) or a bracketed IPv6 address.
//! The other numeric forms resolvers accept (`2852039166`, `0xa9fea9fe`,
//! `0251.0376.0251.0376`, `169.254.43518`, `127.1`) are refused outright, so
//! that no spelling of an address slips past the checks below; a trailing
//! dot is dropped before anything is compared.
//!
//! Unless `upstreams.allow_private` is set, an upstream may not point at a
//! link-local address (169.254.0.0/16, fe80::/10, also embedded in IPv6),
//! where cloud metadata services answer with credentials, nor at a known
//! metadata name or address, nor at the broker itself (its listen address and
//! its public base URL), which would send the gateway's requests round in a
//! loop. Loopback and private ranges stay allowed: the demo's echo upstream is
//! on 127.0.0.1 and sidecar deployments use loopback; locking those down is a
//! matter for the network (see `docs/security.md`). The admin API checks the
//! URL as written; the gateway checks again each address a DNS name resolves
//! to, when it connects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Names that resolve to a cloud metadata service (Google Cloud, AWS).
const METADATA_NAMES: [&str; 4] = [
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Metadata services outside the link-local ranges: Alibaba Cloud's, and
/// AWS's over IPv6.
const METADATA_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Why an upstream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("it must be an absolute http(s) URL without credentials, fragment or backslash")]
    Malformed,
    #[error("its host {0:?} is a number not written as a dotted quad (four decimal parts without leading zeros)")]
    NumericHost(String),
    #[error("it points at a link-local or cloud metadata address ({0}); set upstreams.allow_private to allow it")]
    LinkLocal(String),
    #[error("it points at this broker itself ({0}); set upstreams.allow_private to allow it")]
    OwnAddress(String),
}

/// A host as an upstream URL or the broker's settings name it: lower case,
/// without a trailing dot, IPv4-mapped IPv6 read as IPv4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl Host {
    fn parse(raw: &str) -> Result<Host, UpstreamError> {
        if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let ip: Ipv6Addr = inner.parse().map_err(|_| UpstreamError::Malformed)?;
            return Ok(Host::Ip(IpAddr::V6(ip).to_canonical()));
        }
        let lower = raw.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if name.is_empty() || !name.bytes().all(allowed) {
            return Err(UpstreamError::Malformed);
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.iter().any(|l| l.is_empty()) {
            return Err(UpstreamError::Malformed);
        }
        // As URL parsers do: a host whose last label is a number is an IPv4
        // address in some notation; only the canonical one is taken.
        let last = labels.last().copied().unwrap_or_default();
        let hex = last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !(hex || last.bytes().all(|b| b.is_ascii_digit())) {
            return Ok(Host::Name(name.to_owned()));
        }
        let canonical = labels.len() == 4 && labels.iter().all(|l| canonical_octet(l));
        match name.parse::<Ipv4Addr>() {
            Ok(ip) if canonical => Ok(Host::Ip(IpAddr::V4(ip))),
            _ => Err(UpstreamError::NumericHost(raw.to_owned())),
        }
    }

    /// This machine, whatever its interfaces: loopback, the unspecified
    /// address (which connects to this machine), `localhost`.
    fn is_local(&self) -> bool {
        match self {
            Host::Ip(ip) => ip.is_loopback() || ip.is_unspecified(),
            Host::Name(name) => name == "localhost" || name.ends_with(".localhost"),
        }
    }
}

fn canonical_octet(label: &str) -> bool {
    (label == "0" || !label.starts_with('0')) && label.len() <= 3 && label.parse::<u8>().is_ok()
}

/// Link-local, or a metadata service's address.
fn is_link_local(ip: IpAddr) -> bool {
    let embedded_v4 = |v6: Ipv6Addr| {
        let [a, b, c, d, e, f, g, h] = v6.segments();
        // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms.
        let prefix_zero = [a, b, c, d, e, f] == [0; 6];
        let nat64 = [a, b, c, d, e, f] == [0x64, 0xff9b, 0, 0, 0, 0];
        (prefix_zero || nat64).then(|| Ipv4Addr::from(u32::from(g) << 16 | u32::from(h)))
    };
    METADATA_ADDRESSES.contains(&ip)
        || match ip.to_canonical() {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.segments()[0] & 0xffc0 == 0xfe80
                    || embedded_v4(v6).is_some_and(|v4| v4.is_link_local())
            }
        }
}

/// A host and port: where an upstream points, or an address of the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl From<SocketAddr> for Authority {
    fn from(addr: SocketAddr) -> Self {
        Authority {
            host: Host::Ip(addr.ip().to_canonical()),
            port: addr.port(),
        }
    }
}

impl Authority {
    /// `host[:port]` (as in the `listen` setting); `default_port` when the
    /// port is left out.
    pub fn parse(raw: &str, default_port: u16) -> Result<Self, UpstreamError> {
        let (host, port) = match raw.strip_prefix('[') {
            Some(_) => {
                let end = raw.find(']').ok_or(UpstreamError::Malformed)? + 1;
                let (host, rest) = raw.split_at(end);
                let port = match rest {
                    "" => None,
                    _ => Some(rest.strip_prefix(':').ok_or(UpstreamError::Malformed)?),
                };
                (host, port)
            }
            None => match raw.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (raw, None),
            },
        };
        let port = match port {
            None | Some("") => default_port,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| UpstreamError::Malformed)?
            }
            Some(_) => return Err(UpstreamError::Malformed),
        };
        Ok(Authority {
            host: Host::parse(host)?,
            port,
        })
    }

    /// Where an upstream URL points, if it has an upstream's form.
    pub fn of_url(url: &str) -> Result<Self, UpstreamError> {
        let (rest, default_port) = match url.strip_prefix("https://") {
            Some(rest) => (rest, 443),
            None => (
                url.strip_prefix("http://")
                    .ok_or(UpstreamError::Malformed)?,
                80,
            ),
        };
        if url.contains(['#', '\\']) || url.contains(char::is_whitespace) {
            return Err(UpstreamError::Malformed);
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(UpstreamError::Malformed);
        }
        let parsed = Authority::parse(authority, default_port)?;
        if parsed.port == 0 {
            return Err(UpstreamError::Malformed);
        }
        Ok(parsed)
    }
}

/// Where upstreams may point; built once from the settings.
#[derive(Debug, Clone, Default)]
pub struct UpstreamPolicy {
    /// `upstreams.allow_private`: link-local addresses and the broker itself
    /// are allowed too.
    pub allow_private: bool,
    /// Where the broker answers: its bound address, its `listen` setting and
    /// its public base URL.
    pub own_addresses: Vec<Authority>,
}

impl UpstreamPolicy {
    /// Checks an upstream URL as the admin API is given it: its form, then
    /// where it points.
    pub fn check(&self, url: &str) -> Result<(), UpstreamError> {
        let authority = Authority::of_url(url)?;
        if self.allow_private {
            return Ok(());
        }
        let metadata = match &authority.host {
            Host::Ip(ip) => is_link_local(*ip),
            Host::Name(name) => METADATA_NAMES.contains(&name.as_str()),
        };
        if metadata {
            return Err(UpstreamError::LinkLocal(authority.host.to_string()));
        }
        if self.is_own(&authority) {
            return Err(UpstreamError::OwnAddress(authority.to_string()));
        }
        Ok(())
    }

    /// Whether the gateway must not connect to an address an upstream's
    /// name resolved to.
    pub fn refuses_address(&self, addr: SocketAddr) -> bool {
        !self.allow_private && (is_link_local(addr.ip()) || self.is_own(&addr.into()))
    }

    /// The same host and port as the broker, counting every name of this
    /// machine as one when the broker listens on one of them (or on all).
    fn is_own(&self, target: &Authority) -> bool {
        self.own_addresses.iter().any(|own| {
            own.port == target.port
                && (own.host == target.host || (own.host.is_local() && target.host.is_local()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> UpstreamPolicy {
        UpstreamPolicy {
            allow_private: false,
            own_addresses: vec![
                Authority::parse("0.0.0.0:8080", 80).unwrap(),
                Authority::of_url("https://Auth.Example.com").unwrap(),
            ],
        }
    }

    #[test]
    fn upstream_forms() {
        for ok in [
            "http://127.0.0.1:9000/api",
            "https://search.example.com",
            "http://search.example.com.:8080/x?y=1",
            "http://[::1]:9/",
            "http://under_score.internal/",
            "http://x:/",
        ] {
            assert!(Authority::of_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://user:pw@x.com",
            "https://",
            "http://:80/",
            "http://x:0/",
            "http://x:+80/",
            "http://x:65536/",
            "http://x/#f",
            "http://x\\@y/",
            "http://x y/",
            "http://a..b/",
            "http://%31%32%37.0.0.1/",
            "http://[fe80::1%25eth0]/",
            "http://[::1/",
            "HTTP://x/",
        ] {
            assert_eq!(
                Authority::of_url(bad),
                Err(UpstreamError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn numeric_hosts_must_be_canonical_dotted_quads() {
        let host = |url| Authority::of_url(url).map(|a| a.host);
        assert_eq!(
            host("http://169.254.169.254./"),
            Ok(Host::Ip("169.254.169.254".parse().unwrap()))
        );
        assert_eq!(
            host("http://[::ffff:10.0.0.1]/"),
            Ok(Host::Ip("10.0.0.1".parse().unwrap()))
        );
        for bad in [
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0XA9FEA9FE/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://169.0xfe.169.254/",
            "http://127.1/",
            "http://1.2.3.4.5/",
            "http://256.1.1.1/",
            "http://example.123/",
            "http://0x/",
        ] {
            assert!(
                matches!(host(bad), Err(UpstreamError::NumericHost(_))),
                "{bad}: {:?}",
                host(bad)
            );
        }
        assert!(matches!(host("http://1e100.net/"), Ok(Host::Name(_))));
        assert!(matches!(host("http://0x.example/"), Ok(Host::Name(_))));
    }

    #[test]
    fn link_local_and_metadata_are_refused_unless_allowed() {
        let p = policy();
        for bad in [
            "http://169.254.169.254/latest",
            "http://169.254.0.1:8080/",
            "http://[fe80::1]/",
            "http://[febf::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::a9fe:a9fe]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://100.100.100.200/",
            "http://[fd00:ec2::254]/",
            "http://metadata.google.internal./",
            "http://Metadata/",
            "http://instance-data/",
        ] {
            assert!(
                matches!(p.check(bad), Err(UpstreamError::LinkLocal(_))),
                "{bad}"
            );
        }
        for ok in [
            "http://127.0.0.1:9/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://192.168.0.1/",
            "http://[fd00::1]/",
            "http://[fec0::1]/",
            "http://169.254.example.com/",
            "http://metadata.example.com/",
        ] {
            assert_eq!(p.check(ok), Ok(()), "{ok}");
        }
        let open = UpstreamPolicy {
            allow_private: true,
            ..policy()
        };
        assert_eq!(open.check("http://169.254.169.254/"), Ok(()));
        assert_eq!(open.check("http://0.0.0.0:8080/"), Ok(()));
        assert!(open.check("http://0xa9fea9fe/").is_err());
    }

    #[test]
    fn the_broker_itself_is_refused() {
        let p = policy();
        for own in [
            "http://127.0.0.1:8080/",
            "http://localhost:8080/prod/x",
            "http://app.localhost:8080/",
            "http://0.0.0.0:8080/",
            "http://[::1]:8080/",
            "https://auth.example.com/",
            "https://auth.example.com.:443/",
        ] {
            assert!(
                matches!(p.check(own), Err(UpstreamError::OwnAddress(_))),
                "{own}"
            );
        }
        for other in [
            "http://127.0.0.1:8081/",
            "http://auth.example.com/",
            "https://api.example.com/",
            "http://10.0.0.5:8080/",
        ] {
            assert_eq!(p.check(other), Ok(()), "{other}");
        }
        let exact = UpstreamPolicy {
            allow_private: false,
            own_addresses: vec![Authority::parse("10.0.0.5:8080", 80).unwrap()],
        };
        assert!(exact.check("http://10.0.0.5:8080/").is_err());
        assert_eq!(exact.check("http://127.0.0.1:8080/"), Ok(()));
    }

    #[test]
    fn resolved_addresses() {
        let p = policy();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(p.refuses_address(addr("169.254.169.254:80")));
        assert!(p.refuses_address(addr("[fe80::1]:80")));
        assert!(p.refuses_address(addr("127.0.0.1:8080")));
        assert!(p.refuses_address(addr("[::ffff:127.0.0.1]:8080")));
        assert!(!p.refuses_address(addr("127.0.0.1:9000")));
        assert!(!p.refuses_address(addr("93.184.216.34:443")));
        let open = UpstreamPolicy {
            allow_private: true,
            ..policy()
        };
        assert!(!open.refuses_address(addr("169.254.169.254:80")));
    }
}
