//! The settings an operator gives through the admin API, parsed once into the
//! values the rest of the broker uses (STYLE habit 1): an instance's name and
//! token lifetime, a rotation grace, an experience's settings, a domain key's
//! domains. Each refusal is a [`SettingError`] that says what is wrong; none
//! of these parsers touches the store, so a bad request changes nothing.

use serde::{Deserialize, Deserializer};

use super::experience::{valid_operation, ExperienceKind};
use super::instance::{valid_slug, Product, MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS};
use super::origin::{parse_patterns, OriginError, OriginPattern};
use super::upstream::{UpstreamError, UpstreamPolicy};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_ORIGINS: usize = 100;
pub const MAX_RATE_LIMIT: u32 = 1_000_000;
pub const MAX_DOMAINS: usize = 100;
/// Longest rotation grace: long enough for a slow deploy, short enough that a
/// forgotten rotation does not leave an old credential alive for good.
pub const MAX_GRACE_SECONDS: u64 = 30 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("name must be 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error(
        "token_ttl_seconds must be between {MIN_TOKEN_TTL_SECONDS} and {MAX_TOKEN_TTL_SECONDS}"
    )]
    TokenTtl,
    #[error("grace_seconds must be at most {MAX_GRACE_SECONDS}")]
    Grace,
    #[error("slug {0:?} must be 1 to 64 characters of a-z, 0-9, - and _")]
    Slug(String),
    #[error("experience {0:?} needs an upstream")]
    NoUpstream(String),
    #[error("upstream of {0:?} is refused: {1}")]
    Upstream(String, UpstreamError),
    #[error("allowed_origins lists at most {MAX_ORIGINS} entries")]
    TooManyOrigins,
    #[error("allowed origin {0:?} is not valid: {1}")]
    Origin(String, OriginError),
    #[error("rate_limit_per_minute must be between 1 and {MAX_RATE_LIMIT}")]
    RateLimit,
    #[error("daily_cap must be at least 1, or null for none")]
    DailyCap,
    #[error("operations must be a non-empty list of a-z, 0-9, - and _ names, or null for the kind's defaults")]
    Operations,
}

/// A domain key's domain list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainsError {
    #[error("domains must list 1 to {MAX_DOMAINS} entries")]
    Count,
    #[error("domain {0:?} is not valid: {1}")]
    Domain(String, OriginError),
}

/// An instance's display name: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceName(String);

impl InstanceName {
    pub fn parse(raw: &str) -> Result<Self, SettingError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(SettingError::Name);
        }
        Ok(InstanceName(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An access-token lifetime an instance may have.
pub fn token_ttl(seconds: u64) -> Result<u64, SettingError> {
    if (MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(SettingError::TokenTtl)
    }
}

/// A rotation grace (secrets, experience tokens): 0 ends the old one now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(u64);

impl Grace {
    pub fn parse(seconds: u64) -> Result<Self, SettingError> {
        if seconds > MAX_GRACE_SECONDS {
            return Err(SettingError::Grace);
        }
        Ok(Grace(seconds))
    }

    pub fn seconds(self) -> u64 {
        self.0
    }

    pub fn duration(self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.0).unwrap_or(0))
    }
}

/// A domain key's domains, parsed and normalised (lower case, default ports
/// dropped).
pub fn domain_list(raw: &[String]) -> Result<Vec<String>, DomainsError> {
    if raw.is_empty() || raw.len() > MAX_DOMAINS {
        return Err(DomainsError::Count);
    }
    let patterns = parse_patterns(raw).map_err(|(d, e)| DomainsError::Domain(d, e))?;
    Ok(patterns.iter().map(ToString::to_string).collect())
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Settings of an experience as the admin API takes them. Everything but the
/// upstream is optional; `None` keeps the current value (or the default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperienceSettings {
    upstream: Option<String>,
    kind: Option<ExperienceKind>,
    allowed_origins: Option<Vec<String>>,
    rate_limit_per_minute: Option<u32>,
    /// `null` removes the cap.
    #[serde(default, deserialize_with = "present")]
    daily_cap: Option<Option<u32>>,
    /// `null` returns to the kind's defaults.
    #[serde(default, deserialize_with = "present")]
    operations: Option<Option<Vec<String>>>,
    pass_set_cookie: Option<bool>,
}

