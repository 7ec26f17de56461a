//! What the DNS server knows of the cluster: every Service's name and what it stands for, as plain data.
//!
//! The index is built from the Services, EndpointSlices and Endpoints the informers hold, and rebuilt whole after each
//! change. It never patches itself from events: like a reconciler it reads the whole current state each time, so a
//! missed or repeated event cannot leave a stale name behind. Rebuilding costs a pass over every Service, which
//! is nothing at kubelab's size; CoreDNS instead looks each question up in its informer caches through indexes.

use hickory_server::proto::rr::Name;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::net::IpAddr;

// ANCHOR: index
/// Every Service the cluster DNS answers for, by namespace and name, with what its name stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceIndex {
    /// The cluster domain, lowercase and fully qualified: `cluster.local.`.
    pub domain: Name,
    /// Keyed by (namespace, name): a question is read from the right, namespace before Service.
    pub services: BTreeMap<(String, String), Target>,
}

/// What one Service's name stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A Service with a cluster IP: its name is that stable address (kube-proxy leads it to a ready pod), and each
    /// named port gets an SRV record.
    ClusterIp {
        /// `spec.clusterIPs` (one per IP family); empty while the apiserver has not allocated one.
        ips: Vec<IpAddr>,
        /// The Service's ports that have a name: only those can be asked for by SRV.
        ports: Vec<NamedPort>,
    },
    /// `clusterIP: None`: no virtual address, the name stands for the ready pods themselves (one A record each),
    /// and each pod also gets a name of its own under the Service's (StatefulSets rely on this). The pods come
    /// from the Service's EndpointSlices when it has any, else from its Endpoints.
    Headless(Vec<Backend>),
    /// `type: ExternalName`: the name is an alias (a CNAME) of another DNS name, e.g. a database outside the
    /// cluster.
    ExternalName(Name),
}

/// One ready pod behind a headless Service, from its EndpointSlices or Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub ip: IpAddr,
    /// Its own label under the Service's name: the pod's `hostname` when the endpoints give one
    /// (`web-0.web.shop.svc.cluster.local` for a StatefulSet), else its IP with dashes (`10-244-1-5`).
    pub label: String,
    /// The endpoint ports with a name (the pods' ports: a headless Service has no port of its own to translate).
    pub ports: Vec<NamedPort>,
}

/// A port that has a name, which SRV records are asked for by: `_<name>._<protocol>.<service>...`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedPort {
    pub name: String,
    /// Lowercase, as it appears in the SRV name: `tcp`, `udp` or `sctp` (Kubernetes' default is TCP).
    pub protocol: String,
    pub port: u16,
}
// ANCHOR_END: index

impl ServiceIndex {
    /// An index that knows no Service yet.
    pub fn empty(domain: Name) -> ServiceIndex {
        ServiceIndex { domain, services: BTreeMap::new() }
    }

