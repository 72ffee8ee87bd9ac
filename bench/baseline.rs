//! The benchmark's baseline `H`: a do-nothing actix-web server that answers
//! `200 ok` on any path and method. It is built from this package (a Cargo
//! example), so it runs the same actix-web version from the same `Cargo.lock`
//! as the broker, with the same worker count: whatever it reaches is the
//! machine's own limit for an actix-web server driven by the same load
//! generator, and every broker scenario is reported as a ratio to it.
//!
//! `cargo run --release --example baseline -- --workers 2 --listen 127.0.0.1:8081`
//! (or `BENCH_WORKERS`, `BENCH_LISTEN`). Workers default to the number of cores,
//! as the broker's do.

use actix_web::{web, App, HttpResponse, HttpServer};

fn usage() -> ! {
    eprintln!("usage: baseline [--workers N] [--listen ADDR]");
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
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let listen = listen.unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async { HttpResponse::Ok().body("ok") }))
    })
    .workers(workers)
    // As the broker does (src/startup.rs), so that H is measured alike.
    .tcp_nodelay(true)
    .bind(&listen)?
    .run()
    .await
}
