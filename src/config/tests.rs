use super::load::{Kind, ENV};
use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |var| owned.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = Settings::load_from(None, env_of(&[])).unwrap();
    assert_eq!(s.listen, "127.0.0.1:8080");
    assert_eq!(s.tokens.ttl_seconds, 1200);
    assert_eq!(s.tokens.leeway_seconds, 30);
    assert_eq!(s.domain_keys.propagation_seconds, 300);
    assert_eq!(s.http.header_timeout_ms, 5000);
    assert_eq!(s.http.body_timeout_ms, 5000);
    assert!(s.store.redis_url.is_none());
    assert_eq!(s.public_base_url(), "http://127.0.0.1:8080");
}

#[test]
fn environment_overrides_the_file() {
    let dir = std::env::temp_dir().join(format!("kb-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kb.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:9000\"\n[tokens]\nttl_seconds = 600\nleeway_seconds = 5\n",
    )
    .unwrap();
    let s = Settings::load_from(
        Some(&file),
        env_of(&[("KEYBROKER_TOKEN_TTL_SECONDS", "900")]),
    )
    .unwrap();
    assert_eq!(s.listen, "0.0.0.0:9000");
    assert_eq!(s.tokens.ttl_seconds, 900);
    assert_eq!(s.tokens.leeway_seconds, 5);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn every_environment_variable_names_a_real_setting() {
    for &(var, _, kind) in ENV {
        let value = match kind {
            Kind::Text => "127.0.0.1:1",
            Kind::Number => "7",
            Kind::Bool => "true",
            Kind::List => "127.0.0.1, 10.0.0.0/8",
        };
        let loaded = Settings::load_from(None, env_of(&[(var, value)]));
        assert!(loaded.is_ok(), "{var}: {:?}", loaded.err());
    }
    let s = Settings::load_from(
        None,
        env_of(&[("KEYBROKER_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]),
    )
    .unwrap();
    assert_eq!(s.http.trusted_proxies, vec!["127.0.0.1", "10.0.0.0/8"]);
}

#[test]
fn the_console_switch_reads_booleans() {
    assert!(Settings::default().console.enabled);
    let off = Settings::load_from(None, env_of(&[("KEYBROKER_CONSOLE", "false")])).unwrap();
    assert!(!off.console.enabled);
    let e = Settings::load_from(None, env_of(&[("KEYBROKER_CONSOLE", "maybe")]));
    assert!(matches!(e, Err(ConfigError::EnvBool { .. })));
}

#[test]
fn unknown_keys_and_bad_numbers_are_refused() {
    let e = Settings::load_from(None, env_of(&[("KEYBROKER_LEEWAY_SECONDS", "soon")]));
    assert!(matches!(e, Err(ConfigError::EnvNumber { .. })));
    let dir = std::env::temp_dir().join(format!("kb-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kb.toml");
    std::fs::write(&file, "[tokens]\nttl = 5\n").unwrap();
    assert!(Settings::load_from(Some(&file), env_of(&[])).is_err());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn weak_or_missing_secrets_fail_validation() {
    let mut s = Settings::default();
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("admin token"));
    s.admin.token = Some(Sensitive::new("short"));
    assert!(s.validate().unwrap_err().to_string().contains("too short"));
    s.admin.token = Some(Sensitive::new("a".repeat(32)));
    assert!(s.validate().unwrap_err().to_string().contains("pepper"));
    s.secrets.pepper = Some(Sensitive::new("p".repeat(32)));
    assert!(s.validate().is_ok());
    assert!(s.signing_key_pem().is_err());
}

#[test]
fn the_verify_uri_header_is_one_valid_header_name() {
    let mut s = Settings::default();
    s.admin.token = Some(Sensitive::new("a".repeat(32)));
    s.secrets.pepper = Some(Sensitive::new("p".repeat(32)));
    assert_eq!(s.verify.uri_header, "X-Original-URI");
    assert_eq!(
        s.verify.method_header().as_deref(),
        Some("X-Original-Method")
    );
    let s = Settings {
        verify: VerifySettings {
            uri_header: "X-Forwarded-Uri".into(),
        },
        ..s
    };
    assert!(s.validate().is_ok());
    assert_eq!(
        s.verify.method_header().as_deref(),
        Some("X-Forwarded-Method")
    );
    for bad in ["", "X Original", "X-Original-URI:", "é"] {
        let s = Settings {
            verify: VerifySettings {
                uri_header: bad.into(),
            },
            ..s.clone()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("verify.uri_header"), "{bad:?}: {e}");
    }
    let loaded = Settings::load_from(
        None,
        env_of(&[("KEYBROKER_VERIFY_URI_HEADER", "X-Forwarded-Uri")]),
    )
    .unwrap();
    assert_eq!(loaded.verify.uri_header, "X-Forwarded-Uri");
}

#[test]
fn upstreams_allow_private_is_off_unless_said() {
    assert!(!Settings::default().upstreams.allow_private);
    for (raw, expected) in [
        ("true", true),
        ("1", true),
        ("ON", true),
        ("false", false),
        ("0", false),
    ] {
        let s = Settings::load_from(None, env_of(&[("KEYBROKER_UPSTREAMS_ALLOW_PRIVATE", raw)]))
            .unwrap();
        assert_eq!(s.upstreams.allow_private, expected, "{raw}");
    }
    let e = Settings::load_from(
        None,
        env_of(&[("KEYBROKER_UPSTREAMS_ALLOW_PRIVATE", "maybe")]),
    );
    assert!(matches!(e, Err(ConfigError::EnvBool { .. })), "{e:?}");
}

#[test]
fn request_timeouts_come_from_the_environment_and_must_be_positive() {
    let s = Settings::load_from(
        None,
        env_of(&[
            ("KEYBROKER_HTTP_HEADER_TIMEOUT_MS", "1500"),
            ("KEYBROKER_HTTP_BODY_TIMEOUT_MS", "2500"),
        ]),
    )
    .unwrap();
    assert_eq!(s.http.header_timeout_ms, 1500);
    assert_eq!(s.http.body_timeout_ms, 2500);

    let mut s = Settings::default();
    s.admin.token = Some(Sensitive::new("a".repeat(32)));
    s.secrets.pepper = Some(Sensitive::new("p".repeat(32)));
    s.http.body_timeout_ms = 0;
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("http.body_timeout_ms"));
    s.http.body_timeout_ms = 1;
    s.http.header_timeout_ms = 0;
    assert!(s
        .validate()
        .unwrap_err()
        .to_string()
        .contains("http.header_timeout_ms"));
}

#[test]
fn the_cluster_backend_is_one_choice_with_redis_seeds_and_a_sealing_key() {
    let nodes = "redis://10.0.0.1:6379, redis://10.0.0.2:6379";
    let mut s =
        Settings::load_from(None, env_of(&[("KEYBROKER_REDIS_CLUSTER_NODES", nodes)])).unwrap();
    assert_eq!(
        s.cluster_nodes(),
        Some(vec![
            "redis://10.0.0.1:6379".to_owned(),
            "redis://10.0.0.2:6379".to_owned()
        ])
    );
    assert!(s.shared_store());
    s.admin.token = Some(Sensitive::new("a".repeat(32)));
    s.secrets.pepper = Some(Sensitive::new("p".repeat(32)));
    let refused = |s: &Settings| s.validate().unwrap_err().to_string();
    assert!(refused(&s).contains("key-encryption key"));
    s.signing.key_encryption_key = Some(Sensitive::new(
        "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=",
    ));
    assert!(s.validate().is_ok());

    s.store.redis_url = Some(Sensitive::new("redis://127.0.0.1:6379"));
    assert!(refused(&s).contains("not both"));
    s.store.redis_url = None;
    for bad in ["10.0.0.1:6379", "redis://10.0.0.1:6379,http://x", ""] {
        s.store.redis_cluster_nodes = Some(Sensitive::new(bad));
        assert!(refused(&s).contains("redis://host:port"), "{bad}");
    }
}
