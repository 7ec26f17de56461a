//! [`DockerRuntime`]: the [`Runtime`] trait implemented with Docker, through `bollard`.
//!
//! This is what dockershim did for Kubernetes until 1.24, and what containerd's CRI plugin does today: turn
//! "run this pod's sandbox", "create this container in it" into the runtime's own calls.
//!
//! ## Pods as Docker containers
//!
//! The node's pods hang on a Docker bridge network: on a machine of its own, `kubelab-<node>`, whose subnet is
//! the node's pod CIDR (`10.244.1.0/24`); under `kubelab up`, one network for the whole cluster CIDR, shared by
//! every simulated node (see [`crate::network`] for why). A pod is:
//!
//! - a **sandbox** (`k8s_POD_web_default_<uid>_0`, image `kubelab/pause:1`) attached to that network, at the next
//!   free address of the node's pod CIDR ([`crate::network::next_pod_ip`]): that address is the pod IP;
//! - one container per entry of `spec.containers` (`k8s_nginx_web_default_<uid>_0`), started with network mode
//!   `container:<sandbox id>`: it has no network of its own, it *joins the sandbox's network namespace*. All the
//!   pod's containers therefore share one IP, one set of ports and one `localhost`, and they keep that IP when one
//!   of them crashes and restarts, because the sandbox never stopped. They share the IPC namespace too.
//!
//! What we leave out: CNI plugins (Docker's bridge plays their part), cgroup parents per pod (each container gets
//! its own CPU and memory limits, the pod as a whole has none), log files managed by the kubelet (Docker's
//! `json-file` driver keeps them), and the image garbage collector.

use crate::error::{KubeletError, docker_message};
use crate::labels::{self, Owner};
use crate::runtime::{
    ContainerConfig, ContainerInfo, ContainerState, ExecResult, ImageInfo, LogOptions, Runtime, SandboxConfig,
};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointIpamConfig, EndpointSettings, ExecConfig, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use ipnet::Ipv4Net;
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// The Docker engine, as one node's container runtime.
#[derive(Clone)]
pub struct DockerRuntime {
    /// bollard's client; cheap to clone (it shares one connection pool).
    docker: Docker,
    /// The node whose containers this runtime creates and lists (the `kubelab.node` label).
    node: String,
    /// The node's bridge network, which sandboxes join.
    network: String,
    /// The node's pod CIDR: every sandbox gets an address of it.
    pod_cidr: Ipv4Net,
    /// Held while a sandbox is given an address and started, so that two pods starting at once do not pick
    /// the same free address. (Docker would refuse the second, and the pod would only start on a retry.)
    addressing: Arc<tokio::sync::Mutex<()>>,
}

/// Connects to the local Docker engine, speaking the API version it supports (the engine on the course machines
/// is older than bollard's default API version, and refuses requests it does not know).
pub async fn connect() -> Result<Docker, KubeletError> {
    let docker = Docker::connect_with_local_defaults().map_err(|err| KubeletError::docker("connect", err))?;
    docker.negotiate_version().await.map_err(|err| {
        KubeletError::Config(format!("cannot reach the Docker engine: {}; is Docker running?", docker_message(&err)))
    })
}

impl DockerRuntime {
    /// The runtime of `node`, whose sandboxes join the Docker network `network` at addresses of `pod_cidr`
    /// (the network is created with that subnet if it does not exist; an existing one must contain it).
    pub async fn new(docker: Docker, node: &str, network: &str, pod_cidr: Ipv4Net) -> Result<Self, KubeletError> {
        ensure_network(&docker, network, pod_cidr, (labels::NODE, node)).await?;
        Ok(DockerRuntime {
            docker,
            node: node.to_string(),
            network: network.to_string(),
            pod_cidr,
            addressing: Arc::default(),
        })
    }

    /// The addresses containers hold on the node's network now (of every node, when the network is shared).
    async fn used_addresses(&self) -> Result<Vec<Ipv4Addr>, KubeletError> {
        let network = self
            .docker
            .inspect_network(&self.network, None)
            .await
            .map_err(|err| KubeletError::docker(format!("inspect network {}", self.network), err))?;
        let endpoints = network.containers.unwrap_or_default().into_values();
        // Docker writes them with the network's prefix: `10.244.1.2/16`.
        let address = |text: String| text.split('/').next().and_then(|ip| ip.parse().ok());
        Ok(endpoints.filter_map(|endpoint| endpoint.ipv4_address.and_then(address)).collect())
    }

