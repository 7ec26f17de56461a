//! The seam between the generic apiserver and the typed Kubernetes objects.
//!
//! The apiserver stores and serves plain JSON so that it can treat every kind alike. When an object comes in, it
//! goes once through its typed form (the `k8s-openapi` struct for its kind) to find fields that do not exist,
//! fill in defaults and check it. [`Typed`] does that for any kind that has [`Defaults`] and [`Validate`].

use crate::defaults::Defaults;
use crate::status::Cause;
use crate::validation::Validate;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use std::marker::PhantomData;

// ANCHOR: rules
/// What the apiserver needs to know about one kind beyond its [`crate::resources::Resource`] entry.
pub trait Rules: Sync + Send {
    /// Reads `object` as this kind, applies Kubernetes' defaults and returns it as JSON again, with the paths of
    /// the fields the kind does not have (the server drops them, or refuses them under `fieldValidation=Strict`).
    fn decode(&self, object: Value) -> Result<Decoded, DecodeError>;

    /// Checks a decoded object; `old` is the stored object on updates, for immutable fields.
    fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause>;

    /// Adds the OpenAPI schema of this kind, and of every type it uses, to `generator`'s definitions and returns
    /// its name (`io.k8s.api.apps.v1.Deployment`). The schemas are those k8s-openapi generates from Kubernetes'
    /// own OpenAPI document, descriptions included: what the apiserver publishes for `kubectl explain`.
    fn schema(&self, generator: &mut SchemaGenerator) -> String;

    /// [`Rules::decode`] then [`Rules::validate`], in one pass through the typed form (what the apiserver does
    /// on every write).
    fn admit(&self, object: Value, old: Option<&Value>) -> Result<(Decoded, Vec<Cause>), DecodeError> {
        let decoded = self.decode(object)?;
        let causes = self.validate(&decoded.object, old);
        Ok((decoded, causes))
    }
}
// ANCHOR_END: rules

/// The result of [`Rules::decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The object with defaults applied and unknown fields dropped.
    pub object: Value,
    /// Unknown fields as Kubernetes names them: `spec.template.spec.containers[0].imagePullPolcy`.
    pub unknown_fields: Vec<String>,
}

/// A value of the wrong type, such as `replicas: "three"`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// Where: `spec.replicas`.
    pub path: String,
    /// What serde said: `invalid type: string "three", expected i32`.
    pub message: String,
}

/// [`Rules`] for a `k8s-openapi` kind `K`.
pub struct Typed<K>(PhantomData<fn() -> K>);

impl<K> Typed<K> {
    /// A constant, so that the static resource table can point at it.
    pub const NEW: Self = Typed(PhantomData);
}

impl<K> Typed<K>
where
    K: DeserializeOwned + Serialize + Defaults + Validate,
{
    /// Reads JSON into `K`, collecting unknown fields on the way.
    fn read(object: Value) -> Result<(K, Vec<String>), DecodeError> {
        let mut unknown = Vec::new();
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(field_path(&path));
        let typed = {
            let ignoring = serde_ignored::Deserializer::new(object, &mut record);
            serde_path_to_error::deserialize(ignoring)
                .map_err(|err| DecodeError { path: err.path().to_string(), message: err.inner().to_string() })?
        };
        Ok((typed, unknown))
    }
}

impl<K> Rules for Typed<K>
where
    K: DeserializeOwned + Serialize + Defaults + Validate + JsonSchema,
{
    fn schema(&self, generator: &mut SchemaGenerator) -> String {
        generator.subschema_for::<K>();
        K::schema_name().into_owned()
    }

    fn decode(&self, object: Value) -> Result<Decoded, DecodeError> {
        let (mut typed, unknown_fields) = Self::read(object)?;
        typed.apply_defaults();
        let object = serde_json::to_value(&typed)
            .map_err(|err| DecodeError { path: String::new(), message: err.to_string() })?;
        Ok(Decoded { object, unknown_fields })
    }

    fn admit(&self, object: Value, old: Option<&Value>) -> Result<(Decoded, Vec<Cause>), DecodeError> {
        let (mut typed, unknown_fields) = Self::read(object)?;
        typed.apply_defaults();
        let old: Option<K> = old.and_then(|old| serde_json::from_value(old.clone()).ok());
        let causes = typed.validate(old.as_ref());
        let object = serde_json::to_value(&typed)
            .map_err(|err| DecodeError { path: String::new(), message: err.to_string() })?;
        Ok((Decoded { object, unknown_fields }, causes))
    }

    fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let typed: K = match serde_json::from_value(object.clone()) {
            Ok(typed) => typed,
            Err(err) => return vec![Cause::invalid("", "<object>", err)],
        };
        let old: Option<K> = old.and_then(|old| serde_json::from_value(old.clone()).ok());
        typed.validate(old.as_ref())
    }
}

/// Formats a serde_ignored path the way Kubernetes names fields: `spec.containers[0].name`.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    #[test]
    fn misspelled_fields_are_reported_with_their_path() {
        let manifest = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "x", "imagePullPolcy": "Never"}]}
                }
            }
        });
        let decoded = Typed::<Deployment>::NEW.decode(manifest).unwrap();
        assert_eq!(decoded.unknown_fields, vec!["spec.template.spec.containers[0].imagePullPolcy"]);
        assert!(decoded.object["spec"]["template"]["spec"]["containers"][0].get("imagePullPolcy").is_none());
    }

    #[test]
    fn wrong_types_name_the_field() {
        let manifest = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": "three", "selector": {}, "template": {}}});
        let err = Typed::<Deployment>::NEW.decode(manifest).unwrap_err();
        assert_eq!(err.path, "spec.replicas");
    }
}
