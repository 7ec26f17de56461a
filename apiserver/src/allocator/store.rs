//! Keeping a range's bitmap in the cluster store, where every apiserver sees the same one.
//!
//! Kubernetes keeps each bitmap in one key, `/registry/ranges/serviceips` and `/registry/ranges/servicenodeports`,
//! as a `RangeAllocation` object; so do we (as JSON, with the bitmap in hexadecimal where Kubernetes stores raw
//! bytes in protobuf):
//!
//! ```text
//! /registry/ranges/serviceips → {"apiVersion":"v1","kind":"RangeAllocation","metadata":{"name":"serviceips"},
//!                                "range":"10.96.0.0/12","data":"0100000002"}
//! ```
//!
//! A change is *read, decide, write-if-unchanged*: [`modify`] reads the key and its mod revision, lets the pure
//! decision change the bitmap, and writes it back with [`Store::update`] at the revision it read. If another
//! apiserver wrote the key in between, the store answers `Conflict` and we start again from its bitmap — so two
//! apiservers can never both take the same slot. The retry is safe because the decision is a pure function of the
//! bitmap.

use super::bitmap::Bitmap;
use crate::store::{Store, StoreError};
use kubelab_api::ApiError;
use serde_json::{Value, json};

/// How many times a write that lost a race is tried again before giving up.
const ATTEMPTS: usize = 32;

/// One range in the store: its key, and what its bitmap covers.
#[derive(Debug, Clone)]
pub struct StoredRange {
    /// `/registry/ranges/serviceips`.
    pub key: &'static str,
    /// The range as text (`10.96.0.0/12`, `30000-32767`), stored beside the bitmap.
    pub spec: String,
    /// How many slots the range has.
    pub size: usize,
    /// Slots taken in a brand-new bitmap (the `kubernetes` Service's address).
    pub taken_at_start: &'static [usize],
}

impl StoredRange {
    fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(self.key)
    }

    fn fresh(&self) -> Bitmap {
        let mut bitmap = Bitmap::new(self.size);
        for slot in self.taken_at_start {
            let _ = super::bitmap::allocate(&mut bitmap, super::bitmap::Want::Slot(*slot), "");
        }
        bitmap
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bitmap, ApiError> {
        let stored: Value = serde_json::from_slice(bytes)
            .map_err(|err| ApiError::internal(format!("{} is not valid JSON: {err}", self.key)))?;
        let range = stored["range"].as_str().unwrap_or("");
        if range != self.spec {
            // Kubernetes' repair loop would rebuild the bitmap from the Services; we refuse to guess.
            return Err(ApiError::internal(format!(
                "the {} in the store cover {range}, but this apiserver is configured with {}",
                self.name(),
                self.spec
            )));
        }
        Bitmap::from_hex(self.size, stored["data"].as_str().unwrap_or(""))
            .ok_or_else(|| ApiError::internal(format!("{} holds a bitmap that does not fit {range}", self.key)))
    }

    fn encode(&self, bitmap: &Bitmap) -> Vec<u8> {
        let object = json!({
            "apiVersion": "v1",
            "kind": "RangeAllocation",
            "metadata": {"name": self.name()},
            "range": self.spec,
            "data": bitmap.to_hex(),
        });
        object.to_string().into_bytes()
    }
}

// ANCHOR: modify
/// Reads `range`'s bitmap, applies `decide` and writes the result back unless someone else wrote first, in
/// which case it starts again. `dry_run` decides without writing. Returns what `decide` returned.
pub async fn modify<T>(
    store: &dyn Store,
    range: &StoredRange,
    dry_run: bool,
    mut decide: impl FnMut(&mut Bitmap) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    for _ in 0..ATTEMPTS {
        let current = store.get(range.key).await.map_err(unavailable)?;
        let mut bitmap = match &current {
            Some(kv) => range.decode(&kv.value)?,
            None => range.fresh(),
        };
        let before = bitmap.clone();
        let decided = decide(&mut bitmap)?;
        if dry_run || (bitmap == before && current.is_some()) {
            return Ok(decided);
        }
        let value = range.encode(&bitmap);
        let written = match &current {
            Some(kv) => store.update(range.key, value, kv.mod_revision).await,
            None => store.create(range.key, value).await,
        };
        match written {
            Ok(_) => return Ok(decided),
            // Another apiserver got there first: decide again on what it wrote.
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists(_) | StoreError::NotFound(_)) => continue,
            Err(err) => return Err(unavailable(err)),
        }
    }
    Err(ApiError::internal(format!("{} changed {ATTEMPTS} times while we tried to write it", range.key)))
}
// ANCHOR_END: modify

fn unavailable(err: StoreError) -> ApiError {
    match err {
        StoreError::Unavailable(msg) => ApiError::unavailable(msg),
        err => ApiError::internal(err.to_string()),
    }
}
