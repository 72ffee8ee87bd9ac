//! Rate limits and revocations across real broker processes on one Redis,
//! where product requests are answered from each process's local view and
//! quota leases: the total allowed never passes the limit, and a revocation
//! answered through one process is refused by another on the next request.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::helpers::{claims_of, free_port, ADMIN_TOKEN};
use crate::processes::{exchange_secret, production_env, start, Broker};
use crate::redis_server::RedisServer;

async fn brokers(redis: &RedisServer, n: usize) -> Vec<Broker> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut env = production_env(free_port(), redis.url());
        // One issuer for every process, as behind a load balancer.
        env.push(("KEYBROKER_PUBLIC_BASE_URL", "http://broker.test".into()));
        out.push(start(&env).await);
    }
    out
}

/// Creates an instance with one product (`search`, these settings) and
/// returns its id, API key and secret.
async fn instance(client: &awc::Client, base: &str, product: Value) -> (String, String, String) {
    let mut created = client
        .post(format!("{base}/admin/v1/instances"))
        .bearer_auth(ADMIN_TOKEN)
        .send_json(&json!({"name": "exactness", "products": {"search": product}}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let field = |path: &[&str]| {
        let mut v = &created;
        for p in path {
            v = &v[*p];
        }
        v.as_str().unwrap().to_owned()
    };
    (
        field(&["id"]),
        field(&["api_key"]),
        field(&["secret", "value"]),
    )
}

async fn verify(client: &awc::Client, base: &str, api_key: &str, token: &str) -> (u16, Value) {
    let mut reply = client
        .get(format!("{base}/v1/verify"))
        .insert_header(("x-inbenta-key", api_key))
        .insert_header(("x-original-uri", "/search/v1/search"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let body = reply.body().await.unwrap();
    (
        reply.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every process sends as fast as it can for `seconds` inside one minute
/// window; returns how many requests were allowed, and how many answered.
async fn hammer(bases: &[String], api_key: &str, token: &str, seconds: u64) -> (u64, u64) {
    // Stay inside one minute window, with room to spare.
    if unix_seconds() % 60 > 60 - seconds - 10 {
        let wait = 61 - unix_seconds() % 60;
        actix_web::rt::time::sleep(Duration::from_secs(wait)).await;
    }
    let minute = unix_seconds() / 60;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut loops = Vec::new();
    for base in bases {
        for _ in 0..6 {
            let (base, api_key, token) = (base.clone(), api_key.to_owned(), token.to_owned());
            loops.push(actix_web::rt::spawn(async move {
                let client = awc::Client::default();
                let (mut allowed, mut answered) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let (status, body) = verify(&client, &base, &api_key, &token).await;
                    answered += 1;
                    match status {
                        200 => allowed += 1,
                        429 => {}
                        _ => panic!("{base}: {status} {body}"),
                    }
                }
                (allowed, answered)
            }));
        }
    }
    let mut total = (0, 0);
    for l in loops {
        let (allowed, answered) = l.await.unwrap();
        total.0 += allowed;
        total.1 += answered;
    }
    assert_eq!(
        unix_seconds() / 60,
        minute,
        "the run crossed a minute window"
    );
    total
}

/// Three processes, one token, every process as fast as it can: the
/// processes together allow the limit, never more, and lose at most 2 % of
/// it to units leased and not spent. Once for a minute limit, once for a
/// daily cap.
#[actix_web::test]
async fn limit_exactness() {
    let redis = RedisServer::start();
    let procs = brokers(&redis, 3).await;
    let bases: Vec<String> = procs.iter().map(|b| b.base.clone()).collect();
    let client = awc::Client::default();
    for (window, product, limit) in [
        (
            "minute",
            json!({"upstream": "http://127.0.0.1:9", "rate_limit_per_minute": 2_500}),
            2_500u64,
        ),
        (
            "day",
            json!({"upstream": "http://127.0.0.1:9", "rate_limit_per_minute": 1_000_000, "daily_cap": 2_000}),
            2_000u64,
        ),
    ] {
        let (_, api_key, secret) = instance(&client, &bases[0], product).await;
        let token = exchange_secret(&client, &bases[0], &api_key, &secret).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let (allowed, answered) = hammer(&bases, &api_key, &token, 6).await;
        assert!(
            answered > limit + limit / 2,
            "{window}: too few requests ({answered}) to exhaust the limit"
        );
        assert!(
            allowed <= limit,
            "{window}: {allowed} allowed, over the limit of {limit}"
        );
        assert!(
            allowed * 100 >= limit * 98,
            "{window}: only {allowed} of {limit} allowed"
        );
        // And the window stays closed.
        for base in &bases {
            let (status, body) = verify(&client, base, &api_key, &token).await;
            assert_eq!(status, 429, "{body}");
            assert_eq!(body["error"]["limit"], json!(window));
        }
    }
}

/// A token is warm on B (its revocation state and a lease held locally);
/// it is revoked through A, and B must refuse it on the request sent right
/// after A's answer, which says both processes applied the revocation.
#[actix_web::test]
async fn revocation_next_request() {
    let redis = RedisServer::start();
    let procs = brokers(&redis, 2).await;
    let (a, b) = (&procs[0].base, &procs[1].base);
    let client = awc::Client::default();
    let (id, api_key, secret) = instance(
        &client,
        a,
        json!({"upstream": "http://127.0.0.1:9", "rate_limit_per_minute": 1_000_000}),
    )
    .await;
    for trial in 0..40 {
        let token = exchange_secret(&client, a, &api_key, &secret).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..3 {
            let (status, body) = verify(&client, b, &api_key, &token).await;
            assert_eq!(status, 200, "trial {trial}: {body}");
        }
        let mut revoked = client
            .post(format!("{a}/admin/v1/instances/{id}/revoke-tokens"))
            .bearer_auth(ADMIN_TOKEN)
            .send_json(&json!({"jti": claims_of(&token)["jti"]}))
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        let revoked: Value = revoked.json().await.unwrap();
        assert_eq!(revoked["processes"], json!(2), "{revoked}");
        assert_eq!(revoked["acknowledged"], json!(2), "{revoked}");
        let (status, body) = verify(&client, b, &api_key, &token).await;
        assert_eq!(
            status, 401,
            "trial {trial}: B still accepts the token: {body}"
        );
        assert_eq!(body["error"]["reason"], json!("token_revoked"));
    }
}
