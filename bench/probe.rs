//! `bench-probe`: the parts of the load benchmark that a closed-loop load
//! generator such as `wrk` cannot do. `bench/run.sh` drives it; every
//! subcommand prints one JSON object on stdout and leaves judging it (and the
//! exit status of the run) to the script, except `setup`, which prints
//! `NAME=value` lines.
//!
//! - `setup`: creates the benchmark's instance through the admin API and
//!   exchanges its secret for a token.
//! - `latency`: open-loop load at a fixed rate. Each request has a *scheduled*
//!   send time (`start + i / rate`) and its latency is counted from that time,
//!   not from when it was actually sent, so a server stall that delays the
//!   requests queued behind it is counted in full (the coordinated-omission
//!   correction of wrk2 and HdrHistogram). It speaks HTTP/1.1 over raw
//!   keep-alive connections with requests written out in advance, so that
//!   its own CPU, taken from the cores the server runs on, stays small.
//! - `propagation`: how long a token revoked through broker A stays usable on
//!   broker B (two processes, one Redis).
//! - `exactness`: several brokers spend one token's rate limit as fast as
//!   they can inside one window; how many requests were allowed.
//! - `seed-revocations`: fills the revocation list, through the admin API or as
//!   Redis protocol for `redis-cli --pipe`.
//!
//! Credentials come from the environment (`BENCH_ADMIN_TOKEN`, `BENCH_API_KEY`,
//! `BENCH_SECRET`), never from the command line, where `ps` would show them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "bench-probe", about = "keybroker benchmark probes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the benchmark instance (admin token from BENCH_ADMIN_TOKEN) and
    /// print INSTANCE, API_KEY, SECRET and TOKEN as NAME=value lines.
    Setup {
        /// Broker base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        base: String,
        /// Upstream URL of every product.
        #[arg(long)]
        upstream: String,
        /// Products as SLUG=RATE_LIMIT_PER_MINUTE (repeatable).
        #[arg(long = "product", value_name = "SLUG=LIMIT", required = true)]
        products: Vec<String>,
        /// Tokens to mint, each from its own `/v1/auth` (its own session).
        #[arg(long, default_value_t = 1)]
        tokens: usize,
    },
    /// Fixed-rate open-loop load with coordinated-omission correction.
    Latency(LatencyPlan),
    /// Revoke tokens through broker A; measure until broker B refuses them.
    Propagation {
        /// Broker A base URL (auth and revocation).
        #[arg(long)]
        a: String,
        /// Broker B base URL (verification).
        #[arg(long)]
        b: String,
        #[arg(long)]
        instance: String,
        /// Product slug used in X-Original-URI.
        #[arg(long)]
        product: String,
        #[arg(long, default_value_t = 200)]
        trials: usize,
        /// A trial fails when B still accepts the token after this long.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// What B is asked: forward auth (the product path, which reads the
        /// revocation lists in its store call) or introspection (which
        /// answers from B's local revocation view, fed by pub/sub).
        #[arg(long, value_enum, default_value_t = Via::Verify)]
        via: Via,
    },
    /// Several brokers send one token's requests as fast as they can inside
    /// one rate-limit window: how many were allowed against the limit.
    Exactness {
        /// Broker base URLs (repeatable).
        #[arg(long = "base", required = true)]
        bases: Vec<String>,
        /// Product slug used in X-Original-URI.
        #[arg(long)]
        product: String,
        /// Connections per broker.
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Seconds to send; 0: wait for the next minute window to begin and
        /// send for all of it.
        #[arg(long, default_value_t = 0)]
        seconds: u64,
    },
    /// Write COUNT revoked-token entries with random jti values.
    SeedRevocations {
        #[arg(long)]
        instance: String,
        #[arg(long)]
        count: u64,
        /// Through this broker's admin API (BENCH_ADMIN_TOKEN).
        #[arg(long, conflicts_with = "resp")]
        api: Option<String>,
        /// Concurrent admin requests.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Give up after this many seconds (the entries written so far stay).
        #[arg(long, default_value_t = 600)]
        max_seconds: u64,
        /// Instead, print `SET` commands in Redis protocol on stdout for
        /// `redis-cli --pipe`, with this key prefix (the broker's `kb`).
        #[arg(long, value_name = "KEY_PREFIX")]
        resp: Option<String>,
        /// TTL of the Redis entries, seconds (the admin API keeps a jti
        /// revocation for the longest token lifetime plus the leeway).
        #[arg(long, default_value_t = 86_430)]
        ttl: u64,
    },
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} must be set"))
}

