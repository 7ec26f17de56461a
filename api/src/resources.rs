//! The resources kubelab serves, described as data.
//!
//! Real Kubernetes registers each resource with the apiserver through a `RESTStorage` and a scheme; we keep the
//! same idea in one table. Everything generic — REST paths, discovery documents, storage keys, the OpenAPI
//! index, the CLI's `kubelab get deploy` — is derived from a [`Resource`] entry. Only what truly differs between
//! kinds (defaulting, validation, table columns) is code, and it lives next to the kind's rules.

use crate::kinds::{Rules, Typed};
use k8s_openapi::api::{
    apps::v1::{Deployment, ReplicaSet},
    coordination::v1::Lease,
    core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Pod, Service},
    discovery::v1::EndpointSlice,
};

// ANCHOR: resource
/// One kind of object the API serves, e.g. `apps/v1` `Deployment` at `deployments`.
pub struct Resource {
    /// API group, `""` for the core (legacy) group served under `/api`.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// The `kind` field of objects of this resource.
    pub kind: &'static str,
    /// The URL segment: `/apis/apps/v1/namespaces/default/deployments`.
    pub plural: &'static str,
    /// What `kubectl get deployment` matches besides the plural and short names.
    pub singular: &'static str,
    /// Namespaced (`Pod`) or cluster-wide (`Node`, `Namespace`).
    pub namespaced: bool,
    /// `deploy`, `po`, `svc`...
    pub short_names: &'static [&'static str],
    /// `["all"]` makes `kubectl get all` include the resource.
    pub categories: &'static [&'static str],
    /// Subresources served below an object: `status`, `scale`, `binding`.
    pub subresources: &'static [Subresource],
    /// The key prefix in the store, exactly as Kubernetes lays out etcd (nodes are still `minions` there).
    pub storage_prefix: &'static str,
    /// Per-kind behaviour: decoding, defaulting, validation.
    pub rules: &'static dyn Rules,
}
// ANCHOR_END: resource

/// A subresource such as `deployments/scale`, and the kind it speaks.
#[derive(Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

const STATUS: Subresource =
    Subresource { name: "status", group: "", version: "", kind: "", verbs: &["get", "patch", "update"] };
const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: &["get", "patch", "update"],
};
const BINDING: Subresource =
    Subresource { name: "binding", group: "", version: "v1", kind: "Binding", verbs: &["create"] };
/// `kubectl logs`: the apiserver forwards it to the kubelet of the pod's node.
const LOG: Subresource = Subresource { name: "log", group: "", version: "v1", kind: "Pod", verbs: &["get"] };

/// The verbs every top-level resource supports.
pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Every resource kubelab serves. Order is the order of discovery documents.
pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &[STATUS],
        storage_prefix: "/registry/namespaces",
        rules: &Typed::<Namespace>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[STATUS, BINDING, LOG],
        storage_prefix: "/registry/pods",
        rules: &Typed::<Pod>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &[STATUS],
        storage_prefix: "/registry/minions",
        rules: &Typed::<Node>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[STATUS],
        storage_prefix: "/registry/services/specs",
        rules: &Typed::<Service>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
        storage_prefix: "/registry/services/endpoints",
        rules: &Typed::<Endpoints>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
        storage_prefix: "/registry/events",
        rules: &Typed::<Event>::NEW,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        storage_prefix: "/registry/configmaps",
        rules: &Typed::<ConfigMap>::NEW,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        subresources: &[STATUS, SCALE],
        storage_prefix: "/registry/replicasets",
        rules: &Typed::<ReplicaSet>::NEW,
    },
    // ANCHOR: deployment
    Resource {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        subresources: &[STATUS, SCALE],
        storage_prefix: "/registry/deployments",
        rules: &Typed::<Deployment>::NEW,
    },
    // ANCHOR_END: deployment
    Resource {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        storage_prefix: "/registry/leases",
        rules: &Typed::<Lease>::NEW,
    },
    Resource {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        storage_prefix: "/registry/endpointslices",
        rules: &Typed::<EndpointSlice>::NEW,
    },
];

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resource({}/{})", self.api_version(), self.plural)
    }
}

/// Two entries are the same resource when they are served at the same path.
impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        (self.group, self.version, self.plural) == (other.group, other.version, other.plural)
    }
}

impl Resource {
    // ANCHOR: paths
    /// `v1` for the core group, `apps/v1` otherwise: the `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The collection URL: `/apis/apps/v1/namespaces/default/deployments`, or across all namespaces when `namespace`
    /// is `None`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}/namespaces/{ns}/{}", self.group_version_path(), self.plural),
            _ => format!("{}/{}", self.group_version_path(), self.plural),
        }
    }

    /// The URL of one object.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection_path(namespace))
    }
    // ANCHOR_END: paths

    // ANCHOR: storage_key
    /// The store key of one object: `/registry/deployments/default/web`, `/registry/minions/node-1`.
    pub fn storage_key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}/{namespace}/{name}", self.storage_prefix)
        } else {
            format!("{}/{name}", self.storage_prefix)
        }
    }

    /// The key prefix of a list: every object of this resource, or those of one namespace. Ends with `/`, so that
    /// `/registry/pods/default/` never matches `/registry/pods/default-2/...`.
    pub fn storage_list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}/{ns}/", self.storage_prefix),
            _ => format!("{}/", self.storage_prefix),
        }
    }
    // ANCHOR_END: storage_key

    /// The `kind` of a list of these objects: `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Finds a subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
}

// ANCHOR: by_path
/// Finds the resource served at `group`/`version`/`plural` — how the apiserver routes a request.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}
// ANCHOR_END: by_path

/// Finds the resource of an object by its `apiVersion` and `kind` — how `apply -f` knows where to send a manifest.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
}

/// Resolves what a user types after `get`: `deploy`, `deployments`, `deployment`, `Deployment`,
/// `deployments.apps`.
pub fn by_user_name(name: &str) -> Option<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((base, group)) => (base.to_string(), Some(group.to_string())),
        None => (lower, None),
    };
    RESOURCES.iter().find(|r| {
        let matches_name = r.plural == base
            || r.singular == base
            || r.kind.eq_ignore_ascii_case(&base)
            || r.short_names.contains(&base.as_str());
        matches_name && group.as_deref().is_none_or(|g| g == r.group)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_follow_kubernetes_layout() {
        let deploy = by_kind("apps/v1", "Deployment").unwrap();
        assert_eq!(deploy.storage_key("default", "web"), "/registry/deployments/default/web");
        let node = by_kind("v1", "Node").unwrap();
        assert_eq!(node.storage_key("", "n1"), "/registry/minions/n1");
    }

    #[test]
    fn user_names_resolve_like_kubectl() {
        for name in ["deploy", "deployments", "Deployment", "deployments.apps"] {
            assert_eq!(by_user_name(name).unwrap().kind, "Deployment", "{name}");
        }
        assert!(by_user_name("deployments.batch").is_none());
        assert_eq!(by_user_name("po").unwrap().plural, "pods");
    }

    #[test]
    fn paths_are_built_from_the_table() {
        let pods = by_path("", "v1", "pods").unwrap();
        assert_eq!(pods.object_path(Some("default"), "p"), "/api/v1/namespaces/default/pods/p");
        let ns = by_path("", "v1", "namespaces").unwrap();
        assert_eq!(ns.object_path(Some("ignored"), "dev"), "/api/v1/namespaces/dev");
    }
}
