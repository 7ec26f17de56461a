//! Reading the protobuf bodies `kubectl create namespace|deployment|configmap|service` send.
//!
//! Most of the Kubernetes API speaks JSON, but Kubernetes' own Go clients prefer protobuf for the built-in
//! kinds, and since 1.32 a few `kubectl create <kind>` generators send `application/vnd.kubernetes.protobuf`.
//! kubectl does not retry in JSON after a 415, so an apiserver that wants those commands to work must read them.
//!
//! The envelope, from `apimachinery/pkg/runtime/serializer/protobuf/protobuf.go`:
//!
//! ```text
//! 6b 38 73 00                   "k8s\0": magic number; the fourth byte is the encoding style, only 0 exists
//! <runtime.Unknown message>     typeMeta {apiVersion, kind}, raw, contentEncoding, contentType
//!         raw = <the object>    e.g. a k8s.io.api.core.v1.Namespace message
//! ```
//!
//! We decode the envelope and the object with the prost messages of the `k8s-pb` crate, convert the fields
//! those kubectl commands fill in to the `k8s-openapi` types, and serialize those to JSON. Going through
//! `k8s-openapi` keeps one source of truth for the JSON field names: the rest of the apiserver never learns
//! that the request was protobuf.
//!
//! Two facts about the Go encoder shape the conversion. Go writes every non-pointer field, so an unset string
//! arrives as `""`, an unset number as `0` and an unset struct as an empty message; we read those as absent,
//! as the JSON encoder's `omitempty` would. Pointer fields (`replicas`, `immutable`) arrive only when set.
//!
//! What we leave out:
//! - Kinds other than Namespace, ConfigMap, Deployment and Service: they get a 415 asking for JSON.
//! - Fields kubectl's generators never set (probes, volumes, affinity, rollingUpdate...): they are dropped.
//!   A real apiserver decodes every field, because Go clients send protobuf for everything.
//! - Encoding responses as protobuf: the apiserver always answers JSON, which every client accepts.
//! - `contentEncoding` (never used by Kubernetes) and the `raw` bodies in other content types.

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_pb::api::apps::v1 as pb_apps;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use kubelab_api::ApiError;
use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;

/// The media type of Kubernetes' protobuf encoding.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic number in front of every protobuf body: `k8s` and encoding style 0 (a `runtime.Unknown`).
const MAGIC: &[u8; 4] = b"k8s\0";

// ANCHOR: decode
/// Decodes an `application/vnd.kubernetes.protobuf` request body into the JSON object it stands for.
///
/// A body that is not such a message is a 400; a kind we cannot convert is a 415 that asks for JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let Some(envelope) = body.strip_prefix(MAGIC) else {
        return Err(ApiError::bad_request(
            "the body is not a Kubernetes protobuf message: it does not start with the magic number \"k8s\\0\"",
        ));
    };
    let unknown = Unknown::decode(envelope).map_err(|err| {
        ApiError::bad_request(format!("the body is not a Kubernetes protobuf message (runtime.Unknown): {err}"))
    })?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() || kind.is_empty() {
        return Err(ApiError::bad_request("the protobuf body does not say its apiVersion and kind"));
    }
    if unknown.content_encoding.is_some_and(|encoding| !encoding.is_empty()) {
        return Err(unsupported(&api_version, &kind, "it has a contentEncoding"));
    }
    let raw = unknown.raw.unwrap_or_default();
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => to_json(namespace(parse(&raw, &kind)?)),
        ("v1", "ConfigMap") => to_json(config_map(parse(&raw, &kind)?)),
        ("apps/v1", "Deployment") => to_json(deployment(parse(&raw, &kind)?)),
        ("v1", "Service") => to_json(service(parse(&raw, &kind)?)),
        _ => Err(unsupported(
            &api_version,
            &kind,
            "kubelab decodes protobuf only for v1 Namespace, v1 ConfigMap, apps/v1 Deployment and v1 Service",
        )),
    }
}
// ANCHOR_END: decode

/// Decodes the object inside the envelope.
fn parse<M: Message + Default>(raw: &[u8], kind: &str) -> Result<M, ApiError> {
    M::decode(raw).map_err(|err| ApiError::bad_request(format!("the protobuf body is not a valid {kind}: {err}")))
}

