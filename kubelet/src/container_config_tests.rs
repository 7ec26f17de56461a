use super::*;
use crate::fixtures::pod;
use serde_json::json;

fn config_of(containers: serde_json::Value) -> Result<ContainerConfig, KubeletError> {
    let mut pod = pod(containers, "Always");
    pod.spec.as_mut().unwrap().volumes = serde_json::from_value(json!([
        {"name": "scratch", "emptyDir": {}},
        {"name": "logs", "hostPath": {"path": "/var/log"}},
        {"name": "secret", "secret": {"secretName": "s"}}
    ]))
    .unwrap();
    let container = pod.spec.as_ref().unwrap().containers[0].clone();
    let place = Placement {
        node: "node-1",
        sandbox_id: "sandbox",
        pod_ip: Some("10.244.1.5".parse().unwrap()),
        host_ip: Some("127.0.1.1".parse().unwrap()),
        pod_dir: Path::new("/data/pods/uid-1"),
    };
    container_config(&pod, &container, 2, &place)
}

#[test]
fn command_replaces_the_entrypoint_and_drops_the_images_cmd() {
    let config = config_of(json!([{"name": "c", "image": "i", "command": ["sleep"]}])).unwrap();
    assert_eq!((config.entrypoint, config.cmd), (Some(vec!["sleep".to_string()]), Some(vec![])));
}

#[test]
fn args_alone_replace_only_the_cmd() {
    let config = config_of(json!([{"name": "c", "image": "i", "args": ["-c", "echo hi"]}])).unwrap();
    assert_eq!((config.entrypoint, config.cmd), (None, Some(vec!["-c".to_string(), "echo hi".to_string()])));
    let neither = config_of(json!([{"name": "c", "image": "i"}])).unwrap();
    assert_eq!((neither.entrypoint, neither.cmd), (None, None));
}

#[test]
fn the_downward_api_and_variable_references_fill_the_environment() {
    let config = config_of(json!([{"name": "c", "image": "i",
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "hello from $(POD) at $(IP)"}
        ],
        "command": ["echo", "$(GREETING)", "$(UNDEFINED)", "$$(POD)"]}]))
    .unwrap();
    let env: BTreeMap<String, String> = config.env.into_iter().collect();
    assert_eq!(env["POD"], "web");
    assert_eq!(env["NS"], "default");
    assert_eq!(env["GREETING"], "hello from web at 10.244.1.5");
    assert_eq!(config.entrypoint.unwrap(), vec!["echo", "hello from web at 10.244.1.5", "$(UNDEFINED)", "$(POD)"]);
}

