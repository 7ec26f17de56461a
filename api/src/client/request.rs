//! The plumbing under every verb: the URL of an object or a collection, sending a request with the right
//! headers, reading a JSON answer, following list pages, and turning an error answer into an [`ApiError`].
//!
//! Every public method of [`Client`] ends in [`Client::send_json`] (or, for a watch, [`Client::send`]), so this
//! is the one place to look for what goes on the wire.

use super::{Client, ClientError};
use crate::resources::Resource;
use crate::status::ApiError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusDetails};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// `Accept` for ordinary requests.
pub(super) const JSON: &str = "application/json";
/// `Accept` asking for the server-side printed table of `kubectl get`, with plain JSON as a fallback.
pub(super) const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
/// kubectl's page size.
const DEFAULT_PAGE_SIZE: u32 = 500;

impl Client {
    /// Asks for pages (`limit`, then `continue`) until the server says there are no more, and returns the first
    /// page with the `field` array (`items` or `rows`) of every page.
    pub(super) async fn list_pages(
        &self,
        resource: &'static Resource,
        namespace: Option<&str>,
        params: &super::ListParams,
        accept: &str,
        field: &str,
    ) -> Result<Value, ClientError> {
        let path = collection_path_or_all(resource, namespace);
        let limit = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE).to_string();
        let mut first_page: Option<Map<String, Value>> = None;
        let mut all_rows = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = params.query();
            query.push(("limit", limit.clone()));
            if let Some(token) = next.take() {
                query.push(("continue", token));
            }
            let mut page = match self.send_json(Method::GET, &path, &query, accept, None).await? {
                Value::Object(page) => page,
                _ => return Err(ClientError::Decode { url: path, message: "a list must be a JSON object".into() }),
            };
            next = page.get("metadata").and_then(|m| m.get("continue")).and_then(Value::as_str).map(String::from);
            if let Some(Value::Array(rows)) = page.remove(field) {
                all_rows.extend(rows);
            }
            // The first page's metadata (its resourceVersion above all) describes the whole list: later pages
            // are read from the same snapshot.
            first_page.get_or_insert(page);
            if next.as_deref().is_none_or(str::is_empty) {
                break;
            }
        }
        let mut list = first_page.unwrap_or_default();
        if let Some(meta) = list.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("continue");
        }
        list.insert(field.to_string(), Value::Array(all_rows));
        Ok(Value::Object(list))
    }

    /// Sends a request and reads a JSON answer.
    pub(super) async fn send_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        accept: &str,
        body: Option<(&str, &Value)>,
    ) -> Result<Value, ClientError> {
        let url = build_url(&self.base, path, query)?;
        let response = self.send(method, url.clone(), accept, body).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Http { url: url.to_string(), source })?;
        serde_json::from_slice(&bytes).map_err(|err| decode_error(url.as_str(), err))
    }

    // ANCHOR: send
    /// Sends a request; a non-2xx answer becomes [`ClientError::Api`].
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        accept: &str,
        body: Option<(&str, &Value)>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, url.clone()).header(reqwest::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body.to_string());
        }
        let response = request.send().await.map_err(|source| {
            if source.is_connect() {
                ClientError::Unreachable { server: self.base.clone(), source }
            } else {
                ClientError::Http { url: url.to_string(), source }
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&text)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&text).trim().to_string()));
        Err(api_error_from_body(status.as_u16(), status.canonical_reason().unwrap_or(""), &body).into())
    }
    // ANCHOR_END: send
}

/// The URL of one object; a namespaced resource needs a namespace.
pub(super) fn object_path(resource: &Resource, namespace: Option<&str>, name: &str) -> Result<String, ClientError> {
    if name.is_empty() {
        return Err(ClientError::Usage(format!("a {} needs a name", resource.singular)));
    }
    Ok(format!("{}/{name}", collection_path(resource, namespace)?))
}

/// The collection of one namespace (or of a cluster-scoped resource), for creating objects.
pub(super) fn collection_path(resource: &Resource, namespace: Option<&str>) -> Result<String, ClientError> {
    match namespace {
        None | Some("") if resource.namespaced => {
            Err(ClientError::Usage(format!("{} are namespaced: a namespace is needed", resource.plural)))
        }
        _ => Ok(resource.collection_path(namespace)),
    }
}

/// The collection of one namespace, or of all when `namespace` is `None`, for lists and watches.
pub(super) fn collection_path_or_all(resource: &Resource, namespace: Option<&str>) -> String {
    resource.collection_path(namespace.filter(|ns| !ns.is_empty()))
}

