//! Experience operations (SPEC §1, §7): an instance's products with their
//! settings and their static experience tokens (Interakt style). A token is
//! shown once, at creation or regeneration; regenerating with
//! `grace_seconds: 0` (the default) kills every older token at once, a grace
//! keeps them working until it ends — never longer than a grace they already
//! had, so a later regeneration can only shorten an earlier one.

use super::AppState;
use crate::domain::credential::{CredentialKind, ExperienceToken};
use crate::domain::instance::{CredentialRecord, CredentialStatus, Instance, Product};
use crate::domain::settings::{ExperienceSettings, Grace};
use crate::error::ApiError;

/// A new or regenerated experience token, with the product it belongs to.
pub struct IssuedExperience {
    pub product: Product,
    pub token: ExperienceToken,
    pub record: CredentialRecord,
    /// The token it replaced, as it is after the change.
    pub previous: Option<CredentialRecord>,
}

/// The product of `slug`, or 404.
pub fn product_of<'a>(instance: &'a Instance, slug: &str) -> Result<&'a Product, ApiError> {
    instance
        .products
        .get(slug)
        .ok_or(ApiError::NotFound { what: "experience" })
}

impl AppState {
    async fn save_instance(&self, instance: &Instance) -> Result<(), ApiError> {
        if !self.store.update_instance(instance).await? {
            return Err(ApiError::NotFound { what: "instance" });
        }
        Ok(())
    }

    /// Adds an experience with its first token.
    pub async fn create_experience(
        &self,
        instance_id: &str,
        slug: &str,
        settings: ExperienceSettings,
    ) -> Result<IssuedExperience, ApiError> {
        let mut product = settings.apply(slug, None, &self.upstreams)?;
        let mut instance = self.load_instance(instance_id).await?;
        if instance.products.contains_key(slug) {
            return Err(ApiError::Conflict(format!(
                "experience {slug:?} already exists; PATCH it instead"
            )));
        }
        let (token, record) = self.issue_experience_token(&instance.id, slug).await?;
        product.token_id = Some(record.id.clone());
        instance.products.insert(slug.to_owned(), product.clone());
        self.save_instance(&instance).await?;
        Ok(IssuedExperience {
            product,
            token,
            record,
            previous: None,
        })
    }

    /// Changes an experience's settings; its token stays.
    pub async fn update_experience(
        &self,
        instance_id: &str,
        slug: &str,
        settings: ExperienceSettings,
    ) -> Result<Product, ApiError> {
        let mut instance = self.load_instance(instance_id).await?;
        let product = settings.apply(slug, Some(product_of(&instance, slug)?), &self.upstreams)?;
        instance.products.insert(slug.to_owned(), product.clone());
        self.save_instance(&instance).await?;
        Ok(product)
    }

    /// Removes an experience and revokes its tokens.
    pub async fn delete_experience(&self, instance_id: &str, slug: &str) -> Result<(), ApiError> {
        let mut instance = self.load_instance(instance_id).await?;
        product_of(&instance, slug)?;
        instance.products.remove(slug);
        self.save_instance(&instance).await?;
        self.revoke_experience_tokens(&instance.id, slug).await
    }

    /// The experience's tokens that the gateway still accepts, but for
    /// `current`: those inside a regeneration grace.
    pub async fn accepted_experience_tokens(
        &self,
        instance_id: &str,
        slug: &str,
        current: &str,
    ) -> Result<Vec<CredentialRecord>, ApiError> {
        let now = self.now();
        Ok(self
            .store
            .list_credentials(instance_id, CredentialKind::ExperienceToken)
            .await?
            .into_iter()
            .filter(|r| {
                r.experience.as_deref() == Some(slug)
                    && r.id != current
                    && r.status(now) != CredentialStatus::Revoked
            })
            .collect())
    }

    /// Issues a new token for the experience; the old one dies when the grace
    /// ends.
    pub async fn regenerate_experience_token(
        &self,
        instance_id: &str,
        slug: &str,
        grace: Grace,
    ) -> Result<IssuedExperience, ApiError> {
        let mut instance = self.load_instance(instance_id).await?;
        let mut product = product_of(&instance, slug)?.clone();
        let now = self.now();
        let (token, record) = self.issue_experience_token(&instance.id, slug).await?;
        let replaced = product.token_id.replace(record.id.clone());
        instance.products.insert(slug.to_owned(), product.clone());
        self.save_instance(&instance).await?;
        // Every older token still accepted, not only the one just replaced:
        // the store keeps the earlier of two ends.
        let mut previous = None;
        for old in self
            .accepted_experience_tokens(&instance.id, slug, &record.id)
            .await?
        {
            let ended = self
                .store
                .expire_credential(&instance.id, &old.id, now + grace.duration())
                .await?;
            if replaced.as_deref() == Some(old.id.as_str()) {
                previous = ended;
            }
        }
        Ok(IssuedExperience {
            product,
            token,
            record,
            previous,
        })
    }
}
