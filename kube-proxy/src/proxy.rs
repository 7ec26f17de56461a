//! The userspace mode, running: follow Services and EndpointSlices, keep the machine as [`desired_listeners`]
//! says.
//!
//! The loop is a controller's: *observe* (the informers' caches, the addresses on the service interface, the
//! listeners this process holds) → *reconcile* ([`crate::listeners::reconcile`], pure) → *apply* (add an address,
//! open a [`Forwarder`], give one new endpoints, close one, remove an address). It is level-triggered: whatever
//! changed, it recomputes everything, so a missed event, a crash or an action that failed is mended by the next
//! pass. A pass runs when a Service or EndpointSlice changes, after a failed action (soon), and every
//! [`Config::sync_period`] regardless.
//!
//! One kube-proxy serves every simulated node of `kubelab up`: they share the host's network namespace, so there
//! is one set of local addresses and one port space, and a second proxy could not listen where the first does.
//! It listens on each node's address for the node ports.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kubelab_api::client::{Client, ListParams};
use kubelab_api::informer::Informer;
use kubelab_api::resources;

use crate::Error;
use crate::forwarder::Forwarder;
use crate::interface::ServiceInterface;
use crate::listeners::{Action, Desired, desired_listeners, reconcile};
use crate::service_port::service_ports;

/// How the userspace proxy runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub client: Client,
    /// The interface the cluster IPs go on (`kubelab-svc`; at most 15 characters, Linux's limit).
    pub interface: String,
    /// The apiserver's `--service-cluster-ip-range`: only its addresses are claimed, and the rest of it is routed
    /// nowhere.
    pub service_cidr: Ipv4Net,
    /// The addresses node ports listen on (every simulated node's); empty: every local address.
    pub node_port_addresses: Vec<IpAddr>,
    /// A full pass this often even without changes (Kubernetes' `--sync-period`, 30 s).
    pub sync_period: Duration,
    /// How soon to try again after an action failed (a port still held by a listener just closed...).
    pub retry: Duration,
}

impl Config {
    /// Kubernetes' timings.
    pub fn new(client: Client, interface: &str, service_cidr: Ipv4Net, node_port_addresses: Vec<IpAddr>) -> Self {
        Config {
            client,
            interface: interface.to_string(),
            service_cidr,
            node_port_addresses,
            sync_period: Duration::from_secs(30),
            retry: Duration::from_secs(1),
        }
    }
}

/// What this process holds on the machine: the interface, and a forwarder per listening address.
struct Proxy {
    interface: ServiceInterface,
    /// Each forwarder, with the endpoints it was last given (what [`reconcile`] compares against).
    listeners: BTreeMap<SocketAddr, (Forwarder, Vec<SocketAddr>)>,
}

// ANCHOR: run
/// Runs the userspace proxy until the future is dropped; dropping it closes every listener and deletes the
/// interface with its cluster IPs.
pub async fn run(config: Config) -> Result<(), Error> {
    let interface = ServiceInterface::create(&config.interface, config.service_cidr).await?;
    let mut proxy = Proxy { interface, listeners: BTreeMap::new() };
    let service_kind = resources::by_kind("v1", "Service").ok_or(Error::MissingResource("Services"))?;
    let slice_kind =
        resources::by_kind("discovery.k8s.io/v1", "EndpointSlice").ok_or(Error::MissingResource("EndpointSlices"))?;
    let [mut services, mut slices] =
        [service_kind, slice_kind].map(|r| Informer::spawn(config.client.clone(), r, None, ListParams::default()));
    services.wait_synced().await;
    slices.wait_synced().await;
    tracing::info!(interface = config.interface, service_cidr = %config.service_cidr, "kube-proxy (userspace) running");
    loop {
        // 1. Observe and decide: the whole desired state, from the caches.
        let ports = service_ports(&services.cache.list_typed::<Service>(), &slices.cache.list_typed::<EndpointSlice>());
        let desired = desired_listeners(&ports, config.service_cidr, &config.node_port_addresses);
        // 2. Apply what differs from what the machine has now.
        let wait = match proxy.sync(&desired).await {
            Ok(()) => config.sync_period,
            Err(err) => {
                tracing::warn!(error = %err, "kube-proxy: sync failed; trying again");
                config.retry
            }
        };
        // 3. Wait for a change (or the timer), then take every queued change at once: level-triggered.
        tokio::select! {
            Some(_) = services.changed.recv() => {}
            Some(_) = slices.changed.recv() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        for informer in [&mut services, &mut slices] {
            while informer.changed.try_recv().is_ok() {}
        }
    }
}
// ANCHOR_END: run

impl Proxy {
    /// What the machine has now, in the shape of [`Desired`].
    async fn observe(&self) -> Result<Desired, Error> {
        let addresses = self.interface.addresses().await?;
        let listeners = self.listeners.iter().map(|(addr, (_, endpoints))| (*addr, endpoints.clone())).collect();
        Ok(Desired { addresses, listeners })
    }

    /// One pass: carries out every action; the first error is returned after trying the rest.
    async fn sync(&mut self, desired: &Desired) -> Result<(), Error> {
        let actions = reconcile(desired, &self.observe().await?);
        let mut first_error = None;
        for action in actions {
            tracing::info!(?action, "kube-proxy");
            if let Err(err) = self.apply(action).await {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn apply(&mut self, action: Action) -> Result<(), Error> {
        match action {
            Action::AddAddress(ip) => self.interface.add(ip).await?,
            Action::Listen(addr, endpoints) => {
                let forwarder =
                    Forwarder::bind(addr, endpoints.clone()).await.map_err(|source| Error::Listen { addr, source })?;
                self.listeners.insert(addr, (forwarder, endpoints));
            }
            Action::SetEndpoints(addr, endpoints) => {
                if let Some((forwarder, current)) = self.listeners.get_mut(&addr) {
                    forwarder.set_endpoints(endpoints.clone());
                    *current = endpoints;
                }
            }
            Action::Close(addr) => drop(self.listeners.remove(&addr)),
            Action::RemoveAddress(ip) => self.interface.remove(ip).await?,
        }
        Ok(())
    }
}
