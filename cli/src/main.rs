//! `gt`: the project's command line. The repository's `./gt` script installs what is missing and
//! builds, then runs this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gt_auth::LocalSigner;
use gt_cli::stack::EphemeralStack;
use gt_cli::tools::{Tools, default_data_dir};
use gt_cli::up::{UpOptions, up};

#[derive(Parser)]
#[command(
    name = "gt",
    about = "glowing-telegram: stream recordings to published episodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start the local stack (Postgres, Temporal, workers, API) and ingest the sample stream.
    Up {
        /// State directory (Postgres cluster, Temporal database, recordings, logs).
        #[arg(long, env = "GT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "GT_API_PORT", default_value_t = 3030)]
        api_port: u16,
        #[arg(long, env = "GT_PG_PORT", default_value_t = 54329)]
        pg_port: u16,
        #[arg(long, env = "GT_TEMPORAL_PORT", default_value_t = 7233)]
        temporal_port: u16,
        #[arg(long, env = "GT_TEMPORAL_UI_PORT", default_value_t = 8233)]
        temporal_ui_port: u16,
        /// The ggml Whisper model (`./gt` fetches it).
        #[arg(long, env = "GT_WHISPER_MODEL")]
        whisper_model: PathBuf,
        /// Do not run the sample ingestion.
        #[arg(long)]
        no_sample: bool,
        /// Stop after the sample ingestion instead of waiting for Ctrl-C.
        #[arg(long)]
        exit_after_sample: bool,
    },
    /// Run COMMAND with a throw-away Temporal + Postgres stack, described in its environment.
    TestEnv {
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Save a StreamIngest run's history (the SDK's JSON) for replay tests.
    History {
        /// Workflow id, e.g. stream-ingest-local-user-sample-stream.
        workflow_id: String,
        /// A specific run (default: the latest).
        #[arg(long)]
        run_id: Option<String>,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Ingest local recordings into the running stack (`./gt up`) with a progress bar, then
    /// print the proposed episodes.
    Ingest {
        /// Recording files (OBS MKV/MP4/FLV ...), in stream order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stream id (default: the first file's name without extension).
        #[arg(long)]
        stream_id: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// Spoken language (ISO 639-1); detected when absent.
        #[arg(long)]
        language: Option<String>,
        /// Approve every proposed episode.
        #[arg(long)]
        approve_all: bool,
        #[arg(long, env = "GT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long, env = "GT_API_URL", default_value = "http://127.0.0.1:3030")]
        api_url: String,
    },
    /// Print a fresh token for the local user (local mode).
    Token {
        #[arg(long, env = "GT_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Validity in hours (at most a week: the API refuses longer-lived tokens).
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gt: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Up {
            data_dir,
            api_port,
            pg_port,
            temporal_port,
            temporal_ui_port,
            whisper_model,
            no_sample,
            exit_after_sample,
        } => {
            up(UpOptions {
                data_dir: data_dir.unwrap_or_else(default_data_dir),
                api_port,
                pg_port,
                temporal_port,
                temporal_ui_port,
                whisper_model,
                sample: !no_sample,
                exit_after_sample,
            })
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::TestEnv { command } => {
            let tools = Tools::discover()?;
            let mut stack = EphemeralStack::start(&tools).await?;
            let mut cmd = tokio::process::Command::new(&command[0]);
            cmd.args(&command[1..]).envs(stack.env()).kill_on_drop(true);
            let status = tokio::select! {
                s = cmd.status() => s.with_context(|| format!("running {}", command[0])),
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            };
            stack.stop().await;
            let status = status?;
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
        Cmd::History {
            workflow_id,
            run_id,
            out,
        } => {
            let client = gt_workflows::client::connect(
                &gt_workflows::client::TemporalTarget::default(),
                Duration::from_secs(10),
            )
            .await?;
            let info = temporalio_client::WorkflowExecutionInfo::builder()
                .namespace(client.options().namespace.clone())
                .workflow_id(workflow_id)
                .maybe_run_id(run_id)
                .build();
            let handle: temporalio_client::WorkflowHandle<_, gt_workflows::StreamIngestRun> =
                temporalio_client::WorkflowHandle::new(client, info);
            let json = handle
                .fetch_history(temporalio_client::WorkflowFetchHistoryOptions::builder().build())
                .to_json()
                .await?;
            std::fs::write(&out, json)?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Ingest {
            files,
            stream_id,
            title,
            language,
            approve_all,
            data_dir,
            api_url,
        } => {
            let dir = gt_cli::up::DataDir {
                root: data_dir.unwrap_or_else(default_data_dir),
            };
            let signer = LocalSigner::load_or_create(
                &dir.jwt_key(),
                LocalSigner::DEFAULT_ISSUER,
                LocalSigner::DEFAULT_AUDIENCE,
            )?;
            let api = gt_cli::up::ApiClient {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()?,
                base: api_url.trim_end_matches('/').to_string(),
                token: signer.mint(gt_types::LOCAL_USER_ID, Duration::from_secs(24 * 3600))?,
            };
            let stream_id = match stream_id {
                Some(s) => s,
                None => files[0]
                    .file_stem()
                    .map(|s| {
                        s.to_string_lossy()
                            .chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || c == '-' {
                                    c
                                } else {
                                    '-'
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            gt_cli::ingest::ingest_files(
                &api,
                &gt_cli::ingest::IngestFiles {
                    files,
                    stream_id,
                    title,
                    language,
                    recordings_dir: dir.user_recordings(gt_types::LOCAL_USER_ID),
                    approve_all,
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { data_dir, hours } => {
            let max_hours = gt_auth::MAX_TOKEN_LIFETIME.as_secs() / 3600;
            if hours == 0 || hours > max_hours {
                anyhow::bail!(
                    "--hours must be from 1 to {max_hours} (the API refuses longer-lived tokens)"
                );
            }
            let dir = data_dir.unwrap_or_else(default_data_dir);
            let signer = LocalSigner::load_or_create(
                &dir.join("jwt-key.pem"),
                LocalSigner::DEFAULT_ISSUER,
                LocalSigner::DEFAULT_AUDIENCE,
            )?;
            println!(
                "{}",
                signer.mint(gt_types::LOCAL_USER_ID, Duration::from_secs(hours * 3600))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
