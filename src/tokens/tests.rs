use super::*;

fn service() -> TokenService {
    TokenService::new("https://kb.test".into(), &generate_pkcs8_pem(), &[], 30).unwrap()
}

fn request() -> TokenRequest<'static> {
    TokenRequest {
        instance_id: "ins_1",
        credential_id: "sk_1",
        kind: TokenKind::Server,
        origin: None,
        session: None,
        ttl_seconds: 1200,
        session_ends_at: None,
    }
}

#[test]
fn issued_tokens_verify_and_carry_the_claims() {
    let svc = service();
    let now = Utc::now();
    let (token, claims) = svc.issue(request(), now).unwrap();
    let verified = svc.verify(&token, now).unwrap();
    assert_eq!(*verified, claims);
    assert_eq!(verified.exp - verified.iat, 1200);
}

/// A browser token is only ever valid from its origin: one without an
/// `org` claim (or a server token with one) is refused, even when signed
/// with the broker's key.
#[test]
fn kind_and_origin_must_agree() {
    let svc = service();
    let now = Utc::now();
    let browser_without_origin = TokenRequest {
        kind: TokenKind::Browser,
        ..request()
    };
    let server_with_origin = TokenRequest {
        origin: Some("https://example.com".into()),
        ..request()
    };
    for bad in [browser_without_origin, server_with_origin] {
        let (token, _) = svc.issue(bad, now).unwrap();
        assert_eq!(svc.verify(&token, now), Err(TokenError::Invalid));
    }
}

#[test]
fn signing_the_same_claims_gives_the_same_token() {
    let svc = service();
    let (token, claims) = svc.issue(request(), Utc::now()).unwrap();
    assert_eq!(svc.sign(&claims).unwrap(), token);
}

#[test]
fn a_token_from_another_key_is_unknown() {
    let now = Utc::now();
    let (token, _) = service().issue(request(), now).unwrap();
    assert_eq!(service().verify(&token, now), Err(TokenError::UnknownKey));
}

#[test]
fn expiry_follows_the_injected_clock() {
    let svc = service();
    let now = Utc::now();
    let (token, _) = svc.issue(request(), now).unwrap();
    let later = now + chrono::Duration::seconds(1200 + 30);
    assert_eq!(svc.verify(&token, later), Err(TokenError::Expired));
    let within_leeway = now + chrono::Duration::seconds(1200 + 29);
    assert!(svc.verify(&token, within_leeway).is_ok());
}

#[test]
fn cached_tokens_are_still_time_checked_and_exact() {
    let svc = service();
    let now = Utc::now();
    let (token, _) = svc.issue(request(), now).unwrap();
    assert!(svc.verify(&token, now).is_ok());
    // Second use comes from the cache, and still expires.
    let later = now + chrono::Duration::seconds(1200 + 30);
    assert_eq!(svc.verify(&token, later), Err(TokenError::Expired));
    // A token differing in one byte is not the cached one.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert!(svc.verify(&forged, now).is_err());
}

#[test]
fn tokens_from_the_future_are_not_valid_yet() {
    let svc = service();
    let now = Utc::now();
    let (token, _) = svc
        .issue(request(), now + chrono::Duration::seconds(31))
        .unwrap();
    assert_eq!(svc.verify(&token, now), Err(TokenError::NotYetValid));
    let (token, _) = svc
        .issue(request(), now + chrono::Duration::seconds(30))
        .unwrap();
    assert!(svc.verify(&token, now).is_ok());
}

#[test]
fn previous_keys_still_verify() {
    let old_pem = generate_pkcs8_pem();
    let old = TokenService::new("https://kb.test".into(), &old_pem, &[], 30).unwrap();
    let now = Utc::now();
    let (token, _) = old.issue(request(), now).unwrap();
    let rotated = TokenService::new(
        "https://kb.test".into(),
        &generate_pkcs8_pem(),
        &[old_pem],
        30,
    )
    .unwrap();
    assert!(rotated.verify(&token, now).is_ok());
    assert_eq!(
        rotated.jwks(Utc::now())["keys"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn pem_errors_are_named() {
    assert!(matches!(pem_to_der("nope"), Err(KeyError::NotPem)));
    let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----";
    assert!(matches!(pem_to_der(rsa), Err(KeyError::WrongPemLabel)));
}

/// Found by the property tests: `exp + leeway` overflowed (a panic in debug
/// builds, a wrap-around in release) for a token our key signed with an `exp`
/// at the end of time.
#[test]
fn times_that_overflow_with_the_leeway_are_invalid() {
    let svc = service();
    let now = Utc::now();
    let (_, claims) = svc.issue(request(), now).unwrap();
    for claims in [
        Claims {
            exp: i64::MAX,
            ..claims.clone()
        },
        Claims {
            nbf: i64::MIN,
            ..claims.clone()
        },
        Claims {
            iat: i64::MIN,
            ..claims.clone()
        },
    ] {
        let token = svc.sign(&claims).unwrap();
        assert_eq!(svc.verify(&token, now), Err(TokenError::Invalid));
    }
    let edge = Claims {
        exp: i64::MAX - 30,
        ..claims
    };
    assert!(svc.verify(&svc.sign(&edge).unwrap(), now).is_ok());
}

#[test]
fn tokens_dated_in_the_future_are_refused() {
    let svc = service();
    let now = Utc::now();
    let (_, mut claims) = svc.issue(request(), now).unwrap();
    claims.iat = now.timestamp() + 31;
    let token = svc.sign(&claims).unwrap();
    assert_eq!(svc.verify(&token, now), Err(TokenError::IssuedInFuture));
    // Once now catches up with it (within the leeway) it is accepted.
    let later = now + chrono::Duration::seconds(1);
    assert!(svc.verify(&token, later).is_ok());
}

#[test]
fn a_critical_header_parameter_is_refused() {
    let svc = service();
    let now = Utc::now();
    let (token, _) = svc.issue(request(), now).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let signed = |header: serde_json::Value| {
        let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let signature = svc.current_at(0).pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let kid = svc.current_at(0).kid.clone();
    let plain = signed(serde_json::json!({"alg": "EdDSA", "kid": kid}));
    assert!(svc.verify(&plain, now).is_ok());
    for crit in [
        serde_json::json!(["b64"]),
        serde_json::json!([]),
        serde_json::Value::Null,
    ] {
        let token =
            signed(serde_json::json!({"alg": "EdDSA", "kid": kid, "crit": crit, "b64": true}));
        assert_eq!(
            svc.verify(&token, now),
            Err(TokenError::CriticalHeader),
            "{crit}"
        );
    }
    // A header that is not a JSON object, or a token of four segments.
    let garbled = format!("{}.{payload}.AAAA", URL_SAFE_NO_PAD.encode("[1]"));
    assert_eq!(svc.verify(&garbled, now), Err(TokenError::Malformed));
    assert_eq!(
        svc.verify(&format!("{token}.x"), now),
        Err(TokenError::Malformed)
    );
}
