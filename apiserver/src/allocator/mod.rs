//! Services get an address: the cluster IP and node port allocators.
//!
//! A Service of type ClusterIP gets a virtual IP from the *service CIDR* (`--service-cluster-ip-range`, default
//! `10.96.0.0/12`); a NodePort Service also gets, for each of its ports, a port opened on every node
//! (`--service-node-port-range`, default `30000-32767`). Kubernetes hands these out in the apiserver, while it
//! stores the Service, so that the object a client gets back already carries them — and so does kubelab:
//!
//! 1. [`bitmap`] — the decision, a pure function: which free slot of a range a request gets ([`bitmap::allocate`]);
//! 2. [`ranges`] — addresses and ports as slots of the two ranges;
//! 3. [`service`] — what a Service asks for, on create and update, and what it holds, also pure;
//! 4. [`store`] — the bitmaps live in the cluster store, changed with compare-and-swap, so that a restarted
//!    apiserver, or a second apiserver on the same etcd, never hands out a slot twice;
//! 5. [`ServiceAllocators`] — the three moments the registry calls: before a Service is written
//!    ([`ServiceAllocators::claim`]), after the write ([`Claim::settle`]), after it is deleted
//!    ([`ServiceAllocators::release`]).
//!
//! The first address of the range (`10.96.0.1`) belongs to the `kubernetes` Service in `default`, through which
//! pods reach the apiserver. kubelab does not create that Service; the address is reserved anyway, as taken in
//! every new bitmap, so that it stays free for it.
//!
//! What we leave out: IPv6 and dual-stack Services, the `ServiceCIDR` and `IPAddress` objects that newer Kubernetes
//! keeps one per address, and the repair loops that find addresses held by no Service (left behind when an
//! apiserver dies between taking an address and storing the Service) and give them back.

pub mod bitmap;
pub mod ranges;
pub mod service;
pub mod store;

pub use ranges::{IpRange, PortRange};

use crate::store::Store;
use bitmap::{Bitmap, Refused, Want};
use kubelab_api::{ApiError, Resource};
use serde_json::Value;
use service::Holdings;
use std::sync::Arc;
use store::StoredRange;

/// The allocators of one apiserver: its two ranges, kept in its store.
#[derive(Clone)]
pub struct ServiceAllocators {
    store: Arc<dyn Store>,
    ips: IpRange,
    ports: PortRange,
}

/// What a write took; [`Claim::settle`] it once the Service is (or is not) stored.
#[must_use = "a claim must be settled, or what it took stays taken"]
pub struct Claim {
    allocators: Option<ServiceAllocators>,
    /// Newly taken, given back if the write fails.
    taken: Holdings,
    /// Held by the old version and not by the new one, given back if the write succeeds.
    dropped: Holdings,
    dry_run: bool,
}

fn is_service(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.kind == "Service"
}

impl ServiceAllocators {
    /// Allocators for `ips` and `ports`, kept in `store`.
    pub fn new(store: Arc<dyn Store>, ips: IpRange, ports: PortRange) -> Self {
        ServiceAllocators { store, ips, ports }
    }

    fn ip_range(&self) -> StoredRange {
        StoredRange {
            key: "/registry/ranges/serviceips",
            spec: self.ips.to_string(),
            size: self.ips.size(),
            taken_at_start: &[0],
        }
    }

    fn port_range(&self) -> StoredRange {
        StoredRange {
            key: "/registry/ranges/servicenodeports",
            spec: self.ports.to_string(),
            size: self.ports.size(),
            taken_at_start: &[],
        }
    }

