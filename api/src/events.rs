//! Events: the cluster's diary, as `kubectl describe` shows it.
//!
//! Every component records what it did and why as an `Event` object about the object concerned
//! (`involvedObject`): the scheduler's `Scheduled` and `FailedScheduling`, the kubelet's `Pulled`, `Started`,
//! `BackOff`, the controllers' `ScalingReplicaSet` and `SuccessfulCreate`. `kubectl describe` lists them by
//! `involvedObject`. Recording an event never fails the caller's work: a lost event is only a lost log line.
//!
//! What we leave out: client-go's event aggregation (repeated events are merged into one with a `count`; here
//! each is its own object) and the newer `events.k8s.io/v1` API.

use crate::client::Client;
use crate::{object, resources};
use serde_json::{Value, json};

/// `Normal` or `Warning`, as Kubernetes types events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Writes events on behalf of one component (`default-scheduler`, `kubelet`, `deployment-controller`...).
#[derive(Debug, Clone)]
pub struct Recorder {
    client: Client,
    /// `source.component` of every event.
    component: String,
    /// `source.host`: the node, for the kubelet.
    host: Option<String>,
}

impl Recorder {
    pub fn new(client: Client, component: impl Into<String>) -> Self {
        Recorder { client, component: component.into(), host: None }
    }

    /// The same recorder, stamping `source.host` (the kubelet's node name).
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Records one event about `about` (any object with kind, apiVersion and metadata). Failures are logged and
    /// otherwise ignored.
    pub async fn record(&self, about: &Value, kind: EventType, reason: &str, message: impl Into<String>) {
        let event = self.event(about, kind, reason, &message.into(), chrono::Utc::now());
        let Some(events) = resources::by_kind("v1", "Event") else { return };
        let namespace = match object::namespace(about) {
            "" => "default",
            ns => ns,
        };
        if let Err(err) = self.client.create(events, Some(namespace), &event).await {
            tracing::warn!(reason, error = %err, "could not record event");
        }
    }

    /// The Event object, built without I/O (tested below).
    fn event(
        &self,
        about: &Value,
        kind: EventType,
        reason: &str,
        message: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Value {
        let name = object::name(about);
        let namespace = match object::namespace(about) {
            "" => "default",
            ns => ns,
        };
        let stamp = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                // Kubernetes names events `<object>.<hex nanoseconds>`.
                "name": format!("{name}.{:x}", now.timestamp_nanos_opt().unwrap_or_default()),
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": about.get("apiVersion"),
                "kind": about.get("kind"),
                "name": name,
                "namespace": object::namespace(about),
                "uid": object::meta_str(about, "uid"),
                "resourceVersion": object::resource_version(about),
            },
            "reason": reason,
            "message": message,
            "type": match kind { EventType::Normal => "Normal", EventType::Warning => "Warning" },
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host.clone().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_the_object_it_is_about() {
        let recorder = Recorder::new(Client::new("http://127.0.0.1:1").unwrap(), "default-scheduler");
        let pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop", "uid": "u1"}});
        let event = recorder.event(
            &pod,
            EventType::Normal,
            "Scheduled",
            "Successfully assigned shop/web to node-1",
            chrono::Utc::now(),
        );
        assert_eq!(event["involvedObject"]["name"], "web");
        assert_eq!(event["involvedObject"]["uid"], "u1");
        assert_eq!(event["metadata"]["namespace"], "shop");
        assert_eq!(event["source"]["component"], "default-scheduler");
        assert!(event["metadata"]["name"].as_str().unwrap().starts_with("web."));
    }
}