    /// The bollard client, for what the trait does not cover (building images).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Reads a container's inspection into what the kubelet needs; `None` if the kubelet did not make it.
    fn info(&self, inspect: ContainerInspectResponse) -> Option<ContainerInfo> {
        let config = inspect.config.unwrap_or_default();
        let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
        let owner: Owner = labels::owner(&labels)?;
        let sandbox_id = labels.get(labels::SANDBOX_ID).cloned();
        let state = inspect.state.unwrap_or_default();
        let time = |t: &Option<String>| t.as_deref().and_then(parse_time);
        let state = if state.running == Some(true) {
            ContainerState::Running { started_at: time(&state.started_at).unwrap_or(Timestamp::UNIX_EPOCH) }
        } else if let Some(finished_at) = time(&state.finished_at) {
            ContainerState::Exited {
                exit_code: state.exit_code.unwrap_or(-1),
                started_at: time(&state.started_at),
                finished_at,
                oom_killed: state.oom_killed == Some(true),
            }
        } else {
            ContainerState::Created
        };
        let ip = inspect
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|mut networks| networks.remove(&self.network))
            .and_then(|endpoint| endpoint.ip_address)
            .and_then(|ip| ip.parse().ok());
        Some(ContainerInfo {
            id: inspect.id.unwrap_or_default(),
            owner,
            state,
            image: config.image.unwrap_or_default(),
            image_id: inspect.image.unwrap_or_default(),
            created_at: time(&inspect.created).unwrap_or(Timestamp::UNIX_EPOCH),
            ip,
            sandbox_id,
        })
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String, KubeletError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|err| KubeletError::docker(format!("create container {name}"), err))?;
        Ok(created.id)
    }
}

/// Docker writes `0001-01-01T00:00:00Z` for "never"; Kubernetes has no such date, so it reads as `None`.
fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok().filter(|t| t.as_second() > 0)
}

// ANCHOR: network
/// Makes sure pods have a network to join: an existing one whose subnet contains `pod_cidr` (the cluster-wide
/// network `kubelab up` creates, or this node's own from an earlier run), or else a new bridge with `pod_cidr` as
/// its subnet and its first address as the gateway, the host's address on it (a machine of its own). `label`
/// says whose network it is (`kubelab.node=<node>`). `kubelab up` makes its cluster-wide network with this too.
pub async fn ensure_network(
    docker: &Docker,
    network: &str,
    pod_cidr: Ipv4Net,
    label: (&str, &str),
) -> Result<(), KubeletError> {
    if let Ok(existing) = docker.inspect_network(network, None).await {
        let subnets: Vec<String> =
            existing.ipam.and_then(|i| i.config).unwrap_or_default().into_iter().filter_map(|c| c.subnet).collect();
        let contains = |subnet: &String| subnet.parse::<Ipv4Net>().is_ok_and(|s| s.contains(&pod_cidr));
        if subnets.iter().any(contains) {
            return Ok(());
        }
        return Err(KubeletError::Config(format!(
            "the Docker network {network} exists with subnet {} which does not contain the node's pod CIDR \
             {pod_cidr}: remove it (`docker network rm {network}`) so that it is made again",
            subnets.join(",")
        )));
    }
    let gateway = pod_cidr.hosts().next().map(|ip| ip.to_string());
    let request = NetworkCreateRequest {
        name: network.to_string(),
        driver: Some("bridge".into()),
        ipam: Some(Ipam {
            config: Some(vec![IpamConfig { subnet: Some(pod_cidr.to_string()), gateway, ..Default::default() }]),
            ..Default::default()
        }),
        labels: Some(HashMap::from([(label.0.to_string(), label.1.to_string())])),
        ..Default::default()
    };
    docker.create_network(request).await.map_err(|err| {
        let message = docker_message(&err);
        KubeletError::Config(format!("cannot create the Docker network {network} ({pod_cidr}): {message}"))
    })?;
    tracing::info!(network, %pod_cidr, "created the pod network");
    Ok(())
}
// ANCHOR_END: network

