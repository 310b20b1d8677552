//! Child processes of the local stack: each in its own process group (so the terminal's Ctrl-C
//! reaches only `gt`, which then stops them in order), dying with their parent (PDEATHSIG), and
//! logging to a file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The uid/gid servers that refuse root (Postgres) run as.
pub const NOBODY: (u32, u32) = (65534, 65534);

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A running child with a name for messages.
pub struct Managed {
    pub name: String,
    child: Child,
}

/// Options for [`spawn`].
pub struct SpawnOptions<'a> {
    pub name: &'a str,
    pub log: &'a Path,
    /// Run as this (uid, gid) instead of the caller.
    pub run_as: Option<(u32, u32)>,
}

/// Starts `cmd` with stdout and stderr appended to `log`.
pub fn spawn(mut cmd: Command, opts: SpawnOptions<'_>) -> anyhow::Result<Managed> {
    if let Some(dir) = opts.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(opts.log)
        .with_context(|| format!("opening log {}", opts.log.display()))?;
    if let Some((uid, gid)) = opts.run_as {
        // The log must stay writable by the child: it inherits our open descriptor, so it is.
        cmd.uid(uid).gid(gid);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Runs after the uid switch, so the setting survives it and the exec.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", opts.name))?;
    Ok(Managed {
        name: opts.name.to_string(),
        child,
    })
}

impl Managed {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// Fails if the process has already exited (with its status).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }

    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Sends `signal`, waits up to `grace`, then kills.
    pub async fn stop_with(&mut self, signal: i32, grace: Duration) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain syscall on our own child's pid.
            unsafe {
                libc::kill(pid as i32, signal);
            }
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
            tracing::warn!("{} did not stop within {grace:?}; killing it", self.name);
        }
        let _ = self.child.kill().await;
    }

    pub async fn stop(&mut self) {
        self.stop_with(libc::SIGTERM, Duration::from_secs(10)).await
    }
}

/// Whether `uid` (not root, in no group of the path) may traverse to and read `path`: every
/// ancestor needs the "others" execute bit, the file the read bit.
pub fn others_can_reach(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        match std::fs::metadata(dir) {
            Ok(m) if m.permissions().mode() & 0o001 != 0 => {}
            _ => return false,
        }
    }
    std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o005 != 0)
        .unwrap_or(false)
}

/// A free TCP port on 127.0.0.1 (bind to 0, read it back, release it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Whether something already listens on 127.0.0.1:`port`.
pub fn port_in_use(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Polls `check` every 100 ms until it succeeds or `timeout` passes; the last error explains.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(format!("{what} not ready after {timeout:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
