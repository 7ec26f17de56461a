//! Defaulting: the values Kubernetes fills in when a manifest leaves them out.
//!
//! A student writes a Deployment with three fields; `kubectl get deploy web -o yaml` shows thirty. The others
//! come from defaulting, which the apiserver applies once, when the object is written, so that every reader
//! (`kubectl describe`, the scheduler, the kubelet, the controllers) sees the same complete object and none of
//! them has to know that "no `restartPolicy`" means `Always`.
//!
//! Mirrors `pkg/apis/core/v1/defaults.go` and `pkg/apis/apps/v1/defaults.go`, plus the few values Kubernetes
//! sets in a kind's create strategy rather than in its defaulters (a new Pod's `Pending` phase and QoS class, a
//! new Namespace's `kubernetes` finalizer and `Active` phase, a Service's IP family). Defaults never overwrite
//! what the user wrote — except where Go cannot tell "unset" from zero (a probe's `periodSeconds: 0`, a Service
//! port's `targetPort: 0`), where we do what Kubernetes does and treat zero as unset.
//!
//! | kind       | defaults                                                                                    |
//! |------------|---------------------------------------------------------------------------------------------|
//! | Pod        | spec (below), `enableServiceLinks`, requests from limits, status `Pending` + `qosClass`     |
//! | Pod spec   | `restartPolicy`, `terminationGracePeriodSeconds`, `dnsPolicy`, `schedulerName`, `securityContext`; containers: `imagePullPolicy`, termination message, port protocol, `resources`, probes; volume modes |
//! | Deployment | `replicas`, `strategy` (RollingUpdate 25%/25%), `revisionHistoryLimit`, `progressDeadlineSeconds`, template spec |
//! | ReplicaSet | `replicas`, template spec                                                                   |
//! | Service    | `type`, `sessionAffinity`, port protocol and `targetPort`, traffic policies, IP family      |
//! | Namespace  | `spec.finalizers: [kubernetes]`, `status.phase: Active`                                     |
//! | Node       | `status.allocatable` from `status.capacity`                                                 |
//! | Endpoints  | port protocol                                                                               |
//! | EndpointSlice | port name (`""`) and protocol                                                            |
//!
//! What we leave out: defaults behind feature gates that are off by default, and quantity canonicalisation (`0.5`
//! stays `0.5` where Kubernetes would print `500m`). A Service's cluster IP and node ports are not defaults: the
//! apiserver's allocators hand them out (`kubelab_apiserver::allocator`).

mod pod;

pub use pod::qos_class;

use k8s_openapi::api::{
    apps::v1::{Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment},
    coordination::v1::Lease,
    core::v1::{
        ClientIPConfig, ConfigMap, Endpoints, Event, Namespace, NamespaceSpec, NamespaceStatus, Node, Pod, PodStatus,
        PodTemplateSpec, Service, SessionAffinityConfig,
    },
    discovery::v1::EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

// ANCHOR: defaults
/// Fills in the fields Kubernetes defaults.
pub trait Defaults {
    /// Sets every unset field that has a default; never overwrites what the user wrote.
    fn apply_defaults(&mut self) {}
}
// ANCHOR_END: defaults

impl Defaults for Pod {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        pod::pod_only(spec);
        pod::pod_spec(spec);
        // A new Pod starts `Pending`, with its QoS class fixed for life (Kubernetes sets both when the Pod is
        // created; on later writes the stored status is already there and is kept).
        let qos = pod::qos_class(spec);
        let status = self.status.get_or_insert_with(PodStatus::default);
        status.phase.get_or_insert_with(|| "Pending".to_string());
        status.qos_class.get_or_insert_with(|| qos.to_string());
    }
}

/// The Pod template of a workload gets the Pod spec defaults, but not the Pod-only ones.
fn template_defaults(template: &mut PodTemplateSpec) {
    pod::pod_spec(template.spec.get_or_insert_with(Default::default));
}

