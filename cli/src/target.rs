//! What the user means by `deploy web`, `pods,deploy` or `deploy/web pod/p`.
//!
//! kubectl learns the resource names from the server's discovery documents; kubelab's CLI is built with the same
//! resource table as its apiserver, so it looks them up locally with `resources::by_user_name`.

use anyhow::bail;
use kubelab_api::resources::{self, Resource};

/// One resource and the names asked for; no names means every object.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub resource: &'static Resource,
    pub names: Vec<String>,
}

/// Finds a resource by any name kubectl accepts: `deploy`, `deployment`, `deployments`, `deployments.apps`.
pub fn resolve(kind: &str) -> anyhow::Result<&'static Resource> {
    match resources::by_user_name(kind) {
        Some(resource) => Ok(resource),
        None => bail!("the server doesn't have a resource type {kind:?}"),
    }
}

/// Reads the arguments of `get`, `describe` and `delete`:
/// `KIND[,KIND...] [NAME...]` or `KIND/NAME [KIND/NAME...]`.
pub fn parse(args: &[String]) -> anyhow::Result<Vec<Target>> {
    let Some(first) = args.first() else {
        bail!("you must specify the type of resource, e.g. `pods` or `deploy/web`");
    };
    if first.contains('/') {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let Some((kind, name)) = arg.split_once('/').filter(|(k, n)| !k.is_empty() && !n.is_empty()) else {
                bail!("arguments in resource/name form must all have a resource and a name: {arg:?}");
            };
            let resource = resolve(kind)?;
            match targets.last_mut() {
                Some(last) if std::ptr::eq(last.resource, resource) => last.names.push(name.to_string()),
                _ => targets.push(Target { resource, names: vec![name.to_string()] }),
            }
        }
        return Ok(targets);
    }
    let names: Vec<String> = args[1..].to_vec();
    if names.iter().any(|n| n.contains('/')) {
        bail!(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form"
        );
    }
    let mut targets = Vec::new();
    for kind in first.split(',').filter(|kind| !kind.is_empty()) {
        for resource in resolve_or_category(kind)? {
            targets.push(Target { resource, names: names.clone() });
        }
    }
    Ok(targets)
}

/// A resource name, or a category such as `all` (every resource that lists it in its `categories`).
fn resolve_or_category(kind: &str) -> anyhow::Result<Vec<&'static Resource>> {
    if let Some(resource) = resources::by_user_name(kind) {
        return Ok(vec![resource]);
    }
    let members: Vec<&'static Resource> =
        resources::RESOURCES.iter().filter(|r| r.categories.contains(&kind)).collect();
    if members.is_empty() { resolve(kind).map(|r| vec![r]) } else { Ok(members) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn a_kind_and_names_resolve_through_short_names() {
        let targets = parse(&args("deploy web api")).unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].resource.plural, "deployments");
        assert_eq!(targets[0].names, vec!["web", "api"]);
    }

    #[test]
    fn a_comma_list_gives_one_target_per_kind() {
        let targets = parse(&args("pods,deploy")).unwrap();
        let plurals: Vec<&str> = targets.iter().map(|t| t.resource.plural).collect();
        assert_eq!(plurals, vec!["pods", "deployments"]);
    }

    #[test]
    fn kind_slash_name_arguments_are_grouped_by_kind() {
        let targets = parse(&args("deploy/web deployments/api po/p")).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].names, vec!["web", "api"]);
        assert_eq!(targets[1].resource.kind, "Pod");
    }

    #[test]
    fn the_all_category_expands_to_its_members() {
        let targets = parse(&args("all")).unwrap();
        assert!(targets.len() > 1);
        assert!(targets.iter().all(|t| t.resource.categories.contains(&"all")));
    }

    #[test]
    fn an_unknown_kind_is_named_in_the_error() {
        let err = parse(&args("widgets")).unwrap_err();
        assert_eq!(err.to_string(), "the server doesn't have a resource type \"widgets\"");
    }
}
