//! Black-box tests over HTTP, one binary. See `helpers.rs` for the harness.

mod helpers;

mod admin;
mod auth;
mod docs;
mod errors;
mod experiences;
mod gateway;
mod jwks;
mod nginx;
mod openapi;
mod processes;
mod refresh;
