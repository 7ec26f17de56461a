//! # kubelab-testkit: what every test harness shares
//!
//! Tests come in three tiers (STYLE.md): unit tests of pure functions, scenario tests of one component against a
//! real apiserver, and end-to-end tests of the whole cluster in `tests/`. The last two need the same things, and
//! this crate is their one copy:
//!
//! - [`server`]: [`spawn_apiserver`] (or [`spawn_apiserver_on_etcd`]) starts the real apiserver in the test's
//!   process on a free port, with its data and a kubeconfig in a fresh temporary directory, as a [`TestServer`],
//!   which also hands out a kubectl for it;
//! - [`kubectl`]: [`Kubectl`] runs the real kubectl (any release installed) against a test server, and
//!   [`KubectlWatch`] follows `kubectl get -w` line by line; [`run_command`] runs any other program the same way;
//! - [`task`]: [`AbortOnDrop`] ends a component started beside the server when the test ends, passed or failed;
//! - [`wait`]: [`wait_for`] asks again and again until a condition holds, instead of sleeping and hoping, and
//!   says what it waited for and what it saw last when it gives up.
//!
//! Every component's tests take this crate as a dev-dependency: the scheduler's, the controller manager's and
//! the kubelet's scenarios, and `kubelab-tests`, which adds kube-rs, whole clusters and the controller manager on
//! top. The apiserver's own tests are the exception: this crate depends on the apiserver, so the apiserver's
//! tests using it would compile the apiserver twice, as two incompatible crates; they start their server by hand.
//! For the same reason this crate does not start the controller manager (whose tests use it):
//! `kubelab-tests` does.
//!
//! What we leave out: a fake apiserver. Tests talk to the real one, which starts in milliseconds on the embedded
//! store, so there is nothing to gain from a mock that could disagree with it.

pub mod kubectl;
pub mod server;
pub mod task;
pub mod wait;

pub use kubectl::{Kubectl, KubectlOutput, KubectlWatch, run_command};
pub use server::{TestServer, spawn_apiserver, spawn_apiserver_on_etcd, write_kubeconfig};
pub use task::AbortOnDrop;
pub use wait::{wait_for, wait_for_some};

pub use kubelab_apiserver::store::etcd_server::EtcdServer;
