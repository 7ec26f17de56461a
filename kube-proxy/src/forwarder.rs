//! The userspace mode's data path: accept a client, connect to an endpoint, copy bytes both ways.
//!
//! One [`Forwarder`] serves one service port. It listens on an address, and for each accepted client asks the
//! shared [`LoadBalancer`] for the order of endpoints to try, connects to the first that accepts, and copies in
//! both directions until each side has closed its half (`copy_bidirectional` passes a half-close on, so a client
//! that shuts down its writing side still gets the whole answer). Every connection is a task of its own.
//!
//! This is the whole price of the userspace mode, and the reason iptables replaced it: every byte crosses into
//! this process and out again, twice per direction, where the kernel's DNAT rewrites a header and moves on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::round_robin::LoadBalancer;

/// A running forwarder for one service port; stops (and drops its listener) when dropped.
pub struct Forwarder {
    /// Where it accepts clients (the port the OS picked when asked for port 0).
    local_addr: SocketAddr,
    /// The endpoints, shared with whoever updates them. A std `Mutex`, not Tokio's: it is held for a few
    /// instructions and never across an `.await`.
    balancer: Arc<Mutex<LoadBalancer>>,
    /// The accept loop; aborted on drop. Connections already forwarded are tasks of their own and finish.
    accept: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on `listen` and forwards every connection to one of `endpoints`.
    pub async fn bind(listen: SocketAddr, endpoints: Vec<SocketAddr>) -> std::io::Result<Forwarder> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let balancer = Arc::new(Mutex::new(LoadBalancer::new(endpoints)));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&balancer)));
        Ok(Forwarder { local_addr, balancer, accept })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Replaces the endpoints; connections accepted from now on use the new ones.
    pub fn set_endpoints(&self, endpoints: Vec<SocketAddr>) {
        lock(&self.balancer).set_endpoints(endpoints);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The balancer, even if a connection task panicked while holding it (the balancer is a cursor and a list, always
/// consistent between two statements).
fn lock(balancer: &Mutex<LoadBalancer>) -> std::sync::MutexGuard<'_, LoadBalancer> {
    balancer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ANCHOR: accept_loop
/// Accepts clients forever; each is forwarded by a task of its own.
async fn accept_loop(listener: TcpListener, balancer: Arc<Mutex<LoadBalancer>>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, or a connection reset before it was accepted: the next may work.
                tracing::warn!(%err, "accepting a connection");
                continue;
            }
        };
        let attempts = lock(&balancer).attempts();
        tokio::spawn(async move {
            if let Err(err) = forward(client, &attempts).await {
                tracing::debug!(%peer, %err, "forwarding ended with an error");
            }
        });
    }
}

/// Connects to the first of `attempts` that accepts and copies both ways. A client for whom every endpoint
/// refuses is closed at once, which it sees as a reset or an empty answer.
async fn forward(mut client: TcpStream, attempts: &[SocketAddr]) -> std::io::Result<()> {
    for endpoint in attempts {
        match TcpStream::connect(endpoint).await {
            Ok(mut upstream) => {
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                return Ok(());
            }
            Err(err) => tracing::info!(%endpoint, %err, "endpoint refused; trying the next"),
        }
    }
    client.shutdown().await
}
// ANCHOR_END: accept_loop

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A server on 127.0.0.1 that answers every connection with `<name>:` and then echoes what it reads. Runs
    /// until the test ends.
    async fn named_echo(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    write.write_all(format!("{name}:").as_bytes()).await?;
                    tokio::io::copy(&mut read, &mut write).await?;
                    write.shutdown().await
                });
            }
        });
        addr
    }

    /// A loopback address nothing listens on: bound, then released, so a connection to it is refused.
    async fn refusing() -> SocketAddr {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        listener.local_addr().unwrap()
    }

    /// Sends `message` through the forwarder, closes the sending half, and returns the whole answer.
    async fn ask(forwarder: &Forwarder, message: &str) -> String {
        let mut stream = TcpStream::connect(forwarder.local_addr()).await.unwrap();
        stream.write_all(message.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    fn loopback_any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[tokio::test]
    async fn connections_alternate_between_endpoints_and_bytes_flow_both_ways() {
        let (a, b) = (named_echo("a").await, named_echo("b").await);
        let forwarder = Forwarder::bind(loopback_any_port(), vec![a, b]).await.unwrap();
        let mut answers = Vec::new();
        for i in 0..4 {
            answers.push(ask(&forwarder, &format!("hello {i}")).await);
        }
        assert_eq!(answers, ["a:hello 0", "b:hello 1", "a:hello 2", "b:hello 3"]);
    }

    #[tokio::test]
    async fn a_refusing_endpoint_is_skipped_without_failing_the_client() {
        let (dead, a) = (refusing().await, named_echo("a").await);
        let forwarder = Forwarder::bind(loopback_any_port(), vec![dead, a]).await.unwrap();
        for i in 0..3 {
            assert_eq!(ask(&forwarder, &format!("try {i}")).await, format!("a:try {i}"));
        }
    }

    #[tokio::test]
    async fn new_endpoints_take_the_next_connections_and_none_means_closed_at_once() {
        let (a, b) = (named_echo("a").await, named_echo("b").await);
        let forwarder = Forwarder::bind(loopback_any_port(), vec![a]).await.unwrap();
        assert_eq!(ask(&forwarder, "1").await, "a:1");
        forwarder.set_endpoints(vec![b]);
        assert_eq!(ask(&forwarder, "2").await, "b:2");
        forwarder.set_endpoints(Vec::new());
        // Nothing sent (unread bytes would turn the close into a reset): the client reads the end at once.
        let mut stream = TcpStream::connect(forwarder.local_addr()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "");
    }
}
