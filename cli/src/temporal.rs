//! The Temporal dev server (`temporal server start-dev`) as a child process.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use tokio::process::Command;

use crate::postgres::tail_of;
use crate::process::{self, Managed, SpawnOptions};

pub struct TemporalServer {
    pub port: u16,
    pub ui_port: Option<u16>,
    process: Managed,
}

pub struct TemporalOptions<'a> {
    pub bin: &'a Path,
    /// SQLite file for persistence; `None` keeps state in memory.
    pub db_file: Option<&'a Path>,
    pub port: u16,
    /// `None` runs headless.
    pub ui_port: Option<u16>,
    pub log: &'a Path,
}

impl TemporalServer {
    pub async fn start(opts: TemporalOptions<'_>) -> anyhow::Result<Self> {
        for p in std::iter::once(opts.port).chain(opts.ui_port) {
            if process::port_in_use(p) {
                bail!(
                    "port {p} is already in use; pick others with GT_TEMPORAL_PORT / GT_TEMPORAL_UI_PORT"
                );
            }
        }
        let mut cmd = Command::new(opts.bin);
        cmd.args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--log-level",
            "warn",
        ])
        .args(["--port", &opts.port.to_string()]);
        match opts.ui_port {
            Some(ui) => {
                cmd.args(["--ui-port", &ui.to_string(), "--ui-disable-news-fetch"]);
            }
            None => {
                cmd.arg("--headless");
            }
        }
        if let Some(db) = opts.db_file {
            cmd.arg("--db-filename").arg(db);
        }
        let process = process::spawn(
            cmd,
            SpawnOptions {
                name: "temporal",
                log: opts.log,
                run_as: None,
            },
        )?;
        let mut server = TemporalServer {
            port: opts.port,
            ui_port: opts.ui_port,
            process,
        };
        // Ready when the CLI can describe the default namespace through the frontend.
        let address = server.address();
        let bin = opts.bin.to_path_buf();
        let result = process::wait_until("Temporal", Duration::from_secs(90), || {
            let running = server.process.check_running();
            let (bin, address) = (bin.clone(), address.clone());
            async move {
                running?;
                let out = Command::new(&bin)
                    .args([
                        "operator",
                        "namespace",
                        "describe",
                        "--namespace",
                        "default",
                    ])
                    .args(["--address", &address])
                    .output()
                    .await?;
                if !out.status.success() {
                    bail!("{}", String::from_utf8_lossy(&out.stderr));
                }
                Ok(())
            }
        })
        .await;
        if let Err(e) = result {
            let tail = tail_of(opts.log);
            return Err(e.context(format!(
                "Temporal did not start; its log ends with:\n{tail}"
            )));
        }
        Ok(server)
    }

    /// `host:port` of the frontend, as `TEMPORAL_ADDRESS` wants it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn ui_url(&self) -> Option<String> {
        self.ui_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.process.check_running()
    }

    pub async fn stop(&mut self) {
        self.process.stop().await
    }
}