/// `base` + `path` + `?query`, with query values percent-encoded (selectors contain `=`, `,` and `!`).
pub fn build_url(base: &str, path: &str, query: &[(&'static str, String)]) -> Result<Url, ClientError> {
    let mut url = Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
        .map_err(|err| ClientError::Usage(format!("invalid URL {base}{path}: {err}")))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

/// Lists omit `kind` and `apiVersion` on their items; put them back so every object stands on its own.
pub(super) fn with_type(resource: &Resource, mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.entry("kind").or_insert_with(|| Value::String(resource.kind.into()));
        map.entry("apiVersion").or_insert_with(|| Value::String(resource.api_version()));
    }
    object
}

/// Converts an answer to a `k8s-openapi` type; `url` says where a mismatch came from.
pub(super) fn from_value<K: DeserializeOwned>(url: &str, object: Value) -> Result<K, ClientError> {
    serde_json::from_value(object).map_err(|err| decode_error(url, err))
}

/// An answer that is not what we expected, with the URL that sent it.
pub(super) fn decode_error(url: &str, err: serde_json::Error) -> ClientError {
    ClientError::Decode { url: url.to_string(), message: err.to_string() }
}

/// Reads an error answer: a `Status` when the server sent one, else the HTTP status (`404 Not Found`) and whatever
/// text came with it.
pub fn api_error_from_body(http_code: u16, reason_phrase: &str, body: &Value) -> ApiError {
    if body.get("kind").and_then(Value::as_str) == Some("Status") || body.get("message").is_some() {
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(String::from);
        let details = body.get("details").and_then(|d| serde_json::from_value::<StatusDetails>(d.clone()).ok());
        let status = Status {
            code: body.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()),
            details,
            message: text("message"),
            metadata: Default::default(),
            reason: text("reason"),
            status: text("status"),
        };
        return ApiError::from_status(status, http_code);
    }
    let reason = match http_code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let message = match body.as_str().filter(|text| !text.is_empty()) {
        Some(text) => text.to_string(),
        None => format!(
            "the server responded with the status code {http_code} ({reason_phrase}) but did not return more information"
        ),
    };
    ApiError { code: http_code, reason: reason.to_string(), message, details: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ListParams;
    use crate::resources;
    use serde_json::json;

    #[test]
    fn urls_are_built_from_the_resource_table_with_encoded_selectors() {
        let deploy = resources::by_kind("apps/v1", "Deployment").unwrap();
        let params = ListParams::default().labels("app=web,tier!=db").fields("metadata.name=web");
        let mut query = params.query();
        query.push(("limit", "500".into()));
        let url =
            build_url("http://127.0.0.1:6443/", &collection_path_or_all(deploy, Some("default")), &query).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:6443/apis/apps/v1/namespaces/default/deployments\
             ?labelSelector=app%3Dweb%2Ctier%21%3Ddb&fieldSelector=metadata.name%3Dweb&limit=500"
        );
        let all = build_url("http://h:1", &collection_path_or_all(deploy, None), &[]).unwrap();
        assert_eq!(all.as_str(), "http://h:1/apis/apps/v1/deployments");
    }

    #[test]
    fn cluster_scoped_objects_ignore_the_namespace_and_namespaced_ones_require_it() {
        let nodes = resources::by_kind("v1", "Node").unwrap();
        assert_eq!(object_path(nodes, Some("default"), "n1").unwrap(), "/api/v1/nodes/n1");
        assert_eq!(object_path(nodes, None, "n1").unwrap(), "/api/v1/nodes/n1");
        let pods = resources::by_kind("v1", "Pod").unwrap();
        assert!(matches!(object_path(pods, None, "p"), Err(ClientError::Usage(_))));
    }

    #[test]
    fn an_error_without_a_status_body_falls_back_to_the_http_status() {
        let err = api_error_from_body(404, "Not Found", &Value::String(String::new()));
        assert_eq!(err.reason, "NotFound");
        assert!(err.message.contains("404 (Not Found)"), "{}", err.message);
        let status = json!({"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad",
            "details": {"name": "web", "kind": "Deployment", "causes": [{"field": "spec.replicas", "message": "m"}]}});
        let err = api_error_from_body(422, "Unprocessable Entity", &status);
        assert_eq!(err.causes()[0].field.as_deref(), Some("spec.replicas"));
    }
}