    // ANCHOR: claim
    /// Before `service` (a new one, or a new version of `old`) is stored: takes the cluster IP and node ports it
    /// asks for, and writes the ones it gets into it. Anything else than a Service passes untouched.
    pub async fn claim(
        &self,
        resource: &Resource,
        service: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Claim, ApiError> {
        let mut claim = Claim { allocators: None, taken: Holdings::default(), dropped: Holdings::default(), dry_run };
        if !is_service(resource) {
            return Ok(claim);
        }
        let causes = service::check_families(service);
        if !causes.is_empty() {
            let name = service.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            return Err(ApiError::invalid("", "Service", name, causes));
        }
        let held = old.map(service::holdings).unwrap_or_default();
        claim.allocators = Some(self.clone());
        if let Some(want) = service::ip_request(service, &held, &self.ips)? {
            let slot = store::modify(self.store.as_ref(), &self.ip_range(), dry_run, |bitmap| {
                match (bitmap::allocate(bitmap, want, "IP"), want) {
                    (Ok(slot), _) => Ok(slot),
                    (Err(refused @ Refused::Taken(_)), Want::Slot(slot)) => {
                        Err(service::ip_refused(service, &self.ips.address(slot).to_string(), refused))
                    }
                    (Err(refused), _) => Err(ApiError::internal(format!("failed to allocate a serviceIP: {refused}"))),
                }
            })
            .await?;
            let ip = self.ips.address(slot);
            service::fill_ip(service, ip);
            claim.taken.ip = Some(ip);
        }
        let requests = service::port_requests(service, &held, &self.ports)?;
        if !requests.is_empty() {
            let taken = store::modify(self.store.as_ref(), &self.port_range(), dry_run, |bitmap| {
                take_ports(bitmap, &requests, service, &self.ports)
            })
            .await;
            match taken {
                Ok(taken) => {
                    service::fill_node_ports(service, &taken);
                    claim.taken.node_ports = taken.iter().map(|(_, port)| *port).collect();
                }
                Err(err) => {
                    claim.settle(false).await;
                    return Err(err);
                }
            }
        }
        claim.dropped = held.minus(&service::holdings(service));
        Ok(claim)
    }
    // ANCHOR_END: claim

    /// After a Service is deleted: gives back what it held. Failures are logged, not returned: the Service is
    /// gone either way.
    pub async fn release(&self, resource: &Resource, service: &Value) {
        if is_service(resource) {
            self.give_back(&service::holdings(service)).await;
        }
    }

    async fn give_back(&self, holdings: &Holdings) {
        if let Some(ip) = holdings.ip
            && let Ok(slot) = self.ips.slot(ip)
        {
            let released = store::modify(self.store.as_ref(), &self.ip_range(), false, |bitmap| {
                bitmap::release(bitmap, slot);
                Ok(())
            })
            .await;
            if let Err(err) = released {
                tracing::warn!(%ip, error = %err.message, "could not release a cluster IP");
            }
        }
        let slots: Vec<usize> = holdings.node_ports.iter().filter_map(|port| self.ports.slot(*port).ok()).collect();
        if !slots.is_empty() {
            let released = store::modify(self.store.as_ref(), &self.port_range(), false, |bitmap| {
                slots.iter().for_each(|slot| bitmap::release(bitmap, *slot));
                Ok(())
            })
            .await;
            if let Err(err) = released {
                tracing::warn!(ports = ?holdings.node_ports, error = %err.message, "could not release node ports");
            }
        }
    }
}

/// Takes every requested node port, or none (the bitmap is only written when all succeed).
fn take_ports(
    bitmap: &mut Bitmap,
    requests: &[(usize, Want)],
    service: &Value,
    ports: &PortRange,
) -> Result<Vec<(usize, i32)>, ApiError> {
    let mut taken = Vec::new();
    for (index, want) in requests {
        match (bitmap::allocate(bitmap, *want, "port"), want) {
            (Ok(slot), _) => taken.push((*index, ports.port(slot))),
            (Err(refused @ Refused::Taken(_)), Want::Slot(slot)) => {
                return Err(service::port_refused(service, *index, ports.port(*slot), refused));
            }
            (Err(refused), _) => return Err(ApiError::internal(format!("failed to allocate a nodePort: {refused}"))),
        }
    }
    Ok(taken)
}

impl Claim {
    /// After the write: if it happened, gives back what the old version held and the new one does not; if it did
    /// not, gives back what the claim took.
    pub async fn settle(self, written: bool) {
        let Some(allocators) = &self.allocators else { return };
        if self.dry_run {
            return;
        }
        let back = if written { &self.dropped } else { &self.taken };
        if !back.is_empty() {
            allocators.give_back(back).await;
        }
    }
}

#[cfg(test)]
mod tests;
