//! Reading manifests: files, directories or standard input, YAML or JSON, one or many objects each.
//!
//! What kubectl accepts with `-f`, minus URLs and `-R`: a YAML file may hold several documents separated by
//! `---`; a JSON file may hold several objects one after another; a `kind: List` is unpacked into its items.

use anyhow::{Context as _, bail};
use serde_json::Value;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// One object read from a manifest, and where it came from, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `web.yaml`, or `web.yaml (document 2)` when the file holds several.
    pub source: String,
    pub object: Value,
}

/// Reads every `-f` argument in order. A directory contributes its `.yaml`, `.yml` and `.json` files in name
/// order; `-` is standard input.
pub fn read_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut documents = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
            let json = text.trim_start().starts_with('{');
            documents.extend(parse(&text, "STDIN", json)?);
        } else if path.is_dir() {
            for file in manifest_files(path)? {
                documents.extend(read_file(&file)?);
            }
        } else {
            documents.extend(read_file(path)?);
        }
    }
    Ok(documents)
}

/// The manifest files of a directory, sorted by name (not recursive).
fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read directory {}", dir.display()))? {
        let path = entry?.path();
        let is_manifest = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path) -> anyhow::Result<Vec<Document>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, &path.display().to_string(), json)
}

/// Splits a manifest into objects. Pure, so the tests need no files.
pub fn parse(text: &str, source: &str, json: bool) -> anyhow::Result<Vec<Document>> {
    let values: Vec<Value> = if json {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .with_context(|| format!("{source}: invalid JSON"))?
    } else {
        serde_saphyr::from_multiple::<Value>(text).with_context(|| format!("{source}: invalid YAML"))?
    };
    let mut objects = Vec::new();
    for value in values {
        unpack(value, &mut objects);
    }
    let several = objects.len() > 1;
    objects
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let source = if several { format!("{source} (document {})", i + 1) } else { source.to_string() };
            if !object.is_object() {
                bail!("{source}: a manifest must be a mapping with apiVersion, kind and metadata");
            }
            Ok(Document { source, object })
        })
        .collect()
}

/// `kind: List` (or `DeploymentList`...) stands for its items.
fn unpack(value: Value, into: &mut Vec<Value>) {
    let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match value {
        Value::Object(mut map) if is_list && map.get("items").is_some_and(Value::is_array) => {
            if let Some(Value::Array(items)) = map.remove("items") {
                for item in items {
                    unpack(item, into);
                }
            }
        }
        Value::Null => {}
        other => into.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_are_split_and_numbered() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n";
        let docs = parse(text, "ns.yaml", false).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].source, "ns.yaml (document 2)");
        assert_eq!(docs[1].object["metadata"]["name"], "b");
    }

    #[test]
    fn a_single_document_is_named_by_its_file_alone() {
        let docs = parse("kind: Pod\nmetadata: {name: p}\n", "pod.yaml", false).unwrap();
        assert_eq!(docs[0].source, "pod.yaml");
    }

    #[test]
    fn json_objects_may_follow_each_other() {
        let docs = parse("{\"kind\":\"Pod\"}\n{\"kind\":\"Node\"}", "-", true).unwrap();
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn lists_are_unpacked_into_their_items() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n- kind: Service\n";
        let kinds: Vec<Value> =
            parse(text, "l.yaml", false).unwrap().into_iter().map(|d| d.object["kind"].clone()).collect();
        assert_eq!(kinds, vec!["Pod", "Service"]);
    }

    #[test]
    fn a_scalar_document_is_refused_with_its_source() {
        let err = parse("just text", "x.yaml", false).unwrap_err();
        assert!(err.to_string().starts_with("x.yaml:"), "{err}");
    }

    #[test]
    fn a_directory_contributes_its_manifests_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yaml"), "kind: B\n").unwrap();
        std::fs::write(dir.path().join("a.json"), "{\"kind\":\"A\"}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let docs = read_all(&[dir.path().to_path_buf()]).unwrap();
        let kinds: Vec<Value> = docs.into_iter().map(|d| d.object["kind"].clone()).collect();
        assert_eq!(kinds, vec!["A", "B"]);
    }
}
