//! The EndpointSlice controller's shell: informers in, [`super::slices::reconcile`] in the middle, writes out.

use super::slices::{self, Action, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::Config;
use crate::controller::{self, Controller, Error, Lister, Outcomes, Reconciled, Source, Writes, Written, to_json};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kubelab_api::client::{Client, ClientError, PropagationPolicy, resource_of};
use serde_json::Value;
use tokio::time::Instant;

/// The EndpointSlice controller: slices of at most `max_per_slice` endpoints per Service with a selector.
pub struct EndpointSliceController {
    client: Client,
    services: Lister,
    pods: Lister,
    slices: Lister,
    /// `--max-endpoints-per-slice` (Kubernetes: 100).
    max_per_slice: usize,
}

/// What one reconcile looks at: the Service, the pods of its namespace, and the slices this controller keeps for
/// it.
pub struct Observed {
    pub service: Service,
    pub pods: Vec<Pod>,
    pub slices: Vec<EndpointSlice>,
}

/// The key of the Service a slice belongs to, if this controller manages it.
fn service_of(slice: &Value) -> Vec<String> {
    let labels = slice.pointer("/metadata/labels");
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    match (label(MANAGED_BY_LABEL), label(SERVICE_NAME_LABEL)) {
        (Some(MANAGED_BY), Some(service)) => vec![format!("{}/{service}", kubelab_api::object::namespace(slice))],
        _ => Vec::new(),
    }
}

impl Controller for EndpointSliceController {
    type Observed = Observed;
    type Action = Action;

    /// Three informers: Services, pods (mapped to the Services selecting them), and the slices (mapped to their
    /// Service by label), so that a slice deleted or edited by hand is put right.
    fn new(client: &Client, config: &Config) -> Result<(Self, Vec<Source>), Error> {
        let (service_source, services, pod_source, pods) = super::service_and_pod_sources(client)?;
        let (slice_source, slices) = Source::new(client, resource_of::<EndpointSlice>()?, service_of);
        let max_per_slice = config.max_endpoints_per_slice;
        let controller = EndpointSliceController { client: client.clone(), services, pods, slices, max_per_slice };
        Ok((controller, vec![service_source, pod_source, slice_source]))
    }

    fn workers(config: &Config) -> usize {
        config.endpoint_slice_workers
    }

    fn name(&self) -> &'static str {
        "endpointslice-controller"
    }

    /// `None` once the Service is gone: its slices are owned by it, the garbage collector deletes them.
    fn observe(&self, key: &str) -> Option<Observed> {
        let service: Service = self.services.get(key)?;
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let pods = self.pods.list_in(&namespace);
        let slices = self
            .slices
            .list_in::<EndpointSlice>(&namespace)
            .into_iter()
            .filter(|slice| {
                let labels = slice.metadata.labels.as_ref();
                let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
                label(SERVICE_NAME_LABEL) == Some(name) && label(MANAGED_BY_LABEL) == Some(MANAGED_BY)
            })
            .collect();
        Some(Observed { service, pods, slices })
    }

    fn reconcile(&self, observed: &Observed, _now: Timestamp) -> Reconciled<Action> {
        let actions = slices::reconcile(&observed.service, &observed.pods, &observed.slices, self.max_per_slice);
        Reconciled { actions, requeue_after: None }
    }

    async fn apply(&self, observed: &Observed, actions: Vec<Action>, writes: &mut Writes) -> Result<(), Error> {
        let resource = resource_of::<EndpointSlice>()?;
        let namespace = observed.service.metadata.namespace.as_deref();
        let mut outcomes = Outcomes::default();
        for action in actions {
            let written: Result<Written, Error> = async {
                match action {
                    Action::Create(slice) => {
                        let body = to_json(&slice, || "EndpointSlice".into())?;
                        let at = Instant::now();
                        let created = self.client.create(resource, namespace, &body).await?;
                        Ok(Written::Created { key: controller::key_of(&created), at })
                    }
                    Action::Update(slice) => {
                        let meta = &slice.metadata;
                        let name = meta.name.as_deref().unwrap_or_default();
                        let body = to_json(&slice, || format!("EndpointSlice {name}"))?;
                        let replaced = self.client.replace(resource, namespace, name, &body).await?;
                        Ok(Written::Updated {
                            key: controller::ownership::key(meta),
                            from: meta.resource_version.clone().unwrap_or_default(),
                            to: kubelab_api::object::resource_version(&replaced).to_string(),
                        })
                    }
                    Action::Delete(name) => {
                        match self.client.delete(resource, namespace, &name, PropagationPolicy::Background).await {
                            Ok(_) => {}
                            Err(ClientError::Api(err)) if err.code == 404 => {}
                            Err(err) => return Err(err.into()),
                        }
                        Ok(Written::Deleted { key: format!("{}/{name}", namespace.unwrap_or_default()) })
                    }
                }
            }
            .await;
            writes.extend(&self.slices, outcomes.record(written));
        }
        outcomes.finish()
    }
}
