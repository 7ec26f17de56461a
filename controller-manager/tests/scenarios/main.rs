//! Scenario tests of the controller manager against a real apiserver, driven through its API and the real
//! kubectl, with the test playing the kubelet (see [`cluster`]).
//!
//! - `deployments`: a Deployment converges; rolling updates stay within their surge and unavailability bounds
//!   at every moment, as seen through a watch; `rollout undo`, `scale`, `pause`, `resume`, `restart`, `describe`
//!   and `get -o wide` through kubectl; a rollout that cannot progress reports `ProgressDeadlineExceeded`;
//! - `replicasets`: deleted pods are replaced; orphans are adopted and relabelled pods released.

mod cluster;
mod deployments;
mod replicasets;
