//! The allocation decision, with no I/O: a bitmap of taken slots, and which slot a request gets.
//!
//! A *range* (the service CIDR, the node port range) is numbered from 0: slot `i` is the `i`-th usable address or
//! port. A [`Bitmap`] has one bit per slot, set when the slot is taken. [`allocate`] and [`release`] are the whole
//! policy; [`super::ranges`] turns addresses and ports into slots and back, and [`super::store`] keeps the bitmap
//! in the cluster store.
//!
//! Mirrors `pkg/registry/core/service/allocator/bitmap.go` in Kubernetes, with its *random scan with offset*
//! strategy: a dynamic allocation starts at a random slot of the **upper** part of the range and scans forward,
//! so that the **lower** part (the first `reserved` slots) stays free for users who ask for a fixed address, such
//! as the `kube-dns` Service's `10.96.0.10`. Only when the upper part is full does it look in the lower part.

use std::fmt;

// ANCHOR: bitmap
/// Which slots of a range are taken: bit `i` of byte `i / 8` is slot `i`.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    /// How many slots the range has.
    size: usize,
    bits: Vec<u8>,
}

/// What a Service asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// This very slot (`clusterIP: 10.96.0.5`, `nodePort: 30080`).
    Slot(usize),
    /// Any free slot: the scan starts at `random` (modulo the part scanned), above the first `reserved` slots.
    Any { reserved: usize, random: u64 },
}

/// Why a request was refused. The texts are Kubernetes' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Someone holds the requested slot.
    #[error("provided {0} is already allocated")]
    Taken(&'static str),
    /// No slot is free.
    #[error("range is full")]
    Full,
}
// ANCHOR_END: bitmap

impl Bitmap {
    /// An empty bitmap of `size` slots.
    pub fn new(size: usize) -> Self {
        Bitmap { size, bits: vec![0; size.div_ceil(8)] }
    }

    /// How many slots the range has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether slot `slot` is taken (slots outside the range never are).
    pub fn has(&self, slot: usize) -> bool {
        slot < self.size && self.bits[slot / 8] & (1 << (slot % 8)) != 0
    }

    /// How many slots are taken.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    fn set(&mut self, slot: usize, taken: bool) {
        if taken {
            self.bits[slot / 8] |= 1 << (slot % 8);
        } else {
            self.bits[slot / 8] &= !(1 << (slot % 8));
        }
    }

    /// The bitmap as stored: hexadecimal bytes, without the trailing zero bytes (an almost empty `/12` range is a
    /// few characters, not 256 KiB).
    pub fn to_hex(&self) -> String {
        let used = self.bits.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1);
        self.bits[..used].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads [`Bitmap::to_hex`] back for a range of `size` slots; `None` if the text is not such a bitmap.
    pub fn from_hex(size: usize, hex: &str) -> Option<Self> {
        let mut bitmap = Bitmap::new(size);
        if !hex.len().is_multiple_of(2) || hex.len() / 2 > bitmap.bits.len() {
            return None;
        }
        for (i, byte) in bitmap.bits.iter_mut().enumerate().take(hex.len() / 2) {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        // Bits past the end of the range would be slots that do not exist.
        (size..bitmap.bits.len() * 8).all(|slot| !bitmap.bit(slot)).then_some(bitmap)
    }

    fn bit(&self, slot: usize) -> bool {
        self.bits[slot / 8] & (1 << (slot % 8)) != 0
    }
}

impl fmt::Debug for Bitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let taken: Vec<usize> = (0..self.size).filter(|slot| self.has(*slot)).collect();
        write!(f, "Bitmap {{ size: {}, taken: {taken:?} }}", self.size)
    }
}

// ANCHOR: allocate
/// Takes a slot for `want` and returns it; `what` ("IP", "port") names the slot in the refusal.
///
/// The caller has checked that a requested slot is inside the range.
pub fn allocate(bitmap: &mut Bitmap, want: Want, what: &'static str) -> Result<usize, Refused> {
    let slot = match want {
        Want::Slot(slot) if bitmap.has(slot) => return Err(Refused::Taken(what)),
        Want::Slot(slot) => slot,
        Want::Any { reserved, random } => {
            let reserved = reserved.min(bitmap.size);
            // The upper part first, from a random point; then the lower part, also from a random point.
            let upper = scan(bitmap, reserved..bitmap.size, random);
            upper.or_else(|| scan(bitmap, 0..reserved, random)).ok_or(Refused::Full)?
        }
    };
    bitmap.set(slot, true);
    Ok(slot)
}

/// The first free slot of `part`, starting at `random` modulo its length and wrapping around.
fn scan(bitmap: &Bitmap, part: std::ops::Range<usize>, random: u64) -> Option<usize> {
    let len = part.len();
    if len == 0 {
        return None;
    }
    let start = (random % len as u64) as usize;
    (0..len).map(|i| part.start + (start + i) % len).find(|slot| !bitmap.has(*slot))
}

