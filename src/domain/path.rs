//! Gateway paths: which product a request names, and the dot-segment rule.
//!
//! The whole path is checked, not only the part after the product: behind a
//! reverse proxy `/search/../chat/x` names `search` here but reaches `chat`
//! upstream, and an upstream that decodes `%2e%2e` would let a caller climb out
//! of the product's base path.
//!
//! Servers disagree on what a dot segment is, so the rule reads a path the
//! way the most lenient of them would before looking for one:
//! - percent-decoding is repeated until nothing changes (`%252e` is `.` to a
//!   stack that decodes twice), up to [`MAX_DECODE_ROUNDS`]; a path still
//!   changing after that is refused, since no client encodes that deep;
//! - IIS's `%uXXXX` is decoded too, and overlong UTF-8 forms of ASCII
//!   (`%c0%ae` is `.`, `%c0%af` is `/`, `%c1%9c` is `\`) and the look-alikes
//!   that Unicode normalisation folds into `.`, `/` and `\` (fullwidth and
//!   small forms, the one- and two-dot leaders) count as what they stand for;
//! - `/` and `\` both separate segments;
//! - a segment's name ends at `;` (Tomcat and Jetty path parameters: `..;x`
//!   is `..`), `?`, `#` or NUL (C code stops there);
//! - a name made only of dots (and spaces, which Windows drops with trailing
//!   dots) is a dot segment: `.`, `..`, `...`, `. .`.
//!
//! Names that merely contain dots (`a..b`, `..a`, `.well-known`) climb
//! nowhere on any server and stay allowed.

/// Rounds of percent-decoding a path may need before it is stable.
pub const MAX_DECODE_ROUNDS: usize = 4;

/// A path with a `.` or `..` segment, in any spelling a server may resolve.
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

/// Refuses dot segments in any spelling (see the module documentation).
pub fn check_path(path: &str) -> Result<(), DotSegment> {
    let decoded = fully_decoded(path.as_bytes())?;
    if decoded
        .split(|b| *b == b'/' || *b == b'\\')
        .any(is_dot_segment)
    {
        return Err(DotSegment);
    }
    Ok(())
}

/// The path after as many decoding rounds as change it.
fn fully_decoded(path: &[u8]) -> Result<Vec<u8>, DotSegment> {
    let mut current = path.to_vec();
    for _ in 0..=MAX_DECODE_ROUNDS {
        let next = ascii_forms(&percent_decoded(&current));
        if next == current {
            return Ok(current);
        }
        current = next;
    }
    Err(DotSegment)
}

