//! The one place that builds the application: settings in, a bound server out.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::app::keyring;
use crate::app::propagation::Acks;
use crate::app::revocation_view::RevocationView;
use crate::app::state::{
    AuthLimits, DomainKeySettings, SessionSettings, VerifySettings, WebSettings,
};
use crate::app::{AdminToken, AppState};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Settings};
use crate::domain::credential::CredentialHasher;
use crate::domain::keyring::RingTimes;
use crate::domain::upstream::{Authority, UpstreamPolicy};
use crate::error::ApiError;
use crate::http;
use crate::http::cors;
use crate::http::gateway::proxy::Upstream;
use crate::metrics::Metrics;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{RevocationFeed, Store, StoreError};
use crate::telemetry;
use crate::tokens::{self, KeyEncryptionKey, KeyError, TokenService};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("signing key: {0}")]
    SigningKey(#[from] KeyError),
    #[error("cannot use the Redis store: {0}")]
    Store(#[from] StoreError),
    #[error("signing-key ring: {0}")]
    Ring(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        settings.validate()?;
        let listener =
            TcpListener::bind(&settings.listen).map_err(|source| StartupError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
        // With port 0 the default base URL must name the port actually bound.
        let mut settings = settings;
        if settings.public_base_url.is_none() {
            settings.public_base_url = Some(format!("http://{local}"));
        }

        let state = web::Data::new(build_state(&settings, local, clock).await?);
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let server_state = state.clone();
        let upstream_timeout = Duration::from_millis(settings.gateway.upstream_timeout_ms);
        let upstream_policy = state.upstreams.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .app_data(web::Data::new(Upstream::new(
                    upstream_timeout,
                    upstream_policy.clone(),
                )))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| ApiError::InvalidQuery(e.to_string()).into()),
                )
                .wrap(from_fn(cors::preflight))
                .wrap(from_fn(telemetry::request_id))
                .configure(http::configure)
                .default_service(web::to(http::route_not_found))
        })
        .workers(workers)
        // A client that opens a connection must send its request head within
        // this, else 408 and the connection is closed (slow-header clients
        // would otherwise hold connections open); bodies have their own
        // bound in the body extractors.
        .client_request_timeout(Duration::from_millis(settings.http.header_timeout_ms))
        // Small request/response exchanges: never let Nagle hold a response.
        .tcp_nodelay(true)
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.listen.clone(),
            source,
        })?
        .run();
        spawn_usage_flusher(state.clone());
        spawn_revocation_follower(&state);
        actix_web::rt::spawn(keyring::follow_ring(
            Arc::downgrade(&state.clone().into_inner()),
            state.signing.changed.clone(),
            state.tokens.refresh_wanted(),
        ));
        tracing::info!(addr = %local, workers, "keybroker listening");
        Ok(Application {
            port: local.port(),
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (graceful: in-flight requests finish) or until
    /// the handle stops it, then writes the usage counters and audit entries
    /// still buffered.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Err(e) = self.state.usage.flush(self.state.store.as_ref()).await {
            tracing::warn!(error = %e, "usage counters of the last second were not written");
        }
        self.state
            .audit_buffer
            .flush(self.state.store.as_ref())
            .await;
        served
    }
}

/// Writes buffered usage counters and client audit entries once a second, for
/// as long as the state lives.
fn spawn_usage_flusher(state: web::Data<AppState>) {
    let weak = Arc::downgrade(&state.into_inner());
    actix_web::rt::spawn(async move {
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { break };
            if let Err(e) = state.usage.flush(state.store.as_ref()).await {
                tracing::warn!(error = %e, "usage counters not written yet");
            }
            state.audit_buffer.flush(state.store.as_ref()).await;
        }
    });
}