impl Defaults for Deployment {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
        if strategy.type_.as_deref().is_none_or(str::is_empty) {
            strategy.type_ = Some("RollingUpdate".into());
        }
        // Only a rolling update has surge and unavailability; `Recreate` kills everything first.
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let rolling = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
            rolling.max_unavailable.get_or_insert_with(|| IntOrString::String("25%".into()));
            rolling.max_surge.get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        template_defaults(&mut spec.template);
    }
}

impl Defaults for ReplicaSet {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        template_defaults(spec.template.get_or_insert_with(Default::default));
    }
}

impl Defaults for Service {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        if spec.session_affinity.as_deref().is_none_or(str::is_empty) {
            spec.session_affinity = Some("None".into());
        }
        match spec.session_affinity.as_deref() {
            // Kubernetes drops a configuration that the affinity `None` would ignore.
            Some("None") => spec.session_affinity_config = None,
            Some("ClientIP") => {
                let has_timeout = spec
                    .session_affinity_config
                    .as_ref()
                    .and_then(|c| c.client_ip.as_ref())
                    .is_some_and(|ip| ip.timeout_seconds.is_some());
                if !has_timeout {
                    // Three hours, Kubernetes' `DefaultClientIPServiceAffinitySeconds`.
                    spec.session_affinity_config = Some(SessionAffinityConfig {
                        client_ip: Some(ClientIPConfig { timeout_seconds: Some(10800) }),
                    });
                }
            }
            _ => {}
        }
        if spec.type_.as_deref().is_none_or(str::is_empty) {
            spec.type_ = Some("ClusterIP".into());
        }
        for port in spec.ports.iter_mut().flatten() {
            if port.protocol.as_deref().is_none_or(str::is_empty) {
                port.protocol = Some("TCP".into());
            }
            let unset = match &port.target_port {
                None => true,
                Some(IntOrString::Int(0)) => true,
                Some(IntOrString::String(s)) => s.is_empty(),
                Some(IntOrString::Int(_)) => false,
            };
            if unset {
                port.target_port = Some(IntOrString::Int(port.port));
            }
        }
        let service_type = spec.type_.clone().unwrap_or_default();
        let externally_accessible = matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
            || (service_type == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()));
        if externally_accessible && spec.external_traffic_policy.as_deref().is_none_or(str::is_empty) {
            spec.external_traffic_policy = Some("Cluster".into());
        }
        if service_type != "ExternalName" {
            // `clusterIP` and `clusterIPs[0]` say the same thing; a client may set either.
            match (spec.cluster_ip.as_deref().unwrap_or(""), spec.cluster_ips.as_deref().unwrap_or(&[])) {
                ("", [first, ..]) => spec.cluster_ip = Some(first.clone()),
                (ip, []) if !ip.is_empty() => spec.cluster_ips = Some(vec![ip.to_string()]),
                _ => {}
            }
        }
        if matches!(service_type.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
            spec.internal_traffic_policy.get_or_insert_with(|| "Cluster".into());
            // The apiserver's Service REST layer picks the IP family of a single-stack IPv4 cluster; a headless
            // Service without a selector is the exception: its addresses are whatever its Endpoints say, so it
            // asks for both families (`initIPFamilyFields` in `pkg/registry/core/service/storage/alloc.go`).
            let headless = spec.cluster_ip.as_deref() == Some("None");
            if headless && spec.selector.as_ref().is_none_or(|s| s.is_empty()) && spec.ip_family_policy.is_none() {
                spec.ip_family_policy = Some("RequireDualStack".into());
                spec.ip_families.get_or_insert_with(|| vec!["IPv4".into(), "IPv6".into()]);
            }
            spec.ip_family_policy.get_or_insert_with(|| "SingleStack".into());
            spec.ip_families.get_or_insert_with(|| vec!["IPv4".into()]);
        }
        if service_type == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
    }
}

impl Defaults for Namespace {
    fn apply_defaults(&mut self) {
        // Kubernetes adds the `kubernetes` finalizer in the Namespace's *create* strategy, not in its defaults,
        // because the namespace controller removes it during deletion and it must not come back. We tell a new
        // Namespace by its status: the stored object always has a phase.
        let is_new = self.status.as_ref().is_none_or(|s| s.phase.is_none());
        if is_new {
            let spec = self.spec.get_or_insert_with(NamespaceSpec::default);
            let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
            if !finalizers.iter().any(|f| f == "kubernetes") {
                finalizers.push("kubernetes".into());
            }
        }
        self.status.get_or_insert_with(NamespaceStatus::default).phase.get_or_insert_with(|| "Active".into());
    }
}

