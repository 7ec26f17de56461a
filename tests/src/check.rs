//! Reading what came back: kubectl's tables, and objects compared with the manifest that created them.

use serde_json::Value;

/// One table printed by `kubectl get`: the header's column names and the rows' cells.
///
/// `kubectl get deploy,svc` prints one table per kind, separated by a blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The header as one string, single-spaced: `"NAME READY UP-TO-DATE AVAILABLE AGE"`.
    pub fn header_line(&self) -> String {
        self.header.join(" ")
    }

    /// The cell of `column` in the row whose first cell is `name`.
    pub fn cell(&self, name: &str, column: &str) -> Option<&str> {
        let index = self.header.iter().position(|h| h == column)?;
        let row = self.rows.iter().find(|row| row.first().is_some_and(|first| first == name))?;
        row.get(index).map(String::as_str)
    }

    /// The first cell of every row (the NAME column).
    pub fn names(&self) -> Vec<&str> {
        self.rows.iter().filter_map(|row| row.first().map(String::as_str)).collect()
    }
}

/// Splits `kubectl get` output into its tables.
///
/// Cells are separated by runs of spaces. That is enough for the columns of the kinds we serve, whose cells never
/// contain spaces (`<none>`, `80/TCP`, `app=web`).
pub fn tables(stdout: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    for block in stdout.split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else { continue };
        let split = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        tables.push(Table { header: split(header), rows: lines.map(split).collect() });
    }
    tables
}

/// The fields of `sent` that `got` does not hold with the same value, as paths (`spec.template.spec.containers[0]
/// .ports[0].name: sent "http", got null`). Empty when every field we sent came back.
///
/// The server may add fields (metadata, defaults, status), so `got` only needs to contain `sent`. Lists must keep
/// their length and order: a list that lost an element lost a field.
pub fn missing_fields(sent: &Value, got: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    compare(sent, got, String::new(), &mut missing);
    missing
}

fn compare(sent: &Value, got: &Value, path: String, missing: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(sent), Value::Object(got)) => {
            for (key, value) in sent {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                compare(value, got.get(key).unwrap_or(&Value::Null), child, missing);
            }
        }
        (Value::Array(sent), Value::Array(got)) if sent.len() == got.len() => {
            for (index, (s, g)) in sent.iter().zip(got).enumerate() {
                compare(s, g, format!("{path}[{index}]"), missing);
            }
        }
        // A number may come back as the same number in another JSON form (80 vs 80.0): compare values.
        (Value::Number(s), Value::Number(g)) if s.as_f64() == g.as_f64() => {}
        _ if sent == got => {}
        _ => missing.push(format!("{path}: sent {sent}, got {got}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_are_split_on_blank_lines_and_cells_on_spaces() {
        let out = "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\ndeployment.apps/web   0/3     0            0           2s\n\nNAME          TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\nservice/web   ClusterIP   10.0.0.7     <none>        80/TCP    2s\n";
        let tables = tables(out);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].header_line(), "NAME READY UP-TO-DATE AVAILABLE AGE");
        assert_eq!(tables[0].cell("deployment.apps/web", "READY"), Some("0/3"));
        assert_eq!(tables[1].cell("service/web", "PORT(S)"), Some("80/TCP"));
        assert_eq!(tables[1].names(), ["service/web"]);
    }

    #[test]
    fn added_fields_are_fine_but_lost_and_changed_ones_are_reported() {
        let sent = json!({"spec": {"ports": [{"port": 80, "name": "http"}], "replicas": 3}});
        let same_plus_defaults =
            json!({"spec": {"ports": [{"port": 80, "name": "http", "protocol": "TCP"}], "replicas": 3}, "status": {}});
        assert!(missing_fields(&sent, &same_plus_defaults).is_empty());

        let lost = json!({"spec": {"ports": [{"port": 80}], "replicas": 2}});
        assert_eq!(
            missing_fields(&sent, &lost),
            ["spec.ports[0].name: sent \"http\", got null", "spec.replicas: sent 3, got 2"]
        );
    }
}