/// The container runtime's name and version (`docker://20.10.24`), as the Node reports it.
pub async fn runtime_version(docker: &Docker) -> Result<String, KubeletError> {
    let version = docker.version().await.map_err(|err| KubeletError::docker("version", err))?;
    Ok(format!("docker://{}", version.version.unwrap_or_default()))
}

/// Removes a node's network (tests, and `kubelab down`). Containers still attached make this fail.
pub async fn remove_network(docker: &Docker, network: &str) -> Result<(), KubeletError> {
    match docker.remove_network(network).await {
        Ok(()) => Ok(()),
        Err(err) => match KubeletError::docker(format!("remove network {network}"), err) {
            KubeletError::NotFound(_) => Ok(()),
            other => Err(other),
        },
    }
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn version(&self) -> Result<String, KubeletError> {
        runtime_version(&self.docker).await
    }

    // ANCHOR: sandbox
    async fn run_sandbox(&self, config: &SandboxConfig) -> Result<String, KubeletError> {
        // One sandbox at a time between choosing a free address and holding it (Docker gives it at the start).
        let _addressing = self.addressing.lock().await;
        let ip = crate::network::next_pod_ip(self.pod_cidr, &self.used_addresses().await?).ok_or_else(|| {
            KubeletError::Runtime {
                operation: format!("run sandbox {}", config.name),
                message: format!("no free address left in the node's pod CIDR {}", self.pod_cidr),
            }
        })?;
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig { ipv4_address: Some(ip.to_string()), ..Default::default() }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            hostname: Some(config.hostname.clone()),
            labels: Some(config.labels.clone().into_iter().collect()),
            host_config: Some(HostConfig {
                // The sandbox is on the node's network, at the address chosen above: the pod IP.
                network_mode: Some(self.network.clone()),
                // Its IPC namespace may be joined by the pod's containers.
                ipc_mode: Some("shareable".into()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(self.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let id = self.create(&config.name, body).await?;
        self.start_container(&id).await?;
        Ok(id)
    }
    // ANCHOR_END: sandbox

    // ANCHOR: create_container
    async fn create_container(&self, sandbox_id: &str, config: &ContainerConfig) -> Result<String, KubeletError> {
        let joined = format!("container:{sandbox_id}");
        let binds = config
            .mounts
            .iter()
            .map(|m| format!("{}:{}{}", m.host_path, m.container_path, if m.read_only { ":ro" } else { "" }))
            .collect::<Vec<_>>();
        let body = ContainerCreateBody {
            image: Some(config.image.clone()),
            entrypoint: config.entrypoint.clone(),
            cmd: config.cmd.clone(),
            env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: config.working_dir.clone(),
            labels: Some(config.labels.clone().into_iter().collect()),
            tty: Some(config.tty),
            open_stdin: Some(config.stdin),
            host_config: Some(HostConfig {
                // No network of its own: the sandbox's namespace, hence the pod IP and a shared localhost.
                network_mode: Some(joined.clone()),
                ipc_mode: Some(joined.clone()),
                pid_mode: config.share_process_namespace.then_some(joined),
                binds: (!binds.is_empty()).then_some(binds),
                nano_cpus: config.nano_cpus,
                memory: config.memory_bytes,
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create(&config.name, body).await
    }
    // ANCHOR_END: create_container

    async fn start_container(&self, id: &str) -> Result<(), KubeletError> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|err| KubeletError::docker(format!("start container {}", short(id)), err))
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), KubeletError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        // bollard gives up on a request after 2 minutes; a stop may rightly take the whole grace period.
        let docker = self.docker.clone().with_timeout(grace + Duration::from_secs(60));
        match docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            Err(err) => match KubeletError::docker(format!("stop container {}", short(id)), err) {
                KubeletError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), KubeletError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) => match KubeletError::docker(format!("remove container {}", short(id)), err) {
                KubeletError::NotFound(_) => Ok(()),
                // Removal already in progress (two syncs raced): the container is going away, as asked.
                KubeletError::Runtime { message, .. } if message.contains("already in progress") => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list_containers(&self, labels: &BTreeMap<String, String>) -> Result<Vec<ContainerInfo>, KubeletError> {
        let mut wanted = vec![format!("{}={}", labels::NODE, self.node)];
        wanted.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
        let options =
            ListContainersOptionsBuilder::default().all(true).filters(&HashMap::from([("label", wanted)])).build();
        let summaries =
            self.docker.list_containers(Some(options)).await.map_err(|err| KubeletError::docker("list", err))?;
        let mut containers = Vec::new();
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            match self.inspect_container(&id).await {
                Ok(info) => containers.push(info),
                // Removed between the list and the inspection: it is simply gone.
                Err(KubeletError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        containers.sort_by_key(|c| c.created_at);
        Ok(containers)
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerInfo, KubeletError> {
        let inspect = self
            .docker
            .inspect_container(id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|err| KubeletError::docker(format!("inspect container {}", short(id)), err))?;
        self.info(inspect).ok_or_else(|| KubeletError::NotFound(format!("kubelet container {}", short(id))))
    }

    fn logs(&self, id: &str, options: LogOptions) -> BoxStream<'static, Result<Bytes, KubeletError>> {
        let mut builder = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(options.follow)
            .timestamps(options.timestamps)
            .tail(&options.tail_lines.map_or("all".to_string(), |n| n.to_string()));
        if let Some(since) = options.since_seconds {
            let from = crate::clock::now().as_second() - since;
            builder = builder.since(i32::try_from(from).unwrap_or(0));
        }
        let id = id.to_string();
        self.docker
            .logs(&id, Some(builder.build()))
            .map(move |chunk| {
                chunk
                    .map(|output| output.into_bytes())
                    .map_err(|err| KubeletError::docker(format!("logs of {id}"), err))
            })
            .boxed()
    }

    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecResult, KubeletError> {
        let operation = || format!("exec in {}", short(id));
        let config = ExecConfig {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.docker.create_exec(id, config).await.map_err(|err| KubeletError::docker(operation(), err))?;
        let run = async {
            let mut output = String::new();
            if let bollard::exec::StartExecResults::Attached { output: mut stream, .. } =
                self.docker.start_exec(&exec.id, None).await.map_err(|err| KubeletError::docker(operation(), err))?
            {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|err| KubeletError::docker(operation(), err))?;
                    output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            }
            let inspect =
                self.docker.inspect_exec(&exec.id).await.map_err(|err| KubeletError::docker(operation(), err))?;
            Ok(ExecResult { exit_code: inspect.exit_code.unwrap_or(-1), output })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(KubeletError::Runtime {
                operation: operation(),
                message: format!("command timed out after {}s", timeout.as_secs_f64()),
            }),
        }
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>, KubeletError> {
        match self.docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(ImageInfo {
                id: inspect.id.unwrap_or_default(),
                repo_digest: inspect.repo_digests.unwrap_or_default().into_iter().next(),
                size: inspect.size.unwrap_or_default(),
            })),
            Err(err) => match KubeletError::docker(format!("inspect image {image}"), err) {
                KubeletError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn pull_image(&self, image: &str) -> Result<ImageInfo, KubeletError> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(|err| KubeletError::ImagePull(docker_message(&err)))?;
        }
        self.image_status(image)
            .await?
            .ok_or_else(|| KubeletError::ImagePull(format!("image {image:?} is still missing after its pull")))
    }

    fn container_events(&self) -> BoxStream<'static, Result<String, KubeletError>> {
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{}={}", labels::NODE, self.node)]),
            ("event", vec!["start".into(), "die".into(), "oom".into(), "destroy".into()]),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker
            .events(Some(options))
            .filter_map(|event| async move {
                match event {
                    Ok(event) => {
                        event.actor.and_then(|a| a.attributes).and_then(|mut a| a.remove(labels::POD_UID)).map(Ok)
                    }
                    Err(err) => Some(Err(KubeletError::docker("events", err))),
                }
            })
            .boxed()
    }
}

/// The 12-digit short id `docker ps` shows.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
