//! A fast local product upstream for the benchmark's `gateway` scenario: every
//! request gets `200` and a small JSON body, so that what the scenario measures
//! is the broker's own work (checks, rate limit, proxying), not a product's.
//!
//! `cargo run --release --example bench-upstream -- --workers 1 --listen 127.0.0.1:8082`
//! (or `BENCH_WORKERS`, `BENCH_LISTEN`).

use actix_web::{web, App, HttpResponse, HttpServer};

#[path = "server_args.rs"]
mod server_args;

const BODY: &str = r#"{"results":[{"id":1,"title":"hello"}],"total":1}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = server_args::parse("bench-upstream", 1, "127.0.0.1:8082");
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(BODY)
        }))
    })
    .workers(args.workers)
    .bind(&args.listen)?
    .run()
    .await
}
