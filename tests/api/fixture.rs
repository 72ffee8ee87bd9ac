//! The fixture of the gateway, revocation, experience and limit tests: an app,
//! a real upstream that counts what reaches it, and an instance on the app.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keybroker::clock::Clock;
use keybroker::tokens::{TokenKind, TokenRequest, TokenService};
use serde_json::{json, Value};

use crate::helpers::{claims_of, signing_key_pem, Body, Created, Reply, TestApp};
use crate::upstream::TestUpstream;

pub struct Fixture {
    pub app: TestApp,
    pub upstream: TestUpstream,
    pub created: Created,
    /// A server token for `created`; only [`Fixture::with_products`] makes one,
    /// so that [`Fixture::bare`] leaves usage and audit untouched.
    token: Option<String>,
}

/// How an experience token is sent.
#[derive(Clone, Copy)]
pub enum TokenHeader {
    AccessToken,
    Bearer,
}

impl Fixture {
    /// An instance whose `search` and `chat` products are the upstream, and a
    /// server token for it.
    pub async fn with_products(app: TestApp) -> Fixture {
        let upstream = TestUpstream::start();
        let created = app
            .create_instance_with(json!({
                "name": "gateway",
                "products": {
                    "search": {"upstream": format!("{}/api", upstream.base)},
                    "chat": {"upstream": format!("{}/chat", upstream.base)},
                }
            }))
            .await;
        let reply = app
            .auth_with_secret(&created.api_key, &created.secret)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let token = reply.body["accessToken"].as_str().unwrap().to_owned();
        Fixture {
            app,
            upstream,
            created,
            token: Some(token),
        }
    }

    /// An instance with no products yet, and no token: experiences are added
    /// with [`Fixture::experience`].
    pub async fn bare(app: TestApp) -> Fixture {
        let upstream = TestUpstream::start();
        let created = app
            .create_instance_with(json!({"name": "experiences"}))
            .await;
        Fixture {
            app,
            upstream,
            created,
            token: None,
        }
    }

