//! The service interface: where the userspace mode puts cluster IPs, so that the kernel treats them as local.
//!
//! A cluster IP is an address no machine has. For the userspace proxy to accept connections to it, the kernel
//! must deliver packets for it locally, to a listening socket. Putting each cluster IP (as a `/32`) on an
//! interface of its own does exactly that: the kernel adds a `local` route for it, so a packet to it — from the
//! host, or from a pod, whose default route leads to the host through its bridge — goes up the host's stack to
//! our socket, and never to a wire. Kubernetes' IPVS mode does the same with its `kube-ipvs0` interface.
//!
//! The interface is a `dummy` one, made for this: it has no wire and sends nothing. Where the kernel has no
//! dummy driver (some minimal VM kernels), an empty `bridge` serves the same purpose: with no port attached it too
//! reaches no wire, and addresses on it are local all the same.
//!
//! A cluster IP that no Service has (yet) is not local, and would follow the default route off the machine. So
//! the whole service CIDR also gets an `unreachable` route: the local `/32`s win over it (the kernel's `local`
//! table is consulted first), and every other address of the range fails at once with "No route to host".
//!
//! Everything here is done with the `ip` command (iproute2), the very commands a student would type:
//!
//! ```text
//! ip link add kubelab-svc type dummy && ip link set kubelab-svc up
//! ip route replace unreachable 10.96.0.0/12
//! ip addr add 10.96.0.10/32 dev kubelab-svc
//! ```

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tokio::process::Command;

use crate::Error;

/// The interface holding the cluster IPs; deleted, with the service CIDR's route, when dropped.
#[derive(Debug)]
pub struct ServiceInterface {
    name: String,
    service_cidr: Ipv4Net,
}

impl ServiceInterface {
    // ANCHOR: create
    /// Creates the interface `name` (or takes over one left by an earlier run) and routes the rest of the service
    /// CIDR nowhere.
    pub async fn create(name: &str, service_cidr: Ipv4Net) -> Result<ServiceInterface, Error> {
        if name.is_empty() || name.len() > 15 {
            return Err(Error::InterfaceName(name.to_string()));
        }
        if ip(&["link", "show", "dev", name]).await.is_err() {
            let dummy = ip(&["link", "add", name, "type", "dummy"]).await;
            match dummy {
                Err(Error::Ip { stderr, .. }) if stderr.contains("Unknown device type") => {
                    tracing::info!(interface = name, "the kernel has no dummy interfaces; using an empty bridge");
                    ip(&["link", "add", name, "type", "bridge"]).await
                }
                other => other,
            }
            .map_err(|err| permission(err, name))?;
        }
        let interface = ServiceInterface { name: name.to_string(), service_cidr };
        ip(&["link", "set", name, "up"]).await.map_err(|err| permission(err, name))?;
        ip(&["route", "replace", "unreachable", &service_cidr.to_string()]).await?;
        Ok(interface)
    }
    // ANCHOR_END: create

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The IPv4 addresses on the interface now (read from the kernel each time: level-triggered).
    pub async fn addresses(&self) -> Result<BTreeSet<Ipv4Addr>, Error> {
        let out = ip(&["-o", "-4", "addr", "show", "dev", &self.name]).await?;
        // Lines read `7: kubelab-svc    inet 10.96.0.10/32 scope global kubelab-svc ...`.
        let words = out.split_whitespace().collect::<Vec<_>>();
        let addresses = words.windows(2).filter(|w| w[0] == "inet").filter_map(|w| w[1].split('/').next());
        Ok(addresses.filter_map(|a| a.parse().ok()).collect())
    }

    /// Puts `address` on the interface.
    pub async fn add(&self, address: Ipv4Addr) -> Result<(), Error> {
        ip(&["addr", "replace", &format!("{address}/32"), "dev", &self.name]).await.map(drop)
    }

    /// Takes `address` off the interface.
    pub async fn remove(&self, address: Ipv4Addr) -> Result<(), Error> {
        ip(&["addr", "del", &format!("{address}/32"), "dev", &self.name]).await.map(drop)
    }
}

impl Drop for ServiceInterface {
    /// Deletes the route and the interface (and so every cluster IP on it). A `Drop` cannot await, so these two
    /// commands run synchronously: a few milliseconds, once, when kube-proxy stops or its task is aborted.
    fn drop(&mut self) {
        let cidr = self.service_cidr.to_string();
        for args in [&["route", "del", "unreachable", &cidr][..], &["link", "del", &self.name][..]] {
            match std::process::Command::new("ip").args(args).output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => tracing::warn!(?args, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "cleaning up"),
                Err(err) => tracing::warn!(?args, %err, "cleaning up"),
            }
        }
    }
}

/// Runs `ip <args>`; its standard output, or an error carrying its standard error.
async fn ip(args: &[&str]) -> Result<String, Error> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip").args(args).output().await.map_err(|source| Error::NoIpCommand { source })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Ip { command, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() })
    }
}

/// Turns "Operation not permitted" into the advice to run as root.
fn permission(err: Error, interface: &str) -> Error {
    match err {
        Error::Ip { stderr, .. } if stderr.contains("Operation not permitted") => {
            Error::NotPermitted { interface: interface.to_string() }
        }
        other => other,
    }
}