/// Serializes a `k8s-openapi` object; its `Serialize` adds `apiVersion` and `kind`.
fn to_json(object: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(object).map_err(|err| ApiError::internal(format!("cannot serialize a decoded object: {err}")))
}

/// 415, saying which kind and what to send instead.
fn unsupported(api_version: &str, kind: &str, why: &str) -> ApiError {
    let mut err = ApiError::unsupported_media_type(CONTENT_TYPE);
    err.message = format!(
        "the body of the request was in an unknown format: {CONTENT_TYPE} for {api_version} {kind} cannot be \
         decoded ({why}); send application/json instead"
    );
    err
}

// ANCHOR: convert
fn namespace(pb: pb_core::Namespace) -> core::Namespace {
    core::Namespace {
        metadata: object_meta(pb.metadata),
        spec: pb.spec.map(|spec| core::NamespaceSpec { finalizers: list(spec.finalizers) }),
        status: None,
    }
}

fn config_map(pb: pb_core::ConfigMap) -> core::ConfigMap {
    core::ConfigMap {
        metadata: object_meta(pb.metadata),
        data: map(pb.data),
        binary_data: map(pb.binary_data.into_iter().map(|(key, bytes)| (key, ByteString(bytes))).collect()),
        immutable: pb.immutable,
    }
}

