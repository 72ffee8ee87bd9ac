//! A real `redis-server` per test, on a free port, stopped when the test ends;
//! with a raw RESP client so tests can look at (and tamper with) what the
//! broker stored.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, temp_dir};

/// A real `redis-server`, private to one test.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// With AOF on, a restarted server comes back with its data.
    persistent: bool,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server with AOF (`appendfsync always`), for stop/restart tests.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let dir = temp_dir("redis");
        for _ in 0..5 {
            let port = free_port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.clone(),
                persistent,
            };
            if server.launch() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port (is redis-server installed? run ./.ci/test.sh)");
    }

    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed; run ./.ci/test.sh, which installs it");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if redis_ping(self.port) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port; its data survives only if persistent.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "redis-server did not come back on port {}",
            self.port
        );
    }

    /// Deletes the one key matching `pattern` (a test standing in for a write
    /// that never happened); panics unless exactly one matches.
    pub fn delete_the_key_matching(&self, pattern: &str) {
        let keys = self.command(&["KEYS", pattern]);
        let found = resp_strings(&keys);
        assert_eq!(found.len(), 1, "keys matching {pattern}: {keys}");
        assert!(
            self.command(&["DEL", found[0]]).starts_with(":1"),
            "could not delete {}",
            found[0]
        );
    }

    /// Runs a command with a raw RESP client and returns the reply as text.
    pub fn command(&self, args: &[&str]) -> String {
        command_on(self.port, args).expect("redis connect")
    }
}

/// Runs a command on the server at `port` with a raw RESP client; the reply
/// as text, or `None` when nothing answers there.
pub fn command_on(port: u16, args: &[&str]) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if resp_complete(&reply) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

/// The elements of a flat RESP array reply (such as `KEYS`'s), in order.
pub fn resp_strings(reply: &str) -> Vec<&str> {
    reply
        .lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
        .collect()
}

fn resp_complete(data: &[u8]) -> bool {
    fn parse(data: &[u8], pos: usize) -> Option<usize> {
        let line_end = data[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let line = std::str::from_utf8(&data[pos + 1..line_end]).ok()?;
        match data[pos] {
            b'+' | b'-' | b':' => Some(line_end + 2),
            b'$' => {
                let n: i64 = line.parse().ok()?;
                if n < 0 {
                    return Some(line_end + 2);
                }
                let end = line_end + 2 + n as usize + 2;
                (data.len() >= end).then_some(end)
            }
            b'*' => {
                let n: i64 = line.parse().ok()?;
                let mut at = line_end + 2;
                for _ in 0..n.max(0) {
                    at = parse(data, at)?;
                }
                Some(at)
            }
            _ => None,
        }
    }
    parse(data, 0).is_some()
}

pub fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
