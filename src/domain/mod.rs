//! Credentials, origins and instances: the rules of the broker, with no HTTP and
//! no storage in sight.

pub mod credential;
pub mod experience;
pub mod instance;
pub mod keyring;
pub mod network;
pub mod origin;
pub mod path;
#[cfg(test)]
pub(crate) mod properties;
pub mod revocation;
pub mod settings;
pub mod upstream;
pub mod window;