impl Defaults for Node {
    fn apply_defaults(&mut self) {
        // A node that does not report what it can give to Pods can give all it has.
        if let Some(status) = self.status.as_mut()
            && status.allocatable.is_none()
        {
            status.allocatable = status.capacity.clone();
        }
    }
}

impl Defaults for Endpoints {
    fn apply_defaults(&mut self) {
        for port in self.subsets.iter_mut().flatten().flat_map(|s| s.ports.iter_mut().flatten()) {
            if port.protocol.as_deref().is_none_or(str::is_empty) {
                port.protocol = Some("TCP".into());
            }
        }
    }
}

/// `SetDefaults_EndpointPort` of `discovery/v1`: a port without a name has the empty name (so that "no name" is
/// one value, and unique), and TCP.
impl Defaults for EndpointSlice {
    fn apply_defaults(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            port.name.get_or_insert_with(String::new);
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }
}

/// Kubernetes defaults nothing on a core/v1 Event: `count`, timestamps and `source` are the recorder's job.
impl Defaults for Event {}
impl Defaults for ConfigMap {}
impl Defaults for Lease {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// Reads a manifest, applies defaults and returns it as JSON, as the apiserver stores it.
    fn defaulted<K: DeserializeOwned + serde::Serialize + Defaults>(manifest: Value) -> Value {
        let mut object: K = serde_json::from_value(manifest).unwrap();
        object.apply_defaults();
        serde_json::to_value(object).unwrap()
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn a_minimal_pod_gets_the_spec_defaults_kubectl_shows() {
        let pod = defaulted::<Pod>(pod(json!([{"name": "web", "image": "nginx"}])));
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let container = &spec["containers"][0];
        assert_eq!(container["imagePullPolicy"], "Always");
        assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(container["terminationMessagePolicy"], "File");
        assert_eq!(container["resources"], json!({}));
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
    }

    #[test]
    fn the_pull_policy_depends_on_the_tag() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("nginx@sha256:ab", "IfNotPresent"),
        ] {
            let pod = defaulted::<Pod>(pod(json!([{"name": "web", "image": image}])));
            assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], policy, "{image}");
        }
    }

    #[test]
    fn what_the_user_wrote_is_never_overwritten() {
        let manifest = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "schedulerName": "mine",
            "initContainers": [{"name": "init", "image": "busybox", "imagePullPolicy": "Never"}],
            "containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent",
                            "ports": [{"containerPort": 53, "protocol": "UDP"}]}]}});
        let pod = defaulted::<Pod>(manifest);
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 5);
        assert_eq!(pod["spec"]["schedulerName"], "mine");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "UDP");
        assert_eq!(pod["spec"]["initContainers"][0]["imagePullPolicy"], "Never");
        assert_eq!(pod["spec"]["initContainers"][0]["terminationMessagePolicy"], "File");
    }

    #[test]
    fn ports_and_probes_get_their_defaults() {
        let pod = defaulted::<Pod>(pod(json!([{"name": "web", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}])));
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["ports"][0]["protocol"], "TCP");
        assert_eq!(
            container["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(container["readinessProbe"]["periodSeconds"], 5);
    }

    #[test]
    fn limits_alone_make_a_guaranteed_pod() {
        let pod = defaulted::<Pod>(pod(json!([{"name": "web", "image": "nginx",
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}])));
        assert_eq!(pod["spec"]["containers"][0]["resources"]["requests"], json!({"cpu": "500m", "memory": "128Mi"}));
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn requests_below_limits_make_a_burstable_pod() {
        let pod = defaulted::<Pod>(pod(json!([
            {"name": "a", "image": "nginx", "resources": {"requests": {"cpu": "0.5"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b", "image": "nginx"}])));
        assert_eq!(pod["status"]["qosClass"], "Burstable");
        let pod = defaulted::<Pod>(pod_with_requests_equal_to_limits_written_differently());
        assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    }

    fn pod_with_requests_equal_to_limits_written_differently() -> Value {
        pod(json!([{"name": "a", "image": "nginx",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "0.5", "memory": "1024Mi"}}}]))
    }

    #[test]
    fn an_existing_pod_status_is_kept() {
        let mut manifest = pod(json!([{"name": "web", "image": "nginx"}]));
        manifest["status"] = json!({"phase": "Running", "qosClass": "Burstable"});
        let pod = defaulted::<Pod>(manifest);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn a_deployment_gets_rolling_update_and_template_defaults() {
        let deploy = defaulted::<Deployment>(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}));
        let spec = &deploy["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let template = &spec["template"]["spec"];
        assert_eq!(template["restartPolicy"], "Always");
        assert_eq!(template["containers"][0]["imagePullPolicy"], "IfNotPresent");
        // Pod-only defaults wait for the Pod itself.
        assert!(template.get("enableServiceLinks").is_none());
    }

    #[test]
    fn a_recreate_deployment_gets_no_rolling_update_parameters() {
        let deploy = defaulted::<Deployment>(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"strategy": {"type": "Recreate"}, "selector": {}, "template": {}}}));
        assert_eq!(deploy["spec"]["strategy"], json!({"type": "Recreate"}));
        let deploy = defaulted::<Deployment>(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 0, "strategy": {"rollingUpdate": {"maxSurge": 1}},
            "selector": {}, "template": {}}}));
        assert_eq!(deploy["spec"]["replicas"], 0);
        assert_eq!(deploy["spec"]["strategy"]["rollingUpdate"], json!({"maxSurge": 1, "maxUnavailable": "25%"}));
    }

    #[test]
    fn a_replica_set_gets_replicas_and_template_defaults() {
        let rs = defaulted::<ReplicaSet>(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn a_service_port_targets_itself_by_default() {
        let svc = defaulted::<Service>(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}}));
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert!(spec.get("externalTrafficPolicy").is_none());
    }

    #[test]
    fn a_cluster_ip_fills_cluster_ips_and_headless_without_selector_asks_for_both_families() {
        let service = |spec| {
            defaulted::<Service>(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"}, "spec": spec}))
        };
        assert_eq!(service(json!({"clusterIP": "10.96.0.5"}))["spec"]["clusterIPs"], json!(["10.96.0.5"]));
        assert_eq!(service(json!({"clusterIPs": ["10.96.0.5"]}))["spec"]["clusterIP"], "10.96.0.5");
        let headless = service(json!({"clusterIP": "None"}));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
        let selecting = service(json!({"clusterIP": "None", "selector": {"app": "db"}}));
        assert_eq!(selecting["spec"]["ipFamilyPolicy"], "SingleStack");
    }

    #[test]
    fn a_node_port_service_gets_an_external_traffic_policy() {
        let svc = defaulted::<Service>(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}));
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(svc["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10800}}));
    }

    #[test]
    fn a_new_namespace_is_active_with_the_kubernetes_finalizer() {
        let ns = defaulted::<Namespace>(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}));
        assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
    }

    #[test]
    fn a_terminating_namespace_does_not_get_its_finalizer_back() {
        let ns = defaulted::<Namespace>(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"},
            "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}));
        assert_eq!(ns["spec"]["finalizers"], json!([]));
        assert_eq!(ns["status"]["phase"], "Terminating");
    }

    #[test]
    fn a_node_can_allocate_its_capacity_unless_it_says_otherwise() {
        let node = defaulted::<Node>(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"capacity": {"cpu": "4", "pods": "110"}}}));
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4", "pods": "110"}));
    }

    #[test]
    fn endpoint_ports_default_to_tcp() {
        let ep = defaulted::<Endpoints>(json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}));
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn events_are_left_as_written() {
        let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {}});
        assert_eq!(defaulted::<Event>(event.clone())["count"], Value::Null);
    }
}
