//! Every script and transaction touches keys of one hash slot, so that no
//! request meets `CROSSSLOT` on a Redis Cluster (SPEC §13). The keys are
//! built by the same functions the store uses; the slot is Redis Cluster's
//! CRC16 rule (`Slot::for_key`). A script file without a case here fails
//! the test, so a new script cannot skip it.

use std::collections::BTreeSet;

use redis::cluster_routing::Slot;

use super::{gateway, RedisStore};
use crate::domain::credential::CredentialHasher;
use crate::store::{Caller, GatewayCheck, Revocation, Step, Window};

/// Ids of the shapes the broker makes, and ones chosen to land elsewhere.
const INSTANCES: [&str; 3] = [
    "ins_15f3c98bea114e9dacf2902c7b182c13",
    "ins_00000000000000000000000000000000",
    "ins_ffffffffffffffffffffffffffffffff",
];

fn windows() -> Vec<Window> {
    ["min:search:cred:ip:29000000", "day:search:cred:20000"]
        .iter()
        .map(|suffix| Window {
            suffix: (*suffix).to_owned(),
            limit: 60,
            ttl_ms: 60_000,
        })
        .collect()
}

/// The key sets of each script, by script file name.
fn script_keys(store: &RedisStore, script: &str, id: &str) -> Vec<Vec<String>> {
    let cred = "sk_88adb23d4dc44da99875f0a382b61caf";
    let revocations = [
        Revocation::Token { jti: "jti-1" },
        Revocation::Session { sid: "sid-1" },
        Revocation::Credential {
            id: cred,
            before: 1,
        },
        Revocation::Instance { before: 1 },
    ];
    let windows = windows();
    let counters = |scope: Option<&str>| -> Vec<String> {
        windows
            .iter()
            .map(|w| store.counter_key(scope, &w.suffix))
            .collect()
    };
    match script {
        "update_field.lua" => vec![vec![store.cred_key(id, cred)]],
        "revoke_at.lua" => revocations
            .iter()
            .map(|r| vec![store.revocation_key(id, r)])
            .collect(),
        "hit.lua" => vec![counters(Some(id)), counters(None)],
        "add_usage.lua" => {
            let mut keys = vec![store.usage_key(id), store.instance_key(id)];
            for step in Step::ALL {
                keys.push(store.usage_series_key(id, step.name(), step.bucket(1_796_000_000)));
            }
            vec![keys]
        }
        "append_audit.lua" => vec![vec![store.audit_key(id), store.instance_key(id)]],
        "update_instance.lua" => vec![vec![store.instance_key(id), store.epoch_key(id)]],
        "heartbeat.lua" => vec![vec![store.processes_key()]],
        // Not a script of its own: the first part of the two below.
        "read_caller.lua" => Vec::new(),
        // The lease script takes the gateway check's keys.
        "gateway_check.lua" | "lease.lua" => {
            let token = GatewayCheck {
                instance_id: id,
                caller: Caller::Token {
                    jti: "jti-1",
                    sid: "sid-1",
                    credential_id: cred,
                },
                windows: &windows,
            };
            let experience = GatewayCheck {
                instance_id: id,
                caller: Caller::Experience {
                    credential_id: "xt_88adb23d4dc44da99875f0a382b61caf",
                },
                windows: &windows,
            };
            vec![
                gateway::keys(store, &token),
                gateway::keys(store, &experience),
            ]
        }
        "ring_bootstrap.lua" => vec![vec![store.ring_key()]],
        other => panic!("scripts/{other} has no case in slots.rs: add the keys it is called with"),
    }
}

/// The transactions (`MULTI`) and pipelines of several keys.
fn transaction_keys(store: &RedisStore, id: &str) -> Vec<Vec<String>> {
    let cred = "sk_88adb23d4dc44da99875f0a382b61caf";
    vec![
        // An instance's own keys, written and deleted together.
        vec![
            store.instance_key(id),
            store.epoch_key(id),
            store.creds_key(id),
            store.cred_key(id, cred),
            store.usage_key(id),
            store.audit_key(id),
        ],
        // A credential with its instance's epoch.
        vec![store.cred_key(id, cred), store.epoch_key(id)],
        // A ring write.
        vec![store.ring_key(), store.ring_audit_key()],
    ]
}

#[track_caller]
fn assert_one_slot(what: &str, keys: &[String]) {
    let slots: BTreeSet<u16> = keys
        .iter()
        .map(|k| {
            assert!(
                k.contains('{') && !k.contains("{}"),
                "{what}: key {k} has no hash tag"
            );
            slot_number(k)
        })
        .collect();
    assert_eq!(slots.len(), 1, "{what}: keys in several slots: {keys:?}");
}

fn slot_number(key: &str) -> u16 {
    // `Slot` keeps its number private; its Debug form is `Slot(n)`.
    let text = format!("{:?}", Slot::for_key(key));
    text.trim_start_matches("Slot(")
        .trim_end_matches(')')
        .parse()
        .expect("Slot's Debug form is Slot(n)")
}

#[test]
fn every_script_touches_one_slot() {
    let store = RedisStore::unconnected("kb");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/redis/scripts");
    let mut scripts: Vec<String> = std::fs::read_dir(dir)
        .expect("the scripts directory")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".lua"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 8, "scripts found: {scripts:?}");
    for script in &scripts {
        for id in INSTANCES {
            for keys in script_keys(&store, script, id) {
                assert_one_slot(script, &keys);
            }
        }
    }
}

#[test]
fn every_transaction_touches_one_slot() {
    let store = RedisStore::unconnected("kb");
    for id in INSTANCES {
        for keys in transaction_keys(&store, id) {
            assert_one_slot("transaction", &keys);
        }
    }
}

#[test]
fn index_keys_spread_over_the_cluster() {
    // The lookups that start from a credential read one index key and then
    // go to the instance's slot: the index keys have no shared hash tag, so
    // they spread over every node instead of piling onto one.
    let store = RedisStore::unconnected("kb");
    let hasher = CredentialHasher::new(b"test-pepper-0123456789abcdef-0123456789");
    let slots: BTreeSet<u16> = (0..64)
        .flat_map(|i| {
            let hash = hasher.hash(&format!("kb_sk_{i}"));
            [
                slot_number(&store.api_key_key(&format!("kb_pk_{i}"))),
                slot_number(&store.hash_key(&hash)),
            ]
        })
        .collect();
    assert!(
        slots.len() > 100,
        "index keys in only {} slots",
        slots.len()
    );
}

#[test]
fn the_slot_rule_matches_redis() {
    // `CLUSTER KEYSLOT` answers: the tag, when present and not empty, alone
    // decides the slot.
    assert_eq!(slot_number("foo"), 12182);
    assert_eq!(slot_number("{user1000}.following"), 3443);
    assert_eq!(slot_number("foo{}{bar}"), 8363);
    assert_eq!(slot_number("foo{{bar}}zap"), 4015);
    assert_eq!(
        slot_number("kb:{ins_15f3c98bea114e9dacf2902c7b182c13}:epoch"),
        8155
    );
}
