//! Black-box tests over HTTP, one binary. See `helpers.rs` for the harness.

mod helpers;

mod admin;
mod auth;
mod errors;
mod jwks;
mod openapi;
mod processes;
mod refresh;
