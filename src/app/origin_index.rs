//! The index of every origin some credential allows on a path, for CORS
//! preflights (see `http/cors.rs` for the policy): the domains of domain keys
//! (for `/v1/*`, and for `/prod/{slug}/*` of their instance's products) and the
//! `allowed_origins` of experiences (`/prod/{slug}/*`; an empty list allows
//! every origin).
//!
//! The index is rebuilt from the store at most every [`INDEX_TTL`]; an admin
//! change made through this process invalidates it at once, one made through
//! another process shows within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::credential::CredentialKind;
use crate::domain::origin::{DomainPattern, Origin, OriginPattern};
use crate::domain::path::split_gateway_path;
use crate::store::{Store, StoreError};

pub const INDEX_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Snapshot {
    domain_keys: Vec<DomainPattern>,
    /// Per product slug: `None` when some experience of that slug allows
    /// every origin.
    experiences: HashMap<String, Option<Vec<OriginPattern>>>,
    /// Per product slug: domains of the domain keys of instances having it.
    product_domains: HashMap<String, Vec<DomainPattern>>,
}

impl Snapshot {
    async fn build(store: &dyn Store) -> Result<Self, StoreError> {
        let mut snapshot = Snapshot::default();
        for instance in store.list_instances().await? {
            let mut domains = Vec::new();
            for key in store
                .list_credentials(&instance.id, CredentialKind::DomainKey)
                .await?
            {
                if key.revoked_at.is_none() {
                    domains.extend(key.domains.iter().filter_map(|d| d.parse().ok()));
                }
            }
            for (slug, product) in &instance.products {
                let entry = snapshot
                    .experiences
                    .entry(slug.clone())
                    .or_insert_with(|| Some(Vec::new()));
                if product.allowed_origins.is_empty() {
                    *entry = None;
                } else if let Some(list) = entry {
                    list.extend(
                        product
                            .allowed_origins
                            .iter()
                            .filter_map(|o| o.parse().ok()),
                    );
                }
                snapshot
                    .product_domains
                    .entry(slug.clone())
                    .or_default()
                    .extend(domains.iter().cloned());
            }
            snapshot.domain_keys.extend(domains);
        }
        Ok(snapshot)
    }

    fn allows(&self, path: &str, origin: &Origin) -> bool {
        if path.starts_with("/v1/") {
            return self.domain_keys.iter().any(|d| d.matches(origin));
        }
        let Some((slug, _)) = split_gateway_path(path) else {
            return false;
        };
        let by_experience = match self.experiences.get(slug) {
            Some(None) => true,
            Some(Some(list)) => list.iter().any(|p| p.matches(origin)),
            None => false,
        };
        by_experience
            || self
                .product_domains
                .get(slug)
                .is_some_and(|list| list.iter().any(|d| d.matches(origin)))
    }
}

#[derive(Debug, Default)]
pub struct OriginIndex {
    cached: RwLock<Option<(Instant, Arc<Snapshot>)>>,
}

impl OriginIndex {
    /// Forgets the snapshot; the next preflight rebuilds it.
    pub fn invalidate(&self) {
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether some credential allows `origin` on `path` (see the module doc).
    pub async fn allows(
        &self,
        store: &dyn Store,
        path: &str,
        origin: &Origin,
    ) -> Result<bool, StoreError> {
        Ok(self.snapshot(store).await?.allows(path, origin))
    }

    async fn snapshot(&self, store: &dyn Store) -> Result<Arc<Snapshot>, StoreError> {
        if let Some((built, snapshot)) = &*self.cached.read().unwrap_or_else(|e| e.into_inner()) {
            if built.elapsed() < INDEX_TTL {
                return Ok(snapshot.clone());
            }
        }
        let snapshot = Arc::new(Snapshot::build(store).await?);
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}
