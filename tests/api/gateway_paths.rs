//! Dot segments in every spelling a server may resolve (issue 10, finding 6):
//! refused by the gateway and by `/v1/verify` before any upstream is asked.

use crate::every_backend;
use crate::fixture::Fixture;
use crate::helpers::{spawn_app, Backend};

/// Tails after `/prod/search/` (or `/search/` for verify) that some server
/// resolves to a parent or current directory.
const TRAVERSALS: [&str; 14] = [
    "..;/chat/v1/chat",
    "..;jsessionid=1/chat",
    "%2e%2e;/chat",
    "%2E%2E%3B/chat",
    "%252e%252e/chat",
    "%25252e%25252e%25252fchat",
    "%c0%ae%c0%ae/chat",
    "%e0%80%ae%e0%80%ae/chat",
    "..%c0%afchat/v1/chat",
    "a%c1%9c..%c1%9cchat",
    ".../chat",
    "a/.%20/b",
    "%u002e%u002e/chat",
    "%ef%bc%8e%ef%bc%8e/chat",
];

/// Names with dots in them that climb nowhere.
const PLAIN_NAMES: [&str; 4] = ["a..b/c", "..a/x", ".well-known/x", "v1/search;jsessionid=1"];

async fn dot_segments_in_any_spelling_are_refused_by_the_gateway(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    let before = w.upstream.hits();
    for tail in TRAVERSALS {
        let reply = w.call(&format!("/prod/search/{tail}"), w.token()).await;
        assert_eq!(reply.status, 400, "{tail}: {}", reply.text);
        w.refused(&reply, 400, "invalid_path", before);
    }
    for tail in PLAIN_NAMES {
        let reply = w.call(&format!("/prod/search/{tail}"), w.token()).await;
        assert_eq!(reply.status, 200, "{tail}: {}", reply.text);
    }
    assert_eq!(w.upstream.hits(), before + PLAIN_NAMES.len());
}

async fn dot_segments_in_any_spelling_are_refused_by_verify(backend: Backend) {
    let w = Fixture::with_products(spawn_app(backend).await).await;
    for tail in TRAVERSALS {
        for uri in [format!("/search/{tail}"), format!("/prod/search/{tail}")] {
            let reply = w.verify(&uri, w.token()).await;
            assert_eq!(reply.status, 400, "{uri}: {}", reply.text);
            reply.assert_error(400, "invalid_path");
        }
    }
    for tail in PLAIN_NAMES {
        let reply = w.verify(&format!("/search/{tail}"), w.token()).await;
        assert_eq!(reply.status, 200, "{tail}: {}", reply.text);
    }
    assert_eq!(w.upstream.hits(), 0, "verify proxies nothing");
}

every_backend!(
    dot_segments_in_any_spelling_are_refused_by_the_gateway,
    dot_segments_in_any_spelling_are_refused_by_verify,
);
