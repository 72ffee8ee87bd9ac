//! Black-box tests over HTTP, one binary. See `helpers.rs` for the harness,
//! `redis_server.rs` for the Redis each test owns, and `fixture.rs` (with
//! `upstream.rs`) for the app, upstream and instance the gateway tests share.

mod fixture;
mod helpers;
mod redis_cluster;
mod redis_server;
mod upstream;

mod admin;
mod auth;
mod cluster;
mod console;
mod corrupt_store;
mod cors;
mod cors_index;
mod docs;
mod errors;
mod exactness;
mod experience_grace;
mod experiences;
mod feed;
mod gateway;
mod gateway_headers;
mod gateway_paths;
mod jwks;
mod layout;
mod limits;
mod nginx;
mod openapi;
mod processes;
mod reasons;
mod refresh;
mod revocation;
mod sdk;
mod signing_keys;
mod slow_clients;
mod token_edges;
mod upstream_policy;
mod usage_audit;
mod verify_uri;
