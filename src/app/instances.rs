//! Instance operations beyond provisioning (`credentials.rs`): changing an
//! instance's settings, which may remove products and so their tokens.

use std::collections::BTreeMap;

use super::AppState;
use crate::domain::instance::{Instance, Product};
use crate::domain::settings::{ExperienceSettings, InstanceName, SettingError};
use crate::domain::upstream::UpstreamPolicy;
use crate::error::ApiError;

/// A change to an instance; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct InstanceChange {
    pub name: Option<InstanceName>,
    pub products: Option<BTreeMap<String, ExperienceSettings>>,
    pub token_ttl_seconds: Option<u64>,
}

/// Products as given, over the current ones: a slug keeps the settings it had
/// (and its experience token) unless the request changes them.
pub fn products_from(
    input: BTreeMap<String, ExperienceSettings>,
    current: &BTreeMap<String, Product>,
    policy: &UpstreamPolicy,
) -> Result<BTreeMap<String, Product>, SettingError> {
    input
        .into_iter()
        .map(|(slug, settings)| {
            let product = settings.apply(&slug, current.get(&slug), policy)?;
            Ok((slug, product))
        })
        .collect()
}

impl AppState {
    /// Applies a change, validated whole before anything is written; the
    /// tokens of removed products are revoked.
    pub async fn update_instance(
        &self,
        id: &str,
        change: InstanceChange,
    ) -> Result<Instance, ApiError> {
        let mut instance = self.load_instance(id).await?;
        let products = change
            .products
            .map(|p| products_from(p, &instance.products, &self.upstreams))
            .transpose()?;
        if let Some(name) = change.name {
            instance.name = name.into_inner();
        }
        let mut removed = Vec::new();
        if let Some(products) = products {
            removed = instance
                .products
                .keys()
                .filter(|slug| !products.contains_key(*slug))
                .cloned()
                .collect();
            instance.products = products;
        }
        if let Some(ttl) = change.token_ttl_seconds {
            instance.token_ttl_seconds = ttl;
        }
        if !self.store.update_instance(&instance).await? {
            return Err(ApiError::NotFound { what: "instance" });
        }
        for slug in &removed {
            self.revoke_experience_tokens(&instance.id, slug).await?;
        }
        Ok(instance)
    }

    /// Deletes the instance and everything of it.
    pub async fn delete_instance(&self, id: &str) -> Result<(), ApiError> {
        if !self.store.delete_instance(id).await? {
            return Err(ApiError::NotFound { what: "instance" });
        }
        self.propagate(id).await;
        self.origins.refresh_instance(self.store.as_ref(), id).await;
        tracing::info!(instance = %id, "instance deleted");
        Ok(())
    }
}