fn client(connections: usize, timeout: Duration) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(connections))
        .timeout(timeout)
        .disable_redirects()
        .finish()
}

/// Status and body of a finished request.
async fn send(request: awc::ClientRequest, body: Option<Value>) -> Result<(u16, Value), String> {
    let mut response = match body {
        Some(b) => request.send_json(&b).await,
        None => request.send().await,
    }
    .map_err(|e| format!("request failed: {e}"))?;
    let bytes = response
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| format!("reading the response: {e}"))?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((response.status().as_u16(), value))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn main() {
    let cli = Cli::parse();
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        match cli.command {
            Command::Setup {
                base,
                upstream,
                products,
                tokens,
            } => setup(&base, &upstream, &products, tokens).await,
            Command::Latency(plan) => latency(plan).await,
            Command::Propagation {
                a,
                b,
                instance,
                product,
                trials,
                timeout_ms,
                via,
            } => propagation(&a, &b, &instance, &product, trials, timeout_ms, via).await,
            Command::Exactness {
                bases,
                product,
                connections,
                seconds,
            } => exactness(&bases, &product, connections, seconds).await,
            Command::SeedRevocations {
                instance,
                count,
                api,
                concurrency,
                max_seconds,
                resp,
                ttl,
            } => match (api, resp) {
                (Some(base), None) => {
                    seed_api(&base, &instance, count, concurrency, max_seconds).await
                }
                (None, Some(prefix)) => seed_resp(&prefix, &instance, count, ttl),
                _ => Err("give --api URL or --resp KEY_PREFIX".to_owned()),
            },
        }
    });
    match result {
        Ok(()) => {}
        Err(message) => {
            eprintln!("bench-probe: {message}");
            std::process::exit(1);
        }
    }
}

fn print_json(value: &Value) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- setup

async fn setup(
    base: &str,
    upstream: &str,
    products: &[String],
    tokens: usize,
) -> Result<(), String> {
    let admin = env("BENCH_ADMIN_TOKEN")?;
    let client = client(4, Duration::from_secs(10));
    let mut map = serde_json::Map::new();
    for spec in products {
        let (slug, limit) = spec
            .split_once('=')
            .ok_or_else(|| format!("--product {spec:?}: expected SLUG=LIMIT"))?;
        let limit: u32 = limit
            .parse()
            .map_err(|_| format!("--product {spec:?}: the limit is not a number"))?;
        map.insert(
            slug.to_owned(),
            json!({"upstream": upstream, "kind": "search", "rate_limit_per_minute": limit}),
        );
    }
    let (status, created) = send(
        client
            .post(format!("{base}/admin/v1/instances"))
            .bearer_auth(&admin),
        Some(json!({"name": "keybroker benchmark", "products": map})),
    )
    .await?;
    if status != 201 {
        return Err(format!("creating the instance: {status} {created}"));
    }
    let field = |v: &Value, path: &[&str]| -> Result<String, String> {
        let mut at = v;
        for p in path {
            at = &at[*p];
        }
        at.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no {} in {v}", path.join(".")))
    };
    let instance = field(&created, &["id"])?;
    let api_key = field(&created, &["api_key"])?;
    let secret = field(&created, &["secret", "value"])?;
    let mut minted = Vec::new();
    for _ in 0..tokens.max(1) {
        minted.push(auth(&client, base, &api_key, &secret).await?);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "INSTANCE={instance}\nAPI_KEY={api_key}\nSECRET={secret}\nTOKEN={}\nTOKENS={}",
        minted[0],
        minted.join(" ")
    )
    .map_err(|e| e.to_string())
}

async fn auth(
    client: &awc::Client,
    base: &str,
    api_key: &str,
    secret: &str,
) -> Result<String, String> {
    let (status, body) = send(
        client
            .post(format!("{base}/v1/auth"))
            .insert_header(("x-inbenta-key", api_key)),
        Some(json!({ "secret": secret })),
    )
    .await?;
    if status != 200 {
        return Err(format!("/v1/auth: {status} {body}"));
    }
    body["accessToken"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("/v1/auth: no accessToken in {body}"))
}

// ---------------------------------------------------------------- latency

