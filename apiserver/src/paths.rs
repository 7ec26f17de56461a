//! From a URL path to the resource it names.
//!
//! Kubernetes' REST paths follow one grammar for every resource:
//!
//! ```text
//! /api/v1/pods                                         all pods, every namespace (list, watch)
//! /api/v1/namespaces/default/pods                      the pods of one namespace (list, watch, create)
//! /api/v1/namespaces/default/pods/web                  one pod (get, update, patch, delete)
//! /api/v1/namespaces/default/pods/web/status           one of its subresources
//! /apis/apps/v1/namespaces/default/deployments/web/scale
//! /api/v1/nodes/node-1                                 a cluster-scoped object
//! /api/v1/namespaces/default                           ...and a namespace is itself cluster-scoped
//! ```
//!
//! [`parse`] is a pure function, so the whole grammar is unit-tested below.

use kubelab_api::resources::{self, Resource, Subresource};

/// What a request path points at.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace in the path; `None` for cluster-scoped resources and for lists across all namespaces.
    pub namespace: Option<String>,
    /// The object's name; `None` for a collection.
    pub name: Option<String>,
    /// `status`, `scale`, `binding`...
    pub subresource: Option<&'static Subresource>,
}

/// Why a path names nothing we serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSuchPath;

// ANCHOR: parse
/// Parses `/api/v1/...` or `/apis/<group>/<version>/...`.
pub fn parse(path: &str) -> Result<Target, NoSuchPath> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(NoSuchPath),
    };
    let find = |plural: &str| resources::by_path(group, version, plural).ok_or(NoSuchPath);
    let namespaced_here = |plural: &str| resources::by_path(group, version, plural).is_some_and(|r| r.namespaced);
    let target = |resource: &'static Resource, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        let subresource = match sub {
            Some(sub) => Some(resource.subresource(sub).ok_or(NoSuchPath)?),
            None => None,
        };
        Ok(Target { resource, namespace: namespace.map(String::from), name: name.map(String::from), subresource })
    };
    match rest {
        // /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]] — a namespaced resource inside a namespace.
        ["namespaces", ns, plural, tail @ ..] if namespaced_here(plural) => {
            let resource = find(plural)?;
            match tail {
                [] => target(resource, Some(ns), None, None),
                [name] => target(resource, Some(ns), Some(name), None),
                [name, sub] => target(resource, Some(ns), Some(name), Some(sub)),
                _ => Err(NoSuchPath),
            }
        }
        // /api/v1/<plural>[/<name>[/<sub>]] — cluster-scoped objects, or a list across all namespaces.
        [plural] => target(find(plural)?, None, None, None),
        [plural, name] => {
            let resource = find(plural)?;
            if resource.namespaced { Err(NoSuchPath) } else { target(resource, None, Some(name), None) }
        }
        [plural, name, sub] => {
            let resource = find(plural)?;
            if resource.namespaced { Err(NoSuchPath) } else { target(resource, None, Some(name), Some(sub)) }
        }
        _ => Err(NoSuchPath),
    }
}
// ANCHOR_END: parse

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> (String, Option<String>, Option<String>, Option<&'static str>) {
        let t = parse(path).unwrap();
        (t.resource.plural.to_string(), t.namespace, t.name, t.subresource.map(|s| s.name))
    }

    #[test]
    fn namespaced_collections_objects_and_subresources_parse() {
        assert_eq!(parts("/api/v1/namespaces/default/pods"), ("pods".into(), Some("default".into()), None, None));
        assert_eq!(
            parts("/apis/apps/v1/namespaces/dev/deployments/web/scale"),
            ("deployments".into(), Some("dev".into()), Some("web".into()), Some("scale"))
        );
        assert_eq!(parts("/api/v1/pods"), ("pods".into(), None, None, None));
    }

    #[test]
    fn namespaces_are_cluster_scoped_objects_with_a_status() {
        assert_eq!(parts("/api/v1/namespaces"), ("namespaces".into(), None, None, None));
        assert_eq!(parts("/api/v1/namespaces/dev"), ("namespaces".into(), None, Some("dev".into()), None));
        assert_eq!(
            parts("/api/v1/namespaces/dev/status"),
            ("namespaces".into(), None, Some("dev".into()), Some("status"))
        );
    }

    #[test]
    fn unknown_resources_and_subresources_are_not_found() {
        assert_eq!(parse("/api/v1/widgets"), Err(NoSuchPath));
        assert_eq!(parse("/apis/apps/v2/deployments"), Err(NoSuchPath));
        assert_eq!(parse("/api/v1/namespaces/default/configmaps/x/scale"), Err(NoSuchPath));
        assert_eq!(parse("/api/v1/pods/web"), Err(NoSuchPath));
        assert_eq!(parse("/healthz"), Err(NoSuchPath));
    }
}
