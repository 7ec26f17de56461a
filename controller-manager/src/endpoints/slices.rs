//! The EndpointSlice controller's decision: which slices a Service's endpoints go into.
//!
//! Endpoints put every address of a Service in one object, so a Service of 5000 pods rewrote (and sent to every
//! kube-proxy) one huge object whenever one pod changed. EndpointSlices (`discovery.k8s.io/v1`, what kube-proxy
//! reads since Kubernetes 1.21) cut the same list into slices of at most `--max-endpoints-per-slice` (100)
//! endpoints, and a change rewrites only the slice that holds the pod.
//!
//! Mirrors `reconcileByPortMapping` in `staging/src/k8s.io/endpointslice/reconciler.go`, step by step:
//!
//! 1. Pods are grouped by the ports they serve (a named port can be 8080 on one pod and 9090 on another): each
//!    group gets slices of its own, since a slice has one list of ports.
//! 2. In each existing slice of a group, endpoints whose pod is gone are dropped and changed ones replaced; a
//!    slice left empty is deleted, a changed one updated.
//! 3. New endpoints fill the slices being updated anyway, then an unchanged slice with room, then new slices of
//!    up to the limit. (Kubernetes picks the unchanged slice that ends up fullest; we take the fullest that fits.)
//! 4. Slices of a port group no longer wanted are deleted; a creation paired with a deletion becomes an update of
//!    the slice that would be deleted (fewer writes, stable names).
//! 5. A Service with no endpoints keeps one empty *placeholder* slice, so that readers can tell "no endpoints"
//!    from "not processed yet".
//!
//! Every endpoint says `ready` (serve new connections), `serving` (its readiness probe passes) and
//! `terminating`; a terminating pod stays listed, ready=false, so that a proxy can drain it (Kubernetes 1.22).
//! What we leave out: IPv6 and FQDN slices, zones and topology hints, and the trigger-time annotation.

use super::pods;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Who manages a slice: the value of its `endpointslice.kubernetes.io/managed-by` label.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager (mirrored slices of selectorless Services have another one).
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// One write to a slice.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A new slice (named by the server from `generateName: <service>-`).
    Create(EndpointSlice),
    /// A replaced slice, carrying the `resourceVersion` it was based on.
    Update(EndpointSlice),
    /// A slice no longer needed.
    Delete(String),
}

// ANCHOR: reconcile
/// Decides the writes that make `existing` (the slices labelled with this Service's name and managed by this
/// controller) hold the endpoints of `pods` (the pods of the Service's namespace), at most `max_per_slice` each.
pub fn reconcile(service: &Service, pods: &[Pod], existing: &[EndpointSlice], max_per_slice: usize) -> Vec<Action> {
    let Some(selector) = pods::selector(service) else { return Vec::new() };
    let max = max_per_slice.max(1);
    let (mut creates, mut updates, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    // 1. The wanted endpoints, by port group.
    let mut wanted: BTreeMap<PortKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    for pod in pods.iter().filter(|pod| pods::selects(selector, pod) && pods::should_be_endpoint(pod, true)) {
        if let Some(ports) = ports_of(service, pod) {
            let (_, endpoints) = wanted.entry(port_key(&ports)).or_insert_with(|| (ports, Vec::new()));
            endpoints.push(endpoint(pod, service));
        }
    }
    // The existing slices by port group; a slice of an earlier Service of the same name is deleted.
    let mut current: BTreeMap<PortKey, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(slice, service) && slice.address_type == "IPv4" {
            current.entry(port_key(slice.ports.as_deref().unwrap_or_default())).or_default().push(slice.clone());
        } else {
            deletes.push(slice.clone());
        }
    }
    for (key, (ports, endpoints)) in wanted {
        let slices = current.remove(&key).unwrap_or_default();
        let group = fill(service, &ports, endpoints, slices, max);
        creates.extend(group.creates);
        updates.extend(group.updates);
        deletes.extend(group.deletes);
    }
    // 4. Port groups nobody serves any more.
    deletes.extend(current.into_values().flatten());
    // 5. The placeholder.
    if existing.len() == deletes.len() && creates.is_empty() {
        let placeholder = new_slice(service, &[]);
        let already = deletes.len() == 1 && is_placeholder_of(&deletes[0], &placeholder);
        if already { deletes.clear() } else { creates.push(placeholder) }
    }
    // 4. Reuse a slice that would be deleted for a slice that would be created.
    // Kubernetes creates no slice for a Service being deleted: the garbage collector would race to delete it.
    if service.metadata.deletion_timestamp.is_some() {
        creates.clear();
    }
    let reusable = |s: &EndpointSlice| owned_by(s, service) && s.address_type == "IPv4";
    while let (Some(_), Some(reused)) = (creates.last(), deletes.iter().position(reusable)) {
        let (mut slice, old) = (creates.pop().unwrap_or_default(), deletes.remove(reused));
        slice.metadata = ObjectMeta { labels: slice.metadata.labels, ..old.metadata };
        updates.push(slice);
    }
    let deletes = deletes.into_iter().filter_map(|s| s.metadata.name);
    creates
        .into_iter()
        .map(Action::Create)
        .chain(updates.into_iter().map(Action::Update))
        .chain(deletes.map(Action::Delete))
        .collect()
}
// ANCHOR_END: reconcile

