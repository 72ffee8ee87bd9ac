//! Gateway paths: which product a request names, and the dot-segment rule.
//!
//! The whole path is checked, not only the part after the product: behind a
//! reverse proxy `/search/../chat/x` names `search` here but reaches `chat`
//! upstream, and an upstream that decodes `%2e%2e` would let a caller climb out
//! of the product's base path.

/// A path with a `.` or `..` segment, also percent-encoded or written with
/// backslashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the path must not contain . or .. segments")]
pub struct DotSegment;

/// The product of a gateway path, `/prod/{product}/{rest}`, and the raw rest.
pub fn split_gateway_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/prod/")?.split_once('/')
}

/// The product and the rest of an original URI seen by a reverse proxy: the
/// first path segment after an optional `/prod` prefix, then the others.
pub fn split_original_uri(uri: &str) -> Option<(&str, &str)> {
    let path = uri.split(['?', '#']).next()?;
    let path = path
        .strip_prefix("/prod/")
        .unwrap_or(path.strip_prefix('/')?);
    let (product, rest) = path.split_once('/').unwrap_or((path, ""));
    (!product.is_empty()).then_some((product, rest))
}

/// Refuses `.` and `..` segments, also when dots or separators are
/// percent-encoded or written as backslashes.
pub fn check_path(tail: &str) -> Result<(), DotSegment> {
    let decoded = tail
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(DotSegment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_refused() {
        for bad in [
            "..",
            "a/../b",
            "%2e%2e/admin",
            "a/%2E/b",
            ".",
            "..%2F..%2Fadmin",
            "a\\..\\b",
            "/search/../chat/x",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for ok in [
            "",
            "v1/search",
            "a..b/c",
            "documents/42",
            "a%2Fb",
            "a\\b",
            "/search/v1/x",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn gateway_paths() {
        assert_eq!(
            split_gateway_path("/prod/search/v1/search"),
            Some(("search", "v1/search"))
        );
        assert_eq!(split_gateway_path("/prod/search/"), Some(("search", "")));
        assert_eq!(split_gateway_path("/prod/search"), None);
    }

    #[test]
    fn original_uris() {
        assert_eq!(
            split_original_uri("/prod/search/v1/search?q=a"),
            Some(("search", "v1/search"))
        );
        assert_eq!(
            split_original_uri("/chat/v1/chat"),
            Some(("chat", "v1/chat"))
        );
        assert_eq!(split_original_uri("/chat"), Some(("chat", "")));
        assert_eq!(split_original_uri("/"), None);
        assert_eq!(split_original_uri("search"), None);
    }
}
