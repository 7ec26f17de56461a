//! Strategic merge patch: a JSON merge patch that knows which lists are really maps.
//!
//! A JSON merge patch (RFC 7386) cannot change one element of a list: a list in the patch replaces the whole
//! list. For `containers` that is a disaster: `kubectl apply` with a new image would drop the ports, probes and
//! env the live object has. Kubernetes' answer is to declare, in the Go types, that some lists are keyed:
//!
//! ```go
//! Containers []Container `json:"containers" patchStrategy:"merge" patchMergeKey:"name"`
//! ```
//!
//! A patch element `{"name": "web", "image": "x:2"}` then merges into the live element whose `name` is `web`.
//! Lists without a tag (`tolerations`, `args`, `envFrom`...) are atomic and replaced whole. A `merge` list of
//! strings (`finalizers`) is a set: the patch's values are added to the live ones.
//!
//! On top of that, the patch may carry *directives*, keys starting with `$`:
//!
//! | Directive                                      | Effect                                                 |
//! |------------------------------------------------|--------------------------------------------------------|
//! | `"$patch": "replace"` in an object             | the object is replaced by the rest of the patch object |
//! | `"$patch": "delete"` in an object              | the object becomes empty                               |
//! | `{"$patch": "delete", "name": "x"}` in a list  | the element with that key is removed                   |
//! | `{"$patch": "replace"}` in a list              | the other patch elements become the whole list         |
//! | `"$retainKeys": ["a", "b"]`                    | fields of the live object not listed are cleared first |
//! | `"$setElementOrder/containers": [...]`         | the merged list is put in this order                   |
//! | `"$deleteFromPrimitiveList/finalizers": [...]` | these values are removed from a list of strings        |
//!
//! `kubectl apply` computes such a patch from three objects (the last applied configuration, the new file and
//! the live object) and sends it; the apiserver applies it here.
//!
//! The algorithm follows `StrategicMergeMapPatch` in Kubernetes'
//! `staging/src/k8s.io/apimachinery/pkg/util/strategicpatch/patch.go`, including its ordering rule. Where we
//! differ, it is because we hold plain JSON instead of Go structs:
//! - Kubernetes finds the merge key by walking the Go struct types. We only know field names, so
//!   [`MERGE_LISTS`] identifies a list by its own name and the name of the field holding the object it is in.
//! - Kubernetes copies a value that has nothing to merge with verbatim and relies on decoding into Go structs
//!   to drop leftover directives and `null`s. We merge such a value into an empty object instead, which applies
//!   its directives and drops its `null`s, so no `$` key is ever stored.
//! - Live elements that lack the merge key never match a patch element; Kubernetes reports an error.

use kubelab_api::ApiError;
use serde_json::{Map, Value, json};

/// A JSON object. `serde_json` keeps keys sorted, which makes the order of processing deterministic.
type Object = Map<String, Value>;

/// `"$patch": "replace" | "delete"`, in an object or a list element.
const PATCH: &str = "$patch";
/// `"$retainKeys": [...]`: the only fields of the object that survive.
const RETAIN_KEYS: &str = "$retainKeys";
/// `"$setElementOrder/<list>": [...]`: the order of the merged list.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// `"$deleteFromPrimitiveList/<list>": [...]`: values to remove from a list of strings.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

// ANCHOR: merge_lists
/// How a list merges, from its `patchStrategy` and `patchMergeKey` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// No `patchStrategy`: the patch's list replaces the live list.
    Atomic,
    /// `patchStrategy:"merge" patchMergeKey:"<key>"`: elements are objects matched by this field.
    ByKey(&'static str),
    /// `patchStrategy:"merge"` without a key: a list of strings merged as a set.
    Set,
}

/// A list that merges: `field`, inside an object held by a field named one of `within`.
struct MergeList {
    /// The name of the field holding the object: `spec` for a PodSpec, `containers` for a Container.
    within: &'static [&'static str],
    field: &'static str,
    kind: ListKind,
}

