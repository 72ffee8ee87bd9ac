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
//!   correction of wrk2 and HdrHistogram).
//! - `propagation`: how long a token revoked through broker A stays usable on
//!   broker B (two processes, one Redis).
//! - `seed-revocations`: fills the revocation list, through the admin API or as
//!   Redis protocol for `redis-cli --pipe`.
//!
//! Credentials come from the environment (`BENCH_ADMIN_TOKEN`, `BENCH_API_KEY`,
//! `BENCH_SECRET`), never from the command line, where `ps` would show them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use base64::Engine;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

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
    Latency {
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
    },
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
            Command::Latency {
                url,
                method,
                headers,
                body,
                rate,
                duration,
                warmup,
                connections,
                expect,
                rotate_tokens,
            } => {
                latency(LatencyPlan {
                    url,
                    method,
                    headers,
                    body,
                    rate,
                    duration,
                    warmup,
                    connections,
                    expect,
                    rotate_tokens,
                })
                .await
            }
            Command::Propagation {
                a,
                b,
                instance,
                product,
                trials,
                timeout_ms,
            } => propagation(&a, &b, &instance, &product, trials, timeout_ms).await,
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

struct LatencyPlan {
    url: String,
    method: String,
    headers: Vec<String>,
    body: Option<String>,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
    expect: u16,
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
    let method = Method::from_bytes(plan.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut headers = Vec::new();
    for h in &plan.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let tokens: Vec<String> = if plan.rotate_tokens {
        env("BENCH_TOKENS")?
            .split_whitespace()
            .map(|t| format!("Bearer {t}"))
            .collect()
    } else {
        Vec::new()
    };
    let client = client(plan.connections, Duration::from_secs(10));
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let warmup_n = (plan.warmup * plan.rate).round() as u64;
    let total = warmup_n + (plan.duration * plan.rate).round() as u64;

    // The pacer is an OS thread, not an async timer: tokio's timers tick in
    // whole milliseconds, which would add up to 1 ms of lateness to every
    // request, and this lateness counts as latency here. The thread sleeps
    // with `nanosleep` (tens of µs of slack) and hands each due request's
    // scheduled time to the event loop, which wakes on the channel at once.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let start = Instant::now() + Duration::from_millis(50);
    let pacer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < total {
            let now = Instant::now();
            let mut due = start + interval.mul_f64(i as f64);
            while due <= now && i < total {
                if tx.send((i, due)).is_err() {
                    return;
                }
                i += 1;
                due = start + interval.mul_f64(i as f64);
            }
            if i < total {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    });

    let measure_from = start + interval.mul_f64(warmup_n as f64);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let slots = Arc::new(Semaphore::new(plan.connections));
    let body = plan.body.map(bytes_of);
    while let Some((i, scheduled)) = rx.recv().await {
        // Waiting for a free connection happens after the scheduled time, so
        // it is counted: this is what keeps the load open-loop.
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let mut request = client.request(method.clone(), &plan.url);
        for (name, value) in &headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        if !tokens.is_empty() {
            let token = &tokens[(i % tokens.len() as u64) as usize];
            request = request.insert_header(("authorization", token.as_str()));
        }
        let body = body.clone();
        let tally = tally.clone();
        let expect = plan.expect;
        actix_web::rt::spawn(async move {
            let result = match body {
                Some(b) => request.send_body(b).await,
                None => request.send().await,
            };
            let status = match result {
                Ok(mut response) => {
                    let read = response.body().limit(1 << 20).await;
                    read.ok().map(|_| response.status().as_u16())
                }
                Err(_) => None,
            };
            let done = Instant::now();
            drop(permit);
            if i < warmup_n {
                return;
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
        });
    }
    let _ = pacer.join();
    // Every request in flight holds a slot; wait for them all (bounded by the
    // client timeout).
    let _all = slots
        .acquire_many(u32::try_from(plan.connections).unwrap_or(u32::MAX))
        .await
        .map_err(|e| e.to_string())?;

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

fn bytes_of(s: String) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(s)
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

async fn propagation(
    a: &str,
    b: &str,
    instance: &str,
    product: &str,
    trials: usize,
    timeout_ms: u64,
) -> Result<(), String> {
    let admin = env("BENCH_ADMIN_TOKEN")?;
    let api_key = env("BENCH_API_KEY")?;
    let secret = env("BENCH_SECRET")?;
    let on_a = client(4, Duration::from_secs(10));
    let on_b = client(1, Duration::from_secs(10));
    let original_uri = format!("/prod/{product}/v1/search");
    let verify = |token: &str| {
        on_b.get(format!("{b}/v1/verify"))
            .insert_header(("x-inbenta-key", api_key.as_str()))
            .insert_header(("x-original-uri", original_uri.as_str()))
            .bearer_auth(token)
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
            let (status, body) = send(verify(&token), None).await?;
            if status != 200 {
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
            let (status, body) = send(verify(&token), None).await?;
            polls += 1;
            let waited = revoked.elapsed();
            match status {
                401 if body["error"]["reason"] == "token_revoked" => {
                    delays.push(waited.as_secs_f64() * 1000.0);
                    stale_polls += polls - 1;
                    if polls == 1 {
                        refused_at_first_poll += 1;
                    }
                    break;
                }
                200 if waited < timeout => continue,
                200 => {
                    failures.push(format!(
                        "trial {trial}: B still accepts the token {} ms after the revocation",
                        waited.as_millis()
                    ));
                    break;
                }
                _ => {
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
/// writes for a revoked token (see `src/store/redis.rs`).
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
