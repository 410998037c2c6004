//! The coordinator's command line and config file, resolved into a [`CoordinatorConfig`].
//!
//! Precedence: command-line flag, then environment variable, then the TOML config file, then
//! the built-in default. The config file's keys are the long flag names with `_` for `-`.

use crate::auth::Token;
use crate::scheduler::{DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_MAX_ACTIVE_JOBS, SchedulerConfig};
use crate::server::{CoordinatorConfig, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_LISTEN, TlsPem};
use crate::store::Retention;
use crate::store::retention::{DEFAULT_RETAIN_FOR, DEFAULT_RETAIN_JOBS};
use anyhow::Context;
use clap::Parser;
use concur_core::config;
use concur_core::policy::HostPolicy;
use concur_core::spec::Limits;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The concur coordinator: splits jobs into shards and leases them to attached workers.
#[derive(Debug, Parser)]
#[command(
    name = "concur-coordinator",
    version,
    after_help = "Examples:\n  concur-coordinator --listen 127.0.0.1:7070\n  concur-coordinator --listen 0.0.0.0:7070 --token-file /etc/concur/token --worker-token-file /etc/concur/worker-token\n  concur-coordinator --config /etc/concur/coordinator.toml\n  concur-coordinator --listen 127.0.0.1:7070 --http-listen 127.0.0.1:8080   # dashboard and /metrics\n  CONCUR_STATE_URL=postgres://concur:PW@db:5432/concur concur-coordinator --listen 0.0.0.0:7070 --advertise-url http://coord-a:7070 …   # active/standby (docs/ha.md)\n\nWithout tokens the coordinator only listens on loopback, unless --insecure is given."
)]
pub struct CoordinatorOpts {
    /// TOML config file (keys: the long flag names with _ for -).
    #[arg(long, env = "CONCUR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the bound address is printed) [default: 127.0.0.1:7070].
    #[arg(long, env = "CONCUR_LISTEN")]
    pub listen: Option<String>,
    /// Serve the web dashboard, its JSON API and Prometheus /metrics on this address (plain
    /// HTTP; beyond loopback only with --token-file, whose token the browser presents once as
    /// ?token=).
    #[arg(long, env = "CONCUR_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// A worker silent for this long is declared lost and its shards re-queued [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat_timeout: Option<Duration>,
    /// How often workers send heartbeats [default: 1s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Option<Duration>,
    /// Revoke and re-queue a shard leased longer than this, even if its worker still
    /// heartbeats (a hung executor) [default: no deadline].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub lease_timeout: Option<Duration>,
    /// Directory of the durable state (SQLite) [default: $XDG_STATE_HOME/concur or ~/.local/state/concur].
    #[arg(long, env = "CONCUR_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep state in memory only: jobs are lost when the coordinator stops.
    #[arg(long, conflicts_with = "state_url")]
    pub in_memory: bool,
    /// Keep the state in PostgreSQL (postgres://USER[:PASSWORD]@HOST:PORT/DB) instead of a
    /// directory; coordinators sharing it run as one active and standbys (docs/ha.md).
    #[arg(
        long,
        env = "CONCUR_STATE_URL",
        conflicts_with = "state_dir",
        value_name = "URL"
    )]
    pub state_url: Option<String>,
    /// With --state-url: the URL clients and workers reach this coordinator at, which
    /// standbys name as the active one [default: http(s)://HOST:PORT of --listen].
    #[arg(long, env = "CONCUR_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// Finished jobs kept at most; older ones are forgotten (0 = no limit) [default: 10000].
    #[arg(long)]
    pub retain_jobs: Option<u64>,
    /// Finished jobs are forgotten this long after submission (0s = never) [default: 14d].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub retain_for: Option<Duration>,
    /// Token clients must present (prefer --token-file: arguments are visible to other users).
    #[arg(long, env = "CONCUR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the client token.
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Token workers must present (prefer --worker-token-file).
    #[arg(long, env = "CONCUR_WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Option<String>,
    /// File holding the worker token.
    #[arg(long, conflicts_with = "worker_token")]
    pub worker_token_file: Option<PathBuf>,
    /// Allow listening beyond loopback without tokens (only on a network you trust).
    #[arg(long)]
    pub insecure: bool,
    /// TLS certificate chain (PEM); with --tls-key, serves gRPC over TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that worker client certificates must chain to: mutual TLS for workers.
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Unfinished jobs accepted at once [default: 1000].
    #[arg(long)]
    pub max_active_jobs: Option<u32>,
    /// Items (URLs or n values) per job [default: 10000000].
    #[arg(long)]
    pub max_items: Option<u64>,
    /// Shards per job [default: 1000000].
    #[arg(long)]
    pub max_shards: Option<u32>,
    /// Only these hosts (and subdomains) may be fetched; repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    pub allow_host: Vec<String>,
    /// These hosts (and subdomains) may never be fetched; repeat or comma-separate.
    #[arg(long, value_delimiter = ',')]
    pub deny_host: Vec<String>,
    /// Refuse fetch URLs whose host is a loopback, private or link-local address.
    #[arg(long)]
    pub deny_private: bool,
    /// Log at debug level (RUST_LOG overrides).
    #[arg(long)]
    pub debug: bool,
    /// Log lines as `text` (colours only on a terminal) or `json` (one object per line).
    #[arg(long, env = "CONCUR_LOG_FORMAT", default_value = "text")]
    pub log_format: concur_core::logging::LogFormat,
}

