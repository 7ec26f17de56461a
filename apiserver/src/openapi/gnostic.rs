//! `/openapi/v2` in protobuf: the form client-go's `OpenAPISchema()` asks for, and the only one it can read.
//!
//! kubectl 1.27 and 1.28 fetch the Swagger 2.0 document with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and decode the body as gnostic's
//! `openapi.v2.Document` (github.com/google/gnostic, `openapiv2/OpenAPIv2.proto`), before `apply` and for
//! `explain --output=plaintext-openapiv2`; a 404 makes `apply` fail. The messages below are that `.proto`'s, for the
//! subset of fields kubelab's document uses, with the same field numbers (a decoder skips numbers it does not
//! know, so leaving fields out is safe; changing a number is not).
//!
//! The document is written once, as JSON ([`super::v2_document`]); [`encode`] translates it, so the two forms
//! cannot disagree. Vendor extensions (`x-kubernetes-…`) are gnostic `NamedAny`s whose value is carried as YAML
//! text in `Any.yaml` — what kube-openapi reads back with a YAML parser. We write the value as JSON text, which
//! is valid YAML; gnostic's own converter writes block-style YAML, which parses to the same value.

use prost::Message;
use serde_json::Value;

// ANCHOR: messages
/// `openapi.v2.Document`.
#[derive(Clone, PartialEq, Message)]
pub struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
}

/// `openapi.v2.Info`.
#[derive(Clone, PartialEq, Message)]
pub struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `openapi.v2.Definitions`: the named schemas.
#[derive(Clone, PartialEq, Message)]
pub struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.NamedSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

/// `openapi.v2.Schema`, without the validation keywords kubelab's schemas do not use.
#[derive(Clone, PartialEq, Message)]
pub struct Schema {
    #[prost(string, tag = "1")]
    pub _ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, tag = "21")]
    pub additional_properties: Option<AdditionalPropertiesItem>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.AdditionalPropertiesItem`: a schema, or `true`/`false`.
#[derive(Clone, PartialEq, Message)]
pub struct AdditionalPropertiesItem {
    #[prost(oneof = "AdditionalProperties", tags = "1, 2")]
    pub oneof: Option<AdditionalProperties>,
}

/// The `oneof` of [`AdditionalPropertiesItem`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum AdditionalProperties {
    /// Boxed: a schema holds schemas.
    #[prost(message, boxed, tag = "1")]
    Schema(Box<Schema>),
    #[prost(bool, tag = "2")]
    Boolean(bool),
}

/// `openapi.v2.TypeItem`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

/// `openapi.v2.ItemsItem`.
#[derive(Clone, PartialEq, Message)]
pub struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

/// `openapi.v2.Properties`.
#[derive(Clone, PartialEq, Message)]
pub struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

/// `openapi.v2.Any`: the value as YAML text (field 1, a `google.protobuf.Any`, stays empty as in kube-openapi).
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

/// `openapi.v2.NamedAny`: one vendor extension.
#[derive(Clone, PartialEq, Message)]
pub struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// `openapi.v2.Paths`.
#[derive(Clone, PartialEq, Message)]
pub struct Paths {
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

/// `openapi.v2.NamedPathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

/// `openapi.v2.PathItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PathItem {
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
}

/// `openapi.v2.Operation`.
#[derive(Clone, PartialEq, Message)]
pub struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

/// `openapi.v2.ParametersItem` (only its `parameter` case: kubelab uses no parameter references).
#[derive(Clone, PartialEq, Message)]
pub struct ParametersItem {
    #[prost(message, optional, tag = "1")]
    pub parameter: Option<Parameter>,
}

/// `openapi.v2.Parameter`: a body parameter, or one in the path or query.
#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(message, optional, tag = "1")]
    pub body_parameter: Option<BodyParameter>,
    #[prost(message, optional, tag = "2")]
    pub non_body_parameter: Option<NonBodyParameter>,
}

/// `openapi.v2.BodyParameter`.
#[derive(Clone, PartialEq, Message)]
pub struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

/// `openapi.v2.NonBodyParameter`: query parameters are field 3, path parameters field 4.
#[derive(Clone, PartialEq, Message)]
pub struct NonBodyParameter {
    #[prost(message, optional, tag = "3")]
    pub query_parameter_sub_schema: Option<QueryParameterSubSchema>,
    #[prost(message, optional, tag = "4")]
    pub path_parameter_sub_schema: Option<PathParameterSubSchema>,
}

/// `openapi.v2.QueryParameterSubSchema` (its `allow_empty_value`, field 5, shifts `type` to 6).
#[derive(Clone, PartialEq, Message)]
pub struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

/// `openapi.v2.PathParameterSubSchema`.
#[derive(Clone, PartialEq, Message)]
pub struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

