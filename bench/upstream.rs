//! A fast local product upstream for the benchmark's `gateway` scenario: every
//! request gets `200` and a small JSON body, so that what the scenario measures
//! is the broker's own work (checks, rate limit, proxying), not a product's.
//!
//! `cargo run --release --example bench-upstream -- --workers 1 --listen 127.0.0.1:8082`
//! (or `BENCH_WORKERS`, `BENCH_LISTEN`).

use actix_web::{web, App, HttpResponse, HttpServer};

const BODY: &str = r#"{"results":[{"id":1,"title":"hello"}],"total":1}"#;

fn usage() -> ! {
    eprintln!("usage: bench-upstream [--workers N] [--listen ADDR]");
    std::process::exit(2);
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut workers = std::env::var("BENCH_WORKERS").ok();
    let mut listen = std::env::var("BENCH_LISTEN").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => workers = Some(args.next().unwrap_or_else(|| usage())),
            "--listen" => listen = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let workers = match workers {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| usage()),
        None => 1,
    };
    let listen = listen.unwrap_or_else(|| "127.0.0.1:8082".to_owned());
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(BODY)
        }))
    })
    .workers(workers)
    .bind(&listen)?
    .run()
    .await
}
