//! The application: what the broker does, between the HTTP handlers (which
//! parse a request, call one operation here and shape the response) and the
//! store. Nothing here knows actix; everything here is reached through
//! [`AppState`].
//!
//! - `state`: [`AppState`] and its grouped settings;
//! - `access`, `gateway`: the checks of an access or experience token, for
//!   the public routes and for product requests;
//! - `auth`, `sessions`: exchanging a credential for a token, refresh,
//!   logout and introspection;
//! - `credentials`, `experiences`, `instances`: what operators do;
//! - `cache`, `revocation_view`, `origin_index`: per-process views of the
//!   store, each with its own rule for staying exact; `leases` (quota leases
//!   of the rate limits) and `hot_path` (when a product request can skip
//!   the store); `propagation` (waiting until every live process applied a
//!   change);
//! - `usage`, `audit`: what is counted and recorded along the way.

pub mod access;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod credentials;
pub mod experiences;
pub mod gateway;
mod hot_path;
pub mod instances;
pub mod keyring;
pub mod leases;
pub mod limits;
pub mod origin_index;
pub mod propagation;
pub mod revocation_view;
pub mod revocations;
pub mod sessions;
pub mod state;
pub mod usage;

pub use state::{AdminToken, AppState};
