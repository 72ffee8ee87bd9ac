//! Bad input gets the documented status and error body, and changes nothing.

use serde_json::json;

use crate::every_backend;
use crate::helpers::{spawn_app, Backend, Body};

async fn malformed_auth_bodies_get_400s(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let post = || {
        app.client
            .post(app.url("/v1/auth"))
            .insert_header(("x-inbenta-key", created.api_key.as_str()))
    };
    let json_cases: [(&[u8], &str); 6] = [
        (b"{\"secret\": ", "invalid_json"),
        (b"[1,2,3]", "invalid_json"),
        (b"{\"secret\": 42}", "invalid_json"),
        (b"{}", "missing_credential"),
        (
            b"{\"secret\": \"a\", \"domain_key\": \"b\"}",
            "conflicting_credentials",
        ),
        (
            b"{\"domain_key\": \"a\", \"domainKey\": \"b\"}",
            "conflicting_credentials",
        ),
    ];
    for (body, reason) in json_cases {
        let reply = app
            .send(
                post(),
                Some(Body::Raw(Some("application/json"), body.to_vec())),
            )
            .await;
        assert_eq!(
            reply.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            reply.text
        );
        assert_eq!(reply.reason(), reason);
    }
    let reply = app
        .send(
            post(),
            Some(Body::Raw(
                Some("application/x-www-form-urlencoded"),
                b"secret=a&domain_key=b".to_vec(),
            )),
        )
        .await;
    reply.assert_error(400, "conflicting_credentials");
    let reply = app.send(post(), None).await;
    reply.assert_error(400, "missing_credential");
}

async fn unsupported_content_types_get_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let request = app
            .client
            .post(app.url("/v1/auth"))
            .insert_header(("x-inbenta-key", created.api_key.as_str()));
        let body = format!("{{\"secret\":\"{}\"}}", created.secret).into_bytes();
        let reply = app.send(request, Some(Body::Raw(content_type, body))).await;
        reply.assert_error(415, "unsupported_media_type");
    }
    // Admin routes take JSON only.
    let request = app
        .client
        .post(app.url("/admin/v1/instances"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN);
    let reply = app
        .send(
            request,
            Some(Body::Raw(
                Some("application/x-www-form-urlencoded"),
                b"name=x".to_vec(),
            )),
        )
        .await;
    reply.assert_error(415, "unsupported_media_type");
}

async fn huge_bodies_get_413_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.create_instance().await;
    let huge = format!(
        "{{\"secret\":\"{}\",\"pad\":\"{}\"}}",
        created.secret,
        "x".repeat(64 * 1024)
    );
    let request = app
        .client
        .post(app.url("/v1/auth"))
        .insert_header(("x-inbenta-key", created.api_key.as_str()));
    let reply = app
        .send(
            request,
            Some(Body::Raw(Some("application/json"), huge.into_bytes())),
        )
        .await;
    reply.assert_error(413, "payload_too_large");

    let huge_name = json!({"name": "n".repeat(64 * 1024)});
    let reply = app
        .admin("POST", "/admin/v1/instances", Some(huge_name))
        .await;
    reply.assert_error(413, "payload_too_large");
    let list = app.admin("GET", "/admin/v1/instances", None).await;
    assert_eq!(list.body["instances"].as_array().unwrap().len(), 1);
}

async fn unknown_routes_and_methods_get_json_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/v2/nothing")
        .await
        .assert_error(404, "route_not_found");
    app.get("/v1/auth")
        .await
        .assert_error(405, "method_not_allowed");
    let reply = app
        .send(app.client.delete(app.url("/v1/refreshToken")), None)
        .await;
    reply.assert_error(405, "method_not_allowed");
}

/// RFC 9110: a 405 lists the methods the path takes in `Allow`.
async fn a_405_names_the_methods_the_path_takes(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app.get("/v1/auth").await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = app
        .send(app.client.put(app.url("/admin/v1/instances/ins_x")), None)
        .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET, PATCH, DELETE"));
    // An OPTIONS that is not a CORS preflight.
    let reply = app
        .send(
            app.client
                .request(awc::http::Method::OPTIONS, app.url("/v1/apis")),
            None,
        )
        .await;
    reply.assert_error(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET"));
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app.get("/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id").map(str::len), Some(32));
    let request = app
        .client
        .get(app.url("/healthz"))
        .insert_header(("x-request-id", "abc-123"));
    let reply = app.send(request, None).await;
    assert_eq!(reply.header("x-request-id"), Some("abc-123"));
}

async fn ops_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.body, json!({"status": "ok"}));
    assert_eq!(app.get("/readyz").await.body, json!({"status": "ready"}));
    let created = app.create_instance().await;
    app.auth_with_secret(&created.api_key, &created.secret)
        .await;
    app.auth_with_secret(&created.api_key, "kb_sk_wrong").await;
    let metrics = app.get("/metrics").await.text;
    assert!(
        metrics.contains("keybroker_auth_succeeded_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keybroker_auth_failed_total 1"),
        "{metrics}"
    );
}

every_backend!(
    malformed_auth_bodies_get_400s,
    unsupported_content_types_get_415,
    huge_bodies_get_413_and_change_nothing,
    unknown_routes_and_methods_get_json_errors,
    a_405_names_the_methods_the_path_takes,
    every_response_carries_a_request_id,
    ops_endpoints,
);

/// Redis down: readiness says so, requests fail closed with 503, and service
/// comes back by itself.
///
/// One node only: a cluster has no single Redis to stop and restart; its
/// counterpart is the failover test in `cluster.rs`.
#[actix_web::test]
async fn redis_outage_is_503_and_recovers() {
    let app = spawn_app(Backend::Redis).await;
    let created = app.create_instance().await;
    app.redis().stop();
    app.get("/readyz")
        .await
        .assert_error(503, "store_unavailable");
    app.auth_with_secret(&created.api_key, &created.secret)
        .await
        .assert_error(503, "store_unavailable");
    app.redis().restart();
    // The restarted server is empty (it keeps nothing on disk), but reachable.
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz").await.status == 200 {
            ready = true;
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the broker did not reconnect to Redis");
}
