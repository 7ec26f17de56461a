//! Server-side printing: the rows of `kubectl get`.
//!
//! `kubectl get pods` does not know what a pod looks like. It asks the apiserver for a `Table`
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) and prints whatever columns come back. So the
//! columns a student sees, and every cell in them, are decided here — as in Kubernetes, where they are decided by
//! `pkg/printers/internalversion/printers.go`, whose rules we follow one for one.
//!
//! ```text
//! {"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"42"},
//!  "columnDefinitions":[{"name":"Name","type":"string","format":"name","description":"...","priority":0},...],
//!  "rows":[{"cells":["web-1","1/1","Running","0","5m"],
//!           "object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{...}}}]}
//! ```
//!
//! - Every kind has a list of [`Column`]s (data) and a row function (code): one small file per group of kinds.
//!   Kinds without a printer get Kubernetes' default table, `Name` and `Created At`.
//! - The server always computes the wide cells too; columns with `priority: 1` are only *shown* by
//!   `kubectl get -o wide`.
//! - Each row carries the object's metadata (`PartialObjectMetadata`): kubectl needs it for the NAMESPACE column
//!   of `-A` and for `--show-labels`. With `--sort-by` kubectl asks for the whole object instead
//!   (`includeObject=Object`), see [`IncludeObject`].
//! - A watch with a Table accept sends one one-row Table per event ([`watch_row_table`]); only the first carries
//!   the column definitions, to save bandwidth, and kubectl reuses them for the following rows.
//!
//! What we leave out: paging (`metadata.continue` is the caller's to add), the `v1beta1` Table (same shape,
//! different `apiVersion`), and the long field documentation Kubernetes puts in column descriptions (kubectl
//! never shows it; ours are one line).

mod event;
mod format;
mod node;
mod pod;
mod service;
mod simple;
mod workloads;

/// An age as `kubectl get` prints it; one copy for these tables and the CLI.
pub use kubelab_api::time::human_duration;

use chrono::{DateTime, SecondsFormat, Utc};
use kubelab_api::Resource;
use serde_json::{Value, json};

/// One column of a kind's table: `Name`, `Ready`, `Status`...
pub struct Column {
    /// The header kubectl prints, upper-cased: `Name` becomes `NAME`.
    pub name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `date`. Kubernetes is not strict about it: the
    /// Deployment's `Up-to-date` column says `string` and holds integers.
    pub kind: &'static str,
    /// `name` marks the column that identifies the object; `""` otherwise.
    pub format: &'static str,
    /// `0`: always shown; `1`: shown only with `-o wide`.
    pub priority: u8,
    /// What the column means.
    pub description: &'static str,
}

impl Column {
    /// An always-shown string column.
    const fn text(name: &'static str, description: &'static str) -> Column {
        Column { name, kind: "string", format: "", priority: 0, description }
    }

    /// An always-shown integer column.
    const fn integer(name: &'static str, description: &'static str) -> Column {
        Column { name, kind: "integer", format: "", priority: 0, description }
    }

    /// The same column, shown only with `-o wide`.
    const fn wide(self) -> Column {
        Column { priority: 1, ..self }
    }

    /// The `TableColumnDefinition` of the wire format.
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The first column of nearly every kind.
const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some \
        resources may allow a client to request the generation of an appropriate name automatically. Name is \
        primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: \
        https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};