/// What a config file may say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    http_listen: Option<String>,
    #[serde(default, deserialize_with = "config::duration")]
    heartbeat_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "config::duration")]
    heartbeat_interval: Option<Duration>,
    #[serde(default, deserialize_with = "config::duration")]
    lease_timeout: Option<Duration>,
    state_dir: Option<PathBuf>,
    in_memory: Option<bool>,
    state_url: Option<String>,
    advertise_url: Option<String>,
    retain_jobs: Option<u64>,
    #[serde(default, deserialize_with = "config::duration")]
    retain_for: Option<Duration>,
    token_file: Option<PathBuf>,
    worker_token_file: Option<PathBuf>,
    insecure: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    max_active_jobs: Option<u32>,
    max_items: Option<u64>,
    max_shards: Option<u32>,
    // Keys are the flag names; the plural spellings of the first release still work.
    #[serde(alias = "allow_hosts")]
    allow_host: Option<Vec<String>>,
    #[serde(alias = "deny_hosts")]
    deny_host: Option<Vec<String>>,
    deny_private: Option<bool>,
}

/// Everything the binary needs to start.
#[derive(Debug)]
pub struct Settings {
    /// Address to bind.
    pub listen: String,
    /// Listening beyond loopback without tokens was explicitly allowed.
    pub insecure: bool,
    /// Where the dashboard and /metrics are served, if anywhere.
    pub http_listen: Option<String>,
    /// The PostgreSQL state (active/standby), when set; `config.state_dir` is then unused.
    pub state_url: Option<String>,
    /// How clients reach this coordinator, when set.
    pub advertise_url: Option<String>,
    /// The coordinator's configuration.
    pub config: CoordinatorConfig,
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

impl CoordinatorOpts {
    /// Merges flags, environment and config file.
    ///
    /// # Errors
    /// An unreadable or invalid config file, token file or TLS file, or inconsistent settings.
    pub fn resolve(self) -> anyhow::Result<Settings> {
        let file: FileSettings =
            config::load(self.config.as_deref()).map_err(anyhow::Error::msg)?;
        let heartbeat_timeout = self
            .heartbeat_timeout
            .or(file.heartbeat_timeout)
            .unwrap_or(DEFAULT_HEARTBEAT_TIMEOUT);
        let heartbeat_interval = self
            .heartbeat_interval
            .or(file.heartbeat_interval)
            .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL);
        let lease_timeout = self.lease_timeout.or(file.lease_timeout);
        anyhow::ensure!(
            heartbeat_interval < heartbeat_timeout,
            "--heartbeat-interval ({heartbeat_interval:?}) must be shorter than --heartbeat-timeout ({heartbeat_timeout:?})"
        );
        let client_token = match (self.token, self.token_file.or(file.token_file)) {
            (Some(text), _) => Some(Token::new(&text, "--token / CONCUR_TOKEN")?),
            (None, Some(path)) => Some(Token::from_file(&path)?),
            (None, None) => None,
        };
        let worker_token = match (
            self.worker_token,
            self.worker_token_file.or(file.worker_token_file),
        ) {
            (Some(text), _) => Some(Token::new(&text, "--worker-token / CONCUR_WORKER_TOKEN")?),
            (None, Some(path)) => Some(Token::from_file(&path)?),
            (None, None) => None,
        };
        let tls_cert = self.tls_cert.or(file.tls_cert);
        let tls_key = self.tls_key.or(file.tls_key);
        let tls_client_ca = self.tls_client_ca.or(file.tls_client_ca);
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsPem {
                cert: read(&cert, "TLS certificate")?,
                key: read(&key, "TLS key")?,
                client_ca: tls_client_ca
                    .map(|ca| read(&ca, "TLS client CA"))
                    .transpose()?,
            }),
            (None, None) => {
                anyhow::ensure!(
                    tls_client_ca.is_none(),
                    "tls_client_ca needs tls_cert and tls_key"
                );
                None
            }
            _ => anyhow::bail!("TLS needs both a certificate (tls_cert) and a key (tls_key)"),
        };
        let in_memory = self.in_memory || file.in_memory.unwrap_or(false);
        let state_url = self.state_url.or(file.state_url);
        anyhow::ensure!(
            !(in_memory && state_url.is_some()),
            "state_url and in_memory exclude each other: state is either in PostgreSQL or in memory"
        );
        if let Some(url) = &state_url {
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "--state-url {}: expected postgres://USER@HOST:PORT/DATABASE",
                redact(url)
            );
        }
        let state_dir = (!in_memory).then(|| {
            self.state_dir
                .or(file.state_dir)
                .unwrap_or_else(crate::store::sqlite::default_state_dir)
        });
        let retain_for = self.retain_for.or(file.retain_for);
        let retention = Retention {
            max_jobs: self
                .retain_jobs
                .or(file.retain_jobs)
                .unwrap_or(DEFAULT_RETAIN_JOBS),
            max_age: match retain_for {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => Some(DEFAULT_RETAIN_FOR),
            },
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_items: self
                .max_items
                .or(file.max_items)
                .unwrap_or(defaults.max_items),
            max_shards: self
                .max_shards
                .or(file.max_shards)
                .unwrap_or(defaults.max_shards),
            ..defaults
        };
        let host_policy = HostPolicy {
            allow: config::list(self.allow_host, file.allow_host),
            deny: config::list(self.deny_host, file.deny_host),
            deny_private: self.deny_private || file.deny_private.unwrap_or(false),
        };
        Ok(Settings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            insecure: self.insecure || file.insecure.unwrap_or(false),
            http_listen: self.http_listen.or(file.http_listen),
            advertise_url: self.advertise_url.or(file.advertise_url),
            state_url,
            config: CoordinatorConfig {
                scheduler: SchedulerConfig {
                    limits,
                    heartbeat_timeout,
                    max_active_jobs: self
                        .max_active_jobs
                        .or(file.max_active_jobs)
                        .unwrap_or(DEFAULT_MAX_ACTIVE_JOBS),
                    host_policy: host_policy.into(),
                    lease_timeout,
                },
                heartbeat_interval,
                state_dir,
                retention,
                client_token,
                worker_token,
                tls,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> CoordinatorOpts {
        let mut all = vec!["concur-coordinator"];
        all.extend_from_slice(args);
        CoordinatorOpts::try_parse_from(all).unwrap()
    }

    #[test]
    fn config_file_values_apply_and_flags_override_them() {
        let dir = std::env::temp_dir().join(format!("concur-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("worker-token");
        std::fs::write(&token, "w-secret\n").unwrap();
        let config = dir.join("coordinator.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"0.0.0.0:9000\"\nheartbeat_timeout = \"3s\"\nin_memory = true\nworker_token_file = \"{}\"\nmax_active_jobs = 7\ndeny_private = true\nallow_host = [\"example.com\"]\nretain_jobs = 5\nretain_for = \"1h\"\n",
                token.display()
            ),
        )
        .unwrap();
        let path = config.to_str().unwrap();
        let settings = opts(&["--config", path]).resolve().unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9000");
        assert_eq!(
            settings.config.scheduler.heartbeat_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(settings.config.scheduler.max_active_jobs, 7);
        assert!(settings.config.scheduler.host_policy.deny_private);
        assert_eq!(settings.config.scheduler.host_policy.allow, ["example.com"]);
        assert_eq!(settings.config.retention.max_jobs, 5);
        assert_eq!(
            settings.config.retention.max_age,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(settings.config.state_dir, None);
        assert!(
            settings
                .config
                .worker_token
                .as_ref()
                .unwrap()
                .matches("w-secret")
        );
        let settings = opts(&[
            "--config",
            path,
            "--listen",
            "127.0.0.1:1",
            "--max-active-jobs",
            "3",
        ])
        .resolve()
        .unwrap();
        assert_eq!(settings.listen, "127.0.0.1:1");
        assert_eq!(settings.config.scheduler.max_active_jobs, 3);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unknown_config_keys_and_bad_durations_are_refused() {
        let dir = std::env::temp_dir().join(format!("concur-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("bad.toml");
        std::fs::write(&config, "lisen = \"x\"\n").unwrap();
        let err = opts(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
        std::fs::write(&config, "heartbeat_timeout = \"soon\"\n").unwrap();
        let err = opts(&["--config", config.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(format!("{err:#}").contains("heartbeat_timeout"), "{err:#}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
