//! The Endpoints controller's decision: the `v1` Endpoints a Service should have, compared with the one it has.
//!
//! Mirrors `syncService` in `pkg/controller/endpoint/endpoints_controller.go` and `RepackSubsets` in
//! `pkg/api/v1/endpoints`. Each pod contributes one address per Service port it serves — ready pods to
//! `addresses`, the others to `notReadyAddresses` — and then addresses serving the same ports are packed into
//! one subset:
//!
//! ```text
//! pods:  a 10.1.0.1 ready, http=8080     subsets: - addresses: [10.1.0.1, 10.1.0.2]
//!        b 10.1.0.2 ready, http=8080                notReadyAddresses: [10.1.0.3]
//!        c 10.1.0.3 unready, http=8080              ports: [{name: http, port: 8080}]
//!        d 10.1.0.4 ready, http=9090              - addresses: [10.1.0.4]
//!                                                   ports: [{name: http, port: 9090}]
//! ```
//!
//! What we leave out: the `endpoints.kubernetes.io/last-change-trigger-time` annotation, and truncating
//! Endpoints beyond 1000 addresses (`endpoints.kubernetes.io/over-capacity`): the EndpointSlices have no limit.

use super::pods;
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};

/// What to do with a Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// There is none yet: create it.
    Create(Endpoints),
    /// It differs from what the pods say: replace it (the object carries the `resourceVersion` it was based on).
    Update(Endpoints),
    /// The Service is gone: delete its Endpoints (they have no owner reference; Kubernetes deletes them by name).
    Delete { namespace: String, name: String },
}

// ANCHOR: reconcile
/// Decides what to do with the Endpoints `existing` of `service` (`None` once the Service is deleted), given the
/// pods of its namespace. `None`: nothing to do.
pub fn reconcile(service: Option<&Service>, pods: &[Pod], existing: Option<&Endpoints>) -> Option<Action> {
    let Some(service) = service else {
        let meta = &existing?.metadata;
        let (namespace, name) = (meta.namespace.clone()?, meta.name.clone()?);
        return Some(Action::Delete { namespace, name });
    };
    // Without a selector, the Endpoints are the user's to write.
    let selector = pods::selector(service)?;
    let selected = pods.iter().filter(|pod| pods::selects(selector, pod));
    let subsets = subsets(service, selected);
    let labels = labels(service);
    match existing {
        Some(current) if canonical(current.subsets.clone()) == subsets && current.metadata.labels == labels => None,
        Some(current) => {
            let mut updated = current.clone();
            updated.subsets = Some(subsets).filter(|s| !s.is_empty());
            updated.metadata.labels = labels;
            Some(Action::Update(updated))
        }
        None => Some(Action::Create(Endpoints {
            metadata: ObjectMeta {
                name: service.metadata.name.clone(),
                namespace: service.metadata.namespace.clone(),
                labels,
                ..ObjectMeta::default()
            },
            subsets: Some(subsets).filter(|s| !s.is_empty()),
        })),
    }
}
// ANCHOR_END: reconcile

/// The Service's labels, plus `service.kubernetes.io/headless` when it has no cluster IP.
fn labels(service: &Service) -> Option<BTreeMap<String, String>> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(pods::HEADLESS_LABEL);
    if pods::is_headless(service) {
        labels.insert(pods::HEADLESS_LABEL.into(), String::new());
    }
    Some(labels).filter(|l| !l.is_empty())
}