/// A PodSpec is what `spec` holds, in a Pod and in a pod template.
const POD_SPEC: &[&str] = &["spec"];
/// A Container is an element of one of these lists (an EphemeralContainer inlines the same fields).
const CONTAINER: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// The lists that merge, transcribed from the `patchStrategy:"merge"` / `patchMergeKey` struct tags of
/// k8s.io/api `core/v1/types.go` and `apps/v1/types.go` and k8s.io/apimachinery `meta/v1/types.go`, for the
/// kinds kubelab serves. Every other list is atomic. `within` is what separates a Container's `ports` (merged by
/// `containerPort`) from a Service's `ports` (by `port`) and an Endpoints subset's `ports` (atomic).
const MERGE_LISTS: &[MergeList] = &[
    // metav1.ObjectMeta
    MergeList { within: &["metadata"], field: "finalizers", kind: ListKind::Set },
    MergeList { within: &["metadata"], field: "ownerReferences", kind: ListKind::ByKey("uid") },
    // core/v1 PodSpec (tolerations, readinessGates and the like have no tag: atomic)
    MergeList { within: POD_SPEC, field: "containers", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "initContainers", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "ephemeralContainers", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "volumes", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "imagePullSecrets", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "hostAliases", kind: ListKind::ByKey("ip") },
    MergeList { within: POD_SPEC, field: "topologySpreadConstraints", kind: ListKind::ByKey("topologyKey") },
    MergeList { within: POD_SPEC, field: "schedulingGates", kind: ListKind::ByKey("name") },
    MergeList { within: POD_SPEC, field: "resourceClaims", kind: ListKind::ByKey("name") },
    // core/v1 Container (envFrom has no tag: atomic)
    MergeList { within: CONTAINER, field: "ports", kind: ListKind::ByKey("containerPort") },
    MergeList { within: CONTAINER, field: "env", kind: ListKind::ByKey("name") },
    MergeList { within: CONTAINER, field: "volumeMounts", kind: ListKind::ByKey("mountPath") },
    MergeList { within: CONTAINER, field: "volumeDevices", kind: ListKind::ByKey("devicePath") },
    // core/v1 ServiceSpec and NodeSpec
    MergeList { within: &["spec"], field: "ports", kind: ListKind::ByKey("port") },
    MergeList { within: &["spec"], field: "podCIDRs", kind: ListKind::Set },
    // status of Pod, Node, Namespace, Service, Deployment and ReplicaSet
    MergeList { within: &["status"], field: "conditions", kind: ListKind::ByKey("type") },
    MergeList { within: &["status"], field: "podIPs", kind: ListKind::ByKey("ip") },
    MergeList { within: &["status"], field: "hostIPs", kind: ListKind::ByKey("ip") },
    MergeList { within: &["status"], field: "addresses", kind: ListKind::ByKey("type") },
];

/// How the list `field` of an object held by `within` merges.
fn list_kind(within: &str, field: &str) -> ListKind {
    MERGE_LISTS
        .iter()
        .find(|list| list.field == field && list.within.contains(&within))
        .map_or(ListKind::Atomic, |list| list.kind)
}
// ANCHOR_END: merge_lists

/// The same table as OpenAPI publishes it: `x-kubernetes-patch-strategy` (`merge`) and, for keyed lists,
/// `x-kubernetes-patch-merge-key`; `None` for an atomic list. Clients that compute strategic merge patches from
/// the published schemas then merge exactly as this module does.
pub(crate) fn patch_extensions(within: &str, field: &str) -> Option<(&'static str, Option<&'static str>)> {
    match list_kind(within, field) {
        ListKind::Atomic => None,
        ListKind::ByKey(key) => Some(("merge", Some(key))),
        ListKind::Set => Some(("merge", None)),
    }
}

impl ListKind {
    /// What identifies an element when lists are compared: a field of it, or (for sets) the element itself.
    fn key(self) -> Option<&'static str> {
        match self {
            ListKind::ByKey(key) => Some(key),
            ListKind::Atomic | ListKind::Set => None,
        }
    }
}

// ANCHOR: merge
/// Applies a strategic merge `patch` (a JSON object) to `original` and returns the result.
pub(super) fn merge(original: &Value, patch: Value) -> Result<Value, ApiError> {
    let Value::Object(patch) = patch else {
        return Err(malformed(format!("the patch must be an object, not {}", json_type(&patch))));
    };
    let original = original.as_object().cloned().unwrap_or_default();
    merge_object(original, patch, "").map(Value::Object)
}

