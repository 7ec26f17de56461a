//! The Endpoints and EndpointSlice controllers: which pods stand behind a Service.
//!
//! A Service names its pods by a label selector, but the proxies and DNS servers that send traffic to it need
//! addresses. Two controllers keep the answer written down, both reading the same Services and pods:
//!
//! - the **Endpoints controller** ([`EndpointsController`], decision in [`subsets`]) writes one `v1` Endpoints
//!   per Service, named like it: ready pods under `addresses`, the others under `notReadyAddresses`, terminating
//!   pods left out — the original API, still what `kubectl get endpoints` shows;
//! - the **EndpointSlice controller** ([`EndpointSliceController`], decision in [`slices`]) writes
//!   `discovery.k8s.io/v1` EndpointSlices of at most 100 endpoints, each with `ready`, `serving` and
//!   `terminating` conditions — what kube-proxy reads since Kubernetes 1.21, and recent kubectl's `describe
//!   service` (1.27 still reads the Endpoints).
//!
//! Both **watch** Services (each its own key) and pods: a pod event is mapped to the Services of its namespace
//! whose selector matches it (and, by the framework, to those it matched before its labels changed or it was
//! deleted), so a pod turning ready, unready or being deleted is reflected within milliseconds. They also watch
//! what they write, so that an Endpoints or slice deleted or edited by hand is put back. [`pods`] holds the rules
//! both share: which pods count, and the port a Service port leads to on each pod (`targetPort` by number or
//! by the name of a container port).
//!
//! Services without a selector are left alone (their endpoints are written by hand), and so are `ExternalName`
//! Services. When a Service is deleted, its Endpoints are deleted by name (they carry no owner reference, as in
//! Kubernetes); its EndpointSlices carry an owner reference and go with the garbage collector.
//!
//! Mirrors `pkg/controller/endpoint` and `pkg/controller/endpointslice` with `k8s.io/endpointslice`. What we
//! leave out: IPv6 and dual-stack, topology (zones, hints, traffic distribution), the EndpointSlice *mirroring*
//! controller (slices for hand-written Endpoints), events on failed writes, the trigger-time annotation, and the
//! one-time sweep at start-up that deletes Endpoints whose Service was deleted while the controller was down.
//!
//! Book: "Endpoints: which pods stand behind a Service" in the chapter on the other controllers.

pub mod pods;
mod slice_controller;
pub mod slices;
pub mod subsets;

pub use slice_controller::EndpointSliceController;

use crate::Config;
use crate::controller::{self, Controller, Error, Lister, Reconciled, Source, Writes, Written, ownership, to_json};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PropagationPolicy, resource_of};
use serde_json::Value;
use subsets::Action;
use tokio::time::Instant;

// ANCHOR: sources
/// The two informers both controllers start: Services, each its own key, and pods, each mapped to the keys of
/// the Services that select it.
fn service_and_pod_sources(client: &Client) -> Result<(Source, Lister, Source, Lister), Error> {
    let (service_source, services) = Source::new(client, resource_of::<Service>()?, |s| vec![controller::key_of(s)]);
    let candidates = services.clone();
    let (pod_source, pods) =
        Source::new(client, resource_of::<Pod>()?, move |pod| services_selecting(pod, &candidates));
    Ok((service_source, services, pod_source, pods))
}

/// The keys of the Services of the pod's namespace whose selector matches its labels.
fn services_selecting(pod: &Value, services: &Lister) -> Vec<String> {
    let Ok(pod) = serde_json::from_value::<Pod>(pod.clone()) else { return Vec::new() };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let selecting = |service: &Service| pods::selector(service).is_some_and(|s| pods::selects(s, &pod));
    services
        .list_in::<Service>(namespace)
        .iter()
        .filter(|s| selecting(s))
        .map(|s| ownership::key(&s.metadata))
        .collect()
}
// ANCHOR_END: sources

/// The Endpoints controller: one `v1` Endpoints per Service with a selector.
pub struct EndpointsController {
    client: Client,
    services: Lister,
    pods: Lister,
    endpoints: Lister,
}

/// What one reconcile looks at: the Service (gone once deleted), the pods of its namespace, its Endpoints.
pub struct Observed {
    pub service: Option<Service>,
    pub pods: Vec<Pod>,
    pub endpoints: Option<Endpoints>,
}

impl Controller for EndpointsController {
    type Observed = Observed;
    type Action = Action;

    /// Three informers: Services, pods (mapped to the Services selecting them), and Endpoints (mapped to
    /// themselves while their Service exists, so that one deleted by hand is written again).
    fn new(client: &Client, _config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (service_source, services, pod_source, pods) = service_and_pod_sources(client)?;
        let known = services.clone();
        let (endpoints_source, endpoints) = Source::new(client, resource_of::<Endpoints>()?, move |endpoints| {
            let key = controller::key_of(endpoints);
            if known.get::<Service>(&key).is_some() { vec![key] } else { Vec::new() }
        });
        let controller = EndpointsController { client: client.clone(), services, pods, endpoints };
        Ok((controller, vec![service_source, pod_source, endpoints_source]))
    }

    fn workers(config: &Config) -> usize {
        config.endpoint_workers
    }

    fn name(&self) -> &'static str {
        "endpoint-controller"
    }

    fn observe(&self, key: &str) -> Option<Observed> {
        let service: Option<Service> = self.services.get(key);
        let endpoints: Option<Endpoints> = self.endpoints.get(key);
        if service.is_none() && endpoints.is_none() {
            return None;
        }
        let namespace = key.split_once('/').map_or("", |(namespace, _)| namespace);
        let pods = if service.is_some() { self.pods.list_in(namespace) } else { Vec::new() };
        Some(Observed { service, pods, endpoints })
    }

    fn reconcile(&self, observed: &Observed, _now: Timestamp) -> Reconciled<Action> {
        let action = subsets::reconcile(observed.service.as_ref(), &observed.pods, observed.endpoints.as_ref());
        Reconciled { actions: action.into_iter().collect(), requeue_after: None }
    }

    // ANCHOR: apply
    async fn apply(&self, _observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let resource = resource_of::<Endpoints>()?;
        for action in actions {
            match action {
                Action::Create(endpoints) => {
                    let namespace = endpoints.metadata.namespace.clone();
                    let body = to_json(&endpoints, || "Endpoints".into())?;
                    let at = Instant::now();
                    let created = self.client.create(resource, namespace.as_deref(), &body).await?;
                    writes.push(&self.endpoints, Written::Created { key: controller::key_of(&created), at });
                }
                Action::Update(endpoints) => {
                    let meta = &endpoints.metadata;
                    let body = to_json(&endpoints, || "Endpoints".into())?;
                    let name = meta.name.as_deref().unwrap_or_default();
                    // Based on the resourceVersion we read: a stale cache gets 409 Conflict and a retry.
                    let replaced = self.client.replace(resource, meta.namespace.as_deref(), name, &body).await?;
                    let to = kubelab_api::object::resource_version(&replaced).to_string();
                    let from = meta.resource_version.clone().unwrap_or_default();
                    writes.push(&self.endpoints, Written::Updated { key: ownership::key(meta), from, to });
                }
                Action::Delete { namespace, name } => {
                    match self.client.delete(resource, Some(&namespace), &name, PropagationPolicy::Background).await {
                        Ok(_) => {}
                        Err(ClientError::Api(err)) if err.code == 404 => {}
                        Err(err) => return Err(err.into()),
                    }
                    writes.push(&self.endpoints, Written::Deleted { key: format!("{namespace}/{name}") });
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: apply
}
