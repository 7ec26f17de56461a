//! The one REST handler that serves every resource.
//!
//! A request is parsed into a [`Target`] (which resource, which namespace, which object, which subresource), and
//! its HTTP verb becomes a Kubernetes verb:
//!
//! | HTTP     | collection (`.../pods`)          | object (`.../pods/web`) | subresource (`.../web/status`)    |
//! |----------|----------------------------------|-------------------------|-----------------------------------|
//! | `GET`    | list, or watch with `?watch=1`   | get                     | get (status, scale)               |
//! | `POST`   | create                           |                         | create (binding)                  |
//! | `PUT`    |                                  | update                  | update (status, scale)            |
//! | `PATCH`  |                                  | patch                   | patch (status, scale)             |
//! | `DELETE` | deletecollection                 | delete                  |                                   |
//!
//! Nothing here is specific to a kind: that is the registry's and the kind's rules' business. This layer only
//! reads bodies and query parameters, and writes objects, tables, lists and watch streams back.

use crate::patch::PatchType;
use crate::paths::{self, Target};
use crate::protobuf;
use crate::registry::watch_list::bookmark_object;
use crate::registry::{
    DeleteOptions, FieldValidation, ListOptions, ListQuery, Part, Registry, WatchEvent, WriteOptions, Written,
    validate_list_query,
};
use crate::table::{self, IncludeObject, TableOptions};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kubelab_api::{ApiError, Resource};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Kubernetes refuses request bodies over 3 MiB (etcd's own limit is 1.5 MiB per value by default).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
}

/// The parsed query string.
type Params = HashMap<String, String>;

/// Entry point for every `/api/...` and `/apis/...` resource path.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let params: Params = Query::try_from_uri(&uri).map(|Query(p)| p).unwrap_or_default();
    let result = match paths::parse(&path) {
        Ok(target) => serve(&state, method, target, &params, &headers, body).await,
        Err(paths::NoSuchPath) => Err(ApiError::no_such_path(&path)),
    };
    result.unwrap_or_else(error_response)
}

