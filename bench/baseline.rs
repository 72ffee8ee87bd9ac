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

#[path = "server_args.rs"]
mod server_args;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = server_args::parse(
        "baseline",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        "127.0.0.1:8081",
    );
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async { HttpResponse::Ok().body("ok") }))
    })
    .workers(args.workers)
    // As the broker does (src/startup.rs), so that H is measured alike.
    .tcp_nodelay(true)
    .bind(&args.listen)?
    .run()
    .await
}
