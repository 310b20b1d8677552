//! Connecting to Temporal (feature `client`): standard env configuration (`TEMPORAL_ADDRESS`,
//! `TEMPORAL_NAMESPACE`, TLS and API key variables, `temporal.toml` profiles), or an explicit
//! address. Retries while the server is still starting.

use std::time::Duration;

use anyhow::Context;
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};

/// Where to connect. `address: None` reads the standard environment configuration.
#[derive(Debug, Clone, Default)]
pub struct TemporalTarget {
    /// `host:port`, with or without `http://`.
    pub address: Option<String>,
    pub namespace: Option<String>,
}

fn options(target: &TemporalTarget) -> anyhow::Result<(ConnectionOptions, ClientOptions)> {
    match &target.address {
        Some(address) => {
            let url = if address.contains("://") {
                address.clone()
            } else {
                format!("http://{address}")
            };
            let conn = ConnectionOptions::new(
                Url::parse(&url)
                    .with_context(|| format!("invalid Temporal address {address:?}"))?,
            )
            .identity(identity())
            .build();
            let ns = target.namespace.clone().unwrap_or_else(|| "default".into());
            Ok((conn, ClientOptions::new(ns).build()))
        }
        None => {
            // The config error type is not Send, so it cannot go through `?` into anyhow.
            let (conn, mut opts) =
                ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
                    .map_err(|e| anyhow::anyhow!("Temporal configuration: {e}"))?;
            if let Some(ns) = &target.namespace {
                opts.namespace = ns.clone();
            }
            Ok((conn, opts))
        }
    }
}

fn identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{}@{host}", std::process::id())
}

/// Connects, retrying for up to `patience` (the server may still be starting).
pub async fn connect(target: &TemporalTarget, patience: Duration) -> anyhow::Result<Client> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(200);
    loop {
        let (conn, opts) = options(target)?;
        match Connection::connect(conn).await {
            Ok(connection) => return Ok(Client::new(connection, opts)?),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot connect to Temporal at {}",
                    target.address.as_deref().unwrap_or("$TEMPORAL_ADDRESS")
                )));
            }
            Err(e) => {
                tracing::debug!("Temporal not reachable yet: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
