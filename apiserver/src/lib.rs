//! # kubelab-apiserver: the front door of the cluster
//!
//! In Kubernetes, the API server is the only component that talks to the cluster store. Everything else — the
//! scheduler, the controllers, every kubelet, kubectl, a dashboard — reads and writes objects through its REST
//! API, and learns about changes by *watching* it. This crate is that server, in the same shape as
//! `kube-apiserver`, small enough to read in one sitting:
//!
//! ```text
//!   kubectl / kubelab / components
//!              │  HTTP: GET, POST, PUT, PATCH, DELETE, ?watch=1
//!              ▼
//!   server ── fixed paths: /version, /healthz, discovery (/api, /apis), /openapi/v2, /openapi/v3
//!              │
//!   rest ───── one handler for every resource: path → (resource, namespace, name, subresource)
//!              │                               (paths), body → JSON (protobuf for kubectl create)
//!   registry ─ create / update / patch / delete / watch for any kind:
//!              │  decode → system metadata → defaults → validation → admission → store
//!              ▼
//!   store ──── get / list / create / update-if-revision / delete / watch-from-revision
//!              ├── etcd (keys as Kubernetes lays them out: /registry/deployments/default/web)
//!              └── embedded (a redb file, same semantics, so `kubelab up` needs nothing installed)
//! ```
//!
//! ## What it watches and writes
//! It watches nothing and decides nothing: it stores what it is told, after checking it, and tells watchers.
//! The few fields it writes itself are system metadata (`uid`, `creationTimestamp`, `generation`,
//! `resourceVersion`, `deletionTimestamp`), the effects of two subresources (`scale`, `binding`), and a Service's
//! cluster IP and node ports, which it hands out from two ranges kept in the store.
//!
//! ## The modules, in reading order
//! - [`store`]: the revisioned key-value contract and its two implementations;
//! - [`registry`]: the generic life of an object (create, update, status vs spec, delete with finalizers
//!   and grace periods, watch with selectors, and streaming lists that start a watch with every object);
//! - [`paths`] and [`rest`]: Kubernetes' URL grammar and the one handler serving it;
//! - [`allocator`]: Service cluster IPs and node ports, a pure bitmap decision over ranges kept in the store;
//! - [`patch`]: JSON patch, merge patch and the strategic merge patch that `kubectl apply` relies on;
//! - [`discovery`], [`openapi`] and [`table`]: what kubectl needs to find resources, validate manifests
//!   and print `kubectl get` columns;
//! - [`protobuf`]: reading the protobuf bodies `kubectl create` sends;
//! - [`logs`]: `kubectl logs`, forwarded to the kubelet of the pod's node;
//! - [`server`]: the routes and startup.
//!
//! ## What real Kubernetes does that we leave out
//! - TLS, authentication, authorization (RBAC) and admission webhooks: kubelab speaks plain HTTP to anyone;
//! - the watch cache: every watch here is a watch on the store;
//! - managed fields and conflicts between field managers in server-side apply (our apply is a strategic merge);
//! - API versions conversion (each kind is served in one version), CRDs, aggregation;
//! - consistent paginated lists at one revision (each page reads the current state);
//! - protobuf responses (we read protobuf bodies, but always answer JSON);
//! - dual-stack (IPv6) Services, and the repair loops that give back cluster IPs and node ports held by no Service.
//!
//! Book chapter: "The API server and the cluster store".

pub mod allocator;
pub mod discovery;
pub mod logs;
pub mod openapi;
pub mod patch;
pub mod paths;
pub mod protobuf;
pub mod registry;
pub mod rest;
pub mod server;
pub mod store;
pub mod table;

pub use server::{Config, RunningServer, start};