fn deployment(pb: pb_apps::Deployment) -> apps::Deployment {
    apps::Deployment {
        metadata: object_meta(pb.metadata),
        spec: pb.spec.map(|spec| apps::DeploymentSpec {
            replicas: spec.replicas,
            selector: label_selector(spec.selector.unwrap_or_default()),
            template: pod_template(spec.template.unwrap_or_default()),
            strategy: spec
                .strategy
                .map(|strategy| apps::DeploymentStrategy { type_: text(strategy.r#type), rolling_update: None }),
            min_ready_seconds: spec.min_ready_seconds.filter(|&seconds| seconds != 0),
            revision_history_limit: spec.revision_history_limit,
            paused: spec.paused.filter(|&paused| paused),
            progress_deadline_seconds: spec.progress_deadline_seconds,
        }),
        status: None,
    }
}

/// What `kubectl create service clusterip|nodeport|loadbalancer|externalname` fills in.
fn service(pb: pb_core::Service) -> core::Service {
    core::Service {
        metadata: object_meta(pb.metadata),
        spec: pb.spec.map(|spec| core::ServiceSpec {
            ports: list(
                spec.ports
                    .into_iter()
                    .map(|port| core::ServicePort {
                        name: text(port.name),
                        protocol: text(port.protocol),
                        port: port.port.unwrap_or_default(),
                        target_port: port.target_port.and_then(|target| match (target.r#type, target.str_val) {
                            (Some(1), Some(name)) => text(Some(name)).map(IntOrString::String),
                            _ => target.int_val.filter(|n| *n != 0).map(IntOrString::Int),
                        }),
                        node_port: port.node_port.filter(|n| *n != 0),
                        ..Default::default()
                    })
                    .collect(),
            ),
            selector: map(spec.selector),
            cluster_ip: text(spec.cluster_ip),
            type_: text(spec.r#type),
            external_name: text(spec.external_name),
            ..Default::default()
        }),
        status: None,
    }
}

fn object_meta(pb: Option<pb_meta::ObjectMeta>) -> meta::ObjectMeta {
    let pb = pb.unwrap_or_default();
    meta::ObjectMeta {
        name: text(pb.name),
        generate_name: text(pb.generate_name),
        namespace: text(pb.namespace),
        labels: map(pb.labels),
        annotations: map(pb.annotations),
        ..Default::default()
    }
}

fn label_selector(pb: pb_meta::LabelSelector) -> meta::LabelSelector {
    meta::LabelSelector {
        match_labels: map(pb.match_labels),
        match_expressions: list(
            pb.match_expressions
                .into_iter()
                .map(|requirement| meta::LabelSelectorRequirement {
                    key: requirement.key.unwrap_or_default(),
                    operator: requirement.operator.unwrap_or_default(),
                    values: list(requirement.values),
                })
                .collect(),
        ),
    }
}

fn pod_template(pb: pb_core::PodTemplateSpec) -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: pb.metadata.map(|metadata| object_meta(Some(metadata))),
        spec: pb.spec.map(|spec| core::PodSpec {
            containers: spec.containers.into_iter().map(container).collect(),
            init_containers: list(spec.init_containers.into_iter().map(container).collect()),
            ..Default::default()
        }),
    }
}

fn container(pb: pb_core::Container) -> core::Container {
    core::Container {
        name: pb.name.unwrap_or_default(),
        image: text(pb.image),
        command: list(pb.command),
        args: list(pb.args),
        working_dir: text(pb.working_dir),
        ports: list(
            pb.ports
                .into_iter()
                .map(|port| core::ContainerPort {
                    container_port: port.container_port.unwrap_or_default(),
                    name: text(port.name),
                    protocol: text(port.protocol),
                    ..Default::default()
                })
                .collect(),
        ),
        env: list(
            pb.env
                .into_iter()
                .map(|var| core::EnvVar {
                    name: var.name.unwrap_or_default(),
                    value: text(var.value),
                    value_from: None,
                })
                .collect(),
        ),
        resources: pb.resources.map(|resources| core::ResourceRequirements {
            requests: quantities(resources.requests),
            limits: quantities(resources.limits),
            claims: None,
        }),
        image_pull_policy: text(pb.image_pull_policy),
        ..Default::default()
    }
}
// ANCHOR_END: convert

/// Resource quantities travel as their string form (`"500m"`, `"128Mi"`) in both encodings.
fn quantities(
    pb: BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>,
) -> Option<BTreeMap<String, Quantity>> {
    map(pb.into_iter().map(|(name, quantity)| (name, Quantity(quantity.string.unwrap_or_default()))).collect())
}

/// An empty string is how Go sends an unset string field.
fn text(value: Option<String>) -> Option<String> {
    value.filter(|value| !value.is_empty())
}

/// An empty repeated field is an unset list.
fn list<T>(items: Vec<T>) -> Option<Vec<T>> {
    if items.is_empty() { None } else { Some(items) }
}

/// An empty map field is an unset map.
fn map<V>(entries: BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    if entries.is_empty() { None } else { Some(entries) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;
    use serde_json::json;

    /// Wraps an object the way kubectl's protobuf serializer does: magic number, then a `runtime.Unknown`.
    fn envelope(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
            raw: Some(object.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        [MAGIC.as_slice(), &unknown.encode_to_vec()].concat()
    }

    /// Metadata as Go encodes it: every string written, the unset ones empty.
    fn metadata(name: &str, labels: &[(&str, &str)]) -> pb_meta::ObjectMeta {
        pb_meta::ObjectMeta {
            name: Some(name.into()),
            generate_name: Some(String::new()),
            namespace: Some(String::new()),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn kubectl_create_namespace_decodes_to_a_namespace_object() {
        let namespace = pb_core::Namespace {
            metadata: Some(metadata("team-a", &[])),
            spec: Some(Default::default()),
            status: Some(Default::default()),
        };
        let json = decode(&envelope("v1", "Namespace", &namespace)).unwrap();
        assert_eq!(json, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}}));
    }

    #[test]
    fn kubectl_create_configmap_decodes_data_binary_data_and_immutable() {
        let config_map = pb_core::ConfigMap {
            metadata: Some(pb_meta::ObjectMeta { namespace: Some("dev".into()), ..metadata("settings", &[]) }),
            immutable: Some(true),
            data: [("mode".to_string(), "fast".to_string())].into(),
            binary_data: [("blob".to_string(), vec![0, 1, 2])].into(),
        };
        let json = decode(&envelope("v1", "ConfigMap", &config_map)).unwrap();
        assert_eq!(
            json,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "dev"},
                "data": {"mode": "fast"},
                "binaryData": {"blob": "AAEC"},
                "immutable": true
            })
        );
    }

    #[test]
    fn kubectl_create_deployment_decodes_to_the_json_kubectl_would_have_sent() {
        let container = pb_core::Container {
            name: Some("nginx".into()),
            image: Some("nginx:1.27".into()),
            args: vec!["--verbose".into()],
            working_dir: Some(String::new()),
            ports: vec![pb_core::ContainerPort {
                container_port: Some(80),
                protocol: Some("TCP".into()),
                host_port: Some(0),
                ..Default::default()
            }],
            env: vec![pb_core::EnvVar { name: Some("MODE".into()), value: Some("prod".into()), value_from: None }],
            resources: Some(pb_core::ResourceRequirements {
                requests: [(
                    "cpu".to_string(),
                    k8s_pb::apimachinery::pkg::api::resource::Quantity { string: Some("250m".into()) },
                )]
                .into(),
                ..Default::default()
            }),
            image_pull_policy: Some(String::new()),
            ..Default::default()
        };
        let deployment = pb_apps::Deployment {
            metadata: Some(metadata("web", &[("app", "web")])),
            spec: Some(pb_apps::DeploymentSpec {
                replicas: Some(3),
                selector: Some(pb_meta::LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())].into(),
                    match_expressions: vec![pb_meta::LabelSelectorRequirement {
                        key: Some("tier".into()),
                        operator: Some("In".into()),
                        values: vec!["front".into()],
                    }],
                }),
                template: Some(pb_core::PodTemplateSpec {
                    metadata: Some(metadata("", &[("app", "web")])),
                    spec: Some(pb_core::PodSpec { containers: vec![container], ..Default::default() }),
                }),
                strategy: Some(Default::default()),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let json = decode(&envelope("apps/v1", "Deployment", &deployment)).unwrap();
        assert_eq!(
            json,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 3,
                    "selector": {
                        "matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
                    },
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "args": ["--verbose"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {"requests": {"cpu": "250m"}}
                        }]}
                    },
                    "strategy": {}
                }
            })
        );
    }

    #[test]
    fn kubectl_create_service_nodeport_decodes_ports_target_ports_and_node_ports() {
        use k8s_pb::apimachinery::pkg::util::intstr::IntOrString as PbIntOrString;
        let port = |name: &str, port, target: PbIntOrString, node_port| pb_core::ServicePort {
            name: Some(name.into()),
            protocol: Some("TCP".into()),
            port: Some(port),
            target_port: Some(target),
            node_port: Some(node_port),
            ..Default::default()
        };
        let number = |n| PbIntOrString { r#type: Some(0), int_val: Some(n), str_val: Some(String::new()) };
        let name = |s: &str| PbIntOrString { r#type: Some(1), int_val: Some(0), str_val: Some(s.into()) };
        let service = pb_core::Service {
            metadata: Some(metadata("web", &[("app", "web")])),
            spec: Some(pb_core::ServiceSpec {
                ports: vec![port("80-8080", 80, number(8080), 30080), port("http", 81, name("http"), 0)],
                selector: [("app".to_string(), "web".to_string())].into(),
                cluster_ip: Some(String::new()),
                r#type: Some("NodePort".into()),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let json = decode(&envelope("v1", "Service", &service)).unwrap();
        assert_eq!(
            json,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "type": "NodePort", "selector": {"app": "web"},
                    "ports": [
                        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                        {"name": "http", "protocol": "TCP", "port": 81, "targetPort": "http"}
                    ]
                }
            })
        );
    }

    #[test]
    fn other_kinds_get_a_415_that_names_the_kind_and_asks_for_json() {
        let secret = pb_core::Secret { metadata: Some(metadata("s", &[])), ..Default::default() };
        let err = decode(&envelope("v1", "Secret", &secret)).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (415, "UnsupportedMediaType"));
        assert!(err.message.contains("v1 Secret"), "{}", err.message);
        assert!(err.message.contains("send application/json instead"), "{}", err.message);
    }

    #[test]
    fn garbage_bytes_give_a_400_that_mentions_the_magic_number() {
        let err = decode(b"{\"kind\":\"Namespace\"}").unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
        assert!(err.message.contains("magic number"), "{}", err.message);
    }

    #[test]
    fn a_corrupt_envelope_gives_a_400_that_names_runtime_unknown() {
        let err = decode(b"k8s\0\xff\xff\xff").unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("runtime.Unknown"), "{}", err.message);
    }

    #[test]
    fn a_corrupt_object_inside_a_good_envelope_gives_a_400_that_names_the_kind() {
        let unknown = Unknown {
            type_meta: Some(TypeMeta { api_version: Some("v1".into()), kind: Some("Namespace".into()) }),
            raw: Some(vec![0x0a, 0xff]),
            ..Default::default()
        };
        let err = decode(&[MAGIC.as_slice(), &unknown.encode_to_vec()].concat()).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.starts_with("the protobuf body is not a valid Namespace"), "{}", err.message);
    }
}