/// Keeps the revocation view fed for as long as the state lives: subscribes,
/// and when the subscription is lost, makes the view forget everything and
/// subscribes again (backing off up to one second while Redis is away).
fn spawn_revocation_follower(state: &web::Data<AppState>) {
    if !state.store.has_revocation_feed() {
        return;
    }
    let store = state.store.clone();
    let feed = FeedIntoView {
        view: state.revocations.clone(),
        acks: state.acks.clone(),
        metrics: state.metrics.clone(),
        ring_changed: state.signing.changed.clone(),
    };
    let weak = Arc::downgrade(&state.clone().into_inner());
    // Its own thread: an announcement is applied as soon as it arrives, not
    // when the thread it shared with other work gets to it (the answer to a
    // write and its keyspace notification leave Redis together).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "no runtime for the revocation feed; revocations are read from Redis");
            return;
        }
    };
    let follow = async move {
        let mut backoff = FEED_RETRY_MIN;
        // Said once per outage (and once if it never comes up), not per retry.
        let mut warned = false;
        loop {
            let ended = tokio::select! {
                ended = store.follow_revocations(&feed) => ended,
                () = dropped(&weak) => break,
            };
            let was_up = feed.view.lost();
            let error = ended.err().map(|e| e.to_string()).unwrap_or_default();
            if was_up {
                feed.metrics.revocation_feed_lost();
                backoff = FEED_RETRY_MIN;
            }
            if was_up || !warned {
                tracing::warn!(
                    error,
                    "revocation feed down; revocations are read from Redis until it is up"
                );
                warned = true;
            } else {
                tracing::debug!(error, "revocation feed still down");
            }
            actix_web::rt::time::sleep(backoff).await;
            backoff = (backoff * 2).min(FEED_RETRY_MAX);
        }
    };
    let spawned = std::thread::Builder::new()
        .name("revocation-feed".into())
        .spawn(move || runtime.block_on(follow));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "no thread for the revocation feed; revocations are read from Redis");
    }
}

const FEED_RETRY_MIN: Duration = Duration::from_millis(50);
const FEED_RETRY_MAX: Duration = Duration::from_secs(1);

