//! Starting and stopping the apiserver, and the routes around the REST handler.
//!
//! Besides resources, a Kubernetes apiserver answers a handful of fixed paths that clients rely on:
//! `/version` (kubectl checks it first), `/healthz`, `/livez`, `/readyz`, the discovery documents
//! (`/api`, `/apis`, ...), which tell clients what resources exist, and `/openapi/v2` and `/openapi/v3`, which
//! kubectl reads to validate manifests, build patches and explain fields. Every path is answered with or without
//! a trailing slash, as Kubernetes does.

use crate::registry::Registry;
use crate::rest::{self, AppState, error_response, json_response};
use crate::store::{Store, embedded::EmbeddedStore, etcd::EtcdStore};
use crate::{discovery, openapi};
use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kubelab_api::{ApiError, resources};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run an apiserver.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen, e.g. `127.0.0.1:6443`; port 0 picks a free port (tests).
    pub bind: SocketAddr,
    /// Where the embedded store keeps its file (`<data_dir>/store.redb`) when no etcd is given.
    pub data_dir: PathBuf,
    /// etcd endpoints (`http://127.0.0.1:2379`); empty means the embedded store.
    pub etcd_servers: Vec<String>,
    /// How often watches that asked for bookmarks get one (Kubernetes: about a minute).
    pub bookmark_interval: Duration,
    /// Where Service cluster IPs come from (`--service-cluster-ip-range`, default `10.96.0.0/12`).
    pub service_cluster_ip_range: crate::allocator::IpRange,
    /// Where node ports come from (`--service-node-port-range`, default `30000-32767`).
    pub service_node_port_range: crate::allocator::PortRange,
}

impl Config {
    /// A config with Kubernetes' defaults for everything but where to listen and where to keep data.
    pub fn new(bind: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            bind,
            data_dir,
            etcd_servers: Vec::new(),
            bookmark_interval: Duration::from_secs(60),
            service_cluster_ip_range: Default::default(),
            service_node_port_range: Default::default(),
        }
    }
}

/// A running apiserver; dropping it does not stop it, call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// The address it actually listens on (useful when `bind` had port 0).
    pub addr: SocketAddr,
    /// Which store it uses, for the startup message: `embedded (<path>)` or `etcd (<urls>)`.
    pub store_description: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    /// `None` once [`RunningServer::wait`] has seen it end.
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Kept to stop its background work on shutdown.
    registry: Registry,
    /// Lets `shutdown` wait until every user of the store is gone, so the same data dir can be reopened at once.
    store: std::sync::Weak<dyn Store>,
}

impl RunningServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, ends open watches and waits for the server to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        let result = match self.task {
            Some(task) => task.await?,
            None => Ok(()),
        };
        self.registry.stop().await;
        drop(self.registry);
        // Background tasks (the namespace cache, watches) end when aborted, which takes a moment: the store file
        // is closed when the last of them lets go.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.store.strong_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        result
    }

    /// Waits until the server stops by itself (only on a fatal error). Cancel-safe: use it in a `select!` beside
    /// Ctrl-C, then call [`RunningServer::shutdown`].
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        let Some(task) = self.task.as_mut() else { return Ok(()) };
        let result = task.await;
        self.task = None;
        result?
    }
}

