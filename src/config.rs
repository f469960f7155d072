//! One typed configuration: CLI flags > environment > `Leptos.toml` > defaults.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::webhooks::{RetrySchedule, TargetPolicy};
use crate::webhooks::WebhookSettings;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://limitry.db";

#[derive(Debug, Parser)]
#[command(name = "limitry", version, about = "Usage metering, limit enforcement and prepaid credits for AI products")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Log lines as text, or as JSON objects one a line (for log collectors).
    #[arg(long, env = "LIMITRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(ServeArgs),
    /// Manage projects (tenants).
    Projects {
        #[command(subcommand)]
        command: ProjectsCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage dashboard operators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project and print its id.
    Create {
        #[arg(long)]
        name: String,
        /// Default IANA timezone of the project's customers.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// List projects.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an operator who can sign in to the dashboard.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "LIMITRY_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[arg(long)]
        name: String,
        /// Project id; the default project when omitted.
        #[arg(long)]
        project: Option<String>,
        /// Requests per minute this key may make, over the service's default; 0: no limit.
        #[arg(long)]
        rate_limit_per_minute: Option<u64>,
        /// Requests per day (UTC) this key may make, over the service's default; 0: no limit.
        #[arg(long)]
        rate_limit_per_day: Option<u64>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id (`key_…`).
    Revoke { id: String },
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "LIMITRY_BIND")]
    pub bind: Option<SocketAddr>,
    /// Serve `GET /metrics` on this address only, instead of on the API's.
    #[arg(long, env = "LIMITRY_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Secret that signs dashboard session cookies. Without one, a random secret is made on
    /// first start and kept in the database, so sessions survive restarts.
    #[arg(long, env = "LIMITRY_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// Mark session cookies `Secure`: `auto` does unless the service listens on loopback
    /// (plain-HTTP local use).
    #[arg(long, env = "LIMITRY_COOKIE_SECURE", value_enum, default_value_t = CookieSecure::Auto)]
    pub cookie_secure: CookieSecure,
    /// When to retry a failed webhook delivery, e.g. `5s,30s,2m,10m,1h,6h,24h`.
    #[arg(long, env = "LIMITRY_WEBHOOK_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,1h,6h,24h")]
    pub webhook_retry_schedule: String,
    /// Seconds a webhook receiver has to answer.
    #[arg(long, env = "LIMITRY_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    pub webhook_timeout_seconds: u64,
    /// Hours of failing deliveries after which an endpoint is disabled.
    #[arg(long, env = "LIMITRY_WEBHOOK_DISABLE_AFTER_HOURS", default_value_t = 24)]
    pub webhook_disable_after_hours: u32,
    /// Hours a rotated webhook signing secret keeps signing deliveries beside the new one (each
    /// delivery then carries both signatures), so receivers can switch without losing any;
    /// 0 stops the old secret at once. A rotation may choose its own (at most 720).
    #[arg(long, env = "LIMITRY_WEBHOOK_SECRET_GRACE_HOURS", default_value_t = 24,
        value_parser = clap::value_parser!(u32).range(0..=720))]
    pub webhook_secret_grace_hours: u32,
    /// How often the webhook worker looks for due deliveries, in milliseconds.
    #[arg(long, env = "LIMITRY_WEBHOOK_POLL_MS", default_value_t = 500)]
    pub webhook_poll_ms: u64,
    /// Allow webhook receivers on private, loopback and link-local addresses (receivers on
    /// your own network). Off by default: any API key could otherwise reach internal services.
    #[arg(long, env = "LIMITRY_WEBHOOK_ALLOW_PRIVATE", default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,
    /// How many days in the past an event may be dated.
    #[arg(long, env = "LIMITRY_MAX_BACKDATE_DAYS", default_value_t = 35)]
    pub max_backdate_days: u32,
    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "LIMITRY_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// Seconds from a request's headers to its answer (reading the body included).
    #[arg(long, env = "LIMITRY_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, env = "LIMITRY_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Requests per minute each API key may make, unless the key sets its own; unlimited when
    /// not set.
    #[arg(long, env = "LIMITRY_RATE_LIMIT_PER_MINUTE", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_per_minute: Option<u64>,
    /// Requests per day (UTC) each API key may make, unless the key sets its own; unlimited
    /// when not set.
    #[arg(long, env = "LIMITRY_RATE_LIMIT_PER_DAY", value_parser = clap::value_parser!(u64).range(1..))]
    pub rate_limit_per_day: Option<u64>,
    /// How often each instance adds its local request counts to the shared counters, in
    /// milliseconds.
    #[arg(long, env = "LIMITRY_RATE_LIMIT_FLUSH_MS", default_value_t = 10)]
    pub rate_limit_flush_ms: u64,
    /// Browser origins allowed to call the client-token routes (`/v1/client/…`), comma
    /// separated, e.g. `https://app.example.com`; `*` allows any. None by default.
    #[arg(long, env = "LIMITRY_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

