//! Tables of realistic objects, checked cell by cell against what `kubectl get` prints on a real cluster.

use super::*;
use chrono::TimeDelta;
use kubelab_api::resources::RESOURCES;

/// The moment every test looks at its objects.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap()
}

/// An RFC 3339 timestamp `seconds` before [`now`].
fn ago(seconds: i64) -> String {
    (now() - TimeDelta::seconds(seconds)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn resource(kind: &str) -> &'static Resource {
    RESOURCES.iter().find(|r| r.kind == kind).unwrap()
}

/// The cells of `object`'s row, as JSON.
fn cells(kind: &str, object: Value) -> Value {
    table(resource(kind), &[object], "7", now())["rows"][0]["cells"].clone()
}

/// A running container status.
fn running(name: &str, ready: bool, restarts: i64) -> Value {
    json!({"name": name, "ready": ready, "restartCount": restarts, "started": true,
           "state": {"running": {"startedAt": ago(600)}}})
}

fn pod(name: &str, spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "default", "resourceVersion": "12",
                        "creationTimestamp": ago(9000), "labels": {"app": "web"}},
           "spec": spec, "status": status})
}

#[test]
fn a_running_pod_with_restarts_says_when_the_last_one_was() {
    let mut log = running("log", true, 5);
    log["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}});
    let web = pod(
        "web-1",
        json!({"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}),
        json!({"phase": "Running", "podIPs": [{"ip": "10.244.1.5"}],
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [running("web", true, 0), log]}),
    );
    assert_eq!(
        cells("Pod", web),
        json!(["web-1", "2/2", "Running", "5 (5m ago)", "150m", "10.244.1.5", "node-1", "<none>", "<none>"])
    );
}

#[test]
fn a_crashing_container_explains_the_pod() {
    let crashing = json!({"name": "web", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(40)}}});
    let web = pod(
        "web-2",
        json!({"containers": [{"name": "web"}]}),
        json!({"phase": "Running", "containerStatuses": [crashing]}),
    );
    let row = cells("Pod", web);
    assert_eq!(row[1], "0/1");
    assert_eq!(row[2], "CrashLoopBackOff");
    assert_eq!(row[3], "3 (40s ago)");
    assert_eq!(row[5], "<none>", "a pod without an IP shows <none>");
}

#[test]
fn a_pod_being_deleted_is_terminating_unless_it_already_finished() {
    let mut web = pod(
        "web-3",
        json!({"containers": [{"name": "web"}]}),
        json!({"phase": "Running", "containerStatuses": [running("web", true, 0)]}),
    );
    web["metadata"]["deletionTimestamp"] = ago(2).into();
    assert_eq!(cells("Pod", web.clone())[2], "Terminating");

    web["status"]["phase"] = "Succeeded".into();
    web["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
    assert_eq!(cells("Pod", web)[2], "Completed");
}

#[test]
fn init_containers_show_progress_then_their_trouble() {
    let done =
        json!({"name": "migrate", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let waiting = json!({"name": "seed", "restartCount": 0, "state": {"running": {}}});
    let spec = json!({"initContainers": [{"name": "migrate"}, {"name": "seed"}], "containers": [{"name": "web"}]});
    let app = json!({"name": "web", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
    let status =
        json!({"phase": "Pending", "initContainerStatuses": [done.clone(), waiting], "containerStatuses": [app]});
    assert_eq!(cells("Pod", pod("db", spec.clone(), status.clone()))[2], "Init:1/2");

    let crashing = json!({"name": "seed", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
    let mut status = status;
    status["initContainerStatuses"] = json!([done, crashing]);
    let row = cells("Pod", pod("db", spec, status));
    assert_eq!(row[2], "Init:CrashLoopBackOff");
    assert_eq!(row[3], "4", "restarts of init containers count while initializing, without a time");
}

#[test]
fn a_sidecar_counts_as_a_container_of_the_pod() {
    let spec =
        json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "web"}]});
    let status = json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [running("proxy", true, 1)], "containerStatuses": [running("web", true, 0)]});
    let row = cells("Pod", pod("meshed", spec, status));
    assert_eq!(row[1], "2/2");
    assert_eq!(row[2], "Running");
    assert_eq!(row[3], "1");
}

#[test]
fn a_finished_pod_row_carries_a_completed_condition() {
    let done = pod(
        "job-1",
        json!({"containers": [{"name": "job"}]}),
        json!({"phase": "Succeeded",
        "containerStatuses": [{"name": "job", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    let table = table(resource("Pod"), &[done], "7", now());
    assert_eq!(table["rows"][0]["cells"][2], "Completed");
    assert_eq!(table["rows"][0]["conditions"][0]["reason"], "Succeeded");
}

#[test]
fn a_cordoned_node_shows_scheduling_disabled_and_its_roles() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "creationTimestamp": ago(3 * 86400 + 3600),
                     "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "etcd"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "172.18.0.2"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://1.7.24"}}});
    assert_eq!(
        cells("Node", node),
        json!([
            "node-1",
            "Ready,SchedulingDisabled",
            "control-plane,etcd",
            "3d1h",
            "v1.32.4",
            "172.18.0.2",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.8.0",
            "containerd://1.7.24"
        ])
    );
}

#[test]
fn a_node_that_never_reported_is_unknown_with_no_roles() {
    let node = json!({"metadata": {"name": "node-2", "creationTimestamp": ago(30)}});
    assert_eq!(
        cells("Node", node),
        json!(["node-2", "Unknown", "<none>", "30s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"])
    );
}

#[test]
fn a_node_port_service_shows_both_ports() {
    let service = json!({"metadata": {"name": "web", "creationTimestamp": ago(300)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"], "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
    assert_eq!(
        cells("Service", service),
        json!(["web", "NodePort", "10.96.0.12", "<none>", "80:30080/TCP,53/UDP", "5m", "app=web"])
    );
}

#[test]
fn a_load_balancer_without_an_address_is_pending_and_a_headless_service_has_no_ip() {
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": [{"port": 443}]}});
    let row = cells("Service", lb);
    assert_eq!(row[3], "<pending>");
    assert_eq!(row[4], "443/TCP", "the protocol defaults to TCP");
    assert_eq!(row[5], "<unknown>", "no creation timestamp");

    let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None"}});
    assert_eq!(
        cells("Service", headless),
        json!(["db", "ClusterIP", "None", "<none>", "<none>", "<unknown>", "<none>"])
    );
}

#[test]
fn endpoints_show_three_addresses_and_count_the_rest() {
    let addresses: Vec<Value> = (1..=5).map(|i| json!({"ip": format!("10.244.0.{i}")})).collect();
    let endpoints = json!({"metadata": {"name": "web", "creationTimestamp": ago(60)},
        "subsets": [{"addresses": addresses, "ports": [{"port": 8080, "protocol": "TCP"}]}]});
    assert_eq!(
        cells("Endpoints", endpoints),
        json!(["web", "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 2 more...", "60s"])
    );
    assert_eq!(cells("Endpoints", json!({"metadata": {"name": "idle"}}))[1], "<none>");
}

#[test]
fn endpoint_slices_show_three_ports_and_three_addresses_ready_or_not() {
    let endpoints: Vec<Value> =
        (1..=4).map(|i| json!({"addresses": [format!("10.244.0.{i}")], "conditions": {"ready": i % 2 == 0}})).collect();
    let slice = json!({"metadata": {"name": "web-x7k2p", "creationTimestamp": ago(60)}, "addressType": "IPv4",
        "endpoints": endpoints, "ports": [{"name": "http", "port": 8080}, {"name": "metrics"}]});
    assert_eq!(
        cells("EndpointSlice", slice),
        json!(["web-x7k2p", "IPv4", "8080,metrics", "10.244.0.1,10.244.0.2,10.244.0.3 + 1 more...", "60s"])
    );
    let placeholder = json!({"metadata": {"name": "idle-abcde"}, "addressType": "IPv4", "endpoints": []});
    assert_eq!(cells("EndpointSlice", placeholder), json!(["idle-abcde", "IPv4", "<unset>", "<unset>", "<unknown>"]));
}

#[test]
fn a_deployment_mid_rollout_shows_ready_of_desired() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(300)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
        "status": {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2}});
    assert_eq!(
        cells("Deployment", deployment),
        json!(["web", "2/3", 1, 2, "5m", "web,log", "nginx:1.27,busybox", "app=web"])
    );
}

#[test]
fn a_new_replica_set_has_zero_current_and_ready() {
    let replica_set = json!({"metadata": {"name": "web-7d4b9c", "creationTimestamp": ago(5)},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}},
                 "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    assert_eq!(
        cells("ReplicaSet", replica_set),
        json!(["web-7d4b9c", 2, 0, 0, "5s", "web", "nginx:1.27", "app=web,pod-template-hash=7d4b9c"])
    );
}

#[test]
fn an_event_names_its_object_and_its_source() {
    let event = json!({"metadata": {"name": "web-1.17f2a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
        "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(600), "lastTimestamp": ago(120), "count": 7});
    assert_eq!(
        cells("Event", event),
        json!([
            "2m",
            "Warning",
            "BackOff",
            "pod/web-1",
            "spec.containers{web}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "10m",
            7,
            "web-1.17f2a"
        ])
    );
}

#[test]
fn a_new_style_event_reads_event_time_and_reporting_component() {
    let event = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node", "name": "node-1"},
        "type": "Normal", "reason": "RegisteredNode", "eventTime": "2025-03-01T11:59:29.500000Z",
        "reportingComponent": "node-controller"});
    let row = cells("Event", event);
    assert_eq!(row[0], "30s");
    assert_eq!(row[5], "node-controller");
    assert_eq!(row[8], 1, "a singleton event counts once");
}

#[test]
fn simple_kinds_print_their_one_field() {
    let namespace =
        json!({"metadata": {"name": "dev", "creationTimestamp": ago(86400)}, "status": {"phase": "Terminating"}});
    assert_eq!(cells("Namespace", namespace), json!(["dev", "Terminating", "24h"]));
    let config_map = json!({"metadata": {"name": "settings", "creationTimestamp": ago(10)},
        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(cells("ConfigMap", config_map), json!(["settings", 3, "10s"]));
    let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(10)}, "spec": {}});
    assert_eq!(cells("Lease", lease), json!(["kube-scheduler", "", "10s"]));
}

#[test]
fn every_kind_has_one_cell_per_column() {
    for resource in RESOURCES {
        let object = json!({"metadata": {"name": "x"}});
        let table = table(resource, &[object], "1", now());
        let columns = table["columnDefinitions"].as_array().unwrap().len();
        assert_eq!(table["rows"][0]["cells"].as_array().unwrap().len(), columns, "{}", resource.kind);
    }
}

#[test]
fn rows_carry_the_metadata_kubectl_needs_for_namespaces_and_labels() {
    let web = pod("web-1", json!({"containers": []}), json!({}));
    let table = table(resource("Pod"), &[web], "42", now());
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(
        table["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name",
        "description": NAME.description, "priority": 0})
    );
    assert_eq!(table["columnDefinitions"][5]["priority"], 1, "IP is a wide column");
    let object = &table["rows"][0]["object"];
    assert_eq!(object["kind"], "PartialObjectMetadata");
    assert_eq!(object["metadata"]["namespace"], "default");
    assert_eq!(object["metadata"]["labels"], json!({"app": "web"}));
    assert!(object.get("spec").is_none());
}

