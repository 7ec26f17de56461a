//! Discovery: how kubectl learns which resources exist.
//!
//! Before it can run `kubectl get deploy`, kubectl must learn that `deploy` is a short name of `deployments`, in
//! group `apps`, version `v1`, namespaced. It asks the apiserver, and caches the answer on disk. There are two
//! ways to answer, both derived here from [`RESOURCES`]:
//!
//! - **Aggregated discovery** (Kubernetes 1.26+): one document per root, `/api` for the core group and `/apis`
//!   for named groups, listing every group, version and resource at once — kubectl needs two requests in all.
//!   It is served only to a client that asks for it in its `Accept` header ([`negotiate`]), and kubectl only
//!   believes it if the response's `Content-Type` says exactly which version it is ([`content_type`]).
//! - **Legacy discovery**: `/api` lists versions ([`api_versions`]), `/apis` lists groups ([`api_group_list`]),
//!   and each group version lists its resources ([`api_resource_list`]) — one request per group version.
//!
//! ```text
//! GET /apis   Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,...
//! → {"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","items":[{"metadata":{"name":"apps"},
//!    "versions":[{"version":"v1","resources":[{"resource":"deployments","shortNames":["deploy"],...}]}]}]}
//! ```
//!
//! What we leave out: aggregated API servers (and so stale `freshness`), protobuf discovery, `storageVersionHash`
//! (a hint for storage migration tools), and more than one version per group.

use kubelab_api::resources::{RESOURCES, Resource, Subresource, VERBS};
use serde_json::{Value, json};

/// The two versions of aggregated discovery kubectl knows. They differ only in their `apiVersion`; a client
/// that asks for one must get that one (kubectl 1.26 to 1.29 understand only `v2beta1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregatedVersion {
    V2,
    V2Beta1,
}

impl AggregatedVersion {
    /// `v2` or `v2beta1`.
    fn version(self) -> &'static str {
        match self {
            AggregatedVersion::V2 => "v2",
            AggregatedVersion::V2Beta1 => "v2beta1",
        }
    }
}

/// The group of aggregated discovery documents.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";

/// Chooses the form of discovery from kubectl's `Accept` header: the first media type in the header that we can
/// serve wins. `None` means plain JSON, that is legacy discovery.
///
/// kubectl 1.32 sends `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,
/// application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json`. Protobuf
/// entries are skipped (we only speak JSON), and so are entries with `q=0`, which mean "not this one".
pub fn negotiate(accept: &str) -> Option<AggregatedVersion> {
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media_type = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(&str, &str)> =
            parts.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let param = |name: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| *value);
        if param("q").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)) {
            continue;
        }
        if !matches!(media_type.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        match (param("g"), param("v"), param("as")) {
            (None, None, None) => return None,
            (Some(DISCOVERY_GROUP), Some("v2"), Some("APIGroupDiscoveryList")) => return Some(AggregatedVersion::V2),
            (Some(DISCOVERY_GROUP), Some("v2beta1"), Some("APIGroupDiscoveryList")) => {
                return Some(AggregatedVersion::V2Beta1);
            }
            _ => continue,
        }
    }
    None
}

/// The exact `Content-Type` of an aggregated discovery response. kubectl compares it as a string: anything
/// else and it falls back to legacy discovery, one request per group version.
pub fn content_type(version: AggregatedVersion) -> &'static str {
    match version {
        AggregatedVersion::V2 => "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        AggregatedVersion::V2Beta1 => "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    }
}

/// The aggregated discovery document of `/api` (`core`) or of `/apis` (every named group).
pub fn aggregated(core: bool, version: AggregatedVersion) -> Value {
    let items: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(group, _)| group.is_empty() == core)
        .map(|(group, versions)| {
            // The core group has no name: its document says `"metadata": {}`.
            let metadata = if group.is_empty() { json!({}) } else { json!({"name": group}) };
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|v| json!({"version": v, "resources": aggregated_resources(group, v), "freshness": "Current"}))
                .collect();
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("{DISCOVERY_GROUP}/{}", version.version()),
        "metadata": {},
        "items": items,
    })
}