/// `openapi.v2.Responses`.
#[derive(Clone, PartialEq, Message)]
pub struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

/// `openapi.v2.NamedResponseValue`.
#[derive(Clone, PartialEq, Message)]
pub struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

/// `openapi.v2.ResponseValue` (its `response` case).
#[derive(Clone, PartialEq, Message)]
pub struct ResponseValue {
    #[prost(message, optional, tag = "1")]
    pub response: Option<Response>,
}

/// `openapi.v2.Response`.
#[derive(Clone, PartialEq, Message)]
pub struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

/// `openapi.v2.SchemaItem` (its `schema` case).
#[derive(Clone, PartialEq, Message)]
pub struct SchemaItem {
    #[prost(message, optional, tag = "1")]
    pub schema: Option<Schema>,
}
// ANCHOR_END: messages

// ANCHOR: encode
/// The protobuf form of a Swagger 2.0 document given as JSON.
pub fn encode(document: &Value) -> Vec<u8> {
    let document = Document {
        swagger: text(document, "swagger"),
        info: Some(Info { title: text(&document["info"], "title"), version: text(&document["info"], "version") }),
        paths: Some(Paths {
            path: entries(&document["paths"])
                .map(|(name, item)| NamedPathItem { name: name.clone(), value: Some(path_item(item)) })
                .collect(),
        }),
        definitions: Some(Definitions { additional_properties: named_schemas(&document["definitions"]) }),
    };
    document.encode_to_vec()
}
// ANCHOR_END: encode

fn schema(json: &Value) -> Schema {
    let additional_properties = match json.get("additionalProperties") {
        Some(Value::Bool(allowed)) => Some(AdditionalProperties::Boolean(*allowed)),
        Some(sub) => Some(AdditionalProperties::Schema(Box::new(schema(sub)))),
        None => None,
    };
    let types = match json.get("type") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    Schema {
        _ref: text(json, "$ref"),
        format: text(json, "format"),
        description: text(json, "description"),
        required: strings(&json["required"]),
        r#enum: json["enum"].as_array().into_iter().flatten().map(any).collect(),
        additional_properties: additional_properties.map(|oneof| AdditionalPropertiesItem { oneof: Some(oneof) }),
        r#type: (!types.is_empty()).then_some(TypeItem { value: types }),
        items: json.get("items").map(|items| ItemsItem { schema: vec![schema(items)] }),
        properties: json
            .get("properties")
            .map(|properties| Properties { additional_properties: named_schemas(properties) }),
        vendor_extension: vendor_extensions(json),
    }
}

fn named_schemas(json: &Value) -> Vec<NamedSchema> {
    entries(json).map(|(name, value)| NamedSchema { name: name.clone(), value: Some(schema(value)) }).collect()
}

fn path_item(json: &Value) -> PathItem {
    let operation = |method: &str| json.get(method).map(operation);
    PathItem {
        get: operation("get"),
        put: operation("put"),
        post: operation("post"),
        delete: operation("delete"),
        patch: operation("patch"),
        parameters: parameters(&json["parameters"]),
    }
}

fn operation(json: &Value) -> Operation {
    Operation {
        tags: strings(&json["tags"]),
        description: text(json, "description"),
        operation_id: text(json, "operationId"),
        produces: strings(&json["produces"]),
        consumes: strings(&json["consumes"]),
        parameters: parameters(&json["parameters"]),
        responses: Some(Responses {
            response_code: entries(&json["responses"])
                .map(|(code, response)| NamedResponseValue {
                    name: code.clone(),
                    value: Some(ResponseValue {
                        response: Some(Response {
                            description: text(response, "description"),
                            schema: response.get("schema").map(|s| SchemaItem { schema: Some(schema(s)) }),
                        }),
                    }),
                })
                .collect(),
        }),
        vendor_extension: vendor_extensions(json),
    }
}

/// A path or query parameter: two messages with the same fields under different numbers.
macro_rules! simple_parameter {
    ($message:ident, $json:expr) => {
        $message {
            required: $json["required"] == true,
            r#in: text($json, "in"),
            description: text($json, "description"),
            name: text($json, "name"),
            r#type: text($json, "type"),
            unique_items: $json["uniqueItems"] == true,
        }
    };
}