// ANCHOR: subsets
/// The subsets the selected pods make: every (address, port) pair, packed so that the addresses serving the
/// same set of ports share one subset.
fn subsets<'a>(service: &Service, selected: impl Iterator<Item = &'a Pod>) -> Vec<EndpointSubset> {
    let spec = service.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let service_ports = spec.ports.unwrap_or_default();
    // Each address (and whether it is ready) with the ports it serves.
    let mut served: BTreeMap<(bool, Address), BTreeSet<Port>> = BTreeMap::new();
    for pod in selected.filter(|pod| pods::should_be_endpoint(pod, publish_not_ready)) {
        let ready = publish_not_ready || pods::is_ready(pod);
        let address = Address::of(pod, service);
        if service_ports.is_empty() {
            // A headless Service may have no ports: its endpoints are bare addresses, found through DNS.
            if pods::is_headless(service) {
                served.entry((ready, address)).or_default();
            }
            continue;
        }
        let ports: BTreeSet<Port> = service_ports
            .iter()
            .filter_map(|sp| {
                let number = pods::find_port(pod, sp)?;
                Some((sp.name.clone().unwrap_or_default(), number, sp.protocol.clone().unwrap_or("TCP".into())))
            })
            .collect();
        if !ports.is_empty() {
            served.entry((ready, address)).or_default().extend(ports);
        }
    }
    // Group by port set: one subset per distinct set, its addresses sorted by IP.
    let mut by_ports: BTreeMap<BTreeSet<Port>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for ((ready, address), ports) in served {
        let (ready_list, not_ready_list) = by_ports.entry(ports).or_default();
        if ready { ready_list.push(address.into()) } else { not_ready_list.push(address.into()) }
    }
    by_ports
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: Some(ready).filter(|a| !a.is_empty()),
            not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
            ports: Some(ports.into_iter().map(endpoint_port).collect::<Vec<_>>()).filter(|p| !p.is_empty()),
        })
        .collect()
}
// ANCHOR_END: subsets

/// A port as the endpoints list it: name, number, protocol (sorted in that order; Kubernetes sorts by hash).
type Port = (String, i32, String);

fn endpoint_port((name, port, protocol): Port) -> EndpointPort {
    EndpointPort { name: Some(name).filter(|n| !n.is_empty()), port, protocol: Some(protocol), app_protocol: None }
}

/// One pod's address, ordered by IP so that the Endpoints read the same whatever order the pods came in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Address {
    ip_sort: (std::net::Ipv4Addr, String),
    node_name: Option<String>,
    hostname: Option<String>,
    pod: (Option<String>, Option<String>, Option<String>),
}

impl Address {
    fn of(pod: &Pod, service: &Service) -> Address {
        let ip = pods::pod_ip(pod).unwrap_or_default();
        Address {
            ip_sort: (ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED), ip.to_string()),
            node_name: pods::node_name(pod),
            hostname: pods::hostname(pod, service),
            pod: (pod.metadata.namespace.clone(), pod.metadata.name.clone(), pod.metadata.uid.clone()),
        }
    }
}

impl From<Address> for EndpointAddress {
    fn from(address: Address) -> EndpointAddress {
        let (namespace, name, uid) = address.pod;
        EndpointAddress {
            ip: address.ip_sort.1,
            hostname: address.hostname,
            node_name: address.node_name,
            target_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                kind: Some("Pod".into()),
                namespace,
                name,
                uid,
                ..Default::default()
            }),
        }
    }
}