/// The writes for one port group.
#[derive(Default)]
struct Group {
    creates: Vec<EndpointSlice>,
    updates: Vec<EndpointSlice>,
    deletes: Vec<EndpointSlice>,
}

// ANCHOR: fill
/// Steps 2 and 3 for one port group: keeps, replaces or drops the endpoints of the existing slices, and places
/// the new ones.
fn fill(
    service: &Service,
    ports: &[EndpointPort],
    wanted: Vec<Endpoint>,
    slices: Vec<EndpointSlice>,
    max: usize,
) -> Group {
    let mut group = Group::default();
    let mut unplaced: BTreeMap<String, Endpoint> = wanted.into_iter().map(|e| (identity(&e), e)).collect();
    let labels = labels(service);
    let mut unchanged = Vec::new();
    for mut slice in slices {
        let before = slice.endpoints.clone();
        slice.endpoints = before.iter().filter_map(|e| unplaced.remove(&identity(e))).collect();
        let labels_changed = slice.metadata.labels != labels;
        slice.metadata.labels = labels.clone();
        if slice.endpoints.is_empty() && !before.is_empty() {
            group.deletes.push(slice);
        } else if slice.endpoints != before || labels_changed {
            group.updates.push(slice);
        } else {
            unchanged.push(slice);
        }
    }
    // New endpoints go first into slices that are written anyway, the fullest first.
    group.updates.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
    for slice in &mut group.updates {
        while slice.endpoints.len() < max
            && let Some((_, endpoint)) = unplaced.pop_first()
        {
            slice.endpoints.push(endpoint);
        }
    }
    while !unplaced.is_empty() {
        // The fullest unchanged slice that the rest fits in, else a new one.
        let fits = unchanged
            .iter()
            .enumerate()
            .filter(|(_, s)| s.endpoints.len() + unplaced.len() <= max)
            .max_by_key(|(_, s)| s.endpoints.len())
            .map(|(i, _)| i);
        let (mut slice, existing) = match fits {
            Some(i) => (unchanged.remove(i), true),
            None => (new_slice(service, ports), false),
        };
        while slice.endpoints.len() < max
            && let Some((_, endpoint)) = unplaced.pop_first()
        {
            slice.endpoints.push(endpoint);
        }
        if existing { group.updates.push(slice) } else { group.creates.push(slice) }
    }
    group
}
// ANCHOR_END: fill