// ANCHOR: serve
async fn serve(
    state: &AppState,
    method: Method,
    target: Target,
    params: &Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let registry = &state.registry;
    let resource = target.resource;
    let ns = target.namespace.clone().unwrap_or_default();
    let write = WriteOptions {
        dry_run: params.get("dryRun").is_some_and(|v| v == "All"),
        field_validation: FieldValidation::from_query(params.get("fieldValidation").map(String::as_str)),
    };
    let table = table_options(headers, params)?;
    let name = target.name.clone();
    let sub = target.subresource.map(|s| s.name);

    match (&method, name.as_deref(), sub) {
        // Collections.
        (&Method::GET, None, None) if is_true(params.get("watch")) => watch(state, &target, params, table).await,
        (&Method::GET, None, None) => {
            validate_list_query(&list_query(params)?)?;
            let page = registry.list(resource, target.namespace.as_deref(), &list_options(params)).await?;
            if let Some(options) = table {
                let rv = page.resource_version.to_string();
                let mut rows = table::table_with(resource, &page.items, &rv, chrono::Utc::now(), options);
                if let Some(token) = page.continue_token {
                    rows["metadata"]["continue"] = json!(token);
                }
                Ok(json_response(StatusCode::OK, &rows, &[]))
            } else {
                let mut metadata = json!({"resourceVersion": page.resource_version.to_string()});
                if let Some(token) = page.continue_token {
                    metadata["continue"] = json!(token);
                }
                let list = json!({"kind": resource.list_kind(), "apiVersion": resource.api_version(), "metadata": metadata, "items": page.items});
                Ok(json_response(StatusCode::OK, &list, &[]))
            }
        }
        (&Method::POST, None, None) => {
            if resource.namespaced && target.namespace.is_none() {
                return Err(ApiError::method_not_allowed(format!(
                    "create {} needs a namespace in the path",
                    resource.plural
                )));
            }
            let object = read_object(headers, body).await?;
            written_response(registry.create(resource, &ns, object, &write).await?)
        }
        (&Method::DELETE, None, None) => {
            let options = delete_options(params, &read_optional_json(body).await?);
            let items = registry
                .delete_collection(resource, target.namespace.as_deref(), &list_options(params), &options)
                .await?;
            let list = json!({"kind": resource.list_kind(), "apiVersion": resource.api_version(), "metadata": {}, "items": items});
            Ok(json_response(StatusCode::OK, &list, &[]))
        }
        // One object.
        (&Method::GET, Some(name), None | Some("status")) => {
            let object = registry.get(resource, &ns, name).await?;
            if let Some(options) = table {
                Ok(json_response(
                    StatusCode::OK,
                    &table::watch_row_table(resource, &object, chrono::Utc::now(), options),
                    &[],
                ))
            } else {
                Ok(json_response(StatusCode::OK, &object, &[]))
            }
        }
        (&Method::PUT, Some(name), None | Some("status")) => {
            let part = if sub == Some("status") { Part::Status } else { Part::Main };
            let object = read_object(headers, body).await?;
            written_response(registry.update(resource, &ns, name, object, part, &write).await?)
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let part = if sub == Some("status") { Part::Status } else { Part::Main };
            let patch_type = patch_type(headers)?;
            let bytes = read_body(body).await?;
            written_response(registry.patch(resource, &ns, name, patch_type, &bytes, part, &write).await?)
        }
        (&Method::DELETE, Some(name), None) => {
            let options = delete_options(params, &read_optional_json(body).await?);
            let object = registry.delete(resource, &ns, name, &options).await?;
            Ok(json_response(StatusCode::OK, &object, &[]))
        }
        // Subresources.
        (&Method::GET, Some(name), Some("scale")) => {
            Ok(json_response(StatusCode::OK, &registry.get_scale(resource, &ns, name).await?, &[]))
        }
        (&Method::PUT, Some(name), Some("scale")) => {
            let scale = read_object(headers, body).await?;
            Ok(json_response(StatusCode::OK, &registry.update_scale(resource, &ns, name, scale, &write).await?, &[]))
        }
        (&Method::PATCH, Some(name), Some("scale")) => {
            let patch_type = patch_type(headers)?;
            let bytes = read_body(body).await?;
            Ok(json_response(
                StatusCode::OK,
                &registry.patch_scale(resource, &ns, name, patch_type, &bytes, &write).await?,
                &[],
            ))
        }
        (&Method::GET, Some(name), Some("log")) => crate::logs::pod_logs(registry, &ns, name, params).await,
        (&Method::POST, Some(name), Some("binding")) => {
            let binding = read_object(headers, body).await?;
            Ok(json_response(StatusCode::CREATED, &registry.bind(resource, &ns, name, &binding).await?, &[]))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            describe(resource, &target)
        ))),
    }
}
// ANCHOR_END: serve

/// `GET ...?watch=1`: a chunked stream of newline-delimited JSON events.
async fn watch(
    state: &AppState,
    target: &Target,
    params: &Params,
    table: Option<TableOptions>,
) -> Result<Response, ApiError> {
    let resource: &'static Resource = target.resource;
    let bookmarks = is_true(params.get("allowWatchBookmarks")).then_some(state.bookmark_interval);
    let events = state
        .registry
        .watch(resource, target.namespace.as_deref(), &list_options(params), &list_query(params)?, bookmarks)
        .await?;
    let timeout = params.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).map(Duration::from_secs);
    // As Kubernetes does, only the first event's Table carries the column definitions.
    let mut first = true;
    let lines = events.map(move |event| {
        let options = table.map(|options| TableOptions { no_headers: !std::mem::take(&mut first), ..options });
        Ok::<_, std::convert::Infallible>(Bytes::from(watch_line(resource, event, options)))
    });
    let body = match timeout {
        Some(timeout) => Body::from_stream(lines.take_until(tokio::time::sleep(timeout))),
        None => Body::from_stream(lines),
    };
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// One line of a watch stream: `{"type":"MODIFIED","object":{...}}\n`.
fn watch_line(resource: &Resource, event: WatchEvent, table: Option<TableOptions>) -> String {
    let as_wire = |object: Value| match table {
        Some(options) => table::watch_row_table(resource, &object, chrono::Utc::now(), options),
        None => object,
    };
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", as_wire(o)),
        WatchEvent::Modified(o) => ("MODIFIED", as_wire(o)),
        WatchEvent::Deleted(o) => ("DELETED", as_wire(o)),
        WatchEvent::Bookmark(rv) => ("BOOKMARK", bookmark_object(resource.kind, &resource.api_version(), rv, false)),
        WatchEvent::InitialEventsEnd(rv) => {
            ("BOOKMARK", bookmark_object(resource.kind, &resource.api_version(), rv, true))
        }
        WatchEvent::Error(err) => ("ERROR", json!(err.to_status_value())),
    };
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    line
}

