//! The patch languages: what a `PATCH` request's `Content-Type` says about its body.
//!
//! Both sides need the same four names: the client picks one to send ([`crate::client::Client::patch`]), the
//! apiserver reads it back from the header and applies the body (`apiserver/src/patch.rs`, where the patching
//! itself lives). Keeping the one enum here, like Kubernetes keeps `types.PatchType` in apimachinery, means the
//! two can never disagree about a media type.

/// The four ways to patch an object; each is a different `Content-Type` on a `PATCH` request.
///
/// | Content-Type                             | Sent by                                 |
/// |------------------------------------------|-----------------------------------------|
/// | `application/json-patch+json`            | `rollout undo`, `patch --type=json`     |
/// | `application/merge-patch+json`           | `label`, `annotate`, `scale`            |
/// | `application/strategic-merge-patch+json` | `apply`, `set image`, `rollout restart` |
/// | `application/apply-patch+yaml`           | `apply --server-side`                   |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902: a list of `add`/`remove`/`replace`/`move`/`copy`/`test` operations on JSON pointers,
    /// e.g. `[{"op":"replace","path":"/spec/replicas","value":3}]`.
    Json,
    /// RFC 7386: a partial object merged into the object; `null` deletes a field, and any list is replaced whole.
    Merge,
    /// Kubernetes' strategic merge patch: like `Merge`, but lists such as `containers` merge by key (`name`).
    StrategicMerge,
    /// Server-side apply: the full intent of one field manager, YAML or JSON; creates the object if missing.
    Apply,
}

impl PatchType {
    /// Every patch type, in the order the apiserver advertises them (e.g. in an error for an unknown one).
    pub const ALL: [PatchType; 4] = [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge, PatchType::Apply];

    /// Reads a request's `Content-Type`. Parameters such as `; charset=utf-8` are ignored, as is case,
    /// because media types are case-insensitive and clients do add a charset.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split_once(';').map_or(content_type, |(media_type, _)| media_type);
        let media_type = media_type.trim();
        PatchType::ALL.into_iter().find(|patch_type| patch_type.content_type().eq_ignore_ascii_case(media_type))
    }

    /// The `Content-Type` header that tells the apiserver how to read the body.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patch_type_reads_back_from_its_own_content_type() {
        for patch_type in PatchType::ALL {
            assert_eq!(PatchType::from_content_type(patch_type.content_type()), Some(patch_type));
        }
    }
}