/// The namespaces every cluster starts with, as the Kubernetes apiserver creates them at boot.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Opens the store, creates the system namespaces, binds the port and starts serving in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    // Bind first: a port already in use is the most common startup error, and should not wait for the store.
    let listener = tokio::net::TcpListener::bind(config.bind).await.with_context(|| match config.bind.port() {
        0 => format!("cannot listen on {}", config.bind),
        port => format!("cannot listen on {}: is another apiserver (or `kubelab up`) using port {port}?", config.bind),
    })?;
    let addr = listener.local_addr()?;
    let (store, store_description): (Arc<dyn Store>, String) = if config.etcd_servers.is_empty() {
        let path = config.data_dir.join("store.redb");
        let store = EmbeddedStore::open(&path)?;
        (Arc::new(store), format!("embedded ({})", path.display()))
    } else {
        let store = EtcdStore::connect(&config.etcd_servers).await?;
        (Arc::new(store), format!("etcd ({})", config.etcd_servers.join(",")))
    };
    let weak_store = Arc::downgrade(&store);
    let registry =
        Registry::new(store).with_service_ranges(config.service_cluster_ip_range, config.service_node_port_range);
    create_system_namespaces(&registry).await;

    let registry_handle = registry.clone();
    let app = router(AppState { registry, bookmark_interval: config.bookmark_interval });
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    // Each watch event is its own small write. With Nagle's algorithm on, a write that follows an unacknowledged
    // one waits for the client's delayed ACK (~40 ms on Linux): a streaming list's end bookmark arrived that late
    // after the objects. Go, and so kube-apiserver, sets TCP_NODELAY on every TCP connection; we do the same.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await?;
        Ok(())
    });
    tracing::info!(%addr, store = %store_description, "apiserver listening");
    Ok(RunningServer {
        addr,
        store_description,
        shutdown,
        task: Some(task),
        registry: registry_handle,
        store: weak_store,
    })
}

/// Creates `default`, `kube-system`... unless they exist. A store that is down now is not fatal: the namespaces
/// are created on the next start, and the server answers 503 until the store is back.
async fn create_system_namespaces(registry: &Registry) {
    let Some(namespaces) = resources::by_path("", "v1", "namespaces") else { return };
    for name in SYSTEM_NAMESPACES {
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match registry.create(namespaces, "", object, &Default::default()).await {
            Ok(_) => tracing::info!(namespace = name, "created system namespace"),
            Err(err) if err.code == 409 => {}
            Err(err) => tracing::warn!(namespace = name, error = %err, "could not create system namespace"),
        }
    }
}

/// Every route the apiserver serves.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/version", get(version))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api", get(discovery_core))
        .route("/apis", get(discovery_groups))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(|| async { json_response(StatusCode::OK, &openapi::index(), &[]) }))
        .route("/openapi/v3/{*path}", get(openapi_document))
        .fallback(resource_or_legacy_discovery)
        .with_state(state);
    // The trailing slash goes before routing, so an outer router runs the middleware and hands every request on.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(trim_trailing_slash))
        .layer(middleware::from_fn(log_request))
}

// ANCHOR: trailing_slash
/// `/version/`, `/api/`, `/apis/apps/v1/`, `/api/v1/namespaces/default/pods/`: Kubernetes answers every path with
/// or without a trailing slash (the Python client asks for `/version/`), so the slash is dropped before routing.
async fn trim_trailing_slash(mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let rewritten = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    next.run(request).await
}
// ANCHOR_END: trailing_slash

/// kubectl's dispatcher on these machines picks its built-in 1.32 when the minor version is "32".
async fn version() -> Response {
    let info = json!({
        "major": "1",
        "minor": "32",
        "gitVersion": concat!("v1.32.0-kubelab.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    });
    json_response(StatusCode::OK, &info, &[])
}

/// Ready means the store answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.registry.store().current_revision().await {
        Ok(_) => "ok".into_response(),
        Err(err) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("[-]store failed: {err}\nreadyz check failed\n")).into_response()
        }
    }
}

async fn discovery_core(headers: HeaderMap) -> Response {
    discovery_response(&headers, true)
}

async fn discovery_groups(headers: HeaderMap) -> Response {
    discovery_response(&headers, false)
}

/// Aggregated discovery when the client asks for it (kubectl does), the legacy documents otherwise.
fn discovery_response(headers: &HeaderMap, core: bool) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match discovery::negotiate(accept) {
        Some(version) => {
            let body = discovery::aggregated(core, version).to_string();
            (StatusCode::OK, [(header::CONTENT_TYPE, discovery::content_type(version))], body).into_response()
        }
        None => {
            let body =
                if core { discovery::api_versions(&server_address(headers)) } else { discovery::api_group_list() };
            json_response(StatusCode::OK, &body, &[])
        }
    }
}