/// Merges one object. `within` is the name of the field holding it; it selects the rules for its lists.
fn merge_object(mut original: Object, mut patch: Object, within: &str) -> Result<Object, ApiError> {
    // 1. `$patch` decides for the whole object.
    if let Some(directive) = patch.remove(PATCH) {
        return match directive.as_str() {
            Some("replace") => merge_object(Object::new(), patch, within),
            Some("delete") => Ok(Object::new()),
            _ => Err(malformed(format!("{PATCH}: {directive} in an object: only \"replace\" and \"delete\" exist"))),
        };
    }

    // 2. `$retainKeys` clears the fields it does not list, before anything is merged.
    if let Some(keep) = patch.remove(RETAIN_KEYS) {
        retain_keys(&mut original, &patch, keep)?;
    }

    // 3. Lists with a `$setElementOrder` are merged, then put in the requested order.
    let ordered: Vec<String> = patch.keys().filter(|key| key.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive in ordered {
        let field = directive_target(&directive, SET_ELEMENT_ORDER)?.to_owned();
        let Some(Value::Array(order)) = patch.remove(&directive) else {
            return Err(malformed(format!("{directive} must be a list")));
        };
        merge_ordered_list(&mut original, &mut patch, within, &field, &order)?;
    }

    // 4. Every other field: `null` deletes, objects and lists merge, anything else replaces.
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = directive_target(&key, DELETE_FROM_PRIMITIVE_LIST)?;
            delete_from_list(&mut original, field, value)?;
        } else if value.is_null() {
            original.remove(&key);
        } else {
            let merged = merge_value(original.remove(&key), value, within, &key)?;
            original.insert(key, merged);
        }
    }
    Ok(original)
}
// ANCHOR_END: merge

/// Merges the value of field `field` of an object held by `within`.
fn merge_value(original: Option<Value>, patch: Value, within: &str, field: &str) -> Result<Value, ApiError> {
    Ok(match patch {
        Value::Object(patch) => {
            let original = match original {
                Some(Value::Object(original)) => original,
                _ => Object::new(),
            };
            Value::Object(merge_object(original, patch, field)?)
        }
        Value::Array(patch) => {
            let original = match original {
                Some(Value::Array(original)) => original,
                _ => Vec::new(),
            };
            Value::Array(merge_list(original, patch, list_kind(within, field), field)?)
        }
        scalar => scalar,
    })
}

// ANCHOR: merge_list
/// Merges a list according to its kind.
fn merge_list(original: Vec<Value>, patch: Vec<Value>, kind: ListKind, field: &str) -> Result<Vec<Value>, ApiError> {
    if kind == ListKind::Atomic {
        return Ok(patch);
    }
    if !elements_are_objects(&original, &patch, field)? {
        return Ok(merge_set(original, patch));
    }
    match kind.key() {
        Some(key) => merge_by_key(original, patch, key, field),
        None => Err(malformed(format!("the objects in {field} cannot be merged: the list declares no merge key"))),
    }
}

/// A list of scalars with the merge strategy is a set: the union, with no duplicates.
fn merge_set(original: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(&patch) {
        if !merged.iter().any(|kept| same(kept, value)) {
            merged.push(value.clone());
        }
    }
    enforce_order(merged, &patch, &original, None)
}

/// A list of objects with a merge key: each patch element merges into the live element with the same key.
fn merge_by_key(mut original: Vec<Value>, patch: Vec<Value>, key: &str, field: &str) -> Result<Vec<Value>, ApiError> {
    // Elements carrying `$patch` are instructions, not elements.
    let mut updates = Vec::with_capacity(patch.len());
    let mut replace = false;
    for element in patch {
        let Value::Object(element) = element else {
            return Err(malformed(format!("the elements of {field} must all be objects")));
        };
        match element.get(PATCH).map(Value::as_str) {
            None => updates.push(element),
            Some(Some("delete")) => {
                let id = merge_key(&element, key, field)?;
                original.retain(|live| !same_id(live.get(key), Some(id)));
            }
            Some(Some("replace")) => replace = true,
            // Kubernetes' own words for this one.
            Some(Some("merge")) => return Err(malformed("merging lists cannot yet be specified in the patch")),
            Some(_) => return Err(malformed(format!("unknown {PATCH} directive in an element of {field}"))),
        }
    }

    // `{"$patch": "replace"}` anywhere in the list: the other elements are the new list, as given.
    if replace {
        return updates
            .into_iter()
            .map(|element| merge_object(Object::new(), element, field).map(Value::Object))
            .collect();
    }

    // Every other element merges into the live element with the same key, or is appended.
    let server_order = original.clone();
    let mut patch_order = Vec::with_capacity(updates.len());
    for element in updates {
        let id = merge_key(&element, key, field)?.clone();
        match original.iter().position(|live| same_id(live.get(key), Some(&id))) {
            Some(index) => {
                let live = match std::mem::take(&mut original[index]) {
                    Value::Object(live) => live,
                    _ => Object::new(),
                };
                original[index] = Value::Object(merge_object(live, element, field)?);
            }
            None => original.push(Value::Object(merge_object(Object::new(), element, field)?)),
        }
        patch_order.push(json!({ key: id }));
    }
    Ok(enforce_order(original, &patch_order, &server_order, Some(key)))
}
// ANCHOR_END: merge_list

