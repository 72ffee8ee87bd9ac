//! The index of every origin some credential allows on a path, for CORS
//! preflights (see `http/cors.rs` for the policy): the domains of domain keys
//! (for `/v1/*`, and for `/prod/{slug}/*` of their instance's products) and the
//! `allowed_origins` of experiences (`/prod/{slug}/*`; an empty list allows
//! every origin).
//!
//! A preflight carries no credential, so anyone can ask for one: the index
//! must never cost the shared store more than its own rebuilds. Hence:
//! - it is built from the store at most once per [`INDEX_TTL`] per process,
//!   by one task at a time (single flight); a cold process makes concurrent
//!   preflights wait for that one build, a warm one answers from the stale
//!   index while one request rebuilds it;
//! - an admin change made through this process updates the entry of the one
//!   instance it touched (a few store commands), it does not drop the index;
//!   one made through another process shows within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::credential::CredentialKind;
use crate::domain::instance::Instance;
use crate::domain::origin::{DomainPattern, Origin, OriginPattern};
use crate::domain::path::split_gateway_path;
use crate::store::{Store, StoreError};

pub const INDEX_TTL: Duration = Duration::from_secs(10);

/// What one instance contributes to the index.
#[derive(Debug, Default)]
struct InstanceOrigins {
    /// Per product slug: its `allowed_origins`, `None` when it allows every
    /// origin.
    products: Vec<(String, Option<Vec<OriginPattern>>)>,
    /// Domains of the instance's domain keys that are not revoked.
    domains: Vec<DomainPattern>,
}

impl InstanceOrigins {
    async fn load(store: &dyn Store, instance: &Instance) -> Result<Self, StoreError> {
        let mut domains = Vec::new();
        for key in store
            .list_credentials(&instance.id, CredentialKind::DomainKey)
            .await?
        {
            if key.revoked_at.is_none() {
                domains.extend(key.domains.iter().filter_map(|d| d.parse().ok()));
            }
        }
        let products = instance
            .products
            .iter()
            .map(|(slug, product)| {
                let origins = (!product.allowed_origins.is_empty()).then(|| {
                    product
                        .allowed_origins
                        .iter()
                        .filter_map(|o| o.parse().ok())
                        .collect()
                });
                (slug.clone(), origins)
            })
            .collect();
        Ok(InstanceOrigins { products, domains })
    }
}

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
    fn of(instances: &HashMap<String, InstanceOrigins>) -> Self {
        let mut snapshot = Snapshot::default();
        for instance in instances.values() {
            for (slug, origins) in &instance.products {
                let entry = snapshot
                    .experiences
                    .entry(slug.clone())
                    .or_insert_with(|| Some(Vec::new()));
                match (origins, entry) {
                    (None, entry) => *entry = None,
                    (Some(origins), Some(list)) => list.extend(origins.iter().cloned()),
                    (Some(_), None) => {}
                }
                snapshot
                    .product_domains
                    .entry(slug.clone())
                    .or_default()
                    .extend(instance.domains.iter().cloned());
            }
            snapshot
                .domain_keys
                .extend(instance.domains.iter().cloned());
        }
        snapshot
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

/// The index as last built, with each instance's part.
#[derive(Debug)]
struct Built {
    at: Instant,
    instances: HashMap<String, InstanceOrigins>,
    snapshot: Arc<Snapshot>,
}

#[derive(Debug, Default)]
pub struct OriginIndex {
    built: RwLock<Option<Built>>,
    /// Held by the one task that builds or patches the index.
    building: tokio::sync::Mutex<()>,
}

impl OriginIndex {
    /// Whether some credential allows `origin` on `path` (see the module doc).
    pub async fn allows(
        &self,
        store: &dyn Store,
        path: &str,
        origin: &Origin,
    ) -> Result<bool, StoreError> {
        Ok(self.snapshot(store).await?.allows(path, origin))
    }

    /// The current snapshot and whether it is younger than the TTL.
    fn current(&self) -> Option<(Arc<Snapshot>, bool)> {
        let built = self.built.read().unwrap_or_else(|e| e.into_inner());
        built
            .as_ref()
            .map(|b| (b.snapshot.clone(), b.at.elapsed() < INDEX_TTL))
    }

    async fn snapshot(&self, store: &dyn Store) -> Result<Arc<Snapshot>, StoreError> {
        let stale = match self.current() {
            Some((snapshot, true)) => return Ok(snapshot),
            Some((snapshot, false)) => Some(snapshot),
            None => None,
        };
        let _building = match (stale, self.building.try_lock()) {
            (_, Ok(guard)) => guard,
            // Someone is rebuilding: the stale index answers meanwhile.
            (Some(stale), Err(_)) => return Ok(stale),
            // Cold: wait for the one build under way, then use it.
            (None, Err(_)) => {
                let guard = self.building.lock().await;
                if let Some((snapshot, true)) = self.current() {
                    return Ok(snapshot);
                }
                guard
            }
        };
        if let Some((snapshot, true)) = self.current() {
            return Ok(snapshot);
        }
        let mut instances = HashMap::new();
        for instance in store.list_instances().await? {
            let origins = InstanceOrigins::load(store, &instance).await?;
            instances.insert(instance.id, origins);
        }
        let snapshot = Arc::new(Snapshot::of(&instances));
        *self.built.write().unwrap_or_else(|e| e.into_inner()) = Some(Built {
            at: Instant::now(),
            instances,
            snapshot: snapshot.clone(),
        });
        Ok(snapshot)
    }

    /// Brings one instance's part up to date after an admin change made
    /// through this process; an index not built yet is left to the next
    /// preflight. If the store fails, the index is dropped rather than left
    /// wrong.
    pub async fn refresh_instance(&self, store: &dyn Store, instance_id: &str) {
        let _building = self.building.lock().await;
        if self
            .built
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return;
        }
        let fresh = match store.get_instance(instance_id).await {
            Ok(Some(instance)) => InstanceOrigins::load(store, &instance).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let mut built = self.built.write().unwrap_or_else(|e| e.into_inner());
        match (fresh, built.as_mut()) {
            (Ok(fresh), Some(index)) => {
                match fresh {
                    Some(origins) => index.instances.insert(instance_id.to_owned(), origins),
                    None => index.instances.remove(instance_id),
                };
                index.snapshot = Arc::new(Snapshot::of(&index.instances));
            }
            (Ok(_), None) => {}
            (Err(e), _) => {
                tracing::warn!(error = %e, "the CORS index is rebuilt on the next preflight");
                *built = None;
            }
        }
    }
}