/// The ports a pod serves for the Service, sorted; `None` if it serves none of them (then it is no endpoint;
/// a headless Service without ports is the exception: an empty list).
fn ports_of(service: &Service, pod: &Pod) -> Option<Vec<EndpointPort>> {
    let service_ports = service.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    if service_ports.is_empty() {
        return pods::is_headless(service).then(Vec::new);
    }
    let ports: Vec<EndpointPort> = service_ports
        .iter()
        .filter_map(|sp| {
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(pods::find_port(pod, sp)?),
                protocol: Some(sp.protocol.clone().unwrap_or("TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    (!ports.is_empty()).then(|| sorted_ports(ports))
}

/// Ports sorted by name, number and protocol (Kubernetes sorts them by hash), so that the same ports always
/// make the same list.
fn sorted_ports(mut ports: Vec<EndpointPort>) -> Vec<EndpointPort> {
    ports.sort_by_key(|p| port_key(std::slice::from_ref(p)));
    ports
}

/// What tells one port group from another: each port's name, number, protocol and app protocol, sorted.
type PortKey = Vec<(String, i32, String, String)>;

fn port_key(ports: &[EndpointPort]) -> PortKey {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let mut key: PortKey =
        ports.iter().map(|p| (text(&p.name), p.port.unwrap_or(0), text(&p.protocol), text(&p.app_protocol))).collect();
    key.sort();
    key
}

// ANCHOR: endpoint
/// `podToEndpoint`: the pod's address, conditions, node and reference.
fn endpoint(pod: &Pod, service: &Service) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    let publish_not_ready = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    Endpoint {
        addresses: pods::pod_ip(pod).map(str::to_string).into_iter().collect(),
        conditions: Some(EndpointConditions {
            // A terminating pod is never ready (unless the Service asks for every address): no new connections.
            ready: Some(publish_not_ready || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pods::hostname(pod, service),
        node_name: pods::node_name(pod),
        target_ref: Some(pods::target_ref(pod)),
        ..Endpoint::default()
    }
}
// ANCHOR_END: endpoint

/// What makes two versions of an endpoint "the same endpoint": its pod (by uid) and address.
fn identity(endpoint: &Endpoint) -> String {
    let uid = endpoint.target_ref.as_ref().and_then(|t| t.uid.clone()).unwrap_or_default();
    format!("{uid}/{}", endpoint.addresses.join(","))
}

/// The Service's labels (without the reserved ones) and the slice's own: service name, manager, headless.
fn labels(service: &Service) -> Option<BTreeMap<String, String>> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.retain(|key, _| ![SERVICE_NAME_LABEL, MANAGED_BY_LABEL, pods::HEADLESS_LABEL].contains(&key.as_str()));
    if pods::is_headless(service) {
        labels.insert(pods::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(SERVICE_NAME_LABEL.into(), service.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    Some(labels)
}

/// An empty slice for the Service and `ports`, owned by the Service so that the garbage collector deletes it
/// with the Service.
fn new_slice(service: &Service, ports: &[EndpointPort]) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: service.metadata.namespace.clone(),
            labels: labels(service),
            owner_references: Some(vec![crate::controller::ownership::controller_ref(
                "v1",
                "Service",
                &service.metadata,
            )]),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Vec::new(),
        ports: Some(ports.to_vec()),
    }
}

/// Whether `slice` is owned by this very Service (not by an earlier one of the same name).
fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or_default();
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid && r.kind == "Service" && r.api_version == "v1")
}

/// Whether `slice` already is the placeholder `placeholder` would be: no endpoints, no ports, same labels.
fn is_placeholder_of(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    slice.endpoints.is_empty()
        && slice.ports.as_ref().is_none_or(Vec::is_empty)
        && slice.metadata.labels == placeholder.metadata.labels
        && slice.metadata.owner_references == placeholder.metadata.owner_references
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::pods::tests::{pod, service, terminating};

    /// Each write as one line: `create 10.1.0.1(ready),10.1.0.2(terminating) ports http=8080`.
    fn story(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                Action::Create(slice) => format!("create {}", describe(slice)),
                Action::Update(slice) => {
                    format!("update {} {}", slice.metadata.name.as_deref().unwrap_or("?"), describe(slice))
                }
                Action::Delete(name) => format!("delete {name}"),
            })
            .collect()
    }

    fn describe(slice: &EndpointSlice) -> String {
        let endpoints: Vec<String> = slice
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap_or_default();
                let state = match (c.ready, c.serving, c.terminating) {
                    (Some(true), _, _) => "ready",
                    (_, Some(true), Some(true)) => "terminating",
                    (_, _, Some(true)) => "terminating,unready",
                    _ => "unready",
                };
                format!("{}({state})", e.addresses.join(","))
            })
            .collect();
        let ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}={}", p.name.clone().unwrap_or_default(), p.port.unwrap_or(0)))
            .collect();
        format!("[{}] ports [{}]", endpoints.join(","), ports.join(","))
    }

    /// The slices as the server stores them: named `web-1`, `web-2`... in the order they were created.
    fn stored(actions: Vec<Action>) -> Vec<EndpointSlice> {
        actions
            .into_iter()
            .enumerate()
            .filter_map(|(i, action)| match action {
                Action::Create(mut slice) | Action::Update(mut slice) => {
                    slice.metadata.name.get_or_insert_with(|| format!("web-{}", i + 1));
                    Some(slice)
                }
                Action::Delete(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_new_service_gets_one_labelled_owned_slice_with_ready_unready_and_terminating_endpoints() {
        let pods = [
            pod("a", "10.1.0.1", true, 8080),
            pod("b", "10.1.0.2", false, 8080),
            terminating(pod("c", "10.1.0.3", true, 8080)),
        ];
        let actions = reconcile(&service(), &pods, &[], 100);
        assert_eq!(
            story(&actions),
            ["create [10.1.0.1(ready),10.1.0.2(unready),10.1.0.3(terminating)] ports [http=8080]"]
        );
        let Action::Create(slice) = &actions[0] else { unreachable!() };
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(labels["tier"], "front");
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.metadata.owner_references.as_ref().unwrap()[0].uid, "uid-web");
        assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("node-1"));
    }

    #[test]
    fn a_change_rewrites_only_the_slice_holding_the_pod_and_nothing_is_written_twice() {
        let service = service();
        let mut pods: Vec<Pod> = (1..=3).map(|i| pod(&format!("p{i}"), &format!("10.1.0.{i}"), true, 8080)).collect();
        let slices = stored(reconcile(&service, &pods, &[], 2));
        assert_eq!(slices.len(), 2, "3 endpoints at most 2 per slice");
        assert_eq!(reconcile(&service, &pods, &slices, 2), [], "level-triggered: a second look changes nothing");
        pods[2] = pod("p3", "10.1.0.3", false, 8080);
        assert_eq!(
            story(&reconcile(&service, &pods, &slices, 2)),
            ["update web-2 [10.1.0.3(unready)] ports [http=8080]"]
        );
    }

    #[test]
    fn a_hundred_and_fifty_pods_make_a_full_slice_and_a_half_full_one() {
        let pods: Vec<Pod> =
            (1..=150).map(|i| pod(&format!("p{i:03}"), &format!("10.1.{}.{}", i / 200, i % 200), true, 8080)).collect();
        let sizes: Vec<usize> =
            stored(reconcile(&service(), &pods, &[], 100)).iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 50]);
    }

    #[test]
    fn pods_serving_a_named_port_on_different_numbers_get_slices_of_their_own() {
        let pods = [pod("a", "10.1.0.1", true, 8080), pod("b", "10.1.0.2", true, 9090)];
        assert_eq!(
            story(&reconcile(&service(), &pods, &[], 100)),
            ["create [10.1.0.1(ready)] ports [http=8080]", "create [10.1.0.2(ready)] ports [http=9090]"]
        );
    }

    #[test]
    fn when_the_last_pod_goes_its_slice_becomes_the_placeholder_and_stays_one() {
        let service = service();
        let slices = stored(reconcile(&service, &[pod("a", "10.1.0.1", true, 8080)], &[], 100));
        let actions = reconcile(&service, &[], &slices, 100);
        assert_eq!(story(&actions), ["update web-1 [] ports []"]);
        assert_eq!(reconcile(&service, &[], &stored(actions), 100), []);
    }

    #[test]
    fn slices_of_an_earlier_service_of_the_same_name_are_deleted_and_selectorless_services_left_alone() {
        let old = stored(reconcile(&service(), &[pod("a", "10.1.0.1", true, 8080)], &[], 100));
        let mut recreated = service();
        recreated.metadata.uid = Some("uid-web-2".into());
        let actions = reconcile(&recreated, &[pod("a", "10.1.0.1", true, 8080)], &old, 100);
        assert_eq!(story(&actions), ["create [10.1.0.1(ready)] ports [http=8080]", "delete web-1"]);
        let mut manual = service();
        manual.spec.as_mut().unwrap().selector = None;
        assert_eq!(reconcile(&manual, &[pod("a", "10.1.0.1", true, 8080)], &old, 100), []);
    }
}
