//! # kubelab-tests: the cluster seen from outside
//!
//! Unit tests check one function; the tests in this crate check what a *user* of kubelab sees. Each one starts a
//! real apiserver (in this process, on a free port, with a fresh data directory) and drives it the way people
//! and programs drive a Kubernetes cluster:
//!
//! - with the real `kubectl` on the `PATH` (`tests/kubectl.rs`): apply a manifest written for real Kubernetes,
//!   read the columns it prints, watch, get refused with the right message;
//! - with raw HTTP (`tests/http.rs`): the edge cases kubectl never sends (malformed JSON, huge bodies, a watch
//!   from a forgotten revision, etcd going away and coming back);
//! - with kube-rs (`tests/kube_rs.rs`): a second client that nobody here wrote;
//! - across restarts (`tests/persistence.rs`): the embedded store and etcd keep what they were given;
//! - with every kubectl from 1.27 to 1.33 (`tests/kubectl_versions.rs`) and `kubectl explain` (`tests/explain.rs`);
//! - with kubectl 1.37's streaming lists (`tests/watch_list.rs`) and the official Python client
//!   (`tests/python_client.rs`), clients newer than the server or written by others;
//! - with the `kubelab` binary itself (`tests/cli.rs`);
//! - on whole clusters with real Docker containers: nodes and pods (`tests/nodes.rs`), controllers
//!   (`tests/controllers.rs`), the pod network across nodes (`tests/pod_network.rs`), Service addresses
//!   (`tests/services.rs`) and traffic through them (`tests/services_traffic.rs`).
//!
//! The harness, in reading order:
//! - [`server`]: [`spawn_apiserver`] and [`spawn_apiserver_on_etcd`] start a [`TestServer`] and write a
//!   kubeconfig for it (the `kubelab-testkit` crate's, which every component's tests share, with kube-rs and the
//!   controller manager added);
//! - [`Kubectl`] (from `kubelab-testkit`, as `server.kubectl()`) runs the real kubectl against that server, and
//!   [`KubectlWatch`] follows `kubectl get -w` line by line;
//! - [`venv`]: the clients from PyPI (kubectl 1.37, the Python `kubernetes` client) that `scripts/deps.sh test`
//!   installs;
//! - [`wait_for`] (from `kubelab-testkit`) polls a condition until it holds, instead of sleeping and hoping;
//! - [`cluster`]: [`spawn_cluster`] starts a whole cluster with nodes running real Docker containers;
//! - [`check`]: reading what kubectl prints ([`tables`]) and comparing what we sent with what came back
//!   ([`missing_fields`]);
//! - [`bench`]: what the `bench_*` programs share to write their own sections of `BENCHMARKS.md`.
//!
//! Every test owns everything it uses: its server, its temporary directory, its etcd, its kubectl processes.
//! They are cleaned up when the test ends, passed or failed (temporary directories and child processes are
//! removed on drop, which also runs while a failed assertion unwinds). So tests run in parallel and never depend
//! on a service that something else started — the machine's Docker engine aside, which the cluster tests use.
//!
//! Book chapter: "The API server and the cluster store"; `tests/cli.rs` is also shown in "The kubelab CLI".

pub mod bench;
pub mod check;
pub mod cluster;
pub mod server;
pub mod venv;

pub use check::{Table, missing_fields, tables};
pub use cluster::{TestCluster, spawn_cluster};
pub use kubelab_testkit::{AbortOnDrop, Kubectl, KubectlOutput, KubectlWatch, run_command, wait_for};
pub use server::{TestServer, spawn_apiserver, spawn_apiserver_on_etcd};

pub use kubelab_apiserver::store::etcd_server::EtcdServer;
