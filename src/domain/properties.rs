//! Property tests for the parsers that face the internet: credentials, origins
//! and domain patterns, gateway paths.
//!
//! Whatever a client sends, a parser refuses it or accepts it; it never panics.
//! A value that prints itself parses back to an equal value, so what the admin
//! API shows is what the broker enforces. Matching is checked against what the
//! strings mean: a pattern matches the origin it was written from, and a host
//! that only looks like an allowed one (`evil-example.com`) never matches.

use proptest::prelude::*;

use super::credential::{
    self, mask, ApiKey, CredentialKind, CredentialParseError, DomainKey, ExperienceToken, Secret,
    CREDENTIAL_LEN,
};
use super::origin::{DomainPattern, Origin, OriginPattern};
use super::path::{check_path, split_gateway_path, split_original_uri};

/// 256 cases: enough to find the edge cases of small grammars, few enough that
/// the whole suite stays fast; `PROPTEST_CASES=100000` runs a deeper search.
/// Failures print their shrunk input; they become named regression tests
/// next to the code rather than files in the tree.
pub(crate) fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        256
    };
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..default
    }
}

// ---------------------------------------------------------------- credentials

const KINDS: [CredentialKind; 4] = [
    CredentialKind::ApiKey,
    CredentialKind::Secret,
    CredentialKind::DomainKey,
    CredentialKind::ExperienceToken,
];

fn kind() -> impl Strategy<Value = CredentialKind> {
    prop::sample::select(KINDS.to_vec())
}

/// A well-formed credential of `kind`: the prefix, 43 random Base62 characters
/// and their checksum, as `generate` builds it.
fn credential_of(kind: CredentialKind) -> impl Strategy<Value = String> {
    "[0-9A-Za-z]{43}"
        .prop_map(move |random| credential::with_checksum(format!("{}{random}", kind.prefix())))
}

fn kind_and_credential() -> impl Strategy<Value = (CredentialKind, String)> {
    kind().prop_flat_map(|kind| (Just(kind), credential_of(kind)))
}

/// Parses `s` as a credential of `kind` and gives back what it holds.
fn parse_as(kind: CredentialKind, s: &str) -> Result<String, CredentialParseError> {
    match kind {
        CredentialKind::ApiKey => s.parse::<ApiKey>().map(|c| c.expose().to_owned()),
        CredentialKind::Secret => s.parse::<Secret>().map(|c| c.expose().to_owned()),
        CredentialKind::DomainKey => s.parse::<DomainKey>().map(|c| c.expose().to_owned()),
        CredentialKind::ExperienceToken => {
            s.parse::<ExperienceToken>().map(|c| c.expose().to_owned())
        }
    }
}

/// The refusal a one-character change at byte `index` must meet.
fn expected_refusal(index: usize, replacement: char) -> CredentialParseError {
    if index < CredentialKind::ApiKey.prefix().len() {
        CredentialParseError::WrongPrefix
    } else if !replacement.is_ascii() {
        CredentialParseError::WrongLength
    } else if !replacement.is_ascii_alphanumeric() {
        CredentialParseError::BadCharacter
    } else {
        CredentialParseError::BadChecksum
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_credential_parses_back_to_itself((kind, value) in kind_and_credential()) {
        prop_assert_eq!(value.len(), CREDENTIAL_LEN);
        prop_assert_eq!(parse_as(kind, &value), Ok(value.clone()));
        if kind == CredentialKind::ApiKey {
            let key: ApiKey = value.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(key.to_string(), value);
        }
    }

    #[test]
    fn a_credential_of_one_kind_is_refused_as_any_other((kind, value) in kind_and_credential()) {
        for other in KINDS.into_iter().filter(|&k| k != kind) {
            prop_assert_eq!(parse_as(other, &value), Err(CredentialParseError::WrongPrefix));
        }
    }

    #[test]
    fn a_one_character_change_is_refused(
        (kind, value) in kind_and_credential(),
        index in 0..CREDENTIAL_LEN,
        replacement in any::<char>(),
    ) {
        let original = char::from(value.as_bytes()[index]);
        prop_assume!(replacement != original);
        let mut changed = value.clone();
        changed.replace_range(index..=index, replacement.encode_utf8(&mut [0; 4]));
        prop_assert_eq!(parse_as(kind, &changed), Err(expected_refusal(index, replacement)));
    }

    #[test]
    fn a_wrong_prefix_is_refused(
        (kind, value) in kind_and_credential(),
        prefix in "(kb_[a-z]{2}_|.{0,8})",
    ) {
        prop_assume!(prefix != kind.prefix());
        let changed = format!("{prefix}{}", &value[kind.prefix().len()..]);
        let refused = parse_as(kind, &changed);
        prop_assert!(refused.is_err());
        if !changed.starts_with(kind.prefix()) {
            prop_assert_eq!(refused, Err(CredentialParseError::WrongPrefix));
        }
    }

    /// Random strings, and strings past the prefix check with a tail of about
    /// the right length in mixed scripts, reach every branch of the parser.
    #[test]
    fn credential_parsers_never_panic(
        kind in kind(),
        raw in any::<String>(),
        tail in "[0-9A-Za-z_é€😀 -]{40,52}",
    ) {
        for s in [raw.clone(), format!("{}{tail}", kind.prefix())] {
            for k in KINDS {
                if let Ok(value) = parse_as(k, &s) {
                    prop_assert_eq!(value.len(), CREDENTIAL_LEN);
                    prop_assert!(value.starts_with(k.prefix()));
                }
            }
            let masked = mask(&s);
            if s.chars().count() > 20 {
                prop_assert_eq!(masked.chars().count(), 21);
            }
        }
    }
}

#[test]
fn generated_credentials_parse_back_to_themselves() {
    for _ in 0..64 {
        let key = ApiKey::generate();
        assert_eq!(key.to_string().parse::<ApiKey>(), Ok(key.clone()));
        let secret = Secret::generate();
        assert_eq!(secret.expose().parse::<Secret>(), Ok(secret.clone()));
        let domain_key = DomainKey::generate();
        assert_eq!(
            domain_key.expose().parse::<DomainKey>(),
            Ok(domain_key.clone())
        );
        let token = ExperienceToken::generate();
        assert_eq!(token.expose().parse::<ExperienceToken>(), Ok(token.clone()));
    }
}

// -------------------------------------------------------------------- origins

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::collection::vec(label(), 1..4).prop_map(|labels| labels.join(".")),
        1 => Just("localhost".to_owned()),
        1 => Just("127.0.0.1".to_owned()),
    ]
}

