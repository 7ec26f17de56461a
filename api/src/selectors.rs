//! Label selectors and field selectors: how a client says *which* objects it wants.
//!
//! Labels are the glue of Kubernetes. A Deployment finds its ReplicaSets, a ReplicaSet its Pods and a Service its
//! endpoints by a **label selector**, never by name; `kubectl get pods -l app=web,tier!=db` sends the same kind of
//! selector in a query string. A **field selector** filters on a few well-known fields instead: the scheduler
//! watches `spec.nodeName=` (Pods not yet bound), a kubelet watches `spec.nodeName=<its node>`, and
//! `kubectl get events --field-selector involvedObject.name=web` uses one too.
//!
//! - [`LabelSelector`] reads the string form (`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, and
//!   `a>1`/`a<1`, comma-separated) and the structured form of a manifest's `spec.selector` (`matchLabels` plus
//!   `matchExpressions`), matches a set of labels, and prints itself back in the canonical string form.
//! - [`FieldSelector`] reads `a=b,c!=d` (also `==`) and matches an object held as JSON. Kubernetes lets each kind
//!   choose the few fields it can be selected by; [`is_supported_field`] answers that question so that the
//!   apiserver refuses a list with an unsupported field with 400 Bad Request, in Kubernetes' words.
//!
//! Mirrors `k8s.io/apimachinery/pkg/labels` and `pkg/fields`, and the per-kind field sets in
//! `pkg/registry/*/strategy.go`. Error sentences are Kubernetes'. What we leave out: selecting on labels of other
//! types (`labels.Set` only), the `Requirements()` introspection API and the fast paths for large selectors.

mod fields;
mod label_parser;
mod labels;

pub use fields::{FieldSelector, FieldTerm, is_supported_field, selectable_field, supported_fields};
pub use labels::{LabelSelector, Operator, Requirement};

/// A selector that cannot be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector with bad syntax or a bad key or value, e.g.
    /// `unable to parse requirement: found 'x' expected: '('`.
    #[error("{0}")]
    InvalidLabelSelector(String),
    /// A field selector with bad syntax, e.g. `invalid selector: 'a'; can't understand 'a'`.
    #[error("{0}")]
    InvalidFieldSelector(String),
    /// A field the kind cannot be selected by. Kubernetes answers 400 with exactly this sentence.
    #[error("field label not supported: {0}")]
    FieldNotSupported(String),
}