fn is_dot_segment(segment: &[u8]) -> bool {
    let name = segment
        .split(|b| matches!(b, b';' | b'?' | b'#' | 0))
        .next()
        .unwrap_or_default();
    name.contains(&b'.') && name.iter().all(|b| matches!(b, b'.' | b' '))
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// One round of `%XX` and `%uXXXX` decoding; anything else is kept as it is.
fn percent_decoded(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' {
            let two = input
                .get(i + 1..i + 3)
                .and_then(|h| Some((hex(h[0])?, hex(h[1])?)));
            if let Some((high, low)) = two {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
            let wide = input
                .get(i + 1..i + 6)
                .filter(|u| u[0].eq_ignore_ascii_case(&b'u'))
                .and_then(|u| {
                    u[1..]
                        .iter()
                        .try_fold(0u32, |n, &b| Some(n << 4 | u32::from(hex(b)?)))
                })
                .and_then(char::from_u32);
            if let Some(c) = wide {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i += 6;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// UTF-8 sequences some server reads as `.`, `/` or `\`, as those bytes.
const LOOK_ALIKES: [(&[u8], &[u8]); 8] = [
    ("\u{ff0e}".as_bytes(), b"."),  // fullwidth full stop
    ("\u{fe52}".as_bytes(), b"."),  // small full stop
    ("\u{2024}".as_bytes(), b"."),  // one dot leader
    ("\u{2025}".as_bytes(), b".."), // two dot leader
    ("\u{ff0f}".as_bytes(), b"/"),  // fullwidth solidus
    ("\u{2215}".as_bytes(), b"/"),  // division slash
    ("\u{ff3c}".as_bytes(), b"\\"), // fullwidth reverse solidus
    ("\u{fe68}".as_bytes(), b"\\"), // small reverse solidus
];

/// Overlong UTF-8 encodings of ASCII (`C0 AE`, `E0 80 AE`, `F0 80 80 AE`)
/// and the look-alikes above, replaced by the ASCII they stand for.
fn ascii_forms(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if let Some((len, ascii)) = overlong_ascii(&input[i..]) {
            out.push(ascii);
            i += len;
        } else if let Some((from, to)) = LOOK_ALIKES.iter().find(|(f, _)| input[i..].starts_with(f))
        {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

/// An overlong UTF-8 sequence at the start of `bytes` whose code point is
/// ASCII: its length and that byte.
fn overlong_ascii(bytes: &[u8]) -> Option<(usize, u8)> {
    let len = match bytes.first()? {
        0xC0 | 0xC1 => 2,
        0xE0 => 3,
        0xF0 => 4,
        _ => return None,
    };
    let tail = bytes.get(1..len)?;
    if !tail.iter().all(|b| b & 0xC0 == 0x80) {
        return None;
    }
    let code = tail
        .iter()
        .fold(u32::from(bytes[0] & (0x7F >> len)), |n, b| {
            n << 6 | u32::from(b & 0x3F)
        });
    u8::try_from(code)
        .ok()
        .filter(u8::is_ascii)
        .map(|b| (len, b))
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
    }

    #[test]
    fn dot_segments_in_other_spellings_are_refused() {
        for bad in [
            // Path parameters (Tomcat, Jetty).
            "..;/admin",
            "a/..;jsessionid=1/b",
            "%2e%2e;/admin",
            "%2E%2E%3B/admin",
            ".;x",
            // Encoded more than once.
            "%252e%252e/admin",
            "%25252e%25252e%25252fadmin",
            "..%252fadmin",
            // Overlong UTF-8 and IIS %u forms of `.`, `/` and `\`.
            "%c0%ae%c0%ae/admin",
            "%C0%AE%C0%AE/admin",
            "%e0%80%ae%e0%80%ae/admin",
            "%f0%80%80%ae%f0%80%80%ae/admin",
            "..%c0%afadmin",
            "..%e0%80%afadmin",
            "a%c1%9c..%c1%9cb",
            "%u002e%u002e/admin",
            "..%u2215admin",
            // Look-alikes that normalisation folds.
            "%ef%bc%8e%ef%bc%8e/admin",
            "\u{ff0e}\u{ff0e}/admin",
            "\u{2025}/admin",
            "..\u{ff0f}admin",
            // Only dots, or dots and spaces; names cut at `?`, `#`, NUL.
            "...",
            "a/..../b",
            ". .",
            "a/.. /b",
            "..%00.png",
            "..%3f/x",
            "..%23/x",
        ] {
            assert_eq!(check_path(bad), Err(DotSegment), "{bad}");
        }
    }

    #[test]
    fn names_with_dots_that_climb_nowhere_are_allowed() {
        for ok in [
            "a..b",
            "..a/x",
            "a../x",
            ".well-known/x",
            "v1/search;jsessionid=1",
            "a;../b",
            "file.tar.gz",
            "100%25off",
            "%c0",
            "%e0%80",
            "%u12",
            "%",
            "caf%c3%a9",
            "\u{00e9}",
            " ",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn decoding_is_bounded() {
        let mut deep = "..".to_owned();
        for _ in 0..MAX_DECODE_ROUNDS {
            deep = deep.replace('%', "%25").replace('.', "%2e");
        }
        assert_eq!(check_path(&deep), Err(DotSegment), "{deep}");
        let mut name = "a".to_owned();
        for _ in 0..MAX_DECODE_ROUNDS {
            name = name.replace('%', "%25").replace('a', "%61");
        }
        assert_eq!(check_path(&name), Ok(()), "{name}");
        let too_deep = name.replace('%', "%25");
        assert_eq!(check_path(&too_deep), Err(DotSegment), "{too_deep}");
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