/// `Some` when the client asked for server-side printing (`Accept: application/json;as=Table;...`), as
/// kubectl does for `get`: then objects are answered as rows of a `Table`.
fn table_options(headers: &HeaderMap, params: &Params) -> Result<Option<TableOptions>, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let first_choice = accept.split(',').next().unwrap_or("");
    if !first_choice.contains("as=Table") {
        return Ok(None);
    }
    let value = params.get("includeObject").map(String::as_str).unwrap_or("");
    let include_object = IncludeObject::from_query(value)
        .ok_or_else(|| ApiError::bad_request(format!("includeObject: unsupported value {value:?}")))?;
    Ok(Some(TableOptions { include_object, no_headers: false }))
}

fn is_true(value: Option<&String>) -> bool {
    value.and_then(|v| parse_bool(v)).unwrap_or(false)
}

/// The parameters that say which state a list or watch starts from (see [`crate::registry::watch_list`]).
fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    let send_initial_events = match params.get("sendInitialEvents").map(String::as_str) {
        None => None,
        Some(value) => Some(parse_bool(value).ok_or_else(|| {
            ApiError::bad_request(format!("sendInitialEvents: invalid value {value:?}: must be true or false"))
        })?),
    };
    Ok(ListQuery {
        watch: is_true(params.get("watch")),
        resource_version: params.get("resourceVersion").cloned(),
        resource_version_match: params.get("resourceVersionMatch").cloned().filter(|m| !m.is_empty()),
        send_initial_events,
        allow_watch_bookmarks: is_true(params.get("allowWatchBookmarks")),
        continuing: params.get("continue").is_some_and(|c| !c.is_empty()),
    })
}

/// Booleans in a query string, as Go's `strconv.ParseBool` reads them (what Kubernetes uses).
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn list_options(params: &Params) -> ListOptions {
    ListOptions {
        label_selector: params.get("labelSelector").cloned(),
        field_selector: params.get("fieldSelector").cloned(),
        limit: params.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: params.get("continue").cloned().filter(|c| !c.is_empty()),
    }
}

fn delete_options(params: &Params, body: &Value) -> DeleteOptions {
    DeleteOptions {
        propagation_policy: params.get("propagationPolicy").cloned(),
        grace_period_seconds: params.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        dry_run: params.get("dryRun").is_some_and(|v| v == "All"),
        ..Default::default()
    }
    .merge_body(body)
}

fn patch_type(headers: &HeaderMap) -> Result<PatchType, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    PatchType::from_content_type(content_type).ok_or_else(|| ApiError::unsupported_media_type(content_type))
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::too_large(format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes"))
    })
}

/// Reads a body as an object: JSON, YAML or Kubernetes protobuf, by content type. Parse errors say where.
async fn read_object(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let bytes = read_body(body).await?;
    if content_type.contains("protobuf") {
        return protobuf::decode(&bytes);
    }
    let value: Value = if content_type.contains("yaml") {
        let text = std::str::from_utf8(&bytes)
            .map_err(|err| ApiError::bad_request(format!("the body is not UTF-8: {err}")))?;
        serde_saphyr::from_str(text)
            .map_err(|err| ApiError::bad_request(format!("error converting YAML to JSON: {err}")))?
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::bad_request(format!("error decoding the JSON body: {err}")))?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    Ok(value)
}

/// DELETE may carry `DeleteOptions` as a body, or nothing.
async fn read_optional_json(body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|err| ApiError::bad_request(format!("error decoding DeleteOptions: {err}")))
}

fn written_response(written: Written) -> Result<Response, ApiError> {
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json_response(status, &written.object, &written.warnings))
}

/// A JSON response, with `Warning: 299 - "..."` headers as Kubernetes sends them.
pub fn json_response(status: StatusCode, value: &Value, warnings: &[String]) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response();
    for warning in warnings {
        if let Ok(value) = HeaderValue::from_str(&format!("299 - {warning:?}")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// An error as a `Status` object with the matching HTTP code.
pub fn error_response(err: ApiError) -> Response {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &err.to_status_value(), &[])
}

fn describe(resource: &Resource, target: &Target) -> String {
    match (&target.name, target.subresource) {
        (Some(name), Some(sub)) => format!("{}/{name}/{}", resource.plural, sub.name),
        (Some(name), None) => format!("{}/{name}", resource.plural),
        _ => resource.plural.to_string(),
    }
}