#[derive(Debug, clap::Args)]
struct LatencyPlan {
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    #[arg(long)]
    body: Option<String>,
    /// Requests per second.
    #[arg(long)]
    rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long)]
    duration: f64,
    /// Seconds at the same rate before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections (and so requests in flight) at most.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// The status every response should have.
    #[arg(long, default_value_t = 200)]
    expect: u16,
    /// Send `Authorization: Bearer <token>` with the tokens of
    /// BENCH_TOKENS (space-separated) in turn, as `bench/wrk/scenario.lua`
    /// does, so that the load is spread over several sessions.
    #[arg(long)]
    rotate_tokens: bool,
}

#[derive(Default)]
struct Tally {
    /// Latencies from the scheduled send time, in ms, of measured requests.
    latencies: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
    failures: u64,
    last_done: Option<Instant>,
}

async fn latency(plan: LatencyPlan) -> Result<(), String> {
    if !(plan.rate > 0.0 && plan.duration > 0.0 && plan.warmup >= 0.0 && plan.connections > 0) {
        return Err("rate, duration and connections must be positive".into());
    }
    let target = Target::parse(&plan.url)?;
    let mut head = String::new();
    for h in &plan.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
        head.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
    }
    let tokens: Vec<String> = if plan.rotate_tokens {
        env("BENCH_TOKENS")?
            .split_whitespace()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .collect()
    } else {
        vec![String::new()]
    };
    if tokens.is_empty() {
        return Err("BENCH_TOKENS holds no token".into());
    }
    let body = plan.body.unwrap_or_default();
    // Every request is written out once, in full: sending one is a single
    // `write` of ready bytes.
    let requests: Rc<Vec<Vec<u8>>> = Rc::new(
        tokens
            .iter()
            .map(|token| {
                format!(
                    "{} {} HTTP/1.1\r\nHost: {}\r\n{head}{token}Content-Length: {}\r\n\r\n{body}",
                    plan.method,
                    target.path,
                    target.host,
                    body.len()
                )
                .into_bytes()
            })
            .collect(),
    );
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let warmup_n = (plan.warmup * plan.rate).round() as u64;
    let total = warmup_n + (plan.duration * plan.rate).round() as u64;

    // The pacer is an OS thread, not an async timer: tokio's timers tick in
    // whole milliseconds, which would add up to 1 ms of lateness to every
    // request, and this lateness counts as latency here. The thread sleeps
    // with `nanosleep` and hands the due requests' scheduled times to the
    // event loop in batches, at most every PACER_QUANTUM: one wake-up of the
    // event loop per batch rather than per request keeps the probe's own CPU
    // (which shares the machine with the server) low. A request's latency
    // still runs from its own scheduled time, so the batching is counted.
    const PACER_QUANTUM: Duration = Duration::from_micros(100);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<(u64, Instant)>>();
    let start = Instant::now() + Duration::from_millis(50);
    let pacer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < total {
            let now = Instant::now();
            let mut due = Vec::new();
            while i < total && start + interval.mul_f64(i as f64) <= now {
                due.push((i, start + interval.mul_f64(i as f64)));
                i += 1;
            }
            if !due.is_empty() && tx.send(due).is_err() {
                return;
            }
            if i < total {
                let next = start + interval.mul_f64(i as f64);
                std::thread::sleep(
                    next.saturating_duration_since(Instant::now())
                        .max(PACER_QUANTUM),
                );
            }
        }
    });

    let measure_from = start + interval.mul_f64(warmup_n as f64);
    let tally = Rc::new(RefCell::new(Tally::default()));
    // Requests due and not yet sent, and the connections waiting for one:
    // waiting for a free connection happens after the scheduled time, so it
    // is counted, which is what keeps the load open-loop.
    let queue = Rc::new(RefCell::new(
        std::collections::VecDeque::<(u64, Instant)>::new(),
    ));
    let ready = Rc::new(tokio::sync::Notify::new());
    let finished = Rc::new(std::cell::Cell::new(false));
    let mut workers = Vec::new();
    for _ in 0..plan.connections {
        let (queue, ready, finished) = (queue.clone(), ready.clone(), finished.clone());
        let (tally, requests, addr) = (tally.clone(), requests.clone(), target.addr.clone());
        let expect = plan.expect;
        workers.push(actix_web::rt::spawn(async move {
            let mut conn: Option<Connection> = None;
            loop {
                let next = queue.borrow_mut().pop_front();
                let Some((i, scheduled)) = next else {
                    if finished.get() {
                        return;
                    }
                    ready.notified().await;
                    continue;
                };
                let request = &requests[(i % requests.len() as u64) as usize];
                let status = match exchange(&mut conn, &addr, request).await {
                    Ok(status) => Some(status),
                    Err(_) => {
                        conn = None;
                        None
                    }
                };
                let done = Instant::now();
                if i < warmup_n {
                    continue;
                }
                let mut t = tally.borrow_mut();
                match status {
                    Some(s) => {
                        *t.statuses.entry(s).or_default() += 1;
                        if s == expect {
                            t.latencies
                                .push(done.duration_since(scheduled).as_secs_f64() * 1000.0);
                        }
                    }
                    None => t.failures += 1,
                }
                t.last_done = Some(t.last_done.map_or(done, |l| l.max(done)));
            }
        }));
    }
    while let Some(due) = rx.recv().await {
        let n = due.len();
        queue.borrow_mut().extend(due);
        for _ in 0..n {
            ready.notify_one();
        }
    }
    let _ = pacer.join();
    finished.set(true);
    ready.notify_waiters();
    for worker in workers {
        let _ = worker.await;
    }

    let mut t = tally.borrow_mut();
    t.latencies.sort_by(f64::total_cmp);
    let ok = t.latencies.len() as u64;
    let answered: u64 = t.statuses.values().sum();
    let elapsed = t
        .last_done
        .map_or(0.0, |l| l.duration_since(measure_from).as_secs_f64());
    let achieved = if elapsed > 0.0 {
        answered as f64 / elapsed
    } else {
        0.0
    };
    let statuses: serde_json::Map<String, Value> = t
        .statuses
        .iter()
        .map(|(s, n)| (s.to_string(), json!(n)))
        .collect();
    print_json(&json!({
        "target_rps": plan.rate,
        "achieved_rps": round3(achieved),
        "requests": answered + t.failures,
        "ok": ok,
        "unexpected": answered - ok,
        "failures": t.failures,
        "statuses": statuses,
        "p50_ms": round3(percentile(&t.latencies, 0.50)),
        "p99_ms": round3(percentile(&t.latencies, 0.99)),
        "p999_ms": round3(percentile(&t.latencies, 0.999)),
        "max_ms": round3(t.latencies.last().copied().unwrap_or(0.0)),
    }))
}