fn parameters(json: &Value) -> Vec<ParametersItem> {
    let parameter = |json: &Value| {
        let non_body = |non_body| Parameter { body_parameter: None, non_body_parameter: Some(non_body) };
        match json["in"].as_str() {
            Some("body") => Parameter {
                body_parameter: Some(BodyParameter {
                    description: text(json, "description"),
                    name: text(json, "name"),
                    r#in: text(json, "in"),
                    required: json["required"] == true,
                    schema: json.get("schema").map(schema),
                }),
                non_body_parameter: None,
            },
            Some("path") => non_body(NonBodyParameter {
                query_parameter_sub_schema: None,
                path_parameter_sub_schema: Some(simple_parameter!(PathParameterSubSchema, json)),
            }),
            _ => non_body(NonBodyParameter {
                query_parameter_sub_schema: Some(simple_parameter!(QueryParameterSubSchema, json)),
                path_parameter_sub_schema: None,
            }),
        }
    };
    json.as_array().into_iter().flatten().map(|p| ParametersItem { parameter: Some(parameter(p)) }).collect()
}

/// The `x-…` keys of an object, each as a [`NamedAny`] carrying its value as YAML (here: JSON) text.
fn vendor_extensions(json: &Value) -> Vec<NamedAny> {
    entries(json)
        .filter(|(name, _)| name.starts_with("x-"))
        .map(|(name, value)| NamedAny { name: name.clone(), value: Some(any(value)) })
        .collect()
}

fn any(value: &Value) -> Any {
    Any { yaml: value.to_string() }
}

fn entries(json: &Value) -> impl Iterator<Item = (&String, &Value)> {
    json.as_object().into_iter().flatten()
}

fn text(json: &Value, key: &str) -> String {
    json.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings(json: &Value) -> Vec<String> {
    json.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_round_trips_through_the_gnostic_messages() {
        let document = json!({
            "swagger": "2.0",
            "info": {"title": "kubelab", "version": "v1.32"},
            "paths": {"/api/v1/namespaces/{namespace}/pods/{name}": {
                "parameters": [{"name": "namespace", "in": "path", "required": true, "type": "string"}],
                "patch": {"operationId": "patchCoreV1NamespacedPod", "consumes": ["application/merge-patch+json"],
                    "parameters": [{"name": "fieldValidation", "in": "query", "type": "string"},
                                   {"name": "body", "in": "body", "required": true, "schema": {"type": "object"}}],
                    "responses": {"200": {"description": "OK",
                        "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}}},
                    "x-kubernetes-group-version-kind": {"group": "", "kind": "Pod", "version": "v1"}}}},
            "definitions": {"io.k8s.api.core.v1.PodSpec": {
                "type": "object", "required": ["containers"],
                "properties": {
                    "containers": {"type": "array", "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
                    "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
                }}},
        });
        let decoded = Document::decode(encode(&document).as_slice()).unwrap();
        assert_eq!(decoded.swagger, "2.0");
        let spec = &decoded.definitions.unwrap().additional_properties[0];
        assert_eq!(spec.name, "io.k8s.api.core.v1.PodSpec");
        let spec = spec.value.as_ref().unwrap();
        assert_eq!(spec.required, ["containers"]);
        let properties = &spec.properties.as_ref().unwrap().additional_properties;
        let containers = properties[0].value.as_ref().unwrap();
        assert_eq!(containers.items.as_ref().unwrap().schema[0]._ref, "#/definitions/io.k8s.api.core.v1.Container");
        let extensions: Vec<(&str, &str)> = containers
            .vendor_extension
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_ref().unwrap().yaml.as_str()))
            .collect();
        assert_eq!(
            extensions,
            [("x-kubernetes-patch-merge-key", "\"name\""), ("x-kubernetes-patch-strategy", "\"merge\"")]
        );
        let map = properties[1].value.as_ref().unwrap();
        assert_eq!(map.r#type.as_ref().unwrap().value, ["object"]);
        let values = map.additional_properties.as_ref().unwrap().oneof.as_ref().unwrap();
        assert!(matches!(values, AdditionalProperties::Schema(s) if s.r#type.as_ref().unwrap().value == ["string"]));

        let path = &decoded.paths.unwrap().path[0];
        let item = path.value.as_ref().unwrap();
        let namespace = item.parameters[0].parameter.as_ref().unwrap().non_body_parameter.as_ref().unwrap();
        let namespace = namespace.path_parameter_sub_schema.as_ref().unwrap();
        assert_eq!((namespace.name.as_str(), namespace.required), ("namespace", true));
        let patch = item.patch.as_ref().unwrap();
        let query = patch.parameters[0].parameter.as_ref().unwrap().non_body_parameter.as_ref().unwrap();
        assert_eq!(query.query_parameter_sub_schema.as_ref().unwrap().name, "fieldValidation");
        assert!(patch.parameters[1].parameter.as_ref().unwrap().body_parameter.is_some());
        assert_eq!(patch.vendor_extension[0].name, "x-kubernetes-group-version-kind");
        let response = &patch.responses.as_ref().unwrap().response_code[0];
        assert_eq!(response.name, "200");
    }
}