#[test]
fn a_watch_event_is_a_one_row_table_with_headers_only_the_first_time() {
    let web = pod("web-1", json!({"containers": []}), json!({}));
    let first = watch_row_table(resource("Pod"), &web, now(), TableOptions::default());
    assert_eq!(first["metadata"]["resourceVersion"], "12");
    assert_eq!(first["rows"].as_array().unwrap().len(), 1);
    assert!(first["columnDefinitions"].is_array());

    let next = watch_row_table(resource("Pod"), &web, now(), TableOptions { no_headers: true, ..Default::default() });
    assert!(next["columnDefinitions"].is_null());
}

#[test]
fn sort_by_gets_whole_objects_with_their_type() {
    let mut web = pod("web-1", json!({"containers": []}), json!({}));
    web.as_object_mut().unwrap().remove("kind");
    let options = TableOptions { include_object: IncludeObject::from_query("Object").unwrap(), ..Default::default() };
    let table = table_with(resource("Pod"), &[web], "1", now(), options);
    assert_eq!(table["rows"][0]["object"]["kind"], "Pod");
    assert!(table["rows"][0]["object"]["spec"].is_object());
    assert_eq!(IncludeObject::from_query("Everything"), None);
}

#[test]
fn a_kind_without_a_printer_gets_name_and_created_at() {
    let widgets = Resource { group: "example.com", kind: "Widget", ..*resource("ConfigMap") };
    let object = json!({"metadata": {"name": "w", "creationTimestamp": "2025-03-01T10:00:00Z"}});
    let table = table(&widgets, &[object], "1", now());
    assert_eq!(table["columnDefinitions"][1]["name"], "Created At");
    assert_eq!(table["rows"][0]["cells"], json!(["w", "2025-03-01T10:00:00Z"]));
}
