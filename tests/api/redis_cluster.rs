//! A real Redis Cluster for tests: six `redis-server --cluster-enabled yes`
//! nodes on free ports, three primaries with a replica each, joined with
//! `redis-cli --cluster create`. One is shared by the whole test binary
//! ([`RedisCluster::shared`]; tests isolate themselves by key prefix); a test
//! that breaks its cluster (kills a node, cuts every subscription) starts its
//! own, stopped on drop.
//!
//! Each node runs under a small `sh` watchdog that kills it once the test
//! process is gone: the shared cluster lives in a `static`, which is never
//! dropped, and a test binary that panics or is interrupted must not leave
//! six servers behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, temp_dir};
use crate::redis_server::{command_on, redis_ping, resp_strings};

/// What every node is started with; `cluster-node-timeout` bounds how long a
/// dead primary's slots go without one (SPEC §13's "a few seconds").
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// `exec`s `redis-server` with the remaining arguments, after forking a loop
/// that SIGKILLs it (and removes the cluster's directory) once the process
/// `$1` has gone. `$$` in the loop is the shell's pid, which `exec` hands to
/// `redis-server`.
const WATCHDOG: &str = r#"parent=$1; dir=$2; shift 2
( while kill -0 "$parent" 2>/dev/null && kill -0 $$ 2>/dev/null; do sleep 1; done
  kill -9 $$ 2>/dev/null
  kill -0 "$parent" 2>/dev/null || rm -rf "$dir" ) &
exec redis-server "$@""#;

/// Commands with no key, and where a cluster-wide test means them.
const ON_EVERY_NODE: &[&str] = &["ACL", "CLIENT", "CONFIG"];
const ON_EVERY_PRIMARY: &[&str] = &["KEYS", "INFO", "DBSIZE"];

struct Node {
    port: u16,
    bus: u16,
    /// Its `nodes.conf`: a restarted node rejoins as what the cluster says it is.
    dir: PathBuf,
    /// The `redis-server` process itself (the watchdog `exec`s it); `None`
    /// once killed.
    child: Option<Child>,
}

pub struct RedisCluster {
    nodes: Mutex<Vec<Node>>,
    dir: PathBuf,
}

