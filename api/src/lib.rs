//! # kubelab-api: what every component shares
//!
//! In Kubernetes every component — the apiserver, the scheduler, the controllers, the kubelet, kubectl — speaks
//! one API. This crate is that API for kubelab, like `k8s.io/apimachinery` and `client-go` (or kube-rs'
//! `kube-core` and `kube-client`) are for Kubernetes:
//!
//! - [`resources`]: the table of kinds we serve (group, version, plural, scope...), from which paths, discovery
//!   and storage keys are derived;
//! - [`kinds`]: the seam where a JSON object meets its typed `k8s-openapi` struct, with [`defaults`] and
//!   [`validation`] for each kind;
//! - [`status`]: errors in Kubernetes' own `Status` form;
//! - [`selectors`]: label selectors and field selectors;
//! - [`object`]: small helpers to read and write the metadata of a JSON object;
//! - [`patch`]: the four patch languages, named once for the client and the apiserver;
//! - [`time`]: the current time and an age as `kubectl get` prints it;
//! - [`client`] and [`kubeconfig`]: how a component or the CLI talks to the apiserver, and [`component`]: the
//!   logging and connecting every component's `main` starts with;
//! - [`informer`]: list + watch + a local cache, how every component follows the cluster.
//!
//! The object types themselves are not redefined: they are the `k8s-openapi` types, so the wire format is
//! exactly Kubernetes'.

pub mod client;
pub mod component;
pub mod defaults;
pub mod events;
pub mod informer;
pub mod kinds;
pub mod kubeconfig;
pub mod names;
pub mod object;
pub mod patch;
pub mod quantity;
pub mod resources;
pub mod selectors;
pub mod status;
pub mod taints;
pub mod time;
pub mod validation;

pub use k8s_openapi;
pub use resources::Resource;
pub use status::{ApiError, Cause};