    // ANCHOR: build
    /// The index for these Services and their endpoints. Objects that cannot be read (no name, an IP that does
    /// not parse) are skipped: one bad object must not take every other name down with it.
    pub fn build(
        domain: Name,
        services: &[Service],
        slices: &[EndpointSlice],
        endpoints: &[Endpoints],
    ) -> ServiceIndex {
        // An Endpoints object has its Service's namespace and name; an EndpointSlice (a Service may have several)
        // names its Service in the label `kubernetes.io/service-name`.
        let endpoints: BTreeMap<(&str, &str), &Endpoints> = endpoints
            .iter()
            .filter_map(|e| Some(((e.metadata.namespace.as_deref()?, e.metadata.name.as_deref()?), e)))
            .collect();
        let mut slices_of: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in slices {
            let service = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(namespace), Some(service)) = (slice.metadata.namespace.as_deref(), service) {
                slices_of.entry((namespace, service.as_str())).or_default().push(slice);
            }
        }
        let mut index = ServiceIndex::empty(domain);
        for service in services {
            let (Some(namespace), Some(name), Some(spec)) =
                (service.metadata.namespace.as_deref(), service.metadata.name.as_deref(), service.spec.as_ref())
            else {
                continue;
            };
            let target = if spec.type_.as_deref() == Some("ExternalName") {
                let Some(alias) = spec.external_name.as_deref().and_then(fully_qualified) else { continue };
                Target::ExternalName(alias)
            } else if spec.cluster_ip.as_deref() == Some("None") {
                Target::Headless(match slices_of.get(&(namespace, name)) {
                    Some(slices) => backends_from_slices(slices),
                    None => backends_from_endpoints(endpoints.get(&(namespace, name)).copied()),
                })
            } else {
                let ips = match &spec.cluster_ips {
                    Some(ips) if !ips.is_empty() => ips.clone(),
                    _ => spec.cluster_ip.iter().cloned().collect(),
                };
                let ports = spec
                    .ports
                    .iter()
                    .flatten()
                    .filter_map(|p| named_port(p.name.as_deref(), p.protocol.as_deref(), p.port));
                Target::ClusterIp { ips: ips.iter().filter_map(|ip| ip.parse().ok()).collect(), ports: ports.collect() }
            };
            index.services.insert((namespace.to_string(), name.to_string()), target);
        }
        index
    }
    // ANCHOR_END: build

    /// The Service `namespace/name`, if there is one.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Target> {
        self.services.get(&(namespace.to_string(), name.to_string()))
    }

    /// Whether any Service lives in `namespace` (then `<namespace>.svc.cluster.local` is a name that exists).
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.services.keys().any(|(ns, _)| ns == namespace)
    }
}

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The ready pods of a Service's EndpointSlices, each once, with the named ports of every slice it is in.
///
/// An endpoint counts unless its `ready` condition is false (absent means ready, as the API says). For a Service
/// with `publishNotReadyAddresses` the EndpointSlice controller already marks every pod ready.
fn backends_from_slices(slices: &[&EndpointSlice]) -> Vec<Backend> {
    let mut by_ip = BTreeMap::new();
    for slice in slices {
        let ports =
            named_ports(slice.ports.iter().flatten().map(|p| (p.name.as_deref(), p.protocol.as_deref(), p.port)));
        for endpoint in &slice.endpoints {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for ip in &endpoint.addresses {
                add_backend(&mut by_ip, ip, endpoint.hostname.as_deref(), &ports);
            }
        }
    }
    by_ip.into_values().collect()
}

/// The ready pods of an Endpoints object, each once, with the named ports of every subset it is in.
///
/// Only `addresses` count, never `notReadyAddresses`: a pod that fails its readiness probe leaves the name, as
/// it leaves kube-proxy's rules. For a Service with `publishNotReadyAddresses` the Endpoints controller already
/// puts every pod in `addresses`.
fn backends_from_endpoints(endpoints: Option<&Endpoints>) -> Vec<Backend> {
    let mut by_ip = BTreeMap::new();
    for subset in endpoints.and_then(|e| e.subsets.as_ref()).into_iter().flatten() {
        let ports = named_ports(
            subset.ports.iter().flatten().map(|p| (p.name.as_deref(), p.protocol.as_deref(), Some(p.port))),
        );
        for address in subset.addresses.iter().flatten() {
            add_backend(&mut by_ip, &address.ip, address.hostname.as_deref(), &ports);
        }
    }
    by_ip.into_values().collect()
}

/// Adds the pod at `ip` (or, when it is already there, these ports to it).
fn add_backend(by_ip: &mut BTreeMap<IpAddr, Backend>, ip: &str, hostname: Option<&str>, ports: &[NamedPort]) {
    let Ok(parsed) = ip.parse::<IpAddr>() else { return };
    let backend = by_ip.entry(parsed).or_insert_with(|| Backend {
        ip: parsed,
        label: match hostname {
            Some(hostname) if !hostname.is_empty() => hostname.to_string(),
            _ => ip.replace(['.', ':'], "-"),
        },
        ports: Vec::new(),
    });
    for port in ports {
        if !backend.ports.contains(port) {
            backend.ports.push(port.clone());
        }
    }
}

/// The named ports among `(name, protocol, number)`.
fn named_ports<'a>(ports: impl Iterator<Item = (Option<&'a str>, Option<&'a str>, Option<i32>)>) -> Vec<NamedPort> {
    ports.filter_map(|(name, protocol, port)| named_port(name, protocol, port?)).collect()
}

/// A port that can be asked for by SRV: it has a name and a number that fits.
fn named_port(name: Option<&str>, protocol: Option<&str>, port: i32) -> Option<NamedPort> {
    let name = name.filter(|n| !n.is_empty())?;
    Some(NamedPort {
        name: name.to_string(),
        protocol: protocol.unwrap_or("TCP").to_ascii_lowercase(),
        port: u16::try_from(port).ok()?,
    })
}

/// `db.example.com` as the fully qualified `db.example.com.` (an ExternalName is always absolute).
pub(crate) fn fully_qualified(name: &str) -> Option<Name> {
    let mut name = Name::from_ascii(name).ok()?.to_lowercase();
    name.set_fqdn(true);
    Some(name)
}
