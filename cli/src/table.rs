//! Printing the `Table` the apiserver sends for `kubectl get`.
//!
//! kubectl knows no columns: it asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and the server
//! answers with column definitions and rows of cells already formatted (`3/3`, `Running`, `5m`). The client only
//! picks columns (priority 0, or all with `-o wide`), upper-cases the headers, adds a NAMESPACE column for `-A`
//! and lets the [`TabWriter`](crate::tabwriter::TabWriter) align the text.
//!
//! A server that cannot print tables answers with plain objects; kubectl then shows NAME and AGE, and so do we
//! ([`from_objects`]).

use crate::print;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// How to print a table.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-o wide`: show priority-1 columns too.
    pub wide: bool,
    /// `-A`: a NAMESPACE column first, read from each row's object.
    pub with_namespace: bool,
    /// When several kinds are printed, names are prefixed: `deployment.apps/web`.
    pub name_prefix: Option<String>,
}

/// The header line's cells: `NAMESPACE`, `NAME`, `READY`...
pub fn header(table: &Value, options: &Options) -> Vec<String> {
    let mut cells: Vec<String> = Vec::new();
    if options.with_namespace {
        cells.push("NAMESPACE".into());
    }
    for (_, column) in visible_columns(table, options) {
        cells.push(column["name"].as_str().unwrap_or_default().to_uppercase());
    }
    cells
}

/// Each row's cells, in the header's order.
pub fn rows(table: &Value, options: &Options) -> Vec<Vec<String>> {
    let columns: Vec<usize> = visible_columns(table, options).into_iter().map(|(i, _)| i).collect();
    let rows = table["rows"].as_array().map(Vec::as_slice).unwrap_or_default();
    rows.iter()
        .map(|row| {
            let mut cells = Vec::new();
            if options.with_namespace {
                cells.push(row.pointer("/object/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string());
            }
            for (position, &index) in columns.iter().enumerate() {
                let mut text = cell_text(&row["cells"][index]);
                if let (0, Some(prefix)) = (position, &options.name_prefix) {
                    text = format!("{prefix}/{text}");
                }
                cells.push(text);
            }
            cells
        })
        .collect()
}

/// Tab-separated lines, ready for the tab writer.
pub fn to_text(lines: &[Vec<String>]) -> String {
    lines.iter().map(|cells| cells.join("\t") + "\n").collect()
}

/// Whether a server answer is a `Table` (rather than an object or a list, from a server that prints none).
pub fn is_table(value: &Value) -> bool {
    value["kind"] == "Table"
}

/// A NAME/AGE table built from objects: what kubectl shows when the server sends no table.
pub fn from_objects(objects: &[Value], now: DateTime<Utc>) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let created = kubelab_api::object::meta_str(object, "creationTimestamp");
            json!({"cells": [kubelab_api::object::name(object), print::age(created, now)], "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "priority": 0},
        ],
        "rows": rows,
    })
}

/// An answer as a table: itself if it is one, else built from the list's items or the single object.
pub fn ensure_table(answer: Value, now: DateTime<Utc>) -> Value {
    if is_table(&answer) {
        return answer;
    }
    match answer.get("items").and_then(Value::as_array) {
        Some(items) => {
            let mut table = from_objects(items, now);
            table["metadata"] = answer["metadata"].clone();
            table
        }
        None => from_objects(std::slice::from_ref(&answer), now),
    }
}

/// The columns to print, with their index in each row's cells.
fn visible_columns<'a>(table: &'a Value, options: &Options) -> Vec<(usize, &'a Value)> {
    let columns = table["columnDefinitions"].as_array().map(Vec::as_slice).unwrap_or_default();
    columns.iter().enumerate().filter(|(_, c)| options.wide || c["priority"].as_i64().unwrap_or(0) == 0).collect()
}

/// A cell as kubectl prints it: strings bare, numbers and booleans as written, nothing for null.
fn cell_text(cell: &Value) -> String {
    match cell {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabwriter::TabWriter;

    fn pods_table() -> Value {
        json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "42"},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Ready", "type": "string", "priority": 0},
                {"name": "Status", "type": "string", "priority": 0},
                {"name": "Restarts", "type": "integer", "priority": 0},
                {"name": "Age", "type": "string", "priority": 0},
                {"name": "IP", "type": "string", "priority": 1},
                {"name": "Nominated Node", "type": "string", "priority": 1},
            ],
            "rows": [
                {"cells": ["web-1", "1/1", "Running", 0, "5m", "10.0.0.7", "<none>"],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "web-1", "namespace": "default"}}},
                {"cells": ["db", "0/1", "Pending", 2, "10s", null, "<none>"],
                 "object": {"kind": "PartialObjectMetadata", "metadata": {"name": "db", "namespace": "prod"}}},
            ]
        })
    }

    fn render(table: &Value, options: &Options) -> String {
        let mut lines = vec![header(table, options)];
        lines.extend(rows(table, options));
        TabWriter::table().format(&to_text(&lines))
    }

    #[test]
    fn default_output_hides_priority_one_columns() {
        assert_eq!(
            render(&pods_table(), &Options::default()),
            "NAME    READY   STATUS    RESTARTS   AGE\n\
             web-1   1/1     Running   0          5m\n\
             db      0/1     Pending   2          10s\n"
        );
    }

    #[test]
    fn wide_output_shows_every_column_with_upper_case_headers() {
        let text = render(&pods_table(), &Options { wide: true, ..Default::default() });
        assert!(text.starts_with("NAME    READY   STATUS    RESTARTS   AGE   IP         NOMINATED NODE\n"), "{text}");
        assert!(text.ends_with("\ndb      0/1     Pending   2          10s              <none>\n"), "{text}");
    }

    #[test]
    fn all_namespaces_adds_a_namespace_column_from_the_row_objects() {
        let text = render(&pods_table(), &Options { with_namespace: true, ..Default::default() });
        assert!(text.starts_with("NAMESPACE   NAME    READY"), "{text}");
        assert!(text.contains("\nprod        db      0/1"), "{text}");
    }

    #[test]
    fn several_kinds_prefix_names_with_their_kind() {
        let options = Options { name_prefix: Some("pod".into()), ..Default::default() };
        assert_eq!(rows(&pods_table(), &options)[0][0], "pod/web-1");
    }

    #[test]
    fn plain_objects_become_a_name_and_age_table() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:10:00Z").unwrap().with_timezone(&Utc);
        let list = json!({"kind": "NodeList", "metadata": {"resourceVersion": "3"},
            "items": [{"metadata": {"name": "n1", "creationTimestamp": "2024-01-01T00:00:00Z"}}]});
        let table = ensure_table(list, now);
        assert_eq!(rows(&table, &Options::default()), vec![vec!["n1".to_string(), "10m".to_string()]]);
        assert_eq!(table["metadata"]["resourceVersion"], "3");
    }
}
