//! Running the real kubectl against a test server: the one command runner of every test.
//!
//! The point of the tests is that the *real* kubectl works, so we run the `kubectl` binary on the `PATH` as a
//! child process, exactly as a student would type it, with two flags added to every call:
//!
//! - `--kubeconfig <dir>/kubeconfig`, so that it talks to this test's server and never to `~/.kube/config`;
//! - `--cache-dir <dir>/kubectl-cache`: kubectl caches discovery per server address, and a port reused by a later
//!   test must not find the previous server's resource list there.
//!
//! The `kubectl` on these machines is a dispatcher that runs the kubectl matching the server's minor version;
//! [`Kubectl::release`] picks one release instead (`kubectl.1.27` … `kubectl.1.33`, installed beside it), for the
//! tests that run the same commands with every version.
//!
//! The processes are Tokio's, so the in-process apiserver keeps answering while we wait for kubectl, and every
//! child is killed when its handle is dropped (a failed test leaves no `kubectl get -w` behind).
//!
//! [`run_command`] is the runner underneath, for any command-line program a test runs the same way (the
//! end-to-end tests run the `kubelab` binary with it).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// How long one kubectl command may run. kubectl itself gives up on an unreachable server after about 30 s, and
/// a `rollout status` waits as long as the test lets the rollout take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The real kubectl, pointed at one test server.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// `kubectl` (the dispatcher on the `PATH`) or the path of one release's binary.
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    /// The working directory of every command (the test's temporary directory).
    workdir: PathBuf,
}

/// What a finished kubectl (or other) command left behind.
#[derive(Debug, Clone)]
pub struct KubectlOutput {
    /// The command line, for messages (`kubectl get deploy -n shop`).
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    /// Whether kubectl exited with 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The non-empty lines of stdout, trimmed at the end.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect()
    }
}

impl std::fmt::Display for KubectlOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Kubectl {
    /// A kubectl using `kubeconfig` and `cache_dir`, running in `workdir`.
    pub fn new(kubeconfig: &Path, cache_dir: &Path, workdir: &Path) -> Self {
        Kubectl {
            binary: PathBuf::from("kubectl"),
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            workdir: workdir.to_path_buf(),
        }
    }

    /// The same kubectl settings with release `1.<minor>`'s binary (`kubectl.1.27`, found beside the `kubectl` on
    /// the `PATH`) and a discovery cache of its own, since releases cache discovery differently. Fails, naming
    /// where it looked, if that release is not installed.
    pub fn release(&self, minor: u32) -> anyhow::Result<Kubectl> {
        let name = format!("kubectl.1.{minor}");
        let dispatcher = which("kubectl").context("no kubectl on the PATH")?;
        let dir = std::fs::canonicalize(&dispatcher)?.parent().map(Path::to_path_buf).unwrap_or_default();
        let binary = dir.join(&name);
        anyhow::ensure!(
            binary.is_file(),
            "{name} is not installed beside {} (looked for {})",
            dispatcher.display(),
            binary.display()
        );
        Ok(Kubectl { binary, cache_dir: self.cache_dir.join(&name), ..self.clone() })
    }

    /// The same kubectl settings run by another binary (e.g. kubectl 1.37 from the end-to-end tests' Python
    /// venv), with a discovery cache of its own named after the binary, as for [`Kubectl::release`].
    pub fn with_binary(&self, binary: impl Into<PathBuf>) -> Kubectl {
        let binary = binary.into();
        let cache_dir = match binary.file_name() {
            Some(name) => self.cache_dir.join(name),
            None => self.cache_dir.join("other"),
        };
        Kubectl { binary, cache_dir, ..self.clone() }
    }

    /// What this kubectl runs: `kubectl` or the path of one release.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs `kubectl <args>` to completion, whatever its exit status.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<KubectlOutput> {
        self.run_with_stdin(args, None).await
    }

    /// Runs `kubectl <args>`, feeding `stdin` to it (for `-f -`).
    pub async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<KubectlOutput> {
        let command = format!("{} {}", self.name(), args.join(" "));
        run_command(self.command(args), command, stdin, COMMAND_TIMEOUT).await
    }

    /// Runs `kubectl <args>`, fails (with everything kubectl printed) unless it exits with 0, and returns stdout.
    pub async fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args).await?;
        if !output.success() {
            bail!("kubectl failed:\n{output}");
        }
        Ok(output.stdout)
    }

    /// Runs `kubectl <args>`, fails unless it exits with an error, and returns stderr (where kubectl explains it).
    pub async fn fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args).await?;
        if output.success() {
            bail!("kubectl was expected to fail but succeeded:\n{output}");
        }
        Ok(output.stderr)
    }

    /// Starts a long-running kubectl (`get -w`) whose output lines the test reads as they come.
    pub fn watch(&self, args: &[&str]) -> anyhow::Result<KubectlWatch> {
        let command = format!("{} {}", self.name(), args.join(" "));
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running `{command}`: is kubectl on the PATH?"))?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        Ok(KubectlWatch { command, child, lines: BufReader::new(stdout).lines(), seen: Vec::new() })
    }

    /// `kubectl` or `kubectl.1.27`, for messages.
    fn name(&self) -> String {
        self.binary.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args)
            .current_dir(&self.workdir)
            // Nothing from the developer's environment may redirect kubectl to another cluster.
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        command
    }
}

/// Runs `command` to completion, feeding it `stdin` if any, and returns what it printed, whatever its exit status;
/// fails if it cannot start or does not finish within `timeout` (it is then killed: every command built here has
/// `kill_on_drop`, and a caller's should too). `shown` is the command line for messages.
pub async fn run_command(
    mut command: Command,
    shown: String,
    stdin: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<KubectlOutput> {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting `{shown}`: is it on the PATH?"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().context("the command's stdin")?;
        pipe.write_all(input.as_bytes()).await?;
        drop(pipe);
    }
    // `kill_on_drop` ends the child if the timeout drops the future.
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("`{shown}` did not finish within {timeout:?}"))??;
    Ok(KubectlOutput {
        command: shown,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The first `name` in the directories of the `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| path.is_file())
}

/// A running `kubectl get -w`: read its lines as they are printed. Killed when dropped.
pub struct KubectlWatch {
    command: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every line read so far, for error messages.
    seen: Vec<String>,
}

impl KubectlWatch {
    /// Reads lines until one satisfies `wanted` and returns it; fails after `timeout`, or if kubectl exits first,
    /// with everything it printed.
    pub async fn line(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Ok(Ok(None)) => {
                    let stderr = self.stderr().await;
                    bail!(
                        "`{}` exited before printing {what}; it printed:\n{}\nstderr:\n{stderr}",
                        self.command,
                        self.seen.join("\n"),
                    )
                }
                Ok(Err(err)) => return Err(err).context("reading kubectl's output"),
                Err(_) => bail!(
                    "`{}` did not print {what} within {timeout:?}; it printed:\n{}",
                    self.command,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line printed so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// What kubectl wrote on stderr (only complete once it has exited).
    async fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut text)).await;
        }
        text
    }
}