/// Where `latency` sends its requests: `http://host:port/path` only.
struct Target {
    addr: String,
    host: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        Ok(Target {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One keep-alive HTTP/1.1 connection and what has been read from it.
struct Connection {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

/// Sends one request (connecting first if need be) and reads the whole
/// response; returns its status. The lean client is the point: at tens of
/// thousands of requests per second on the server's own cores, a full HTTP
/// client's CPU would show up as the server's latency.
async fn exchange(
    conn: &mut Option<Connection>,
    addr: &str,
    request: &[u8],
) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    if conn.is_none() {
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| invalid("connect timed out"))??;
        stream.set_nodelay(true)?;
        *conn = Some(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        });
    }
    let Some(c) = conn.as_mut() else {
        return Err(invalid("no connection"));
    };
    let exchange = async {
        c.stream.write_all(request).await?;
        c.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head =
                    std::str::from_utf8(&c.buf[..end]).map_err(|_| invalid("response head"))?;
                let status: u16 = head
                    .get(9..12)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid("status line"))?;
                let mut length = None;
                for line in head.split("\r\n").skip(1) {
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse::<usize>().ok();
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(invalid("chunked responses are not supported"));
                    }
                }
                let want = end + 4 + length.ok_or_else(|| invalid("no content-length"))?;
                while c.buf.len() < want {
                    let n = c.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(invalid("connection closed mid-body"));
                    }
                    c.buf.extend_from_slice(&chunk[..n]);
                }
                return Ok(status);
            }
            let n = c.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(invalid("connection closed"));
            }
            c.buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| invalid("response timed out"))?
}

// ---------------------------------------------------------------- propagation