/// The value of the merge key of a patch element; a patch element without it is malformed.
fn merge_key<'a>(element: &'a Object, key: &str, field: &str) -> Result<&'a Value, ApiError> {
    element.get(key).ok_or_else(|| {
        malformed(format!(
            "an element of {field} has no {key:?}, the key that list merges by: {}",
            Value::Object(element.clone())
        ))
    })
}

/// `$setElementOrder/<field>`: merges `field` as usual, then orders the result as the directive lists it.
fn merge_ordered_list(
    original: &mut Object,
    patch: &mut Object,
    within: &str,
    field: &str,
    order: &[Value],
) -> Result<(), ApiError> {
    let kind = list_kind(within, field);
    let live = take_list(original, field, "the object")?;
    let patched = take_list(patch, field, "the patch")?;
    if let Some(patched) = &patched {
        check_order(patched, order, kind.key(), field)?;
    }
    let server_order = live.clone().unwrap_or_default();
    let merged = match (live, patched) {
        (None, None) => return Ok(()),
        (Some(live), None) => live,
        (live, Some(patched)) => merge_list(live.unwrap_or_default(), patched, kind, field)?,
    };
    original.insert(field.to_owned(), Value::Array(enforce_order(merged, order, &server_order, kind.key())));
    Ok(())
}

/// Removes `field` from `object`, which must be a list if present.
fn take_list(object: &mut Object, field: &str, whose: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match object.remove(field) {
        None => Ok(None),
        Some(Value::Array(list)) => Ok(Some(list)),
        Some(other) => Err(malformed(format!(
            "{SET_ELEMENT_ORDER}/{field} is given, but {field} in {whose} is {}, not a list",
            json_type(&other)
        ))),
    }
}

/// Kubernetes insists that `$setElementOrder` names every element the patch sends, in the same relative
/// order; otherwise the two disagree about the result and the patch is refused.
fn check_order(patch: &[Value], order: &[Value], key: Option<&str>, field: &str) -> Result<(), ApiError> {
    let mut wanted = order.iter();
    for element in patch.iter().filter(|element| element.get(PATCH).is_none()) {
        let id = identity(element, key);
        if !wanted.by_ref().any(|listed| same_id(identity(listed, key), id)) {
            return Err(malformed(format!(
                "the elements of {field} are missing from {SET_ELEMENT_ORDER}/{field} or are in another order"
            )));
        }
    }
    Ok(())
}

// ANCHOR: enforce_order
/// Orders a merged list the way Kubernetes does (`normalizeElementOrder` in `patch.go`):
/// - elements the patch names come in the patch's order (`wanted`);
/// - the other, server-only elements keep their order in the live list (`server`);
/// - the two runs are interleaved: a server-only element goes first only if it stood before the next patch
///   element in the live list. So `[a, b, c]` ordered by the patch as `[c, a]` becomes `[b, c, a]`, and an
///   element new to the list goes before the untouched ones.
fn enforce_order(merged: Vec<Value>, wanted: &[Value], server: &[Value], key: Option<&str>) -> Vec<Value> {
    let position = |list: &[Value], element: &Value| {
        let id = identity(element, key)?;
        list.iter().position(|other| same_id(identity(other, key), Some(id)))
    };
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|element| position(wanted, element).is_some());
    named.sort_by_key(|element| position(wanted, element));
    server_only.sort_by_key(|element| position(server, element).unwrap_or(usize::MAX));

    let mut ordered = Vec::with_capacity(named.len() + server_only.len());
    let mut named = named.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let server_first = match (server_only.peek(), named.peek()) {
            (Some(left), Some(right)) => {
                matches!((position(server, left), position(server, right)), (Some(l), Some(r)) if l < r)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        ordered.extend(if server_first { server_only.next() } else { named.next() });
    }
    ordered
}
// ANCHOR_END: enforce_order

