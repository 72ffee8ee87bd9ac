//! The SDK is served from the binary (SPEC §10): cacheable, revalidated by a
//! strong ETag, importable from any origin, and byte for byte the file whose
//! SRI hash the README documents.

use base64::Engine;
use ring::digest;

use crate::helpers::{spawn_app, Backend};

const JS: &str = include_str!("../../sdk/keybroker.js");
const D_TS: &str = include_str!("../../sdk/keybroker.d.ts");

#[actix_web::test]
async fn the_sdk_is_served_with_etag_cache_control_and_open_cors() {
    let app = spawn_app(Backend::Memory).await;
    for (path, body, content_type) in [
        ("/sdk/keybroker.js", JS, "text/javascript; charset=utf-8"),
        (
            "/sdk/keybroker.d.ts",
            D_TS,
            "application/typescript; charset=utf-8",
        ),
    ] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.text, body, "{path} is the file in sdk/");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=300"),
            "{path}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            reply.header("cross-origin-resource-policy"),
            Some("cross-origin"),
            "{path}"
        );
        let etag = reply.header("etag").expect("an ETag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "a strong ETag: {etag}"
        );

        let revalidated = app
            .send(
                app.client
                    .get(app.url(path))
                    .insert_header(("if-none-match", format!("\"other\", {etag}"))),
                None,
            )
            .await;
        assert_eq!(revalidated.status, 304, "{path}");
        assert!(revalidated.text.is_empty());
        assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
        assert_eq!(
            revalidated.header("cache-control"),
            Some("public, max-age=300")
        );

        let stale = app
            .send(
                app.client
                    .get(app.url(path))
                    .insert_header(("if-none-match", "\"0123456789abcdef\"")),
                None,
            )
            .await;
        assert_eq!(stale.status, 200, "{path}");
        assert_eq!(stale.text, body);
    }
    let other = app.get("/sdk/other.js").await;
    assert_eq!(other.status, 404);
}

/// The `integrity` attribute the README shows is the served file's SHA-384.
#[actix_web::test]
async fn the_readme_documents_the_served_files_sri_hash() {
    let app = spawn_app(Backend::Memory).await;
    let served = app.get("/sdk/keybroker.js").await;
    assert_eq!(served.status, 200);
    let sum = digest::digest(&digest::SHA384, served.text.as_bytes());
    let expected = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(sum.as_ref())
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let documented: Vec<&str> = readme
        .split("integrity=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(
        !documented.is_empty(),
        "README.md shows the SDK snippet with integrity=\"{expected}\""
    );
    for hash in documented {
        assert_eq!(
            hash, expected,
            "README.md's SRI hash is stale; sdk/keybroker.js now hashes to {expected}"
        );
    }
}