/// Any port, often a scheme's default one, which origins leave out.
fn port() -> impl Strategy<Value = Option<u16>> {
    prop::option::of(prop_oneof![
        1 => Just(80),
        1 => Just(443),
        3 => 1..=u16::MAX,
    ])
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "127.0.0.1"
}

/// The parts of an origin a browser may send: https anywhere, http only on
/// loopback, any port.
fn origin_parts() -> impl Strategy<Value = (bool, String, Option<u16>)> {
    (any::<bool>(), host(), port())
        .prop_map(|(secure, host, port)| (secure || !is_loopback(&host), host, port))
}

fn with_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn origin_string(secure: bool, host: &str, port: Option<u16>) -> String {
    let scheme = if secure { "https" } else { "http" };
    format!("{scheme}://{}", with_port(host, port))
}

/// Upper-cases the characters whose bit is set in `mask`: the case a client
/// happens to send.
fn mixed_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if (mask >> (i % 64)) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Strings close enough to origins and patterns to get past the first checks.
fn origin_like() -> impl Strategy<Value = String> {
    "[ \t]?(https?|HTTP|ftp|null)?(://)?(\\*\\.)?[a-zA-Z0-9.*:/@?#_-]{0,24}(:[0-9]{0,6})?/?[ ]?"
}

fn origin(secure: bool, host: &str, port: Option<u16>) -> Result<Origin, TestCaseError> {
    origin_string(secure, host, port)
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{e}")))
}