/// `$retainKeys`: clears every field of `original` not listed. Every field the patch sets must be listed,
/// or the patch contradicts itself.
fn retain_keys(original: &mut Object, patch: &Object, keep: Value) -> Result<(), ApiError> {
    let bad = || malformed(format!("{RETAIN_KEYS} must be a list of field names"));
    let Value::Array(keep) = keep else { return Err(bad()) };
    let keep: Vec<&str> = keep.iter().map(|name| name.as_str().ok_or_else(bad)).collect::<Result<_, _>>()?;
    for (field, value) in patch {
        let directive = field.starts_with(SET_ELEMENT_ORDER) || field.starts_with(DELETE_FROM_PRIMITIVE_LIST);
        if !value.is_null() && !directive && !keep.contains(&field.as_str()) {
            return Err(malformed(format!("the patch sets {field}, which {RETAIN_KEYS} does not list")));
        }
    }
    original.retain(|field, _| keep.contains(&field.as_str()));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes the given values from a list of scalars.
fn delete_from_list(original: &mut Object, field: &str, values: Value) -> Result<(), ApiError> {
    let Value::Array(values) = values else {
        return Err(malformed(format!("{DELETE_FROM_PRIMITIVE_LIST}/{field} must be a list")));
    };
    if let Some(Value::Array(list)) = original.get_mut(field) {
        list.retain(|value| !values.iter().any(|doomed| same(doomed, value)));
    }
    Ok(())
}

/// The list a `$directive/<field>` key is about.
fn directive_target<'a>(key: &'a str, directive: &str) -> Result<&'a str, ApiError> {
    key.strip_prefix(directive)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|field| !field.is_empty())
        .ok_or_else(|| malformed(format!("{key} must have the form {directive}/<field>")))
}

/// Kubernetes refuses lists whose elements differ in type, and lists of lists.
fn elements_are_objects(original: &[Value], patch: &[Value], field: &str) -> Result<bool, ApiError> {
    let mut types = original.iter().chain(patch).map(json_type);
    let Some(first) = types.next() else { return Ok(false) };
    if first == "an array" {
        return Err(malformed(format!("{field} is a list of lists, which cannot be merged")));
    }
    if types.any(|other| other != first) {
        return Err(malformed(format!("the elements of {field} are not all of the same type")));
    }
    Ok(first == "an object")
}

/// What identifies a list element: its merge key, or the element itself in a set.
fn identity<'a>(element: &'a Value, key: Option<&str>) -> Option<&'a Value> {
    match key {
        Some(key) => element.get(key),
        None => Some(element),
    }
}

/// Two identities match if both exist and are the same.
fn same_id(left: Option<&Value>, right: Option<&Value>) -> bool {
    matches!((left, right), (Some(left), Some(right)) if same(left, right))
}

/// JSON equality, except that numbers compare by value: `80` and `80.0` name the same container port.
fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => left.as_f64() == right.as_f64(),
        _ => left == right,
    }
}