/// Resolves once the application state is gone.
async fn dropped(weak: &std::sync::Weak<AppState>) {
    while weak.strong_count() > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the store's feed reports, passed on to the view and the metrics.
struct FeedIntoView {
    view: Arc<RevocationView>,
    acks: Arc<Acks>,
    metrics: Arc<Metrics>,
    ring_changed: Arc<tokio::sync::Notify>,
}

impl RevocationFeed for FeedIntoView {
    fn subscribed(&self) {
        // A ring change announced before this subscription reached nobody
        // here: read the ring once now.
        self.ring_changed.notify_one();
        self.view.subscribed();
        self.metrics.revocation_feed_up();
    }

    fn changed(&self, instance_id: &str) {
        self.view.changed(instance_id);
    }

    fn alive(&self) {
        self.view.alive();
    }

    fn ring_changed(&self) {
        self.ring_changed.notify_one();
    }

    fn process_id(&self) -> &str {
        self.acks.process_id()
    }

    fn keyspace_watched(&self, watched: bool) {
        if !watched {
            tracing::warn!("Redis refused to publish keyspace notifications (CONFIG SET notify-keyspace-events); product requests read the store every time");
        }
        self.view.keyspace_watched(watched);
    }

    fn acknowledged(&self, nonce: &str, process: &str) {
        self.acks.acknowledged(nonce, process);
    }
}

/// Where upstreams may point: the setting, and every address of this broker
/// (as bound, as configured, and as the public base URL names it).
fn upstream_policy(settings: &Settings, local: SocketAddr) -> UpstreamPolicy {
    let configured = Authority::parse(&settings.listen, 80).ok();
    let public = Authority::of_url(&settings.public_base_url()).ok();
    UpstreamPolicy {
        allow_private: settings.upstreams.allow_private,
        own_addresses: [Some(Authority::from(local)), configured, public]
            .into_iter()
            .flatten()
            .collect(),
    }
}

/// The Redis node, or the Redis Cluster when its seed nodes are configured.
async fn connect_redis(settings: &Settings) -> Result<RedisStore, StartupError> {
    let timeout = Duration::from_millis(settings.store.timeout_ms);
    let prefix = &settings.store.key_prefix;
    if let Some(nodes) = settings.cluster_nodes() {
        return Ok(RedisStore::connect_cluster(&nodes, prefix, timeout).await?);
    }
    let url = settings.store.redis_url.as_ref().map(|u| u.expose());
    Ok(RedisStore::connect(url.unwrap_or_default(), prefix, timeout).await?)
}

/// What `keybroker keys …` works on: the Redis store, the key that seals its
/// ring, and the ring's times. A memory store has no ring outside a process.
pub async fn key_ring_of(
    settings: &Settings,
) -> Result<(RedisStore, KeyEncryptionKey, RingTimes), StartupError> {
    settings.validate()?;
    if !settings.shared_store() {
        return Err(StartupError::Ring(
            "the key commands work on a shared ring: set KEYBROKER_REDIS_URL or KEYBROKER_REDIS_CLUSTER_NODES (a memory store's ring lives inside its process; use the admin API)".into(),
        ));
    }
    let kek = settings
        .key_encryption_key()?
        .map(|bytes| KeyEncryptionKey::new(&bytes))
        .ok_or_else(|| StartupError::Ring("KEYBROKER_KEY_ENCRYPTION_KEY is required".into()))?;
    let store = connect_redis(settings).await?;
    let times = RingTimes {
        leeway: i64::try_from(settings.tokens.leeway_seconds).unwrap_or(0),
        max_token_ttl: i64::try_from(crate::domain::instance::MAX_TOKEN_TTL_SECONDS)
            .unwrap_or(i64::MAX),
    };
    // The ring must open with this key before anything is added to it.
    let ring = keyring::read_ring(&store)
        .await
        .map_err(|e| StartupError::Ring(e.to_string()))?;
    for key in &ring {
        kek.open(&key.kid, &key.sealed_private_key)
            .map_err(|e| StartupError::Ring(e.to_string()))?;
    }
    Ok((store, kek, times))
}

async fn build_state(
    settings: &Settings,
    local: SocketAddr,
    clock: Arc<dyn Clock>,
) -> Result<AppState, StartupError> {
    let pepper = settings
        .secrets
        .pepper
        .as_ref()
        .map(|p| p.expose().as_bytes().to_vec())
        .unwrap_or_default();
    let hasher = CredentialHasher::new(&pepper);
    let admin_token = settings
        .admin
        .token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let store: Arc<dyn Store> = if settings.shared_store() {
        Arc::new(connect_redis(settings).await?)
    } else {
        Arc::new(MemoryStore::new())
    };
    // Validation made sure Redis has a configured key; a memory store's ring
    // dies with the process, and so may its key.
    let kek = match settings.key_encryption_key()? {
        Some(bytes) => KeyEncryptionKey::new(&bytes),
        None => KeyEncryptionKey::generate().map_err(|e| StartupError::Ring(e.to_string()))?,
    };
    let ring = keyring::load_or_bootstrap(
        store.as_ref(),
        &kek,
        || {
            let pem = settings.signing_key_pem().map_err(|e| e.to_string())?;
            tokens::pkcs8_pem_to_der(&pem).map_err(|e| format!("signing key: {e}"))
        },
        clock.now().timestamp(),
    )
    .await
    .map_err(StartupError::Ring)?;
    let tokens = TokenService::from_ring(
        settings.issuer(),
        ring,
        &kek,
        &settings.previous_signing_key_pems()?,
        settings.tokens.leeway_seconds,
    )
    .map_err(StartupError::Ring)?;
    Ok(AppState {
        store,
        tokens,
        admin: AdminToken::new(&hasher, &admin_token),
        hasher,
        clock,
        metrics: Arc::default(),
        usage: Default::default(),
        audit_buffer: Default::default(),
        caches: Default::default(),
        revocations: Arc::default(),
        leases: Default::default(),
        acks: Arc::default(),
        origins: Default::default(),
        sessions: SessionSettings {
            default_token_ttl_seconds: settings.tokens.ttl_seconds,
            max_session_seconds: settings.tokens.max_session_seconds,
            refresh_reuse_seconds: settings.tokens.refresh_reuse_seconds,
            leeway_seconds: settings.tokens.leeway_seconds,
        },
        web: WebSettings {
            public_base_url: settings.public_base_url(),
            max_body_bytes: settings.http.max_body_bytes,
            body_timeout: Duration::from_millis(settings.http.body_timeout_ms),
            cors_max_age_seconds: settings.http.cors_max_age_seconds,
            trusted_proxies: settings
                .http
                .trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            console_enabled: settings.console.enabled,
        },
        upstreams: Arc::new(upstream_policy(settings, local)),
        verify: VerifySettings {
            uri_header: settings.verify.uri_header.clone(),
            method_header: settings.verify.method_header(),
        },
        auth_limits: AuthLimits {
            failures_per_ip_per_minute: settings.limits.auth_failures_per_ip_per_minute,
            failures_per_key_per_minute: settings.limits.auth_failures_per_key_per_minute,
        },
        domain_keys: DomainKeySettings {
            propagation_seconds: settings.domain_keys.propagation_seconds,
        },
        signing: keyring::SigningSettings {
            kek: Arc::new(kek),
            publish_lead_seconds: settings.signing.publish_lead_seconds,
            jwks_max_age_seconds: settings.signing.jwks_max_age_seconds,
            changed: Arc::default(),
        },
    })
}
