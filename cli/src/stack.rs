//! Throw-away Temporal + Postgres for a test run, on free ports under a temporary directory.
//! `gt test-env -- CMD` starts one, hands its coordinates to CMD in the environment, and tears
//! it down afterwards; the test harness starts one itself when run without `gt`.

use std::os::unix::fs::PermissionsExt;

use anyhow::Context;

use crate::postgres::PostgresServer;
use crate::process::free_port;
use crate::temporal::{TemporalOptions, TemporalServer};
use crate::tools::Tools;

/// Database with the migrations applied; each test copies it (`CREATE DATABASE .. TEMPLATE`).
pub const TEMPLATE_DB: &str = "gt_template";

/// Environment variables through which a test run finds its stack.
pub const ENV_TEMPORAL_ADDRESS: &str = "GT_TEST_TEMPORAL_ADDRESS";
pub const ENV_PG_ADMIN_URL: &str = "GT_TEST_PG_ADMIN_URL";
pub const ENV_PG_TEMPLATE: &str = "GT_TEST_PG_TEMPLATE";

pub struct EphemeralStack {
    pub dir: tempfile::TempDir,
    pub postgres: PostgresServer,
    pub temporal: TemporalServer,
}

impl EphemeralStack {
    pub async fn start(tools: &Tools) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("gt-stack-").tempdir()?;
        // Postgres runs as `nobody` when we are root: it must be able to enter the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let logs = dir.path().join("logs");
        let pg_port = free_port()?;
        let postgres = PostgresServer::start(
            &tools.pg_bin,
            &dir.path().join("pg"),
            pg_port,
            &logs.join("postgres.log"),
            true,
        )
        .await?;
        postgres.ensure_database(TEMPLATE_DB, None).await?;
        let pool = gt_store::pg::connect(&postgres.url(TEMPLATE_DB), 1).await?;
        gt_store::pg::migrate(&pool).await?;
        // CREATE DATABASE .. TEMPLATE needs the template to have no connections.
        pool.close().await;

        let temporal = TemporalServer::start(TemporalOptions {
            bin: &tools.temporal,
            db_file: None,
            port: free_port()?,
            ui_port: None,
            log: &logs.join("temporal.log"),
        })
        .await
        .context("starting the Temporal dev server")?;
        Ok(Self {
            dir,
            postgres,
            temporal,
        })
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ENV_TEMPORAL_ADDRESS, self.temporal.address()),
            (ENV_PG_ADMIN_URL, self.postgres.url("postgres")),
            (ENV_PG_TEMPLATE, TEMPLATE_DB.to_string()),
        ]
    }

    pub async fn stop(&mut self) {
        self.temporal.stop().await;
        self.postgres.stop().await;
    }
}