/// The JSON type of a value, with its article, for messages.
pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// 400: the patch is not a valid strategic merge patch.
fn malformed(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid strategic merge patch: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smp(original: Value, patch: Value) -> Value {
        merge(&original, patch).unwrap()
    }

    fn pod(containers: Value) -> Value {
        json!({"spec": {"containers": containers}})
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let original = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "c", "args": ["x"]}]}});
        let patched = smp(
            original,
            json!({"spec": {"tolerations": [{"key": "b"}],
                                                    "containers": [{"name": "c", "args": ["y"]}]}}),
        );
        assert_eq!(
            patched,
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["y"]}]}})
        );
    }

    #[test]
    fn null_deletes_a_field_at_any_depth() {
        let patched = smp(
            pod(json!([{"name": "c", "image": "i", "workingDir": "/w"}])),
            json!({"spec": {"containers": [{"name": "c", "workingDir": null}]}}),
        );
        assert_eq!(patched, pod(json!([{"name": "c", "image": "i"}])));
    }

    #[test]
    fn container_ports_merge_by_container_port_and_service_ports_by_port() {
        let original = pod(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]));
        let patched = smp(
            original,
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}),
        );
        assert_eq!(
            patched,
            pod(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}]))
        );

        let service = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let patched = smp(service, json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}));
        assert_eq!(patched["spec"]["ports"], json!([{"port": 80, "targetPort": 9090}, {"port": 443}]));
    }

    #[test]
    fn endpoint_subset_ports_are_atomic_because_they_carry_no_merge_tag() {
        let endpoints = json!({"subsets": [{"ports": [{"port": 80}, {"port": 443}]}]});
        let patched = smp(endpoints, json!({"subsets": [{"ports": [{"port": 8080}]}]}));
        assert_eq!(patched, json!({"subsets": [{"ports": [{"port": 8080}]}]}));
    }

    #[test]
    fn set_element_order_reorders_and_keeps_server_only_elements_near_their_old_place() {
        let original = pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patched = smp(original, json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}));
        assert_eq!(patched, pod(json!([{"name": "b"}, {"name": "c"}, {"name": "a"}])));
    }

    #[test]
    fn without_set_element_order_new_elements_come_first_as_in_kubernetes() {
        // Kubernetes' ordering rule puts elements the live list does not know before the untouched ones. kubectl
        // apply and set image always send `$setElementOrder`, so users see their own order.
        let original = pod(json!([{"name": "a"}]));
        let patched = smp(original, json!({"spec": {"containers": [{"name": "z"}, {"name": "y"}]}}));
        assert_eq!(patched, pod(json!([{"name": "z"}, {"name": "y"}, {"name": "a"}])));
    }

    #[test]
    fn a_patch_that_contradicts_its_set_element_order_is_refused() {
        let err = merge(
            &pod(json!([{"name": "a"}])),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"name": "b", "image": "i"}]
            }}),
        )
        .unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.message.contains("$setElementOrder/containers"), "{}", err.message);
    }

    #[test]
    fn patch_replace_in_a_list_makes_the_other_elements_the_whole_list() {
        let original = pod(json!([{"name": "a", "image": "1"}, {"name": "b"}]));
        let patched = smp(original, json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}}));
        assert_eq!(patched, pod(json!([{"name": "c"}])));
    }

    #[test]
    fn patch_replace_and_delete_on_an_object() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let patched = smp(original.clone(), json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}));
        assert_eq!(patched, json!({"metadata": {"labels": {"c": "3"}}}));
        let patched = smp(original, json!({"metadata": {"labels": {"$patch": "delete"}}}));
        assert_eq!(patched, json!({"metadata": {"labels": {}}}));
    }

    #[test]
    fn retain_keys_clears_the_fields_it_does_not_list() {
        let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patched = smp(original, json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}));
        assert_eq!(patched, json!({"spec": {"strategy": {"type": "Recreate"}}}));
    }

    #[test]
    fn retain_keys_must_list_every_field_the_patch_sets() {
        let err = merge(&json!({}), json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}))
            .unwrap_err();
        assert_eq!(
            err.message,
            "invalid strategic merge patch: the patch sets rollingUpdate, which $retainKeys does not list"
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_and_delete_from_primitive_list_removes_values() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patched = smp(
            original,
            json!({"metadata": {
                "finalizers": ["b", "c"],
                "$deleteFromPrimitiveList/finalizers": ["a"]
            }}),
        );
        assert_eq!(patched, json!({"metadata": {"finalizers": ["b", "c"]}}));
    }

    #[test]
    fn new_values_are_stored_without_directives_or_nulls() {
        let patched = smp(
            json!({}),
            json!({"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": null}],
                                                                 "$setElementOrder/env": [{"name": "A"}]}]}}),
        );
        assert_eq!(patched, pod(json!([{"name": "c", "env": [{"name": "A"}]}])));
    }

    #[test]
    fn a_patch_element_without_its_merge_key_is_a_400() {
        let err = merge(&pod(json!([{"name": "a"}])), json!({"spec": {"containers": [{"image": "x"}]}})).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            concat!(
                r#"invalid strategic merge patch: an element of containers has no "name", "#,
                r#"the key that list merges by: {"image":"x"}"#
            )
        );
    }

    #[test]
    fn an_unknown_directive_is_a_400() {
        let err = merge(&json!({}), json!({"metadata": {"$patch": "merge"}})).unwrap_err();
        assert_eq!(err.code, 400);
        let err =
            merge(&pod(json!([])), json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}})).unwrap_err();
        assert_eq!(err.message, "invalid strategic merge patch: merging lists cannot yet be specified in the patch");
    }

    #[test]
    fn conditions_merge_by_type() {
        let original = json!({"status": {"conditions": [
            {"type": "Available", "status": "False"},
            {"type": "Progressing", "status": "True"}
        ]}});
        let patched = smp(original, json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}));
        assert_eq!(
            patched["status"]["conditions"],
            json!([{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}])
        );
    }

    #[test]
    fn a_value_of_another_type_replaces_the_old_one() {
        let patched = smp(json!({"data": {"a": "1"}}), json!({"data": "text"}));
        assert_eq!(patched, json!({"data": "text"}));
    }
}
