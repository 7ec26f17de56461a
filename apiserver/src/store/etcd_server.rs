//! A throwaway etcd for tests and benchmarks.
//!
//! The etcd store can only be tested against a real etcd, and an end-to-end test of the cluster wants one too. Rather
//! than asking everyone to keep an etcd running on port 2379 (and to clean it between runs), a test starts its own:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kubelab_apiserver::store::etcd_server::EtcdServer;
//!
//! let etcd = EtcdServer::start().await?; // a fresh etcd on free ports, in a fresh directory
//! let endpoints = vec![etcd.endpoint()];
//! // ... connect an EtcdStore to `endpoints` and test ...
//! # Ok(()) }
//! // dropping `etcd` kills the process and deletes its directory, even if the test panicked
//! ```
//!
//! [`EtcdServer::stop`] and [`EtcdServer::restart`] simulate an outage: the process is killed (as a crash would kill
//! it) and started again on the same ports with the same data, so a test can watch a client lose etcd and find it
//! again.
//!
//! The binary is Debian's (`apt-get install etcd-server`, etcd 3.4). Set `KUBELAB_ETCD` to the path of another etcd
//! binary to test against another version. We never skip a test when etcd is missing: a skipped test looks like a
//! passing one.
//!
//! What we leave out: a multi-member cluster (real control planes run three or five etcd members), TLS between the
//! apiserver and etcd, and cleanup after the test process itself is killed with SIGKILL (the child etcd would then
//! be left running; `Drop` only runs when the process unwinds or exits normally).

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long [`EtcdServer::start`] waits for etcd to answer. A single member elects itself leader in about a second;
/// the margin is for a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often to ask a starting etcd whether it is ready.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A private etcd process that lives as long as this value.
///
/// Dropping it kills the process and removes its directory. Because `Drop` also runs while a panicking test
/// unwinds, a failed assertion never leaves an etcd behind.
#[derive(Debug)]
pub struct EtcdServer {
    /// The running process; `None` between [`EtcdServer::stop`] and [`EtcdServer::restart`].
    child: Option<Child>,
    /// The etcd binary, found once at start so a restart runs the same one.
    binary: PathBuf,
    /// A fresh directory holding `data/` (etcd's WAL and database) and `etcd.log` (its output).
    dir: PathBuf,
    /// Where clients connect. Kept across restarts, so clients can find etcd again.
    client_port: u16,
    /// Where etcd members would talk to each other. A single member still needs one.
    peer_port: u16,
}

impl EtcdServer {
    /// Starts a fresh etcd on free local ports and waits until it answers requests.
    ///
    /// Fails with a clear message if the `etcd` binary is not installed, or with the end of etcd's log if it does not
    /// become ready in time.
    pub async fn start() -> anyhow::Result<EtcdServer> {
        let binary = find_etcd()?;
        let dir = std::env::temp_dir().join(format!("kubelab-etcd-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (client_port, peer_port) = match free_ports() {
            Ok(ports) => ports,
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(err);
            }
        };
        // From here on, `Drop` cleans up if anything fails.
        let mut server = EtcdServer { child: None, binary, dir, client_port, peer_port };
        server.launch().await?;
        Ok(server)
    }

    /// The URL clients connect to, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The directory holding etcd's data and its log, `etcd.log` (worth reading when a test fails).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills etcd, as a crash would, keeping its data. Clients now fail to connect until [`EtcdServer::restart`].
    ///
    /// Blocks for the moment it takes the killed process to exit, so the port is free when it returns.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing etcd")?;
            child.wait().context("waiting for etcd to exit")?;
        }
        Ok(())
    }

    /// Starts etcd again on the same ports with the same data, and waits until it answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.launch().await
    }

    /// Runs the etcd process and polls it until it serves a read (which needs an elected leader).
    async fn launch(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.join("etcd.log");
        let log = File::options().create(true).append(true).open(&log_path)?;
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(&self.binary)
            .arg("--name=kubelab-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=kubelab-test={peer_url}"))
            .arg("--logger=zap")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", self.binary.display()))?;
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("etcd exited with {status} while starting; its log ends with:\n{}", log_tail(&log_path));
            }
            if answers(&client_url).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd did not answer on {client_url} within {READY_TIMEOUT:?}; its log ends with:\n{}",
                    log_tail(&log_path)
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Errors cannot be reported from `drop`; the worst case is a stray process or directory in /tmp.
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Finds the etcd binary: `$KUBELAB_ETCD` if set, else `etcd` on the `PATH`, else Debian's `/usr/bin/etcd`.
fn find_etcd() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("etcd")).collect::<Vec<_>>())
        .unwrap_or_default();
    let candidates = on_path.into_iter().chain([PathBuf::from("/usr/bin/etcd")]);
    choose_etcd(std::env::var_os("KUBELAB_ETCD").map(PathBuf::from), candidates)
}

/// The binary the user chose, which must exist, or else the first candidate that exists.
fn choose_etcd(chosen: Option<PathBuf>, candidates: impl IntoIterator<Item = PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = chosen {
        if path.is_file() {
            return Ok(path);
        }
        bail!("KUBELAB_ETCD is set to {}, which is not a file", path.display());
    }
    candidates.into_iter().find(|path| path.is_file()).context(
        "the etcd binary was not found (looked on the PATH and at /usr/bin/etcd): install Debian's etcd-server \
         package (`sudo apt-get install etcd-server`), or set KUBELAB_ETCD to an etcd binary",
    )
}

/// Two distinct free TCP ports on the loopback interface.
///
/// The operating system picks them; we release them just before etcd binds them. Another process could grab one in
/// between, which is rare enough for tests.
fn free_ports() -> anyhow::Result<(u16, u16)> {
    let first = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    let second = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok((first.local_addr()?.port(), second.local_addr()?.port()))
}

/// Whether etcd at `url` serves a linearizable read, i.e. is up and has a leader.
async fn answers(url: &str) -> bool {
    let probe = async {
        let mut client = etcd_client::Client::connect([url], None).await.ok()?;
        client.get("/kubelab-readiness-probe", None).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), probe).await, Ok(Some(_)))
}

/// The last lines of etcd's log, for error messages.
fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_etcd_binary_is_an_error_that_says_what_to_install() {
        let err = choose_etcd(None, [PathBuf::from("/nonexistent/etcd")]).unwrap_err();
        assert!(err.to_string().contains("apt-get install etcd-server"), "{err}");
    }

    #[test]
    fn a_chosen_binary_that_does_not_exist_is_an_error_not_a_fallback() {
        let err = choose_etcd(Some(PathBuf::from("/nonexistent/etcd")), [PathBuf::from("/bin/sh")]).unwrap_err();
        assert!(err.to_string().contains("KUBELAB_ETCD"), "{err}");
    }

    #[tokio::test]
    async fn a_server_answers_after_start_and_restart_and_leaves_nothing_behind() {
        let mut server = EtcdServer::start().await.unwrap();
        let dir = server.dir().to_path_buf();
        assert!(answers(&server.endpoint()).await);
        server.stop().unwrap();
        assert!(!answers(&server.endpoint()).await);
        server.restart().await.unwrap();
        assert!(answers(&server.endpoint()).await);
        drop(server);
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