fn jti_of(token: &str) -> Result<String, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| "the access token is not a JWT".to_owned())?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|e| format!("token payload: {e}"))?;
    let claims: Value = serde_json::from_slice(&raw).map_err(|e| format!("token claims: {e}"))?;
    claims["jti"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the token has no jti".to_owned())
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Via {
    Verify,
    Introspect,
}

async fn propagation(
    a: &str,
    b: &str,
    instance: &str,
    product: &str,
    trials: usize,
    timeout_ms: u64,
    via: Via,
) -> Result<(), String> {
    let admin = env("BENCH_ADMIN_TOKEN")?;
    let api_key = env("BENCH_API_KEY")?;
    let secret = env("BENCH_SECRET")?;
    let on_a = client(4, Duration::from_secs(10));
    let on_b = client(1, Duration::from_secs(10));
    let original_uri = format!("/prod/{product}/v1/search");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{api_key}:{secret}"));
    // Some(true): B accepts the token; Some(false): B refuses it as revoked.
    let ask_b = |token: String| {
        let request = match via {
            Via::Verify => on_b
                .get(format!("{b}/v1/verify"))
                .insert_header(("x-inbenta-key", api_key.as_str()))
                .insert_header(("x-original-uri", original_uri.as_str()))
                .bearer_auth(&token),
            Via::Introspect => on_b
                .post(format!("{b}/v1/introspect"))
                .insert_header(("authorization", format!("Basic {basic}"))),
        };
        let body = matches!(via, Via::Introspect).then(|| json!({ "token": token }));
        async move {
            let (status, body) = send(request, body).await?;
            Ok::<_, String>(match (via, status) {
                (Via::Verify, 200) => (Some(true), status, body),
                (Via::Verify, 401) if body["error"]["reason"] == "token_revoked" => {
                    (Some(false), status, body)
                }
                (Via::Introspect, 200) if body["active"] == true => (Some(true), status, body),
                (Via::Introspect, 200) if body["active"] == false => (Some(false), status, body),
                _ => (None, status, body),
            })
        }
    };
    let timeout = Duration::from_millis(timeout_ms);

    let mut delays = Vec::with_capacity(trials);
    let mut stale_polls = 0u64;
    let mut refused_at_first_poll = 0u64;
    let mut failures: Vec<String> = Vec::new();
    for trial in 0..trials {
        let token = auth(&on_a, a, &api_key, &secret).await?;
        let jti = jti_of(&token)?;
        // B accepts it, twice, so that whatever B caches about the token is
        // warm before the revocation.
        for _ in 0..2 {
            let (accepted, status, body) = ask_b(token.clone()).await?;
            if accepted != Some(true) {
                return Err(format!(
                    "trial {trial}: B refused a fresh token: {status} {body}"
                ));
            }
        }
        let (status, body) = send(
            on_a.post(format!("{a}/admin/v1/instances/{instance}/revoke-tokens"))
                .bearer_auth(&admin),
            Some(json!({ "jti": jti })),
        )
        .await?;
        if status != 200 {
            return Err(format!(
                "trial {trial}: revoke-tokens on A: {status} {body}"
            ));
        }
        let revoked = Instant::now();
        let mut polls = 0u64;
        loop {
            let (accepted, status, body) = ask_b(token.clone()).await?;
            polls += 1;
            let waited = revoked.elapsed();
            match accepted {
                Some(false) => {
                    delays.push(waited.as_secs_f64() * 1000.0);
                    stale_polls += polls - 1;
                    if polls == 1 {
                        refused_at_first_poll += 1;
                    }
                    break;
                }
                Some(true) if waited < timeout => continue,
                Some(true) => {
                    failures.push(format!(
                        "trial {trial}: B still accepts the token {} ms after the revocation",
                        waited.as_millis()
                    ));
                    break;
                }
                None => {
                    failures.push(format!("trial {trial}: B answered {status} {body}"));
                    break;
                }
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    print_json(&json!({
        "trials": trials,
        "measured": delays.len(),
        "refused_at_first_poll": refused_at_first_poll,
        "stale_polls": stale_polls,
        "failures": failures.len(),
        "failure_examples": failures.iter().take(3).collect::<Vec<_>>(),
        "p50_ms": round3(percentile(&delays, 0.50)),
        "p99_ms": round3(percentile(&delays, 0.99)),
        "max_ms": round3(delays.last().copied().unwrap_or(0.0)),
    }))
}

// ---------------------------------------------------------------- exactness

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn exactness(
    bases: &[String],
    product: &str,
    connections: usize,
    seconds: u64,
) -> Result<(), String> {
    let api_key = env("BENCH_API_KEY")?;
    let token = env("BENCH_TOKEN")?;
    // The brokers count per minute window of the same clock as ours. Stop a
    // little before the window ends, so that no request lands in the next.
    let now = unix_ms();
    let (start, end) = if seconds == 0 {
        let start = (now / 60_000 + 1) * 60_000;
        (start, start + 60_000 - 200)
    } else {
        let window_end = (now / 60_000 + 1) * 60_000;
        let start = if window_end - now < (seconds + 3) * 1000 {
            window_end
        } else {
            now
        };
        (start, start + seconds * 1000)
    };
    actix_web::rt::time::sleep(Duration::from_millis(start.saturating_sub(unix_ms()))).await;
    let original_uri = format!("/{product}/v1/search");
    let mut loops = Vec::new();
    for base in bases {
        let client = client(connections, Duration::from_secs(10));
        for _ in 0..connections {
            let (client, base, api_key, token, uri) = (
                client.clone(),
                base.clone(),
                api_key.clone(),
                token.clone(),
                original_uri.clone(),
            );
            loops.push(actix_web::rt::spawn(async move {
                let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
                while unix_ms() < end {
                    let request = client
                        .get(format!("{base}/v1/verify"))
                        .insert_header(("x-inbenta-key", api_key.as_str()))
                        .insert_header(("x-original-uri", uri.as_str()))
                        .bearer_auth(&token);
                    let status = match request.send().await {
                        Ok(mut r) => {
                            let _ = r.body().await;
                            r.status().as_u16()
                        }
                        Err(_) => 0,
                    };
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            }));
        }
    }
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for l in loops {
        for (status, n) in l.await.map_err(|e| e.to_string())? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let same_window = start / 60_000 == (end - 1) / 60_000;
    print_json(&json!({
        "allowed": statuses.get(&200).copied().unwrap_or(0),
        "refused": statuses.get(&429).copied().unwrap_or(0),
        "other": statuses.iter().filter(|(s, _)| **s != 200 && **s != 429).map(|(_, n)| n).sum::<u64>(),
        "seconds": round3((end - start) as f64 / 1000.0),
        "same_window": same_window,
    }))
}

// ---------------------------------------------------------------- seeding

async fn seed_api(
    base: &str,
    instance: &str,
    count: u64,
    concurrency: usize,
    max_seconds: u64,
) -> Result<(), String> {
    let admin = Rc::new(env("BENCH_ADMIN_TOKEN")?);
    let client = client(concurrency, Duration::from_secs(10));
    let url = Rc::new(format!(
        "{base}/admin/v1/instances/{instance}/revoke-tokens"
    ));
    let next = Rc::new(RefCell::new(0u64));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(max_seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, admin, next) = (client.clone(), url.clone(), admin.clone(), next.clone());
        workers.push(actix_web::rt::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            loop {
                {
                    let mut n = next.borrow_mut();
                    if *n >= count || Instant::now() > deadline {
                        break;
                    }
                    *n += 1;
                }
                let jti = uuid::Uuid::new_v4().simple().to_string();
                let request = client.post(url.as_str()).bearer_auth(admin.as_str());
                match send(request, Some(json!({ "jti": jti }))).await {
                    Ok((200, _)) => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0u64, 0u64);
    for w in workers {
        let (o, f) = w.await.map_err(|e| e.to_string())?;
        ok += o;
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    print_json(&json!({
        "requested": count,
        "written": ok,
        "failed": failed,
        "seconds": round3(seconds),
        "per_second": round3(ok as f64 / seconds.max(1e-9)),
    }))
}

/// `SET <prefix>:{<instance>}:rev:jti:<jti> 1 EX <ttl>`, the entry the broker
/// writes for a revoked token (see `src/store/redis/revocations.rs` and `keys.rs`).
fn seed_resp(prefix: &str, instance: &str, count: u64, ttl: u64) -> Result<(), String> {
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
    let ttl = ttl.to_string();
    for _ in 0..count {
        let key = format!(
            "{prefix}:{{{instance}}}:rev:jti:{}",
            uuid::Uuid::new_v4().simple()
        );
        write!(
            out,
            "*5\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1\r\n1\r\n$2\r\nEX\r\n${}\r\n{ttl}\r\n",
            key.len(),
            ttl.len()
        )
        .map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}