    /// The server token made by [`Fixture::with_products`].
    #[track_caller]
    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .expect("Fixture::with_products makes the token")
    }

    /// A gateway call with the instance's API key and `token` as bearer.
    pub async fn call(&self, path: &str, token: &str) -> Reply {
        self.call_from(path, token, &self.created.api_key, None)
            .await
    }

    pub async fn call_from(
        &self,
        path: &str,
        token: &str,
        api_key: &str,
        origin: Option<&str>,
    ) -> Reply {
        let mut request = self
            .app
            .client
            .get(self.app.url(path))
            .insert_header(("x-inbenta-key", api_key))
            .bearer_auth(token);
        if let Some(origin) = origin {
            request = request.insert_header(("origin", origin));
        }
        self.app.send(request, None).await
    }

    pub async fn verify(&self, original_uri: &str, token: &str) -> Reply {
        let request = self
            .app
            .client
            .get(self.app.url("/v1/verify"))
            .insert_header(("x-original-uri", original_uri))
            .insert_header(("x-inbenta-key", self.created.api_key.as_str()))
            .bearer_auth(token);
        self.app.send(request, None).await
    }

    pub async fn introspect(&self, token: &str) -> Reply {
        self.introspect_as(token, &self.created.secret).await
    }

    pub async fn introspect_as(&self, token: &str, secret: &str) -> Reply {
        self.introspect_on(&self.app, token, secret).await
    }

    /// Introspection through `app`, which may be another process than `self.app`.
    pub async fn introspect_on(&self, app: &TestApp, token: &str, secret: &str) -> Reply {
        let basic = STANDARD.encode(format!("{}:{secret}", self.created.api_key));
        let request = app
            .client
            .post(app.url("/v1/introspect"))
            .insert_header(("authorization", format!("Basic {basic}")));
        let form = format!("token={token}");
        app.send(
            request,
            Some(Body::Raw(
                Some("application/x-www-form-urlencoded"),
                form.into_bytes(),
            )),
        )
        .await
    }

    /// Asserts the refusal and that the upstream was not reached.
    #[track_caller]
    pub fn refused(&self, reply: &Reply, status: u16, reason: &str, before: usize) {
        reply.assert_error(status, reason);
        assert_eq!(self.upstream.hits(), before, "the upstream was reached");
    }

    /// A new server token of the instance's first secret.
    pub async fn fresh_token(&self) -> String {
        let reply = self
            .app
            .auth_with_secret(&self.created.api_key, &self.created.secret)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["accessToken"].as_str().unwrap().to_owned()
    }

    /// The server token is refused, with `status` and `reason`, by the
    /// gateway (the upstream not reached) and by `/v1/verify` for the
    /// original URI `verify_uri`.
    pub async fn token_refused_everywhere(&self, verify_uri: &str, status: u16, reason: &str) {
        let before = self.upstream.hits();
        self.refused(
            &self.call("/prod/search/v1/search", self.token()).await,
            status,
            reason,
            before,
        );
        self.verify(verify_uri, self.token())
            .await
            .assert_error(status, reason);
    }

    fn signer(&self) -> TokenService {
        TokenService::new(self.app.address.clone(), signing_key_pem(), &[], 30).unwrap()
    }

    /// A token signed with the broker's real key, for this instance, at `at`.
    pub fn token_at(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.sign_with(&self.signer(), at)
    }

    /// A server token for this instance's secret, signed by `signer` at `at`.
    pub fn sign_with(&self, signer: &TokenService, at: chrono::DateTime<chrono::Utc>) -> String {
        let claims = claims_of(self.token());
        signer
            .issue(
                TokenRequest {
                    instance_id: &self.created.id,
                    credential_id: claims["cred"].as_str().unwrap(),
                    kind: TokenKind::Server,
                    origin: None,
                    session: None,
                    ttl_seconds: 1200,
                    session_ends_at: None,
                },
                at,
            )
            .unwrap()
            .0
    }

    /// Deletes an experience; the admin API's status.
    pub async fn delete_experience(&self, slug: &str) -> u16 {
        self.app
            .admin("DELETE", &self.experience_path(&format!("/{slug}")), None)
            .await
            .status
    }

    /// The admin path of this instance's experiences, followed by `tail`.
    pub fn experience_path(&self, tail: &str) -> String {
        format!("/admin/v1/instances/{}/experiences{tail}", self.created.id)
    }

    /// Creates an experience (on the upstream unless `body` names one);
    /// returns (body, token value).
    pub async fn experience(&self, body: Value) -> (Value, String) {
        let mut body = body;
        if body.get("upstream").is_none() {
            body["upstream"] = json!(format!(
                "{}/{}",
                self.upstream.base,
                body["slug"].as_str().unwrap()
            ));
        }
        let reply = self
            .app
            .admin("POST", &self.experience_path(""), Some(body))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let token = reply.body["token"]["value"].as_str().unwrap().to_owned();
        (reply.body, token)
    }

    /// A gateway call with an experience token sent `how`, and `extra` headers.
    pub async fn call_xt(
        &self,
        path: &str,
        token: &str,
        how: TokenHeader,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.app.client.get(self.app.url(path));
        request = match how {
            TokenHeader::AccessToken => request.insert_header(("x-access-token", token)),
            TokenHeader::Bearer => request.bearer_auth(token),
        };
        for (name, value) in extra {
            request = request.insert_header((*name, *value));
        }
        self.app.send(request, None).await
    }

    /// A gateway GET with an experience token in `X-Access-Token`.
    pub async fn get_xt(&self, path: &str, token: &str) -> Reply {
        self.call_xt(path, token, TokenHeader::AccessToken, &[])
            .await
    }
}

/// Moves the clock to one second past the next minute boundary, so that a test
/// of per-minute counting does not straddle two windows.
pub fn start_of_a_minute(app: &TestApp) {
    let ms = app.clock.now().timestamp_millis();
    app.clock
        .advance_millis(60_000 - ms.rem_euclid(60_000) + 1_000);
}