/// The address clients used to reach us, echoed in `/api`'s `serverAddressByClientCIDRs`.
fn server_address(headers: &HeaderMap) -> String {
    headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1:6443").to_string()
}

// ANCHOR: openapi_v2
/// `/openapi/v2`: protobuf when the client asks for it (client-go's `OpenAPISchema()`, kubectl 1.27 and 1.28
/// do), JSON otherwise.
async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains(openapi::V2_PROTOBUF) {
        (StatusCode::OK, [(header::CONTENT_TYPE, openapi::V2_PROTOBUF_RESPONSE)], openapi::v2_protobuf())
            .into_response()
    } else {
        json_response(StatusCode::OK, openapi::v2_json(), &[])
    }
}
// ANCHOR_END: openapi_v2

async fn openapi_document(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches("/openapi/v3/");
    match openapi::group_version_document(path) {
        Some(doc) => json_response(StatusCode::OK, doc, &[]),
        None => error_response(ApiError::no_such_path(uri.path())),
    }
}

/// `/api/v1` and `/apis/<group>/<version>` are legacy discovery; anything deeper is a resource.
async fn resource_or_legacy_discovery(state: State<AppState>, request: Request) -> Response {
    let path = request.uri().path().trim_end_matches('/').to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let legacy = match segments.as_slice() {
        ["api", version] => discovery::api_resource_list("", version),
        ["apis", group, version] => discovery::api_resource_list(group, version),
        ["apis", group] => discovery::api_group_list()["groups"]
            .as_array()
            .and_then(|groups| groups.iter().find(|g| g["name"] == *group).cloned())
            .map(|mut g| {
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                g
            }),
        _ => {
            let (parts, body) = request.into_parts();
            return rest::handle(state, parts.method, parts.uri, parts.headers, body).await;
        }
    };
    match legacy {
        Some(doc) => json_response(StatusCode::OK, &doc, &[]),
        None => error_response(ApiError::no_such_path(&path)),
    }
}

/// One line per request at debug level: what `-v=6` shows for a real apiserver's audit log.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, %uri, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_server_lets_go_of_its_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
        let server = start(config.clone()).await.unwrap();
        server.shutdown().await.unwrap();
        EmbeddedStore::open(&dir.path().join("store.redb")).expect("the store file is free after shutdown");
        let again = start(config).await.unwrap();
        again.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_path_answers_alike_with_and_without_a_trailing_slash() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf())).await.unwrap();
        let http = reqwest::Client::new();
        let get = |path: String| {
            let http = http.clone();
            let url = format!("{}{path}", server.url());
            async move {
                let response = http.get(url).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        for path in [
            "/version",
            "/healthz",
            "/api",
            "/apis",
            "/api/v1",
            "/apis/apps",
            "/apis/apps/v1",
            "/openapi/v2",
            "/openapi/v3",
            "/openapi/v3/apis/apps/v1",
            "/api/v1/namespaces",
            "/api/v1/namespaces/default",
        ] {
            let (status, body) = get(path.to_string()).await;
            assert_eq!(status, 200, "{path}: {body}");
            let (slashed_status, slashed_body) = get(format!("{path}/")).await;
            assert_eq!((slashed_status, &slashed_body), (status, &body), "{path}/");
        }
        let (status, body) = get("/api/v1/namespaces/?limit=1".to_string()).await;
        assert_eq!(status, 200, "the query survives: {body}");
        assert!(body.contains(r#""continue""#), "limit=1 of four namespaces continues: {body}");
        let (status, _) = get("/nonsense/".to_string()).await;
        assert_eq!(status, 404);
        server.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn openapi_v2_is_protobuf_when_asked_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(Config::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf())).await.unwrap();
        let response = reqwest::Client::new()
            .get(format!("{}/openapi/v2", server.url()))
            .header(header::ACCEPT, openapi::V2_PROTOBUF)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CONTENT_TYPE], openapi::V2_PROTOBUF_RESPONSE);
        assert_eq!(response.bytes().await.unwrap(), openapi::v2_protobuf());
        server.shutdown().await.unwrap();
    }
}
