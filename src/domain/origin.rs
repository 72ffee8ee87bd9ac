//! Browser origins and the domain patterns that domain keys and experiences allow.
//!
//! Matching is on parsed hosts, never on string prefixes or suffixes of the raw
//! header, so `example.com` cannot match `evil-example.com` or
//! `example.com.evil.io`. Browsers must use https; plain http is accepted only for
//! `localhost` and `127.0.0.1`, where developers run their front ends.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("origin must look like scheme://host[:port]")]
    Malformed,
    #[error("origin must use https (http only for localhost and 127.0.0.1)")]
    InsecureScheme,
    #[error("host is not a valid domain name")]
    BadHost,
    #[error("port is not a number between 1 and 65535")]
    BadPort,
    #[error("a wildcard may only be the whole leftmost label, as in *.example.com")]
    BadWildcard,
    #[error("a wildcard over a public suffix (such as *.co.uk or *.github.io) would allow every site registered under it")]
    PublicSuffixWildcard,
}

/// A browser's `Origin` header, parsed and normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    secure: bool,
    host: String,
    port: Option<u16>,
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1"
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), OriginError> {
    match s.rsplit_once(':') {
        None => Ok((s, None)),
        Some((host, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
                return Err(OriginError::BadPort);
            }
            match port.parse::<u16>() {
                Ok(0) | Err(_) => Err(OriginError::BadPort),
                Ok(p) => Ok((host, Some(p))),
            }
        }
    }
}

fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let lower = raw.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or(OriginError::Malformed)?;
        if rest.contains(['/', '?', '#', '@']) {
            return Err(OriginError::Malformed);
        }
        let (host, port) = split_port(rest)?;
        if !valid_host(host) {
            return Err(OriginError::BadHost);
        }
        let secure = match scheme {
            "https" => true,
            "http" if is_loopback_name(host) => false,
            "http" => return Err(OriginError::InsecureScheme),
            _ => return Err(OriginError::Malformed),
        };
        // An explicit default port is the same origin as none at all.
        let port = match (secure, port) {
            (true, Some(443)) | (false, Some(80)) => None,
            (_, port) => port,
        };
        Ok(Origin {
            secure,
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A domain a credential is valid from: `example.com`, `*.example.com`, each with
/// an optional `:port`. Without a port only the scheme's default port matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    wildcard: bool,
    host: String,
    port: Option<u16>,
}

impl FromStr for DomainPattern {
    type Err = OriginError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let pattern = DomainPattern::parse_as_written(raw)?;
        // Origins drop their scheme's default port, so patterns do too. With
        // no scheme written, `:80` on loopback (the only hosts http is
        // allowed for) is taken as a default port as well.
        let port = match pattern.port {
            Some(443) => None,
            Some(80) if is_loopback_name(&pattern.host) => None,
            other => other,
        };
        Ok(DomainPattern { port, ..pattern })
    }
}

impl DomainPattern {
    /// The pattern with the port as written, for callers that know the
    /// scheme and so which port is its default.
    fn parse_as_written(raw: &str) -> Result<Self, OriginError> {
        let lower = raw.trim().to_ascii_lowercase();
        if lower.contains("://") || lower.contains(['/', '?', '#', '@']) {
            return Err(OriginError::Malformed);
        }
        let (host, port) = split_port(&lower)?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        if host.contains('*') {
            return Err(OriginError::BadWildcard);
        }
        if !valid_host(host) {
            return Err(OriginError::BadHost);
        }
        // `*.com` would hand a key to every site under a public suffix.
        if wildcard && !host.contains('.') {
            return Err(OriginError::BadWildcard);
        }
        // So would `*.co.uk` or `*.github.io`: the Public Suffix List (ICANN
        // and private sections, embedded in the binary) names them.
        if wildcard && is_public_suffix(host) {
            return Err(OriginError::PublicSuffixWildcard);
        }
        Ok(DomainPattern {
            wildcard,
            host: host.to_owned(),
            port,
        })
    }
}

/// Whether `host` is itself a public suffix, under which anyone can register
/// a site.
fn is_public_suffix(host: &str) -> bool {
    psl::suffix(host.as_bytes())
        .is_some_and(|suffix| suffix.is_known() && suffix.as_bytes() == host.as_bytes())
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

impl DomainPattern {
    pub fn matches(&self, origin: &Origin) -> bool {
        if self.port != origin.port {
            return false;
        }
        if self.wildcard {
            // Subdomains only: `*.example.com` does not match `example.com`.
            origin
                .host
                .strip_suffix(self.host.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            origin.host == self.host
        }
    }
}

/// An entry of an experience's `allowed_origins`: an origin with an optional
/// leftmost wildcard, `https://app.example.com`, `https://*.example.com`,
/// `http://localhost:3000`. A bare `example.com` means https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    secure: bool,
    pattern: DomainPattern,
}

impl FromStr for OriginPattern {
    type Err = OriginError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let lower = raw.trim().to_ascii_lowercase();
        let (secure, rest) = match lower.split_once("://") {
            None => (true, lower.as_str()),
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            Some(_) => return Err(OriginError::Malformed),
        };
        // The scheme is written, so only its own default port is dropped:
        // `https://localhost:80` is not `https://localhost`.
        let pattern = DomainPattern::parse_as_written(rest.trim_end_matches('/'))?;
        if !secure && (pattern.wildcard || !is_loopback_name(&pattern.host)) {
            return Err(OriginError::InsecureScheme);
        }
        let pattern = match (secure, pattern.port) {
            (true, Some(443)) | (false, Some(80)) => DomainPattern {
                port: None,
                ..pattern
            },
            _ => pattern,
        };
        Ok(OriginPattern { secure, pattern })
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.pattern)
    }
}