impl RedisCluster {
    /// The cluster every test of this binary shares, started on first use.
    pub fn shared() -> Arc<RedisCluster> {
        static SHARED: OnceLock<Arc<RedisCluster>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(Self::start())).clone()
    }

    /// A new cluster of six nodes, ready: every slot served, every primary
    /// with a replica in sync (so that a durable write's `WAIT 1` succeeds).
    pub fn start() -> RedisCluster {
        let dir = temp_dir("cluster");
        let mut nodes = Vec::new();
        for i in 0..6 {
            nodes.push(launch(&dir, i));
        }
        let cluster = RedisCluster {
            nodes: Mutex::new(nodes),
            dir,
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in cluster.ports() {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is not installed; run ./.ci/test.sh, which installs it");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.is_ready() {
            assert!(
                Instant::now() < deadline,
                "the cluster on {:?} did not become ready",
                cluster.ports()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    fn ports(&self) -> Vec<u16> {
        self.lock().iter().map(|n| n.port).collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.lock()
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every live node sees every slot served and all six nodes, and every
    /// primary streams to a replica that is online.
    fn is_ready(&self) -> bool {
        self.live_ports().into_iter().all(|port| {
            let Some(info) = command_on(port, &["CLUSTER", "INFO"]) else {
                return false;
            };
            let Some(replication) = command_on(port, &["INFO", "replication"]) else {
                return false;
            };
            let primary_in_sync = !replication.contains("role:master")
                || (replication.contains("connected_slaves:1")
                    && replication.contains("state=online"));
            info.contains("cluster_state:ok")
                && info.contains("cluster_slots_ok:16384")
                && info.contains("cluster_known_nodes:6")
                && primary_in_sync
        })
    }

    /// The `KEYBROKER_REDIS_CLUSTER_NODES` value: every node as a seed.
    pub fn seeds(&self) -> String {
        self.ports()
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The live primaries' ports.
    pub fn primaries(&self) -> Vec<u16> {
        self.live_ports()
            .into_iter()
            .filter(|&port| {
                command_on(port, &["INFO", "replication"])
                    .is_some_and(|info| info.contains("role:master"))
            })
            .collect()
    }

    /// Runs a command with a raw RESP client and returns the reply as text,
    /// as [`crate::redis_server::RedisServer::command`] does on one node. A
    /// command on a key goes to the primary that owns its slot (following
    /// `MOVED`); `ACL`, `CLIENT` and `CONFIG` go to every live node (the
    /// first error, or the sum of integer replies, or the first reply);
    /// `KEYS`, `INFO` and `DBSIZE` to every primary (the keys in one array,
    /// the texts one after the other, the sum).
    pub fn command(&self, args: &[&str]) -> String {
        let name = args[0].to_ascii_uppercase();
        if ON_EVERY_NODE.contains(&name.as_str()) {
            let replies: Vec<String> = self
                .live_ports()
                .into_iter()
                .filter_map(|port| command_on(port, args))
                .collect();
            return combine(replies);
        }
        if ON_EVERY_PRIMARY.contains(&name.as_str()) {
            let replies: Vec<String> = self
                .primaries()
                .into_iter()
                .filter_map(|port| command_on(port, args))
                .collect();
            return match name.as_str() {
                "KEYS" => {
                    let keys: Vec<&str> = replies.iter().flat_map(|r| resp_strings(r)).collect();
                    let mut array = format!("*{}\r\n", keys.len());
                    for key in keys {
                        array.push_str(&format!("${}\r\n{key}\r\n", key.len()));
                    }
                    array
                }
                "INFO" => replies.concat(),
                _ => combine(replies),
            };
        }
        let (_, reply) = self.routed(args);
        reply
    }

    /// Sends `args` (a command whose first argument is a key) to a live node
    /// and follows `MOVED` to the owner of the key's slot: (the port that
    /// answered, its reply).
    fn routed(&self, args: &[&str]) -> (u16, String) {
        let mut port = *self.live_ports().first().expect("every node is down");
        for _ in 0..5 {
            let reply = command_on(port, args).expect("a live node did not answer");
            match reply.strip_prefix("-MOVED ") {
                Some(moved) => {
                    port = moved
                        .trim()
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or_else(|| panic!("a MOVED without a port: {reply}"));
                }
                None => return (port, reply),
            }
        }
        panic!("{args:?} kept moving");
    }

    /// The keys matching `pattern` on every primary.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        resp_strings(&self.command(&["KEYS", pattern]))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Deletes the one key matching `pattern`, wherever it lives; panics
    /// unless exactly one matches.
    pub fn delete_the_key_matching(&self, pattern: &str) {
        let found = self.keys(pattern);
        assert_eq!(found.len(), 1, "keys matching {pattern}: {found:?}");
        assert!(
            self.command(&["DEL", &found[0]]).starts_with(":1"),
            "could not delete {}",
            found[0]
        );
    }

    /// The port of the primary that owns `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        self.routed(&["EXISTS", key]).0
    }

    /// SIGKILLs the primary that owns `key`'s slot; its port.
    pub fn kill_primary_of(&self, key: &str) -> u16 {
        let port = self.primary_of(key);
        let mut nodes = self.lock();
        let node = nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("the primary is one of the nodes");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        port
    }

    /// Starts the killed node on `port` again, as a supervisor would: it
    /// rejoins the cluster (as a replica, if its slots were failed over).
    pub fn restart(&self, port: u16) {
        let mut nodes = self.lock();
        let node = nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        assert!(node.child.is_none(), "the node on {port} is running");
        node.child = Some(
            spawn_node(&self.dir, &node.dir, port, node.bus)
                .unwrap_or_else(|| panic!("the node on {port} did not come back")),
        );
    }
}

/// One reply for a command sent to several nodes.
fn combine(replies: Vec<String>) -> String {
    if let Some(error) = replies.iter().find(|r| r.starts_with('-')) {
        return error.clone();
    }
    let integers: Option<Vec<i64>> = replies
        .iter()
        .map(|r| r.strip_prefix(':')?.trim().parse().ok())
        .collect();
    match integers {
        Some(values) if !values.is_empty() => format!(":{}\r\n", values.iter().sum::<i64>()),
        _ => replies.into_iter().next().unwrap_or_default(),
    }
}

/// Starts node `i` on free ports (its cluster bus on a port of its own, so
/// that no port above 55535 makes `port + 10000` overflow).
fn launch(dir: &Path, i: usize) -> Node {
    let node_dir = dir.join(format!("node{i}"));
    std::fs::create_dir_all(&node_dir).expect("cannot create a node directory");
    for _ in 0..5 {
        let (port, bus) = (free_port(), free_port());
        if port == bus {
            continue;
        }
        if let Some(child) = spawn_node(dir, &node_dir, port, bus) {
            return Node {
                port,
                bus,
                dir: node_dir,
                child: Some(child),
            };
        }
    }
    panic!("could not start a cluster node on free ports");
}

/// A node answering on `port`, or `None` if it could not start there.
fn spawn_node(cluster_dir: &Path, node_dir: &Path, port: u16, bus: u16) -> Option<Child> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(std::process::id().to_string())
        .arg(cluster_dir)
        .args(["--port", &port.to_string()])
        .args(["--cluster-port", &bus.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
        // A slot without a primary fails only the requests that need it
        // (SPEC §13: "others keep working"), not the whole cluster.
        .args(["--cluster-require-full-coverage", "no"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--appendonly", "no"])
        .args(["--save", ""])
        .arg("--dir")
        .arg(node_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh or redis-server is missing; run ./.ci/test.sh, which installs redis");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if redis_ping(port) {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in self.lock().iter_mut() {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
