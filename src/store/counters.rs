//! The names of counter windows ([`Window::suffix`](super::Window)): the store
//! owns their format, callers say what is counted.
//!
//! A suffix names the thing counted and the window it falls in, so that a new
//! window starts a new counter and the old one simply expires.

/// Failed `/v1/auth` exchanges from one client address (see
/// [`limit_key`](crate::domain::network::limit_key)) in one minute.
pub fn auth_failures_by_ip(ip_key: &str, minute: i64) -> String {
    format!("authfail:ip:{ip_key}:{minute}")
}

/// Failed `/v1/auth` exchanges for one API key in one minute.
pub fn auth_failures_by_key(api_key: &str, minute: i64) -> String {
    format!("authfail:key:{api_key}:{minute}")
}

/// Who a product request counts against: an access token's session, or an
/// experience token.
#[derive(Debug, Clone, Copy)]
pub enum RateSubject<'a> {
    Session(&'a str),
    ExperienceToken(&'a str),
}

impl std::fmt::Display for RateSubject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateSubject::Session(sid) => write!(f, "sid:{sid}"),
            RateSubject::ExperienceToken(id) => write!(f, "xt:{id}"),
        }
    }
}

/// Product requests of one subject from one client address in one minute.
pub fn product_minute(slug: &str, subject: RateSubject<'_>, ip_key: &str, minute: i64) -> String {
    format!("m:{slug}:{subject}:{ip_key}:{minute}")
}

/// Product requests of one subject in one day.
pub fn product_day(slug: &str, subject: RateSubject<'_>, day: i64) -> String {
    format!("d:{slug}:{subject}:{day}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_keep_their_format() {
        assert_eq!(auth_failures_by_ip("1.2.3.4", 7), "authfail:ip:1.2.3.4:7");
        assert_eq!(auth_failures_by_key("kb_pk_x", 7), "authfail:key:kb_pk_x:7");
        assert_eq!(
            product_minute("search", RateSubject::Session("s1"), "::1", 3),
            "m:search:sid:s1:::1:3"
        );
        assert_eq!(
            product_day("chat", RateSubject::ExperienceToken("xt_1"), 2),
            "d:chat:xt:xt_1:2"
        );
    }
}