impl OriginPattern {
    pub fn matches(&self, origin: &Origin) -> bool {
        self.secure == origin.secure && self.pattern.matches(origin)
    }
}

/// Whether an `allowed_origins` list admits `origin`; an empty list admits all.
pub fn allowed_by(list: &[OriginPattern], origin: &Origin) -> bool {
    list.is_empty() || list.iter().any(|p| p.matches(origin))
}

/// Parses a list of patterns, naming the first one that is wrong.
pub fn parse_patterns(raw: &[String]) -> Result<Vec<DomainPattern>, (String, OriginError)> {
    raw.iter()
        .map(|d| d.parse().map_err(|e| (d.clone(), e)))
        .collect()
}

pub fn any_matches(patterns: &[DomainPattern], origin: &Origin) -> bool {
    patterns.iter().any(|p| p.matches(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Origin {
        s.parse().unwrap()
    }

    fn p(s: &str) -> DomainPattern {
        s.parse().unwrap()
    }

    #[test]
    fn exact_domain_matches_only_itself() {
        assert!(p("example.com").matches(&o("https://example.com")));
        assert!(p("example.com").matches(&o("https://EXAMPLE.com:443")));
        assert!(!p("example.com").matches(&o("https://evil-example.com")));
        assert!(!p("example.com").matches(&o("https://example.com.evil.io")));
        assert!(!p("example.com").matches(&o("https://www.example.com")));
        assert!(!p("example.com").matches(&o("https://example.com:8443")));
    }

    #[test]
    fn wildcards_over_public_suffixes_are_refused() {
        for bad in ["*.co.uk", "*.github.io", "*.com.au", "*.s3.amazonaws.com"] {
            assert_eq!(
                bad.parse::<DomainPattern>(),
                Err(OriginError::PublicSuffixWildcard),
                "{bad}"
            );
        }
        for ok in [
            "*.example.co.uk",
            "*.me.github.io",
            "co.uk",
            "*.example.internal",
        ] {
            assert!(ok.parse::<DomainPattern>().is_ok(), "{ok}");
        }
        assert!("https://*.github.io".parse::<OriginPattern>().is_err());
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let w = p("*.example.com");
        assert!(w.matches(&o("https://app.example.com")));
        assert!(w.matches(&o("https://a.b.example.com")));
        assert!(!w.matches(&o("https://example.com")));
        assert!(!w.matches(&o("https://evilexample.com")));
        assert!(!w.matches(&o("https://app.example.com.evil.io")));
    }

    #[test]
    fn ports_must_agree() {
        assert!(p("localhost:3000").matches(&o("http://localhost:3000")));
        assert!(!p("localhost:3000").matches(&o("http://localhost:3001")));
        assert!(!p("localhost").matches(&o("http://localhost:3000")));
    }

    #[test]
    fn default_ports_in_patterns_are_dropped() {
        assert!(p("example.com:443").matches(&o("https://example.com")));
        assert!(p("localhost:80").matches(&o("http://localhost")));
        assert_eq!(p("example.com:443").to_string(), "example.com");
    }

    /// Found by the property tests: `https://localhost:80` was stored as
    /// `https://localhost`, admitting port 443 and refusing port 80.
    #[test]
    fn a_written_scheme_drops_only_its_own_default_port() {
        let op = |s: &str| s.parse::<OriginPattern>().unwrap();
        for (written, shown) in [
            ("https://localhost:80", "https://localhost:80"),
            ("http://localhost:443", "http://localhost:443"),
            ("https://127.0.0.1:80", "https://127.0.0.1:80"),
            ("https://localhost:443", "https://localhost"),
            ("http://localhost:80", "http://localhost"),
            ("localhost:80", "https://localhost:80"),
        ] {
            assert_eq!(op(written).to_string(), shown, "{written}");
            assert_eq!(op(shown), op(written), "{written}");
        }
        assert!(op("https://localhost:80").matches(&o("https://localhost:80")));
        assert!(!op("https://localhost:80").matches(&o("https://localhost")));
        assert!(op("http://localhost:443").matches(&o("http://localhost:443")));
        assert!(!op("http://localhost:443").matches(&o("http://localhost")));
    }

    #[test]
    fn allowed_origin_patterns_include_the_scheme() {
        let op = |s: &str| s.parse::<OriginPattern>().unwrap();
        assert!(op("https://app.example.com").matches(&o("https://app.example.com")));
        assert!(op("app.example.com").matches(&o("https://app.example.com")));
        assert!(op("https://*.example.com").matches(&o("https://a.example.com")));
        assert!(!op("https://*.example.com").matches(&o("https://example.com")));
        assert!(op("http://localhost:3000").matches(&o("http://localhost:3000")));
        assert!(!op("https://localhost:3000").matches(&o("http://localhost:3000")));
        assert!("http://example.com".parse::<OriginPattern>().is_err());
        assert!("ftp://example.com".parse::<OriginPattern>().is_err());
        assert_eq!(
            op("HTTPS://App.Example.com/").to_string(),
            "https://app.example.com"
        );
    }

    #[test]
    fn http_is_only_for_loopback() {
        assert_eq!(
            "http://example.com".parse::<Origin>(),
            Err(OriginError::InsecureScheme)
        );
        assert!("http://127.0.0.1:8080".parse::<Origin>().is_ok());
    }

    #[test]
    fn malformed_origins_and_patterns_are_refused() {
        for bad in [
            "null",
            "example.com",
            "https://",
            "https://a/b",
            "https://u@a.com",
            "ftp://a.com",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
        for bad in [
            "*.com",
            "a.*.com",
            "*example.com",
            "https://a.com",
            "a.com:0",
            "a.com:x",
            "",
        ] {
            assert!(bad.parse::<DomainPattern>().is_err(), "{bad}");
        }
    }
}
