//! Bytes from another process are untrusted: a length prefix that lies must not make a decode
//! allocate more than a small multiple of the frame, nor loop for long; a mistyped message is a
//! typed error in both directions, never an abort.
//!
//! A counting allocator measures the peak of what each decode allocates (only on the thread
//! that measures, so other tests running at the same time do not count).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use skprocess::__testing::{decode, encode};
use skprocess::prelude::*;

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            CURRENT.with(|c| c.set(c.get() + size));
            PEAK.with(|p| p.set(p.get().max(CURRENT.with(Cell::get))));
        }
    });
}

fn note_free(size: usize) {
    let _ = TRACKING.try_with(|tracking| {
        if tracking.get() {
            CURRENT.with(|c| c.set(c.get().saturating_sub(size)));
        }
    });
}

// SAFETY: forwards every call to the system allocator; the bookkeeping touches only
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same layout, same contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: ptr came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_free(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak bytes allocated while decoding `bytes` as a `T`, and whether it decoded.
fn peak_of<T: skprocess::serde::de::DeserializeOwned>(bytes: &[u8]) -> (usize, bool) {
    CURRENT.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let decoded = decode::<T>(bytes);
    TRACKING.with(|t| t.set(false));
    let ok = decoded.is_ok();
    drop(decoded);
    (PEAK.with(Cell::get), ok)
}

/// What the issue allows one decode: four times the frame, plus 64 KiB.
fn allowance(frame: &[u8]) -> usize {
    4 * frame.len() + 64 * 1024
}

#[track_caller]
fn refused_within_allowance<T: skprocess::serde::de::DeserializeOwned>(bytes: &[u8]) {
    let started = Instant::now();
    let (peak, ok) = peak_of::<T>(bytes);
    assert!(
        !ok,
        "{} decoded from a lying frame",
        std::any::type_name::<T>()
    );
    assert!(
        peak <= allowance(bytes),
        "{}: {peak} bytes allocated for a frame of {}",
        std::any::type_name::<T>(),
        bytes.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

fn claim(len: u64) -> Vec<u8> {
    len.to_le_bytes().to_vec()
}

#[test]
fn huge_string_and_byte_prefixes_allocate_nothing_like_their_claim() {
    for len in [1u64 << 40, u64::MAX, 1 << 20] {
        let mut bytes = claim(len);
        bytes.extend_from_slice(b"abc");
        refused_within_allowance::<String>(&bytes);
        refused_within_allowance::<Vec<u8>>(&bytes);
        refused_within_allowance::<Vec<u64>>(&bytes);
        refused_within_allowance::<Box<[u16]>>(&bytes);
    }
}

#[test]
fn nested_collections_and_maps_with_lying_prefixes_are_refused_within_the_allowance() {
    // outer claims 2^40 vectors, the first claims 2^40 elements
    let mut nested = claim(1 << 40);
    nested.extend(claim(1 << 40));
    nested.extend_from_slice(&[7; 16]);
    refused_within_allowance::<Vec<Vec<u64>>>(&nested);
    refused_within_allowance::<Vec<Vec<Vec<u8>>>>(&nested);
    refused_within_allowance::<Vec<String>>(&nested);
    // many levels, each claiming all that is left
    let deep: Vec<u8> = (0..64).flat_map(|_| claim(1 << 50)).collect();
    refused_within_allowance::<Vec<Vec<Vec<Vec<Vec<Vec<u64>>>>>>>(&deep);
    // maps: 2^40 entries, a key claiming 2^40 bytes
    let mut map = claim(1 << 40);
    map.extend(claim(1 << 40));
    map.extend_from_slice(b"key");
    refused_within_allowance::<HashMap<String, Vec<u8>>>(&map);
    refused_within_allowance::<BTreeMap<String, u64>>(&map);
    refused_within_allowance::<HashMap<u64, String>>(&map);
}

#[test]
fn blocks_of_plain_numbers_allocate_what_they_hold_and_nothing_for_a_lie() {
    // A count the step budget allows but the bytes that follow do not hold: refused before
    // anything but the error is allocated.
    let mut lie = claim(60_000);
    lie.extend_from_slice(&[1; 100]);
    for (name, (peak, ok)) in [
        ("Vec<u8>", peak_of::<Vec<u8>>(&lie)),
        ("Vec<u64>", peak_of::<Vec<u64>>(&lie)),
        ("Vec<f32>", peak_of::<Vec<f32>>(&lie)),
        ("Box<[i16]>", peak_of::<Box<[i16]>>(&lie)),
        (
            "Option<Vec<f64>>",
            peak_of::<Option<Vec<f64>>>(&[&[1], &lie[..]].concat()),
        ),
    ] {
        assert!(!ok, "{name} decoded from a lying count");
        assert!(peak < 1024, "{name}: {peak} bytes allocated");
    }
    // A valid block allocates exactly its elements, once (no growth, no copy).
    let block = encode(&vec![3u64; 1 << 17]).unwrap();
    let (peak, ok) = peak_of::<Vec<u64>>(&block);
    assert!(ok && peak == 8 << 17, "{peak}");
    let block = encode(&vec![7u8; 1 << 20]).unwrap();
    let (peak, ok) = peak_of::<Vec<u8>>(&block);
    assert!(ok && peak == 1 << 20, "{peak}");
}

#[test]
fn zero_sized_elements_claiming_two_to_the_sixty_are_refused_not_looped_over() {
    let bytes = claim(1 << 60);
    refused_within_allowance::<Vec<()>>(&bytes);
    refused_within_allowance::<Vec<Vec<()>>>(&bytes);
    refused_within_allowance::<HashMap<(), ()>>(&bytes);
}

#[test]
fn every_valid_value_up_to_the_frame_still_decodes() {
    let strings = vec![String::new(); 1_000_000];
    let bytes = encode(&strings).unwrap();
    let back: Vec<String> = decode(&bytes).unwrap();
    assert_eq!(back.len(), 1_000_000);
    let units = vec![(); 1000];
    assert_eq!(
        decode::<Vec<()>>(&encode(&units).unwrap()).unwrap().len(),
        1000
    );
    let big = vec![9u8; 10 << 20];
    assert_eq!(decode::<Vec<u8>>(&encode(&big).unwrap()).unwrap(), big);
    let map: HashMap<String, Vec<u64>> = (0..10_000).map(|i| (i.to_string(), vec![i; 3])).collect();
    assert_eq!(
        decode::<HashMap<String, Vec<u64>>>(&encode(&map).unwrap()).unwrap(),
        map
    );
    // a valid value allocates about what it holds
    let (peak, ok) = peak_of::<Vec<u8>>(&encode(&vec![1u8; 1 << 20]).unwrap());
    assert!(ok && peak <= 4 << 20, "{peak}");
}

/// Tells a `u64` of 2^40 to its parent, or listens for a `String` from it.
#[skprocess]
struct Mistyped {
    tell_parent: bool,
}

#[skprocess]
impl Mistyped {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        if self.tell_parent {
            cx.tell(1u64 << 40)?;
        }
        cx.stop();
        Ok(())
    }

    fn __result__(&mut self, cx: &mut Context) -> String {
        if self.tell_parent {
            return String::new();
        }
        match cx.listen_timeout::<String>(Duration::from_secs(30)) {
            Err(ListenError::Decode { .. }) => "decode error".into(),
            other => format!("unexpected: {other:?}"),
        }
    }
}

#[test]
fn a_mistyped_tell_is_a_typed_error_in_both_directions() {
    // child -> parent: the parent reads a u64 of 2^40 as a String
    let process = Skprocess::new(Mistyped { tell_parent: true });
    process.start().unwrap();
    match process.listen_timeout::<String>(Duration::from_secs(30)) {
        Err(ListenError::Decode { bytes, .. }) => {
            assert_eq!(decode::<u64>(&bytes).unwrap(), 1 << 40);
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    process.timeout(Duration::from_secs(30)).result().unwrap();
    // parent -> child
    let process = Skprocess::new(Mistyped { tell_parent: false });
    process.start().unwrap();
    process.tell(1u64 << 40).unwrap();
    assert_eq!(
        process.timeout(Duration::from_secs(30)).result().unwrap(),
        "decode error"
    );
}