#[test]
fn limits_become_docker_cpu_and_memory_limits() {
    let config = config_of(json!([{"name": "c", "image": "i",
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]))
    .unwrap();
    assert_eq!(config.nano_cpus, Some(500_000_000));
    assert_eq!(config.memory_bytes, Some(134_217_728));
}

#[test]
fn quantities_are_read_with_kubernetes_suffixes() {
    assert_eq!(quantity("2"), Some(2.0));
    assert_eq!(quantity("1.5"), Some(1.5));
    assert_eq!(quantity("250m"), Some(0.25));
    assert_eq!(quantity("1Gi"), Some(1073741824.0));
    assert_eq!(quantity("64M"), Some(64e6));
    assert_eq!(quantity("1e3"), Some(1000.0));
    assert_eq!(quantity("lots"), None);
}

#[test]
fn empty_dir_and_host_path_volumes_are_bind_mounts() {
    let config = config_of(json!([{"name": "c", "image": "i", "volumeMounts": [
        {"name": "scratch", "mountPath": "/cache"},
        {"name": "logs", "mountPath": "/logs", "readOnly": true, "subPath": "app"}
    ]}]))
    .unwrap();
    assert_eq!(
        config.mounts,
        vec![
            Mount {
                host_path: "/data/pods/uid-1/volumes/kubernetes.io~empty-dir/scratch".into(),
                container_path: "/cache".into(),
                read_only: false
            },
            Mount { host_path: "/var/log/app".into(), container_path: "/logs".into(), read_only: true },
        ]
    );
}

#[test]
fn an_unsupported_volume_is_a_clear_configuration_error() {
    let err = config_of(json!([{"name": "c", "image": "i", "volumeMounts": [{"name": "secret", "mountPath": "/s"}]}]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "container \"c\": volume mount \"secret\": only emptyDir and hostPath volumes are supported by kubelab"
    );
}

#[test]
fn a_sub_path_cannot_escape_its_volume() {
    let err = config_of(json!([{"name": "c", "image": "i",
        "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "../../etc"}]}]))
    .unwrap_err();
    assert!(err.to_string().contains("without `..`"), "{err}");
}

#[test]
fn the_container_is_named_and_labelled_for_its_pod_and_attempt() {
    let config = config_of(json!([{"name": "c", "image": "i"}])).unwrap();
    assert_eq!(config.name, "k8s_c_web_default_uid-1_2");
    assert_eq!(config.labels[labels::RESTART_COUNT], "2");
    assert_eq!(config.labels[labels::SANDBOX_ID], "sandbox");
}

#[test]
fn init_containers_env_from_and_startup_probes_are_refused_by_their_paths() {
    let cases = [
        (json!({"envFrom": [{"configMapRef": {"name": "settings"}}]}), vec!["spec.containers[0].envFrom"]),
        (json!({"startupProbe": {"exec": {"command": ["true"]}}}), vec!["spec.containers[0].startupProbe"]),
        (json!({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}), vec!["spec.containers[0].lifecycle"]),
        (json!({"securityContext": {"runAsUser": 1000}}), vec!["spec.containers[0].securityContext"]),
        (json!({"securityContext": {}}), vec![]),
        (json!({}), vec![]),
    ];
    for (extra, expected) in cases {
        let mut container = json!({"name": "c", "image": "i"});
        container.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let pod = pod(json!([container]), "Always");
        let spec = &pod.spec.as_ref().unwrap().containers[0];
        assert_eq!(unsupported_fields(&pod, spec), expected);
    }

    let mut pod = pod(
        json!([{"name": "a", "image": "i"}, {"name": "b", "image": "i", "envFrom": [{"secretRef": {"name": "s"}}]}]),
        "Always",
    );
    pod.spec.as_mut().unwrap().init_containers =
        serde_json::from_value(json!([{"name": "migrate", "image": "i"}])).unwrap();
    let second = &pod.spec.as_ref().unwrap().containers[1];
    assert_eq!(unsupported_fields(&pod, second), vec!["spec.initContainers", "spec.containers[1].envFrom"]);
}

#[test]
fn a_container_with_an_unsupported_field_is_a_config_error_naming_it() {
    let err =
        config_of(json!([{"name": "c", "image": "i", "startupProbe": {"exec": {"command": ["true"]}}}])).unwrap_err();
    assert!(matches!(err, KubeletError::ContainerConfig(_)));
    assert_eq!(
        err.to_string(),
        "container \"c\": spec.containers[0].startupProbe is not supported by kubelab; the container is not \
         started rather than run without it"
    );
}

#[test]
fn the_hosts_namespaces_and_a_pod_security_context_are_refused_but_an_empty_one_is_not() {
    let mut pod = pod(json!([{"name": "c", "image": "i"}]), "Always");
    let spec = pod.spec.as_mut().unwrap();
    spec.security_context = Some(Default::default());
    let container = spec.containers[0].clone();
    assert_eq!(unsupported_fields(&pod, &container), Vec::<String>::new(), "the apiserver defaults it to {{}}");
    let spec = pod.spec.as_mut().unwrap();
    spec.host_network = Some(true);
    spec.host_pid = Some(false);
    spec.security_context = serde_json::from_value(json!({"runAsNonRoot": true})).unwrap();
    assert_eq!(unsupported_fields(&pod, &container), vec!["spec.hostNetwork", "spec.securityContext"]);
    assert!(
        unsupported_message("c", &unsupported_fields(&pod, &container))
            .ends_with("are not supported by kubelab; the container is not started rather than run without them")
    );
}
