//! Property tests for access-token verification, the parser every gateway
//! request meets first.
//!
//! Whatever arrives in `Authorization`, `verify` answers with claims or a
//! `TokenError` and never panics. Only a token this service signed, with the
//! pinned algorithm and a key it knows, verifies: not one with another `alg`
//! in its header (whatever signs it), not one signed by a stranger under our
//! `kid`, and not one that differs from an issued token in a single character.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::domain::properties::config;

fn service() -> TokenService {
    TokenService::new("https://kb.test".into(), &generate_pkcs8_pem(), &[], 30)
        .expect("a generated key loads")
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload` signed by `key` with Ed25519, whatever the header says.
fn signed_by(key: &SigningKey, header: &Value, payload: &[u8]) -> String {
    let message = format!("{}.{}", b64(header.to_string()), b64(payload));
    let signature = key.pair.sign(message.as_bytes());
    format!("{message}.{}", b64(signature.as_ref()))
}

fn our_header(svc: &TokenService, alg: &str) -> Value {
    json!({ "typ": "JWT", "alg": alg, "kid": svc.current_at(0).kid })
}

/// A token request as the broker makes them: any ids, either kind with its
/// origin rule kept, any lifetime up to a day.
fn token_request() -> impl Strategy<Value = (String, String, bool, i64)> {
    (
        any::<String>(),
        "[a-z]{2}_[0-9a-f]{0,32}",
        any::<bool>(),
        1..86_400i64,
    )
}

fn issue(
    svc: &TokenService,
    (instance_id, credential_id, browser, ttl_seconds): &(String, String, bool, i64),
    now: DateTime<Utc>,
) -> (String, Claims) {
    let request = TokenRequest {
        instance_id,
        credential_id,
        kind: if *browser {
            TokenKind::Browser
        } else {
            TokenKind::Server
        },
        origin: browser.then(|| "https://app.example.com".to_owned()),
        session: None,
        ttl_seconds: *ttl_seconds,
        session_ends_at: None,
    };
    svc.issue(request, now).expect("claims serialise")
}

/// The algorithm names of JOSE and of `jsonwebtoken`, in their usual
/// spellings and a few unusual ones, and arbitrary strings.
fn alg() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
            "ES256", "ES384", "PS256", "PS384", "PS512", "EdDSA", "eddsa", "EDDSA", "Ed25519",
            " EdDSA", "EdDSA ", "",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// Any JSON value, with the integers at the edges of `i64` that claims are.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>()].prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const CLAIM_NAMES: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "sid",
    "cred",
    "kind",
    "org",
    "auth_time",
];

/// Integers, often at the edges, where times are added to and compared.
fn edge_integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(i64::MAX)),
        Just(Value::from(i64::MIN)),
        (-60..60i64).prop_map(|d| Value::from(Utc::now().timestamp() + d)),
        (0..60i64).prop_map(|d| Value::from(i64::MAX - d)),
        (0..60i64).prop_map(|d| Value::from(i64::MIN + d)),
        Just(Value::from(u64::MAX)),
        any::<i64>().prop_map(Value::from),
    ]
}

/// Changes to a claims object: a claim removed (`None`) or given another
/// value, most often an integer.
fn claim_edits() -> impl Strategy<Value = Vec<(&'static str, Option<Value>)>> {
    prop::collection::vec(
        (
            prop::sample::select(CLAIM_NAMES.to_vec()),
            prop::option::weighted(0.9, prop_oneof![2 => edge_integer(), 1 => json_value()]),
        ),
        0..3,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn verify_refuses_arbitrary_strings(
        raw in any::<String>(),
        dotted in "(eyJ)?[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_=+/-]{0,90}",
    ) {
        let svc = service();
        prop_assert!(svc.verify(&raw, Utc::now()).is_err());
        prop_assert!(svc.verify(&dotted, Utc::now()).is_err());
    }

    #[test]
    fn verify_refuses_arbitrary_base64url_triples(
        header in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..80),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
        payload in prop::collection::vec(any::<u8>(), 0..120),
        signature in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let svc = service();
        let token = format!("{}.{}.{}", b64(header), b64(payload), b64(signature));
        prop_assert!(svc.verify(&token, Utc::now()).is_err());
    }

    /// The algorithm is pinned: a header naming any other one is refused even
    /// when our own key signed the token, and so are the classic forgeries
    /// (no signature, an HMAC keyed with the public key).
    #[test]
    fn only_the_pinned_algorithm_verifies(
        alg in alg(),
        request in token_request(),
        forgery in 0..4u8,
    ) {
        let svc = service();
        let now = Utc::now();
        let (issued, claims) = issue(&svc, &request, now);
        let payload = issued.split('.').nth(1).unwrap_or_default();
        let header = our_header(&svc, &alg);
        let message = format!("{}.{payload}", b64(header.to_string()));
        let public = &svc.current_at(0).public;
        let token = match forgery {
            0 => format!("{message}."),
            1 => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public);
                format!("{message}.{}", b64(ring::hmac::sign(&key, message.as_bytes())))
            }
            2 => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b64(public).as_bytes());
                format!("{message}.{}", b64(ring::hmac::sign(&key, message.as_bytes())))
            }
            _ => {
                let signature = svc.current_at(0).pair.sign(message.as_bytes());
                format!("{message}.{}", b64(signature.as_ref()))
            }
        };
        let verified = svc.verify(&token, now);
        if forgery == 3 && alg == "EdDSA" {
            prop_assert_eq!(verified.map(|c| (*c).clone()), Ok(claims));
        } else {
            prop_assert!(verified.is_err(), "alg {:?}, forgery {} verified", alg, forgery);
        }
    }

    /// An issued token verifies to its claims; change any one character and
    /// it does not, including the last one of the signature, whose low bits
    /// base64url leaves unused.
    #[test]
    fn only_issued_tokens_verify(
        request in token_request(),
        index in any::<prop::sample::Index>(),
        replacement in prop_oneof![
            4 => prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                    .chars()
                    .collect::<Vec<_>>()
            ),
            1 => any::<char>(),
        ],
    ) {
        let svc = service();
        let now = Utc::now();
        let (token, claims) = issue(&svc, &request, now);
        prop_assert_eq!(svc.verify(&token, now).map(|c| (*c).clone()), Ok(claims));

        let at = index.index(token.len());
        prop_assume!(char::from(token.as_bytes()[at]) != replacement);
        let mut changed = token.clone();
        changed.replace_range(at..=at, replacement.encode_utf8(&mut [0; 4]));
        prop_assert!(svc.verify(&changed, now).is_err(), "changed at {}: {}", at, changed);
    }

    /// Claims that only we could have signed: the right `kid` and a stranger's
    /// signature is refused, and so is a stranger's token under its own `kid`.
    #[test]
    fn tokens_signed_by_another_key_never_verify(request in token_request()) {
        let svc = service();
        let stranger = service();
        let now = Utc::now();
        let (theirs, claims) = issue(&stranger, &request, now);
        prop_assert_eq!(svc.verify(&theirs, now), Err(TokenError::UnknownKey));
        let payload = serde_json::to_vec(&claims).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let forged = signed_by(&stranger.current_at(0), &our_header(&svc, "EdDSA"), &payload);
        prop_assert_eq!(svc.verify(&forged, now), Err(TokenError::Invalid));
    }

    /// Payloads signed with our key, as only a bug or a stolen key would make
    /// them: any claim missing or of any type, or any bytes at all. `verify`
    /// never panics, and what it accepts has our issuer and audience, a
    /// browser origin rule that holds, and is current.
    #[test]
    fn signed_odd_payloads_never_panic(
        request in token_request(),
        edits in claim_edits(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let svc = service();
        let now = Utc::now();
        let (_, claims) = issue(&svc, &request, now);
        let mut object = serde_json::to_value(&claims).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (name, value) in edits {
            match (object.as_object_mut(), value) {
                (Some(map), Some(value)) => {
                    map.insert(name.to_owned(), value);
                }
                (Some(map), None) => {
                    map.remove(name);
                }
                (None, _) => {}
            }
        }
        let header = our_header(&svc, "EdDSA");
        for payload in [object.to_string().into_bytes(), raw.clone()] {
            let token = signed_by(&svc.current_at(0), &header, &payload);
            if let Ok(accepted) = svc.verify(&token, now) {
                prop_assert_eq!(&accepted.iss, svc.issuer());
                prop_assert_eq!(accepted.aud.as_str(), AUDIENCE);
                prop_assert_eq!(accepted.kind == TokenKind::Browser, accepted.org.is_some());
                prop_assert!(accepted.nbf.saturating_sub(30) <= now.timestamp());
                prop_assert!(accepted.exp.saturating_add(30) > now.timestamp());
            }
        }
    }
}
