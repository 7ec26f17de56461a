//! Labels on containers: how the kubelet remembers, in the runtime itself, which pod each container belongs to.
//!
//! The kubelet keeps no database. When it restarts it lists the node's containers and reads their labels to know
//! whose they are — the same labels dockershim put on Docker containers, so `docker ps` reads as it did on a
//! Kubernetes node:
//!
//! | label                                   | example                                |
//! |-----------------------------------------|----------------------------------------|
//! | `io.kubernetes.pod.name`                | `web`                                  |
//! | `io.kubernetes.pod.namespace`           | `default`                              |
//! | `io.kubernetes.pod.uid`                 | `6f1c...`                              |
//! | `io.kubernetes.container.name`          | `nginx`, or `POD` for the sandbox      |
//! | `io.kubernetes.docker.type`             | `container` or `podsandbox`            |
//! | `io.kubernetes.container.attempt`       | `2`: the CRI's attempt number          |
//! | `io.kubernetes.container.restartCount`  | `2`: what the pod status reports       |
//! | `io.kubernetes.sandbox.id`              | the sandbox an app container joined    |
//! | `kubelab.node`                          | `node-1`: which kubelet owns it        |
//!
//! The attempt of an application container *is* its restart count (the first run is attempt 0); dockershim kept
//! both, and so do we. `kubelab.node` is ours: several simulated nodes share one Docker engine, and each kubelet
//! must only see, adopt and clean up its own containers.

use std::collections::BTreeMap;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_TYPE: &str = "io.kubernetes.docker.type";
pub const ATTEMPT: &str = "io.kubernetes.container.attempt";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
pub const NODE: &str = "kubelab.node";

/// The container name dockershim gave sandboxes.
pub const SANDBOX_CONTAINER_NAME: &str = "POD";

/// Sandbox or application container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The pause container holding the pod's namespaces.
    Sandbox,
    /// A container of the pod's spec.
    Container,
}

/// The pod a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub uid: String,
    pub name: String,
    pub namespace: String,
}

/// Who a container is, as its labels say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pod: PodRef,
    /// The container's name in the pod spec (`POD` for a sandbox).
    pub container: String,
    pub role: Role,
    /// 0 for the first run, then one more for each restart (or each new sandbox).
    pub attempt: u32,
}

/// The labels of a pod's sandbox.
pub fn sandbox_labels(pod: &PodRef, node: &str, attempt: u32) -> BTreeMap<String, String> {
    let mut labels = common(pod, node, SANDBOX_CONTAINER_NAME, attempt);
    labels.insert(CONTAINER_TYPE.into(), "podsandbox".into());
    labels
}

/// The labels of one of a pod's application containers.
pub fn container_labels(
    pod: &PodRef,
    node: &str,
    container: &str,
    attempt: u32,
    sandbox_id: &str,
) -> BTreeMap<String, String> {
    let mut labels = common(pod, node, container, attempt);
    labels.insert(CONTAINER_TYPE.into(), "container".into());
    labels.insert(RESTART_COUNT.into(), attempt.to_string());
    labels.insert(SANDBOX_ID.into(), sandbox_id.into());
    labels
}

fn common(pod: &PodRef, node: &str, container: &str, attempt: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POD_NAME.to_string(), pod.name.clone()),
        (POD_NAMESPACE.to_string(), pod.namespace.clone()),
        (POD_UID.to_string(), pod.uid.clone()),
        (CONTAINER_NAME.to_string(), container.to_string()),
        (ATTEMPT.to_string(), attempt.to_string()),
        (NODE.to_string(), node.to_string()),
    ])
}

/// Reads the labels back; `None` for a container the kubelet did not make.
pub fn owner(labels: &BTreeMap<String, String>) -> Option<Owner> {
    let get = |key: &str| labels.get(key).filter(|v| !v.is_empty()).cloned();
    let role = match labels.get(CONTAINER_TYPE).map(String::as_str) {
        Some("podsandbox") => Role::Sandbox,
        Some("container") => Role::Container,
        _ => return None,
    };
    Some(Owner {
        pod: PodRef { uid: get(POD_UID)?, name: get(POD_NAME)?, namespace: get(POD_NAMESPACE)? },
        container: get(CONTAINER_NAME)?,
        role,
        // A label someone edited by hand should not make the container invisible: read it as attempt 0.
        attempt: labels.get(ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
    })
}

/// The runtime's name for a container, as dockershim named them: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`
/// (`k8s_POD_...` for the sandbox). Unique per attempt, readable in `docker ps`.
pub fn runtime_name(pod: &PodRef, container: &str, attempt: u32) -> String {
    format!("k8s_{container}_{}_{}_{}_{attempt}", pod.name, pod.namespace, pod.uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> PodRef {
        PodRef { uid: "u-1".into(), name: "web".into(), namespace: "shop".into() }
    }

    #[test]
    fn a_container_is_recognised_from_its_own_labels() {
        let labels = container_labels(&web(), "node-1", "nginx", 3, "sandbox-id");
        let owner = owner(&labels).unwrap();
        assert_eq!(owner.pod, web());
        assert_eq!((owner.container.as_str(), owner.role, owner.attempt), ("nginx", Role::Container, 3));
        assert_eq!(labels[RESTART_COUNT], "3");
        assert_eq!(labels[NODE], "node-1");
    }

    #[test]
    fn a_sandbox_is_the_container_named_pod() {
        let owner = owner(&sandbox_labels(&web(), "node-1", 0)).unwrap();
        assert_eq!((owner.container.as_str(), owner.role), ("POD", Role::Sandbox));
    }

    #[test]
    fn containers_the_kubelet_did_not_make_have_no_owner() {
        assert_eq!(owner(&BTreeMap::new()), None);
        let mut labels = container_labels(&web(), "node-1", "nginx", 0, "s");
        labels.remove(POD_UID);
        assert_eq!(owner(&labels), None);
    }

    #[test]
    fn runtime_names_read_like_dockershims() {
        assert_eq!(runtime_name(&web(), "nginx", 2), "k8s_nginx_web_shop_u-1_2");
        assert_eq!(runtime_name(&web(), SANDBOX_CONTAINER_NAME, 0), "k8s_POD_web_shop_u-1_0");
    }
}
