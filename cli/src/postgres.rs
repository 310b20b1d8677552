//! A Postgres 18 (+pgvector) server run as a child process: persistent under the data directory
//! for `gt up`, throw-away for tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::process::{self, Managed, NOBODY, SpawnOptions, is_root};

pub struct PostgresServer {
    pub port: u16,
    pub data_dir: PathBuf,
    process: Managed,
}

/// The superuser role initdb creates; connections are trusted on loopback only.
pub const SUPERUSER: &str = "postgres";

fn run_as() -> Option<(u32, u32)> {
    // initdb and postgres refuse to run as root.
    is_root().then_some(NOBODY)
}

fn chown_for_server(path: &Path) -> anyhow::Result<()> {
    if let Some((uid, gid)) = run_as() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

impl PostgresServer {
    /// Creates the cluster under `root/data` if there is none, then starts the server on
    /// 127.0.0.1:`port` with its socket in `root`.
    pub async fn start(
        pg_bin: &Path,
        root: &Path,
        port: u16,
        log: &Path,
        ephemeral: bool,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)?;
        chown_for_server(root)?;
        let data_dir = root.join("data");
        if !data_dir.join("PG_VERSION").exists() {
            if data_dir.exists() {
                // A half-made cluster from an interrupted initdb: nothing to keep.
                std::fs::remove_dir_all(&data_dir)?;
            }
            let mut initdb = Command::new(pg_bin.join("initdb"));
            initdb
                .arg("-D")
                .arg(&data_dir)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                ])
                .current_dir(root);
            if ephemeral {
                initdb.arg("--no-sync");
            }
            if let Some((uid, gid)) = run_as() {
                initdb.uid(uid).gid(gid);
            }
            let out = initdb.output().await.context("running initdb")?;
            if !out.status.success() {
                bail!(
                    "initdb failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        if process::port_in_use(port) {
            bail!("port {port} is already in use; pick another with GT_PG_PORT");
        }
        let mut cmd = Command::new(pg_bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data_dir)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(root)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=200"])
            .current_dir(root);
        if ephemeral {
            // Throw-away clusters trade durability for speed.
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        let process = process::spawn(
            cmd,
            SpawnOptions {
                name: "postgres",
                log,
                run_as: run_as(),
            },
        )?;
        let mut server = PostgresServer {
            port,
            data_dir,
            process,
        };
        let url = server.url("postgres");
        let log_path = log.to_path_buf();
        let result = process::wait_until("Postgres", Duration::from_secs(60), || {
            let url = url.clone();
            let running = server.process.check_running();
            async move {
                running?;
                let pool = gt_store::pg::connect(&url, 1).await?;
                pool.close().await;
                Ok(())
            }
        })
        .await;
        if let Err(e) = result {
            let tail = tail_of(&log_path);
            return Err(e.context(format!(
                "Postgres did not start; its log ends with:\n{tail}"
            )));
        }
        Ok(server)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `name` if it does not exist, optionally as a copy of `template`.
    pub async fn ensure_database(&self, name: &str, template: Option<&str>) -> anyhow::Result<()> {
        let pool = gt_store::pg::connect(&self.url("postgres"), 1).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(name)
                .fetch_one(&pool)
                .await?;
        if !exists {
            let mut sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            if let Some(t) = template {
                sql.push_str(&format!(" TEMPLATE \"{}\"", t.replace('"', "\"\"")));
            }
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
        }
        pool.close().await;
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.process.check_running()
    }

    /// Fast shutdown (SIGINT): active transactions are rolled back, committed data is kept.
    pub async fn stop(&mut self) {
        self.process
            .stop_with(libc::SIGINT, Duration::from_secs(30))
            .await
    }
}

/// The last lines of a log file, for error messages.
pub fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