/// Each of the three parsers on `raw`: no panic, and whatever parses prints
/// something that parses back to an equal value.
fn parse_and_print_back(raw: &str) -> Result<(), TestCaseError> {
    if let Ok(origin) = raw.parse::<Origin>() {
        prop_assert_eq!(origin.to_string().parse::<Origin>(), Ok(origin));
    }
    if let Ok(pattern) = raw.parse::<DomainPattern>() {
        prop_assert_eq!(pattern.to_string().parse::<DomainPattern>(), Ok(pattern));
    }
    if let Ok(pattern) = raw.parse::<OriginPattern>() {
        prop_assert_eq!(pattern.to_string().parse::<OriginPattern>(), Ok(pattern));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn origin_parsers_never_panic_and_print_back(raw in any::<String>(), near in origin_like()) {
        parse_and_print_back(&raw)?;
        parse_and_print_back(&near)?;
    }

    #[test]
    fn an_origin_parses_in_any_case_and_prints_canonically(
        (secure, host, port) in origin_parts(),
        case in any::<u64>(),
        padded in any::<bool>(),
    ) {
        let canonical = origin_string(secure, &host, port);
        let mut sent = mixed_case(&canonical, case);
        if padded {
            sent = format!(" {sent}\t");
        }
        let parsed: Origin = sent.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let default_port = if secure { 443 } else { 80 };
        let shown = if port == Some(default_port) {
            origin_string(secure, &host, None)
        } else {
            canonical
        };
        prop_assert_eq!(parsed.to_string(), shown);
        prop_assert_eq!(parsed.to_string().parse::<Origin>(), Ok(parsed));
    }

    #[test]
    fn a_pattern_matches_the_origin_it_was_written_from(
        (secure, host, port) in origin_parts(),
        sub in label(),
    ) {
        let sent = origin(secure, &host, port)?;
        let domain: DomainPattern = with_port(&host, port)
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        // With no scheme written, `:443` and, on loopback, `:80` stand for
        // the default port of whichever scheme the origin uses.
        let default = if secure { 443 } else { 80 };
        let dropped = port == Some(443) || (is_loopback(&host) && port == Some(80));
        prop_assert_eq!(
            domain.matches(&sent),
            !dropped || port == Some(default),
            "{} and {}", domain, sent
        );
        let allowed: OriginPattern = origin_string(secure, &host, port)
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(allowed.matches(&sent), "{} does not match {}", allowed, sent);
        let below = origin(true, &format!("{sub}.{host}"), port)?;
        prop_assert!(!allowed.matches(&below), "{} matches {}", allowed, below);

        // A wildcard is refused over a single label or a public suffix; where
        // it is accepted it matches every subdomain and not the domain itself.
        // (`*.127.0.0.1:80` is left out: the loopback rule drops its port,
        // though its subdomains are not loopback and so are https only.)
        let wildcard = format!("*.{}", with_port(&host, port)).parse::<DomainPattern>();
        if let (Ok(wildcard), false) = (wildcard, is_loopback(&host) && port == Some(80)) {
            prop_assert!(wildcard.matches(&below), "{} does not match {}", wildcard, below);
            prop_assert!(!wildcard.matches(&origin(true, &host, port)?));
        }
    }

    /// Hosts made by writing characters before or after an allowed host match
    /// only where they are subdomains of it, and only under a wildcard.
    #[test]
    fn look_alike_hosts_never_match(
        host in host(),
        head in "(evil-|evil|www\\.)?[a-z0-9.-]{0,8}",
        tail in "(-evil|\\.evil\\.io|evil)?[a-z0-9.-]{0,8}",
        port in port(),
    ) {
        prop_assume!(!head.is_empty() || !tail.is_empty());
        let exact: DomainPattern = with_port(&host, port)
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let wildcard = format!("*.{}", with_port(&host, port)).parse::<DomainPattern>().ok();
        let allowed = format!("https://{}", with_port(&host, port)).parse::<OriginPattern>().ok();
        let look_alike = format!("{head}{host}{tail}");
        for secure in [true, false] {
            let Ok(sent) = origin_string(secure, &look_alike, port).parse::<Origin>() else {
                continue;
            };
            prop_assert!(!exact.matches(&sent), "{} matches {}", exact, sent);
            if let Some(allowed) = &allowed {
                prop_assert!(!allowed.matches(&sent), "{} matches {}", allowed, sent);
            }
            if let Some(wildcard) = &wildcard {
                let below = look_alike.ends_with(&format!(".{host}"));
                prop_assert_eq!(wildcard.matches(&sent), below, "{} and {}", wildcard, sent);
            }
        }
    }

    #[test]
    fn a_pattern_never_matches_another_port(
        (secure, host, port) in origin_parts(),
        other in port(),
    ) {
        let sent = origin(secure, &host, port)?;
        let sent_port = port.unwrap_or(if secure { 443 } else { 80 });
        let pattern_port = other.unwrap_or(if secure { 443 } else { 80 });
        if sent_port == pattern_port {
            return Ok(());
        }
        let allowed: OriginPattern = origin_string(secure, &host, other)
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert!(!allowed.matches(&sent), "{} matches {}", allowed, sent);
        // Away from loopback there is only https, so a domain's port is as exact.
        if !is_loopback(&host) {
            let domain: DomainPattern = with_port(&host, other)
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert!(!domain.matches(&sent), "{} matches {}", domain, sent);
        }
    }
}

// ---------------------------------------------------------------------- paths

/// Path characters, weighted toward the ones the dot-segment rule decodes.
fn path_like() -> impl Strategy<Value = String> {
    "([a-z0-9/.?#\\\\]|%2[eEfF]|%5[cC]|%|/prod/){0,12}"
}

/// A dot or a separator as a client might write it to slip past a check.
fn dot() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![".", "%2e", "%2E"])
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["/", "%2f", "%2F", "%5c", "%5C", "\\"])
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn path_functions_never_panic(raw in any::<String>(), near in path_like()) {
        for path in [&raw, &near] {
            let _ = check_path(path);
            if let Some((product, rest)) = split_gateway_path(path) {
                prop_assert!(!product.contains('/'));
                prop_assert_eq!(format!("/prod/{product}/{rest}"), path.as_str());
            }
            if let Some((product, _)) = split_original_uri(path) {
                prop_assert!(!product.is_empty());
                prop_assert!(!product.contains(['/', '?', '#']));
            }
        }
    }

    #[test]
    fn a_literal_dot_segment_is_refused(
        before in path_like(),
        dots in "\\.\\.?",
        after in path_like(),
        at_end in any::<bool>(),
    ) {
        let path = if at_end {
            format!("{before}/{dots}")
        } else {
            format!("{before}/{dots}/{after}")
        };
        prop_assert!(check_path(&path).is_err(), "{} was accepted", path);
        let whole = format!("/prod/search/{path}");
        prop_assert!(check_path(&whole).is_err(), "{} was accepted", whole);
    }

    #[test]
    fn an_encoded_dot_segment_is_refused(
        before in path_like(),
        open in separator(),
        dots in prop::collection::vec(dot(), 1..=2),
        close in separator(),
        after in path_like(),
    ) {
        let path = format!("{before}{open}{}{close}{after}", dots.concat());
        prop_assert!(check_path(&path).is_err(), "{} was accepted", path);
    }
}