/// Gives a slot back. Releasing a free slot, or one outside the range, does nothing (a retried delete must not
/// fail).
pub fn release(bitmap: &mut Bitmap, slot: usize) {
    if slot < bitmap.size {
        bitmap.set(slot, false);
    }
}
// ANCHOR_END: allocate

#[cfg(test)]
mod tests {
    use super::*;

    fn any(random: u64) -> Want {
        Want::Any { reserved: 0, random }
    }

    #[test]
    fn every_slot_is_handed_out_once_and_then_the_range_is_full() {
        let mut bitmap = Bitmap::new(10);
        let mut seen: Vec<usize> = (0..10).map(|i| allocate(&mut bitmap, any(i * 7919), "IP").unwrap()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "no duplicates");
        assert_eq!(allocate(&mut bitmap, any(3), "IP"), Err(Refused::Full));
        assert_eq!(Refused::Full.to_string(), "range is full");
    }

    #[test]
    fn a_requested_free_slot_is_honoured() {
        let mut bitmap = Bitmap::new(100);
        assert_eq!(allocate(&mut bitmap, Want::Slot(42), "IP"), Ok(42));
        assert!(bitmap.has(42));
    }

    #[test]
    fn a_requested_taken_slot_is_refused_with_kubernetes_words() {
        let mut bitmap = Bitmap::new(100);
        allocate(&mut bitmap, Want::Slot(42), "port").unwrap();
        let refused = allocate(&mut bitmap, Want::Slot(42), "port").unwrap_err();
        assert_eq!(refused.to_string(), "provided port is already allocated");
        assert_eq!(Refused::Taken("IP").to_string(), "provided IP is already allocated");
    }

    #[test]
    fn a_dynamic_allocation_skips_taken_slots_and_wraps_around() {
        let mut bitmap = Bitmap::new(4);
        allocate(&mut bitmap, Want::Slot(3), "IP").unwrap();
        assert_eq!(allocate(&mut bitmap, any(3), "IP"), Ok(0), "slot 3 is taken: wrap to 0");
        assert_eq!(allocate(&mut bitmap, any(0), "IP"), Ok(1));
    }

    #[test]
    fn dynamic_allocations_stay_above_the_reserved_slots_until_the_upper_part_is_full() {
        let mut bitmap = Bitmap::new(8);
        let upper: Vec<usize> =
            (0..5).map(|i| allocate(&mut bitmap, Want::Any { reserved: 3, random: i }, "IP").unwrap()).collect();
        assert!(upper.iter().all(|slot| *slot >= 3), "{upper:?}");
        let lower = allocate(&mut bitmap, Want::Any { reserved: 3, random: 0 }, "IP").unwrap();
        assert!(lower < 3, "then the lower part: {lower}");
    }

    #[test]
    fn a_released_slot_can_be_taken_again_and_releasing_twice_is_harmless() {
        let mut bitmap = Bitmap::new(1);
        assert_eq!(allocate(&mut bitmap, any(0), "IP"), Ok(0));
        release(&mut bitmap, 0);
        release(&mut bitmap, 0);
        release(&mut bitmap, 99);
        assert_eq!(allocate(&mut bitmap, any(0), "IP"), Ok(0));
        assert_eq!(bitmap.count(), 1);
    }

    #[test]
    fn the_stored_form_reads_back_to_the_same_bitmap() {
        // What a restarted apiserver does: it knows only what the store kept.
        let mut bitmap = Bitmap::new(1 << 20);
        for slot in [0, 9, 255, 1 << 19] {
            allocate(&mut bitmap, Want::Slot(slot), "IP").unwrap();
        }
        let stored = bitmap.to_hex();
        assert!(stored.starts_with("0102"), "slots 0 and 9: {stored}");
        let restored = Bitmap::from_hex(1 << 20, &stored).unwrap();
        assert_eq!(restored, bitmap);
        assert_eq!(allocate(&mut restored.clone(), Want::Slot(9), "IP"), Err(Refused::Taken("IP")));
        assert_eq!(Bitmap::new(10).to_hex(), "", "an empty bitmap is stored as nothing");
    }

    #[test]
    fn a_stored_bitmap_that_does_not_fit_the_range_is_rejected() {
        assert_eq!(Bitmap::from_hex(8, "0101"), None, "two bytes for eight slots");
        assert_eq!(Bitmap::from_hex(4, "10"), None, "slot 4 of a 4-slot range");
        assert_eq!(Bitmap::from_hex(8, "zz"), None);
        assert!(Bitmap::from_hex(4, "08").is_some());
    }
}