/// The time since the object was created, as [`human_duration`] prints it.
const AGE: Column = Column::text(
    "Age",
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not \
    guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It \
    is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More \
    info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

/// How the rows of one kind are printed.
struct Printer {
    /// The columns, in order; the cells of a row follow the same order.
    columns: &'static [Column],
    /// The cells of one object's row, wide columns included.
    cells: fn(&Value, DateTime<Utc>) -> Vec<Value>,
    /// Row conditions: only a finished pod has one (`Completed`), which clients may use to grey the row out.
    conditions: fn(&Value) -> Option<Value>,
}

/// Most kinds have no row conditions.
fn no_conditions(_: &Value) -> Option<Value> {
    None
}

/// The printer of a kind, found by group and kind as printers.go registers them by Go type.
fn printer_for(resource: &Resource) -> Printer {
    let plain = |columns, cells| Printer { columns, cells, conditions: no_conditions };
    match (resource.group, resource.kind) {
        ("", "Namespace") => plain(simple::NAMESPACE_COLUMNS, simple::namespace_cells),
        ("", "Pod") => Printer { columns: pod::COLUMNS, cells: pod::cells, conditions: pod::conditions },
        ("", "Node") => plain(node::COLUMNS, node::cells),
        ("", "Service") => plain(service::SERVICE_COLUMNS, service::service_cells),
        ("", "Endpoints") => plain(service::ENDPOINTS_COLUMNS, service::endpoints_cells),
        ("discovery.k8s.io", "EndpointSlice") => plain(service::ENDPOINT_SLICE_COLUMNS, service::endpoint_slice_cells),
        ("", "Event") => plain(event::COLUMNS, event::cells),
        ("", "ConfigMap") => plain(simple::CONFIG_MAP_COLUMNS, simple::config_map_cells),
        ("apps", "ReplicaSet") => plain(workloads::REPLICA_SET_COLUMNS, workloads::replica_set_cells),
        ("apps", "Deployment") => plain(workloads::DEPLOYMENT_COLUMNS, workloads::deployment_cells),
        ("coordination.k8s.io", "Lease") => plain(simple::LEASE_COLUMNS, simple::lease_cells),
        _ => plain(DEFAULT_COLUMNS, default_cells),
    }
}

/// The columns of Kubernetes' default table convertor, for kinds without a printer of their own.
const DEFAULT_COLUMNS: &[Column] = &[NAME, Column { name: "Created At", kind: "date", ..AGE }];

/// Name and creation time, as an RFC 3339 timestamp rather than an age.
fn default_cells(object: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let created = format::timestamp(object, "/metadata/creationTimestamp")
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true));
    vec![format::text(object, "/metadata/name").into(), created.into()]
}

/// What each row carries besides its cells: the `includeObject` query parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// `includeObject=None`: nothing (`"object": null`).
    None,
    /// `includeObject=Metadata`, the default: a `PartialObjectMetadata` with the object's metadata.
    #[default]
    Metadata,
    /// `includeObject=Object`: the whole object, as `kubectl get --sort-by` asks.
    Object,
}

impl IncludeObject {
    /// Reads the query parameter; `None` for a value Kubernetes would reject with 400.
    pub fn from_query(value: &str) -> Option<IncludeObject> {
        match value {
            "None" => Some(IncludeObject::None),
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Options of a table request (Kubernetes' `TableOptions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// What each row carries besides its cells.
    pub include_object: IncludeObject,
    /// Leave out the column definitions (`"columnDefinitions": null`): every watch event after the first.
    pub no_headers: bool,
}

/// The Table of a list: one row per object, in the order given.
///
/// `objects` are the stored objects, all of `resource`'s kind; `list_resource_version` is the list's
/// `resourceVersion`, which `kubectl get -w` then watches from; `now` is when ages are measured from.
pub fn table(resource: &Resource, objects: &[Value], list_resource_version: &str, now: DateTime<Utc>) -> Value {
    table_with(resource, objects, list_resource_version, now, TableOptions::default())
}

/// [`table`] with explicit [`TableOptions`].
pub fn table_with(
    resource: &Resource,
    objects: &[Value],
    resource_version: &str,
    now: DateTime<Utc>,
    options: TableOptions,
) -> Value {
    let printer = printer_for(resource);
    let columns = if options.no_headers {
        Value::Null
    } else {
        printer.columns.iter().map(Column::to_json).collect::<Vec<_>>().into()
    };
    let rows: Vec<Value> =
        objects.iter().map(|object| row(resource, &printer, object, now, options.include_object)).collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// The one-row Table of a watch event, carrying the object's own `resourceVersion`.
///
/// Set `options.no_headers` for every event but the first of a stream, as Kubernetes does.
pub fn watch_row_table(resource: &Resource, object: &Value, now: DateTime<Utc>, options: TableOptions) -> Value {
    let resource_version = format::text(object, "/metadata/resourceVersion");
    table_with(resource, std::slice::from_ref(object), resource_version, now, options)
}

/// One `TableRow`: the cells, the row conditions if any, and the object as asked.
fn row(resource: &Resource, printer: &Printer, object: &Value, now: DateTime<Utc>, include: IncludeObject) -> Value {
    let embedded = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => with_type_meta(resource, object),
    };
    let mut row = json!({"cells": (printer.cells)(object, now), "object": embedded});
    if let Some(conditions) = (printer.conditions)(object) {
        row["conditions"] = conditions;
    }
    row
}

/// The object with `kind` and `apiVersion` set: stored list items may lack them, an embedded object may not.
fn with_type_meta(resource: &Resource, object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.as_object_mut() {
        fields.insert("kind".to_string(), resource.kind.into());
        fields.insert("apiVersion".to_string(), resource.api_version().into());
    }
    object
}

#[cfg(test)]
mod tests;