/// Everything the service needs to start.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Where `GET /metrics` is served when not on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    pub database_url: String,
    pub max_backdate_days: u32,
    pub session_secret: Option<String>,
    pub cookie_secure: CookieSecure,
    pub webhooks: WebhookSettings,
    pub connections: ConnectionLimits,
    pub rate_limits: RateLimitSettings,
    /// Origins allowed to call `/v1/client/…` from a browser; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
}

/// The default API rate limit of every key (`None`: unlimited) and how instances share counts.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    pub per_minute: Option<u64>,
    pub per_day: Option<u64>,
    pub flush_interval: Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings { per_minute: None, per_day: None, flush_interval: Duration::from_millis(10) }
    }
}

/// What one client may hold of the server: slow or idle clients are cut off, and the number
/// of connections is capped so they cannot exhaust file descriptors or memory.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

impl Config {
    /// Defaults for everything but where to listen and what database to use.
    pub fn new(bind: SocketAddr, database_url: &str) -> Config {
        Config {
            bind,
            metrics_bind: None,
            database_url: database_url.to_string(),
            max_backdate_days: 35,
            session_secret: None,
            cookie_secure: CookieSecure::Auto,
            webhooks: WebhookSettings::default(),
            connections: ConnectionLimits::default(),
            rate_limits: RateLimitSettings::default(),
            cors_allowed_origins: Vec::new(),
        }
    }

    /// Whether session cookies get the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        match self.cookie_secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => !self.bind.ip().is_loopback(),
        }
    }

    /// Resolves flags and environment (already merged by clap) over `Leptos.toml` and defaults.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Config> {
        let bind = match args.bind {
            Some(bind) => bind,
            None => leptos_toml_site_addr().unwrap_or(DEFAULT_BIND.parse()?),
        };
        Ok(Config {
            bind,
            metrics_bind: args.metrics_bind,
            database_url: args.database.url(),
            max_backdate_days: args.max_backdate_days,
            session_secret: args.session_secret.clone().filter(|s| !s.is_empty()),
            cookie_secure: args.cookie_secure,
            webhooks: WebhookSettings {
                retry: RetrySchedule::parse(&args.webhook_retry_schedule)
                    .map_err(|e| anyhow::anyhow!("--webhook-retry-schedule: {e}"))?,
                timeout: std::time::Duration::from_secs(args.webhook_timeout_seconds.max(1)),
                disable_after: chrono::Duration::hours(i64::from(args.webhook_disable_after_hours.max(1))),
                poll_interval: std::time::Duration::from_millis(args.webhook_poll_ms.max(10)),
                target_policy: TargetPolicy { allow_private: args.webhook_allow_private },
                secret_grace: chrono::Duration::hours(i64::from(args.webhook_secret_grace_hours)),
            },
            connections: ConnectionLimits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds.max(1)),
                request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
                max_connections: args.max_connections.max(1),
            },
            rate_limits: RateLimitSettings {
                per_minute: args.rate_limit_per_minute,
                per_day: args.rate_limit_per_day,
                flush_interval: Duration::from_millis(args.rate_limit_flush_ms.max(1)),
            },
            cors_allowed_origins: crate::api::client::parse_origins(&args.cors_allowed_origins)?,
        })
    }
}

/// `site-addr` from `Leptos.toml` in the working directory, if there is one.
fn leptos_toml_site_addr() -> Option<SocketAddr> {
    if !std::path::Path::new("Leptos.toml").exists() {
        return None;
    }
    leptos::config::get_configuration(Some("Leptos.toml")).ok().map(|c| c.leptos_options.site_addr)
}

/// Database URLs may carry a password: show only the scheme and what follows the `@`.
pub fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("metrics_bind", &self.metrics_bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("max_backdate_days", &self.max_backdate_days)
            .field("session_secret", &self.session_secret.as_ref().map(|_| "***"))
            .field("cookie_secure", &self.cookie_secure)
            .field("webhooks", &self.webhooks)
            .field("connections", &self.connections)
            .field("rate_limits", &self.rate_limits)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .finish()
    }
}
