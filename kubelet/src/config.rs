//! The kubelet's settings, with Kubernetes' defaults.
//!
//! Every timing is here rather than in a constant, so that tests shorten them (a back-off of 1 s instead of
//! 10 s, a lease renewed every second) without sleeping or editing code.

use crate::backoff::BackOffPolicy;
use crate::error::KubeletError;
use ipnet::Ipv4Net;
use kubelab_api::client::Client;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The version the kubelet reports in its Node (`kubectl get nodes` shows it).
pub const KUBELET_VERSION: &str = "v1.32.0-kubelab";

/// How one kubelet runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Node's name (`node-1`): which pods are this kubelet's (`spec.nodeName`).
    pub node_name: String,
    /// The apiserver: the only component the kubelet talks to.
    pub client: Client,
    /// The node's address: reported as its `InternalIP` (and each pod's `hostIP`), and where the kubelet's
    /// servers listen. `kubelab up` gives each simulated node its own loopback address (127.0.1.1, ...).
    pub address: IpAddr,
    /// The kubelet's API (`/containerLogs`, `/healthz`): 10250. 0 picks a free port (tests).
    pub port: u16,
    /// The read-only port (`/healthz`, `/pods`, `/spec`): 10255. 0 picks a free port.
    pub read_only_port: u16,
    /// A pod CIDR to register the Node with (`--pod-cidr`), for a cluster that assigns none. `None` (the
    /// default, and `kubelab up`): the kubelet waits for the controller manager's node IPAM controller to write
    /// one into its Node's `spec.podCIDR`. Either way, the Node's `spec.podCIDR` is what pods get their IPs from
    /// (see [`crate::network`]).
    pub pod_cidr: Option<Ipv4Net>,
    /// The Docker network holding this node's pods: `kubelab-<node>` by default, created with the pod CIDR as
    /// its subnet. `kubelab up` sets one network shared by every simulated node, its subnet the cluster CIDR.
    pub network: String,
    /// Where the kubelet keeps pod files (emptyDir volumes): `<data dir>/pods/<uid>/volumes/...`.
    pub data_dir: PathBuf,
    /// How long the node's Lease is valid after a renewal (Kubernetes: 40 s); the node controller marks the
    /// node unreachable when it expires.
    pub lease_duration: Duration,
    /// How often the Lease is renewed (Kubernetes: every 10 s, a quarter of its duration).
    pub lease_renew_interval: Duration,
    /// How often the node status is computed (Kubernetes' `nodeStatusUpdateFrequency`: 10 s).
    pub node_status_update_frequency: Duration,
    /// How often it is written even if nothing changed (Kubernetes' `nodeStatusReportFrequency`: 5 min); the
    /// Lease is the frequent heartbeat, the status is only rewritten when it says something new.
    pub node_status_report_frequency: Duration,
    /// How often every pod is synced even if nothing happened (the kubelet's resync).
    pub sync_period: Duration,
    /// How crashing containers and failing image pulls are retried: 10 s doubling to 5 min.
    pub backoff: BackOffPolicy,
    /// The image of every pod's sandbox (Kubernetes' `--pod-infra-container-image`): `kubelab/pause:1`, built
    /// locally. Tests replace it with one that cannot run.
    pub pod_infra_container_image: String,
}

impl Config {
    /// A kubelet for `node_name` with Kubernetes' defaults: ports 10250 and 10255 on `address`, the Docker
    /// network `kubelab-<node>`, the pod CIDR from the Node, pod files under `data_dir`.
    pub fn new(node_name: impl Into<String>, client: Client, address: IpAddr, data_dir: impl Into<PathBuf>) -> Config {
        let node_name = node_name.into();
        Config {
            network: format!("kubelab-{node_name}"),
            node_name,
            client,
            address,
            port: 10250,
            read_only_port: 10255,
            pod_cidr: None,
            data_dir: data_dir.into(),
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            sync_period: Duration::from_secs(10),
            backoff: BackOffPolicy::default(),
            pod_infra_container_image: crate::images::PAUSE_IMAGE.to_string(),
        }
    }

    /// Refuses settings that cannot work, with a message saying which and why.
    pub fn validate(&self) -> Result<(), KubeletError> {
        let problems = kubelab_api::names::is_dns1123_subdomain(&self.node_name);
        if !problems.is_empty() {
            return Err(KubeletError::Config(format!(
                "invalid node name {:?}: {}",
                self.node_name,
                problems.join("; ")
            )));
        }
        if let Some(cidr) = self.pod_cidr.filter(|cidr| cidr.prefix_len() > 30) {
            return Err(KubeletError::Config(format!(
                "the pod CIDR {cidr} holds no pod: its prefix must be 30 at most"
            )));
        }
        if self.lease_renew_interval.is_zero()
            || self.sync_period.is_zero()
            || self.node_status_update_frequency.is_zero()
        {
            return Err(KubeletError::Config(
                "the lease renew interval, sync period and status frequency must be above 0".into(),
            ));
        }
        if self.backoff.initial.is_zero() || self.backoff.max < self.backoff.initial {
            return Err(KubeletError::Config(
                "the back-off must start above 0 and its maximum be at least its start".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let client = Client::new("http://127.0.0.1:1").unwrap();
        Config::new("node-1", client, "127.0.1.1".parse().unwrap(), "/tmp/kubelet")
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let config = config();
        assert_eq!((config.port, config.read_only_port), (10250, 10255));
        assert_eq!(config.network, "kubelab-node-1");
        assert_eq!(config.lease_duration, Duration::from_secs(40));
        assert_eq!(config.lease_renew_interval, Duration::from_secs(10));
        assert_eq!(config.backoff, BackOffPolicy { initial: Duration::from_secs(10), max: Duration::from_secs(300) });
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_pod_cidr_too_small_for_a_pod_is_refused_with_the_reason() {
        let mut config = config();
        config.pod_cidr = Some("10.244.1.0/31".parse().unwrap());
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "the pod CIDR 10.244.1.0/31 holds no pod: its prefix must be 30 at most"
        );
    }

    #[test]
    fn a_node_name_must_be_a_dns_subdomain() {
        let mut config = config();
        config.node_name = "Node_1".into();
        assert!(config.validate().unwrap_err().to_string().starts_with("invalid node name \"Node_1\""));
    }
}