/// The `APIResourceDiscovery` entries of one group version.
fn aggregated_resources(group: &str, version: &str) -> Vec<Value> {
    resources_of(group, version)
        .map(|resource| {
            let subresources: Vec<Value> = resource
                .subresources
                .iter()
                .map(|sub| {
                    let (group, version, kind) = response_kind(resource, sub);
                    json!({
                        "subresource": sub.name,
                        "responseKind": {"group": group, "version": version, "kind": kind},
                        "verbs": sub.verbs,
                    })
                })
                .collect();
            let mut entry = json!({
                "resource": resource.plural,
                "responseKind": {"group": resource.group, "version": resource.version, "kind": resource.kind},
                "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": resource.singular,
                "verbs": VERBS,
            });
            insert_unless_empty(&mut entry, "shortNames", resource.short_names);
            insert_unless_empty(&mut entry, "categories", resource.categories);
            if !subresources.is_empty() {
                entry["subresources"] = subresources.into();
            }
            entry
        })
        .collect()
}

/// `/api` in legacy discovery: the core group's versions, and where to reach the server.
///
/// `server_address` is `host:port` as clients should dial it; Kubernetes answers the same for every client
/// network (`0.0.0.0/0`).
pub fn api_versions(server_address: &str) -> Value {
    let versions: Vec<&str> =
        group_versions().into_iter().filter(|(group, _)| group.is_empty()).flat_map(|(_, versions)| versions).collect();
    json!({
        "kind": "APIVersions",
        "versions": versions,
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `/apis` in legacy discovery: every named group, its versions, and the one clients should prefer.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| {
            let entries: Vec<Value> =
                versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
            // The first version listed is the preferred one, as in the resource table.
            let preferred = entries.first().cloned().unwrap_or(Value::Null);
            json!({"name": group, "versions": entries, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/<group>/<version>` in legacy discovery: the resources of one group version, each
/// subresource as its own entry (`deployments/scale`). `None` for a group version we do not serve (404).
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut entries = Vec::new();
    for resource in resources_of(group, version) {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        });
        insert_unless_empty(&mut entry, "shortNames", resource.short_names);
        insert_unless_empty(&mut entry, "categories", resource.categories);
        entries.push(entry);
        for sub in resource.subresources {
            let (sub_group, sub_version, kind) = response_kind(resource, sub);
            let mut entry = json!({
                "name": format!("{}/{}", resource.plural, sub.name),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": kind,
                "verbs": sub.verbs,
            });
            // Like Kubernetes, say the group and version only when they differ from the list's own.
            if (sub_group, sub_version) != (resource.group, resource.version) {
                entry["group"] = sub_group.into();
                entry["version"] = sub_version.into();
            }
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}))
}

/// The kind a subresource speaks. In the resource table, an empty kind means the parent's own kind
/// (`deployments/status` speaks `Deployment`) and an empty version the parent's version.
fn response_kind(resource: &Resource, sub: &Subresource) -> (&'static str, &'static str, &'static str) {
    if sub.kind.is_empty() {
        (resource.group, resource.version, resource.kind)
    } else {
        let version = if sub.version.is_empty() { resource.version } else { sub.version };
        (sub.group, version, sub.kind)
    }
}

/// Every group with its versions, in the order they first appear in [`RESOURCES`]; the core group is `""`.
pub(crate) fn group_versions() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for resource in RESOURCES {
        match groups.iter_mut().find(|(group, _)| *group == resource.group) {
            Some((_, versions)) if versions.contains(&resource.version) => {}
            Some((_, versions)) => versions.push(resource.version),
            None => groups.push((resource.group, vec![resource.version])),
        }
    }
    groups
}

/// The resources served in one group version, in table order.
pub(crate) fn resources_of<'a>(group: &'a str, version: &'a str) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

/// Sets `field` to `values` unless there are none: Kubernetes omits empty `shortNames` and `categories`.
fn insert_unless_empty(entry: &mut Value, field: &str, values: &[&str]) {
    if let (false, Some(map)) = (values.is_empty(), entry.as_object_mut()) {
        map.insert(field.to_string(), values.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
        application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn kubectl_gets_v2_and_an_older_kubectl_gets_v2beta1() {
        assert_eq!(negotiate(KUBECTL_ACCEPT), Some(AggregatedVersion::V2));
        let older = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(older), Some(AggregatedVersion::V2Beta1));
    }

    #[test]
    fn the_first_acceptable_entry_wins_and_plain_json_means_legacy() {
        assert_eq!(negotiate("application/json"), None);
        assert_eq!(negotiate("*/*"), None);
        assert_eq!(negotiate(""), None);
        let plain_first = "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(plain_first), None);
        let protobuf_first = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList, \
            application/json; g=apidiscovery.k8s.io; v=v2beta1; as=APIGroupDiscoveryList";
        assert_eq!(negotiate(protobuf_first), Some(AggregatedVersion::V2Beta1));
        let refused = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json";
        assert_eq!(negotiate(refused), None);
    }

    #[test]
    fn content_types_name_the_version_served() {
        assert_eq!(
            content_type(AggregatedVersion::V2),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert!(content_type(AggregatedVersion::V2Beta1).contains(";v=v2beta1;"));
    }

    #[test]
    fn the_core_document_lists_pods_with_their_short_name_and_subresources() {
        let doc = aggregated(true, AggregatedVersion::V2);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(doc["items"].as_array().unwrap().len(), 1);
        assert_eq!(doc["items"][0]["metadata"], json!({}));
        let resources = doc["items"][0]["versions"][0]["resources"].as_array().unwrap();
        let pods = resources.iter().find(|r| r["resource"] == "pods").unwrap();
        assert_eq!(pods["responseKind"], json!({"group": "", "version": "v1", "kind": "Pod"}));
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(
            pods["subresources"][1],
            json!({"subresource": "binding",
            "responseKind": {"group": "", "version": "v1", "kind": "Binding"}, "verbs": ["create"]})
        );
        let nodes = resources.iter().find(|r| r["resource"] == "nodes").unwrap();
        assert_eq!(nodes["scope"], "Cluster");
        assert!(nodes.get("categories").is_none(), "empty categories are omitted");
    }

    #[test]
    fn the_named_groups_document_has_apps_scale_and_leases() {
        let doc = aggregated(false, AggregatedVersion::V2Beta1);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        let names: Vec<&str> =
            doc["items"].as_array().unwrap().iter().map(|g| g["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["apps", "coordination.k8s.io", "discovery.k8s.io"]);
        let deployments = &doc["items"][0]["versions"][0]["resources"][1];
        assert_eq!(deployments["resource"], "deployments");
        assert_eq!(deployments["subresources"][0]["responseKind"]["kind"], "Deployment");
        assert_eq!(
            deployments["subresources"][1]["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let leases = &doc["items"][1]["versions"][0]["resources"][0];
        assert!(leases.get("shortNames").is_none() && leases.get("subresources").is_none());
    }

    #[test]
    fn legacy_discovery_lists_versions_groups_and_resources() {
        assert_eq!(
            api_versions("10.0.0.1:6443"),
            json!({"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]})
        );
        let groups = api_group_list();
        assert_eq!(
            groups["groups"][0],
            json!({"name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
        );

        let apps = api_resource_list("apps", "v1").unwrap();
        assert_eq!(apps["groupVersion"], "apps/v1");
        let names: Vec<&str> =
            apps["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
                "deployments",
                "deployments/status",
                "deployments/scale"
            ]
        );
        let scale = &apps["resources"][5];
        assert_eq!(
            (&scale["group"], &scale["version"], &scale["kind"]),
            (&json!("autoscaling"), &json!("v1"), &json!("Scale"))
        );
        assert_eq!(apps["resources"][3]["shortNames"], json!(["deploy"]));

        assert_eq!(api_resource_list("", "v1").unwrap()["groupVersion"], "v1");
        assert!(api_resource_list("apps", "v1beta1").is_none());
        assert!(api_resource_list("batch", "v1").is_none());
    }
}
