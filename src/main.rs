use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keybroker::app::audit::AuditEntry;
use keybroker::app::keyring;
use keybroker::config::Settings;
use keybroker::startup::{self, Application};
use keybroker::{demo, telemetry, tokens};

/// The request path allocates many small, short-lived objects; mimalloc
/// serves them with less contention and fewer instructions than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "keybroker", version, about = "Auth broker for API products")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve {
        /// TOML configuration file; KEYBROKER_* variables override it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seed a demo instance, generate missing secrets, print credentials and curl examples.
        #[arg(long)]
        demo: bool,
    },
    /// Print a new Ed25519 signing key (PKCS#8 PEM) on stdout.
    GenerateKey,
    /// The signing-key ring in Redis (as the admin API's /admin/v1/signing-keys).
    Keys {
        /// TOML configuration file; KEYBROKER_* variables override it.
        #[arg(long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// List the keys (never a private key), as JSON.
    List,
    /// Add the next key; every running process learns of it.
    Rotate {
        /// Seconds the key is published before it signs (default:
        /// signing.publish_lead_seconds).
        #[arg(long)]
        publish_lead_seconds: Option<u64>,
        /// A leaked key: the new key signs at once and every token of the
        /// keys before it is refused.
        #[arg(long)]
        immediate: bool,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenerateKey => {
            print!("{}", tokens::generate_pkcs8_pem());
            ExitCode::SUCCESS
        }
        Command::Keys { config, action } => match keys(config, action).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("keybroker: {message}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config, demo } => match serve(config, demo).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("keybroker: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn keys(config: Option<PathBuf>, action: KeysAction) -> Result<(), String> {
    let settings = Settings::load(config.as_deref()).map_err(|e| e.to_string())?;
    telemetry::init(&settings.log.format, "warn");
    let (store, kek, times) = startup::key_ring_of(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    let out = match action {
        KeysAction::List => {
            let ring = keyring::read_ring(&store)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::json!({ "keys": keyring::views(&ring, now.timestamp(), times) })
        }
        KeysAction::Rotate {
            publish_lead_seconds,
            immediate,
        } => {
            let lead = publish_lead_seconds.unwrap_or(settings.signing.publish_lead_seconds);
            let (kid, revoked) = keyring::rotate(
                &store,
                &kek,
                times,
                now,
                lead,
                immediate,
                AuditEntry::command_line("signing_key.rotate"),
            )
            .await
            .map_err(|e| e.to_string())?;
            let ring = keyring::read_ring(&store)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::json!({
                "kid": kid,
                "immediate": immediate,
                "revoked": revoked,
                "keys": keyring::views(&ring, now.timestamp(), times),
            })
        }
    };
    let _ = writeln!(std::io::stdout().lock(), "{out:#}");
    Ok(())
}

async fn serve(config: Option<PathBuf>, demo_mode: bool) -> Result<(), String> {
    let mut settings = Settings::load(config.as_deref()).map_err(|e| e.to_string())?;
    telemetry::init(&settings.log.format, &settings.log.level);
    let generated = demo_mode.then(|| demo::prepare(&mut settings));
    let admin_token = settings
        .admin
        .token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();

    let store = if settings.store.redis_cluster_nodes.is_some() {
        "Redis Cluster store"
    } else if settings.store.redis_url.is_some() {
        "Redis store"
    } else {
        "in-memory store, nothing is persisted"
    };

    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(generated) = generated {
        let (echo_base, echo) =
            demo::start_echo().map_err(|e| format!("cannot start the demo upstream: {e}"))?;
        actix_web::rt::spawn(echo);
        let seeded = demo::seed(app.state(), &echo_base)
            .await
            .map_err(|e| format!("cannot seed the demo instance: {e}"))?;
        let base = &app.state().web.public_base_url;
        // A taken port 3000 costs the page, not the demo.
        let page = demo::start_page(&seeded, base)
            .map(|server| {
                actix_web::rt::spawn(server);
            })
            .map_err(|e| e.to_string());
        let banner = demo::banner(&seeded, base, store, &admin_token, &generated, &page);
        // A closed stdout (`| head`) must not take the server down with it.
        let _ = writeln!(std::io::stdout().lock(), "{banner}");
    }
    app.run_until_stopped().await.map_err(|e| e.to_string())
}