impl ExperienceSettings {
    pub fn upstream_only(upstream: String) -> Self {
        ExperienceSettings {
            upstream: Some(upstream),
            ..Default::default()
        }
    }

    /// Applies these settings over `base` (or over the defaults), validating
    /// each; the result is a product that is valid as a whole. An upstream
    /// given here is held to `policy`; one kept from `base` was checked when
    /// it was given.
    pub fn apply(
        self,
        slug: &str,
        base: Option<&Product>,
        policy: &UpstreamPolicy,
    ) -> Result<Product, SettingError> {
        if !valid_slug(slug) {
            return Err(SettingError::Slug(slug.to_owned()));
        }
        let upstream = match (self.upstream, base) {
            (Some(u), _) => {
                policy
                    .check(&u)
                    .map_err(|e| SettingError::Upstream(slug.to_owned(), e))?;
                u
            }
            (None, Some(b)) => b.upstream.clone(),
            (None, None) => return Err(SettingError::NoUpstream(slug.to_owned())),
        };
        let mut product = base
            .cloned()
            .unwrap_or_else(|| Product::new(upstream.clone()));
        product.upstream = upstream;
        if let Some(kind) = self.kind {
            product.kind = kind;
        }
        if let Some(origins) = self.allowed_origins {
            if origins.len() > MAX_ORIGINS {
                return Err(SettingError::TooManyOrigins);
            }
            product.allowed_origins = origins
                .iter()
                .map(|o| {
                    o.parse::<OriginPattern>()
                        .map(|p| p.to_string())
                        .map_err(|e| SettingError::Origin(o.clone(), e))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(limit) = self.rate_limit_per_minute {
            if !(1..=MAX_RATE_LIMIT).contains(&limit) {
                return Err(SettingError::RateLimit);
            }
            product.rate_limit_per_minute = limit;
        }
        if let Some(cap) = self.daily_cap {
            if cap == Some(0) {
                return Err(SettingError::DailyCap);
            }
            product.daily_cap = cap;
        }
        if let Some(operations) = self.operations {
            if let Some(ops) = &operations {
                if ops.is_empty() || ops.iter().any(|o| !valid_operation(o)) {
                    return Err(SettingError::Operations);
                }
            }
            product.operations = operations;
        }
        if let Some(pass) = self.pass_set_cookie {
            product.pass_set_cookie = pass;
        }
        Ok(product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(InstanceName::parse("  a ").unwrap().into_inner(), "a");
        assert_eq!(InstanceName::parse("   "), Err(SettingError::Name));
        assert!(InstanceName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            InstanceName::parse(&"é".repeat(201)),
            Err(SettingError::Name)
        );
    }

    #[test]
    fn bounds() {
        assert!(token_ttl(59).is_err() && token_ttl(60).is_ok());
        assert!(token_ttl(86_400).is_ok() && token_ttl(86_401).is_err());
        assert!(Grace::parse(MAX_GRACE_SECONDS).is_ok());
        assert!(Grace::parse(MAX_GRACE_SECONDS + 1).is_err());
        assert_eq!(domain_list(&[]), Err(DomainsError::Count));
        assert_eq!(
            domain_list(&["Example.COM".into()]).unwrap(),
            vec!["example.com".to_owned()]
        );
    }

    #[test]
    fn experience_settings_refuse_before_building() {
        let policy = UpstreamPolicy::default();
        let no_upstream = ExperienceSettings::default().apply("search", None, &policy);
        assert_eq!(no_upstream, Err(SettingError::NoUpstream("search".into())));
        let bad_slug =
            ExperienceSettings::upstream_only("http://x".into()).apply("A", None, &policy);
        assert_eq!(bad_slug, Err(SettingError::Slug("A".into())));
        let link_local = ExperienceSettings::upstream_only("http://169.254.169.254/".into())
            .apply("search", None, &policy);
        assert!(matches!(
            link_local,
            Err(SettingError::Upstream(_, UpstreamError::LinkLocal(_)))
        ));
        let ok = ExperienceSettings::upstream_only("http://x/api".into())
            .apply("search", None, &policy)
            .unwrap();
        assert_eq!(ok.upstream, "http://x/api");
        // A kept upstream is not checked again.
        let kept = ExperienceSettings::default()
            .apply(
                "search",
                Some(&Product::new("http://169.254.169.254/".into())),
                &policy,
            )
            .unwrap();
        assert_eq!(kept.upstream, "http://169.254.169.254/");
    }
}