/// Stored subsets in the form [`subsets`] builds them (empty lists as absent), so that they compare equal when
/// nothing changed. A `resourceVersion` in a target reference is ignored, as Kubernetes ignores it.
fn canonical(subsets: Option<Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    let clean = |list: Option<Vec<EndpointAddress>>| {
        let list: Vec<EndpointAddress> = list
            .unwrap_or_default()
            .into_iter()
            .map(|mut a| {
                if let Some(target) = a.target_ref.as_mut() {
                    target.resource_version = None;
                }
                a
            })
            .collect();
        Some(list).filter(|l| !l.is_empty())
    };
    subsets
        .unwrap_or_default()
        .into_iter()
        .map(|s| EndpointSubset {
            addresses: clean(s.addresses),
            not_ready_addresses: clean(s.not_ready_addresses),
            ports: s.ports.filter(|p| !p.is_empty()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::pods::tests::{pod, service, terminating};

    /// The IPs of each subset as `ready | not ready | ports`, to read a decision at a glance.
    fn summary(endpoints: &Endpoints) -> Vec<String> {
        let ips = |list: &Option<Vec<EndpointAddress>>| {
            list.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>().join(",")
        };
        let ports = |s: &EndpointSubset| {
            s.ports
                .iter()
                .flatten()
                .map(|p| format!("{}={}", p.name.clone().unwrap_or_default(), p.port))
                .collect::<Vec<_>>()
                .join(",")
        };
        endpoints
            .subsets
            .iter()
            .flatten()
            .map(|s| format!("{} | {} | {}", ips(&s.addresses), ips(&s.not_ready_addresses), ports(s)))
            .collect()
    }

    fn created(action: Option<Action>) -> Endpoints {
        match action {
            Some(Action::Create(endpoints)) => endpoints,
            other => panic!("expected a creation, got {other:?}"),
        }
    }

    #[test]
    fn ready_pods_are_addresses_unready_ones_not_ready_addresses_and_terminating_ones_are_left_out() {
        let pods = [
            pod("b", "10.1.0.2", true, 8080),
            pod("a", "10.1.0.1", true, 8080),
            pod("c", "10.1.0.3", false, 8080),
            terminating(pod("d", "10.1.0.4", true, 8080)),
        ];
        let endpoints = created(reconcile(Some(&service()), &pods, None));
        assert_eq!(summary(&endpoints), ["10.1.0.1,10.1.0.2 | 10.1.0.3 | http=8080"]);
        assert_eq!(endpoints.metadata.name.as_deref(), Some("web"));
        assert_eq!(endpoints.metadata.labels.unwrap()["tier"], "front", "the Service's labels are copied");
        let first = &endpoints.subsets.unwrap()[0].addresses.clone().unwrap()[0];
        assert_eq!(first.node_name.as_deref(), Some("node-1"));
        assert_eq!(first.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    }

    #[test]
    fn pods_serving_a_named_port_on_different_numbers_go_to_different_subsets() {
        let pods = [pod("a", "10.1.0.1", true, 8080), pod("b", "10.1.0.2", true, 9090)];
        let endpoints = created(reconcile(Some(&service()), &pods, None));
        assert_eq!(summary(&endpoints), ["10.1.0.1 |  | http=8080", "10.1.0.2 |  | http=9090"]);
    }

    #[test]
    fn publish_not_ready_addresses_makes_every_pod_ready_even_a_terminating_one() {
        let mut service = service();
        service.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let pods = [pod("a", "10.1.0.1", false, 8080), terminating(pod("b", "10.1.0.2", false, 8080))];
        assert_eq!(summary(&created(reconcile(Some(&service), &pods, None))), ["10.1.0.1,10.1.0.2 |  | http=8080"]);
    }

    #[test]
    fn pods_the_selector_does_not_match_or_without_the_named_port_are_not_endpoints() {
        let mut stranger = pod("x", "10.1.0.9", true, 8080);
        stranger.metadata.labels = Some([("app".to_string(), "db".to_string())].into());
        let mut portless = pod("y", "10.1.0.8", true, 8080);
        portless.spec.as_mut().unwrap().containers[0].ports = None;
        let endpoints = created(reconcile(Some(&service()), &[stranger, portless], None));
        assert_eq!(endpoints.subsets, None, "an Endpoints with no subsets, so that `describe` says <none>");
    }

    #[test]
    fn an_unchanged_endpoints_is_left_alone_and_a_changed_one_replaced_from_its_version() {
        let service = service();
        let mut pods = vec![pod("a", "10.1.0.1", true, 8080)];
        let mut stored = created(reconcile(Some(&service), &pods, None));
        stored.metadata.resource_version = Some("7".into());
        assert_eq!(reconcile(Some(&service), &pods, Some(&stored)), None);
        pods[0] = pod("a", "10.1.0.1", false, 8080);
        let Some(Action::Update(updated)) = reconcile(Some(&service), &pods, Some(&stored)) else { panic!() };
        assert_eq!(updated.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(summary(&updated), [" | 10.1.0.1 | http=8080"]);
    }

    #[test]
    fn a_service_without_selector_is_left_alone_and_a_deleted_one_loses_its_endpoints() {
        let mut manual = service();
        manual.spec.as_mut().unwrap().selector = None;
        let theirs = Endpoints {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("default".into()), ..Default::default() },
            subsets: None,
        };
        assert_eq!(reconcile(Some(&manual), &[pod("a", "10.1.0.1", true, 8080)], Some(&theirs)), None);
        assert_eq!(
            reconcile(None, &[], Some(&theirs)),
            Some(Action::Delete { namespace: "default".into(), name: "web".into() })
        );
        assert_eq!(reconcile(None, &[], None), None);
    }

    #[test]
    fn a_headless_service_without_ports_lists_bare_addresses_and_is_labelled_headless() {
        let mut headless = service();
        let spec = headless.spec.as_mut().unwrap();
        spec.cluster_ip = Some("None".into());
        spec.ports = None;
        let endpoints = created(reconcile(Some(&headless), &[pod("a", "10.1.0.1", true, 8080)], None));
        assert_eq!(summary(&endpoints), ["10.1.0.1 |  | "]);
        assert_eq!(endpoints.metadata.labels.unwrap()[pods::HEADLESS_LABEL], "");
    }
}
