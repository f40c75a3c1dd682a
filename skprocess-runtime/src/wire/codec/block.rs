//! Blocks: a `Vec`, slice or boxed slice of plain numbers (`u8` to `u128`, `i8` to `i128`,
//! `usize` and `isize` on 64-bit hosts, `f32`, `f64`) is written and read as one copy of its
//! bytes, not one serde call per element.
//!
//! The bytes are the format's own: a seq is a `u64` count and then the elements, each little
//! endian and fixed width, and on a little-endian host that is exactly the elements' memory. So a
//! block and the element-by-element path produce and accept the same bytes, and either side may
//! take either path. Big-endian hosts keep the element-by-element path (this module is compiled
//! on little-endian hosts only).
//!
//! # Which values take the fast path, and why that is sound
//!
//! **Encoding.** serde serializes `Vec<T>` and `[T]` (and through `[T]`, `Box<[T]>`, `Rc<[T]>`,
//! `Arc<[T]>`) with `collect_seq(self)`, so the encoder's `collect_seq` is called with a `&Vec<T>`
//! or a `&[T]`. [`as_block`] compares the iterator's type with those, lifetimes erased
//! ([`typeid::of`]): equal means it *is* such a reference, with some lifetime that outlives the
//! call. `collect_seq(iter)` means "a count, then each item serialized", and a plain number
//! serializes as its little-endian bytes whoever calls it, so the block is the same bytes.
//!
//! **Decoding.** `Vec<T>` deserializes with `deserialize_seq` and a visitor private to serde,
//! which collects the elements in order. [`read_block`] takes the fast path only when the
//! visitor is *that* visitor: its type is found once per element type by asking `Vec<T>` to
//! deserialize from a probe deserializer that records the visitor type it is handed
//! ([`vec_visitor`]). A visitor of your own (a `deserialize_with`, a newtype's hand-written
//! `Deserialize`) has another type, so it keeps its own semantics and the element-by-element
//! path, even when its `Value` is a `Vec<u8>`. The fast path also checks that the visitor's
//! `Value` is `Vec<T>`: that check alone is what makes handing the block over as `V::Value`
//! sound (its semantics come from the first check). `Box<[T]>`, `Rc<[T]>` and `Arc<[T]>`
//! deserialize through `Vec<T>`, so they take the fast path too.
//!
//! Arrays (`[T; N]`) are serde tuples of at most 32 elements, read and written one by one: too
//! short for a block to matter.
//!
//! # Limits
//!
//! A block pays its steps and its container level as the element-by-element path does, and is
//! allocated only after its bytes are known to be in the input, which it then consumes: all the
//! blocks of a frame together allocate at most the frame's length. They take nothing from the
//! preallocation budget, which bounds the size hints given to visitors (a block gives none).

use std::any::TypeId;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, DeserializeOwned, Visitor};

use super::{Container, Encoder, Error, Reader};

/// A number type whose encoding is its memory on a little-endian host.
///
/// # Safety
///
/// The type has no padding and no invalid bit patterns (any `size_of::<Self>()` bytes are a
/// value), it is `'static` with no lifetimes of its own, and on a little-endian host the codec
/// encodes a value as exactly its memory and decodes its memory back to the same value.
unsafe trait Plain: Copy + DeserializeOwned + 'static {}

// SAFETY (all): primitive integers and floats have no padding and no invalid bit patterns; the
// codec writes them with `to_le_bytes` (floats: `to_bits().to_le_bytes()`) and reads them with
// `from_le_bytes` (`from_bits`), which are their memory on a little-endian host.
unsafe impl Plain for u8 {}
unsafe impl Plain for u16 {}
unsafe impl Plain for u32 {}
unsafe impl Plain for u64 {}
unsafe impl Plain for u128 {}
unsafe impl Plain for i8 {}
unsafe impl Plain for i16 {}
unsafe impl Plain for i32 {}
unsafe impl Plain for i64 {}
unsafe impl Plain for i128 {}
unsafe impl Plain for f32 {}
unsafe impl Plain for f64 {}
// SAFETY: serde writes `usize` and `isize` as `u64` and `i64`, which on a 64-bit host are their
// memory too (and reads them back with a conversion that cannot fail there).
#[cfg(target_pointer_width = "64")]
unsafe impl Plain for usize {}
#[cfg(target_pointer_width = "64")]
unsafe impl Plain for isize {}

/// Evaluates `$check` (an `Option`) with `$t` naming each plain type in turn, and returns the
/// first `Some`. Frequent types come first.
macro_rules! each_plain {
    ($t:ident => $check:expr) => {
        'found: {
            each_plain!(@try 'found, $t => $check; u8 f64 f32 u64 i64 u32 i32 u16 i16 i8 u128 i128);
            #[cfg(target_pointer_width = "64")]
            each_plain!(@try 'found, $t => $check; usize isize);
            None
        }
    };
    (@try $found:lifetime, $t:ident => $check:expr; $($ty:ty)*) => {
        $({
            type $t = $ty;
            if let Some(found) = $check {
                break $found Some(found);
            }
        })*
    };
}

// ----- encoding --------------------------------------------------------------------------------

/// If `iter` (what `collect_seq` was handed) is a `&Vec<T>` or a `&[T]` of a plain `T`: the
/// element count and the elements' bytes, which are their encoding.
#[inline]
pub(super) fn as_block<I>(iter: &I) -> Option<(usize, &[u8])> {
    each_plain!(T => slice_of::<T, I>(iter))
}

/// `iter` as a slice of `T`, if `I` is `&Vec<T>` or `&[T]`.
#[inline]
fn slice_of<T: Plain, I>(iter: &I) -> Option<(usize, &[u8])> {
    let slice: &[T] = if let Some(vec) = reference_to::<Vec<T>, I>(iter) {
        vec
    } else {
        reference_to::<[T], I>(iter)?
    };
    // SAFETY: `T` has no padding (`Plain`), so the slice's memory is `size_of_val` initialized
    // bytes, borrowed for as long as the slice.
    let bytes = unsafe {
        std::slice::from_raw_parts(slice.as_ptr().cast::<u8>(), std::mem::size_of_val(slice))
    };
    Some((slice.len(), bytes))
}

/// `value` as a `&U`, if `I` is `&U` (with any lifetime).
#[inline]
fn reference_to<'r, U: ?Sized + 'static, I>(value: &'r I) -> Option<&'r U> {
    if typeid::of::<I>() != TypeId::of::<&'static U>() {
        return None;
    }
    // SAFETY: `U` is 'static and names no lifetime of its own, so the only types whose id with
    // lifetimes erased equals that of `&'static U` are the references `&'a U`: `I` is one, for
    // some `'a`. `&'r I` is well-formed only if `I: 'r`, that is `'a: 'r`, so the reference
    // `value` points at may be copied out and used for `'r` (references are `Copy`).
    Some(unsafe { std::ptr::read(std::ptr::from_ref(value).cast::<&'r U>()) })
}

impl Encoder {
    /// Writes a block: a seq of `count` elements whose encodings are `bytes`. One container
    /// level, as for the same seq written element by element.
    #[inline]
    pub(super) fn write_block(&mut self, count: usize, bytes: &[u8]) -> Result<(), Error> {
        #[cfg(test)]
        tests::COUNTS.with(|counts| counts.set((counts.get().0 + 1, counts.get().1)));
        self.enter()?;
        self.write_len(count)?;
        self.out.extend_from_slice(bytes);
        self.leave();
        Ok(())
    }
}

// ----- decoding --------------------------------------------------------------------------------

/// If `V` is the visitor `Vec<T>` deserializes with, for a plain `T`: reads the seq as one
/// block and returns the value; otherwise `Err(visitor)`, for the element-by-element path.
#[inline]
pub(super) fn read_block<'de, V: Visitor<'de>>(
    reader: &mut Reader<'de>,
    visitor: V,
) -> Result<Result<V::Value, Error>, V> {
    match each_plain!(T => block_reader::<T, V>()) {
        Some(read) => Ok(read(reader)),
        None => Err(visitor),
    }
}

/// Reads a block of `T` into a `V::Value`.
type BlockReader<'de, V> = fn(&mut Reader<'de>) -> Result<<V as Visitor<'de>>::Value, Error>;

/// The reader of a block of `T`, if `V` is the visitor of `Vec<T>`.
#[inline]
fn block_reader<'de, T: Plain, V: Visitor<'de>>() -> Option<BlockReader<'de, V>> {
    // The value type first: a cheap comparison that rules out almost every visitor, and the one
    // that makes the conversion in `read_as` sound.
    if typeid::of::<V::Value>() != TypeId::of::<Vec<T>>() {
        return None;
    }
    // Then the visitor itself: only serde's own visitor of `Vec<T>` means "the elements, in
    // order".
    if Some(typeid::of::<V>()) != vec_visitor::<T>() {
        return None;
    }
    Some(read_as::<T, V>)
}

/// Reads a block of `T` and hands it over as `V::Value`, which [`block_reader`] checked is
/// `Vec<T>`.
fn read_as<'de, T: Plain, V: Visitor<'de>>(reader: &mut Reader<'de>) -> Result<V::Value, Error> {
    let block = std::mem::ManuallyDrop::new(reader.read_block::<T>()?);
    // SAFETY: `V::Value` is `Vec<T>` (their ids are equal, and `Vec<T>` is 'static with no
    // lifetimes, so no other type has its id): this moves the vector out, which `ManuallyDrop`
    // keeps from being dropped twice.
    Ok(unsafe { std::ptr::read(std::ptr::from_ref(&*block).cast::<V::Value>()) })
}

impl Reader<'_> {
    /// Reads a seq of `T` as one block: its count, then one copy of its elements' bytes.
    fn read_block<T: Plain>(&mut self) -> Result<Vec<T>, Error> {
        #[cfg(test)]
        tests::COUNTS.with(|counts| counts.set((counts.get().0, counts.get().1 + 1)));
        let claimed = self.u64()?;
        self.enter()?;
        let count = self.take_steps(claimed, Container::Seq)?;
        let width = size_of::<T>();
        let available = self.rest.len();
        let Some(len) = count.checked_mul(width).filter(|len| *len <= available) else {
            return Err(short_block(count, width, available));
        };
        let (head, tail) = self.rest.split_at(len);
        let mut block = Vec::<T>::with_capacity(count);
        // SAFETY: the vector has room for `count` elements, `len` bytes, which `head` holds; the
        // two cannot overlap (one is a fresh allocation). `T` is `Plain`, so any bytes are
        // `count` valid values, and a little-endian host's memory of them is their encoding.
        unsafe {
            std::ptr::copy_nonoverlapping(head.as_ptr(), block.as_mut_ptr().cast::<u8>(), len);
            block.set_len(count);
        }
        self.rest = tail;
        self.leave();
        Ok(block)
    }
}

/// Builds the error for a block whose elements are not all in the input.
#[cold]
#[inline(never)]
fn short_block(count: usize, width: usize, available: usize) -> Error {
    Error::new(format!(
        "unexpected end of input: a sequence of {count} elements of {width} bytes needs {} bytes \
         but only {available} remain",
        count.saturating_mul(width)
    ))
}

// ----- the probe -------------------------------------------------------------------------------

/// The type of the visitor `Vec<T>` deserializes with (`None` if it did not call
/// `deserialize_seq`, which would mean serde changed: then nothing takes the fast path).
#[inline]
fn vec_visitor<T: Plain>() -> Option<TypeId> {
    match Vec::<T>::deserialize(Probe) {
        Err(Probed(visitor)) => visitor,
        Ok(_) => None,
    }
}

/// A deserializer that fails at once, reporting the type of the visitor `deserialize_seq` was
/// handed.
struct Probe;

/// The probe's error: the visitor type, if it was a seq's.
#[derive(Debug)]
struct Probed(Option<TypeId>);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Probed {}

impl de::Error for Probed {
    fn custom<T: fmt::Display>(_message: T) -> Self {
        Probed(None)
    }
}

impl<'de> de::Deserializer<'de> for Probe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Probed> {
        Err(Probed(None))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Probed> {
        Err(Probed(Some(typeid::of::<V>())))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fmt::{self, Debug};
    use std::marker::PhantomData;

    use serde::de::{DeserializeOwned, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::super::{Decoder, MAX_DEPTH, decode, encode};
    use super::Plain;

    thread_local! {
        /// How many blocks this thread wrote and read.
        pub(super) static COUNTS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// Runs `f`; returns its value and the blocks written and read meanwhile.
    fn counting<R>(f: impl FnOnce() -> R) -> (R, (usize, usize)) {
        COUNTS.with(|counts| counts.set((0, 0)));
        let value = f();
        (value, COUNTS.with(Cell::get))
    }

    /// A `u64` length prefix.
    fn prefix(len: u64) -> [u8; 8] {
        len.to_le_bytes()
    }

    /// A vector written and read element by element, with a visitor of its own: the path every
    /// other sequence takes, and the reference for blocks.
    #[derive(Debug, Clone, PartialEq)]
    struct Elements<T>(Vec<T>);

    impl<T: Serialize> Serialize for Elements<T> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
            for element in &self.0 {
                seq.serialize_element(element)?;
            }
            seq.end()
        }
    }

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Elements<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Collects the elements one by one.
            struct ElementsVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ElementsVisitor<T> {
                type Value = Elements<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Elements<T>, A::Error> {
                    let mut out = Vec::new();
                    while let Some(element) = seq.next_element()? {
                        out.push(element);
                    }
                    Ok(Elements(out))
                }
            }
            deserializer.deserialize_seq(ElementsVisitor(PhantomData))
        }
    }

    /// Checks, for one plain type, that a block and the elements one by one are the same bytes
    /// and that each path reads the other's.
    fn same_both_ways<T>(values: &[T])
    where
        T: Plain + Serialize + PartialEq + Debug,
    {
        let name = std::any::type_name::<T>();
        let vec = values.to_vec();
        let (block, counts) = counting(|| encode(&vec).unwrap());
        assert_eq!(counts, (1, 0), "{name}: a Vec is written as a block");
        let (elements, counts) = counting(|| encode(&Elements(vec.clone())).unwrap());
        assert_eq!(counts, (0, 0), "{name}: the reference path writes no block");
        assert_eq!(block, elements, "{name}");
        assert_eq!(block.len(), 8 + size_of_val(values), "{name}");
        assert_eq!(block[..8], prefix(values.len() as u64), "{name}");
        // Slices and boxed slices are written the same way.
        let (bytes, counts) = counting(|| encode(values).unwrap());
        assert_eq!((bytes, counts), (block.clone(), (1, 0)), "{name}: a slice");
        let boxed = vec.clone().into_boxed_slice();
        assert_eq!(encode(&boxed).unwrap(), block, "{name}: a boxed slice");

        let (back, counts) = counting(|| decode::<Vec<T>>(&elements).unwrap());
        assert_eq!(
            (back, counts),
            (vec.clone(), (0, 1)),
            "{name}: a block from elements"
        );
        let (back, counts) = counting(|| decode::<Elements<T>>(&block).unwrap());
        assert_eq!(
            (back.0, counts),
            (vec.clone(), (0, 0)),
            "{name}: elements from a block"
        );
        let (back, counts) = counting(|| decode::<Box<[T]>>(&block).unwrap());
        assert_eq!((back, counts), (boxed, (0, 1)), "{name}: a boxed slice");
    }

    macro_rules! plain_values {
        ($($t:ty),*) => {$({
            same_both_ways::<$t>(&[]);
            same_both_ways::<$t>(&[<$t>::MIN, <$t>::MAX, 0 as $t, 1 as $t, 100 as $t]);
            let many: Vec<$t> = (0..1000u16).map(|i| (i % 97) as $t).collect();
            same_both_ways::<$t>(&many);
        })*};
    }

    #[test]
    fn blocks_and_elements_are_the_same_bytes_for_every_plain_type() {
        plain_values!(
            u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64, usize, isize
        );
    }

    #[test]
    fn floats_keep_their_bits_in_blocks() {
        let doubles = [
            f64::from_bits(0x7FF8_0000_0000_1234),
            -0.0,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0,
        ];
        let back: Vec<f64> = decode(&encode(&doubles[..]).unwrap()).unwrap();
        let bits = |v: &[f64]| v.iter().map(|d| d.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&doubles));
        let singles = [f32::from_bits(0xFFC0_0001), -0.0, f32::INFINITY];
        let bytes = encode(&singles[..]).unwrap();
        assert_eq!(bytes, encode(&Elements(singles.to_vec())).unwrap());
        let back: Vec<f32> = decode(&bytes).unwrap();
        let bits: Vec<u32> = back.iter().map(|s| s.to_bits()).collect();
        assert_eq!(bits, singles.map(f32::to_bits));
    }

    /// Blocks in every kind of position.
    #[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
    enum Payload {
        Empty,
        Samples(Vec<f32>),
        Pair(Vec<u16>, Box<[i64]>),
        Named { id: u8, raw: Vec<u8> },
    }

    /// A message with blocks in fields, options, tuples, nested vectors and enums.
    #[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
    struct Message {
        id: u32,
        raw: Vec<u8>,
        samples: Option<Vec<f64>>,
        none: Option<Vec<u8>>,
        pair: (Vec<i16>, u8, Vec<u128>),
        rows: Vec<Vec<u32>>,
        boxed: Box<[usize]>,
        payloads: Vec<Payload>,
        empty: Vec<i8>,
    }

    /// `Payload` with every block read and written element by element.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum SlowPayload {
        Empty,
        Samples(Elements<f32>),
        Pair(Elements<u16>, Elements<i64>),
        Named { id: u8, raw: Elements<u8> },
    }

    /// `Message` with every block read and written element by element.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct SlowMessage {
        id: u32,
        raw: Elements<u8>,
        samples: Option<Elements<f64>>,
        none: Option<Elements<u8>>,
        pair: (Elements<i16>, u8, Elements<u128>),
        rows: Vec<Elements<u32>>,
        boxed: Elements<usize>,
        payloads: Vec<SlowPayload>,
        empty: Elements<i8>,
    }

    fn message() -> Message {
        Message {
            id: 7,
            raw: (0..=255).collect(),
            samples: Some(vec![1.5, -2.25, f64::MAX]),
            none: None,
            pair: (vec![-1, 2, i16::MIN], 9, vec![u128::MAX, 0]),
            rows: vec![vec![1, 2, 3], vec![], vec![u32::MAX]],
            boxed: Box::new([0, 1, usize::MAX]),
            payloads: vec![
                Payload::Empty,
                Payload::Samples(vec![0.5; 10]),
                Payload::Pair(vec![1, 2], Box::new([-3])),
                Payload::Named {
                    id: 4,
                    raw: b"raw bytes".to_vec(),
                },
            ],
            empty: Vec::new(),
        }
    }

    fn slow_message() -> SlowMessage {
        SlowMessage {
            id: 7,
            raw: Elements((0..=255).collect()),
            samples: Some(Elements(vec![1.5, -2.25, f64::MAX])),
            none: None,
            pair: (
                Elements(vec![-1, 2, i16::MIN]),
                9,
                Elements(vec![u128::MAX, 0]),
            ),
            rows: vec![
                Elements(vec![1, 2, 3]),
                Elements(vec![]),
                Elements(vec![u32::MAX]),
            ],
            boxed: Elements(vec![0, 1, usize::MAX]),
            payloads: vec![
                SlowPayload::Empty,
                SlowPayload::Samples(Elements(vec![0.5; 10])),
                SlowPayload::Pair(Elements(vec![1, 2]), Elements(vec![-3])),
                SlowPayload::Named {
                    id: 4,
                    raw: Elements(b"raw bytes".to_vec()),
                },
            ],
            empty: Elements(Vec::new()),
        }
    }

    #[test]
    fn nested_blocks_are_the_same_bytes_as_elements() {
        // raw, samples, the pair's two, three rows, boxed, four in payloads, empty.
        const BLOCKS: usize = 13;
        let (fast, counts) = counting(|| encode(&message()).unwrap());
        assert_eq!(counts, (BLOCKS, 0));
        let (slow, counts) = counting(|| encode(&slow_message()).unwrap());
        assert_eq!(counts, (0, 0));
        assert_eq!(fast, slow);
        let (back, counts) = counting(|| decode::<Message>(&slow).unwrap());
        assert_eq!((back, counts), (message(), (0, BLOCKS)));
        let (back, counts) = counting(|| decode::<SlowMessage>(&fast).unwrap());
        assert_eq!((back, counts), (slow_message(), (0, 0)));
    }

    #[test]
    fn truncated_blocks_are_errors_at_every_length() {
        let bytes = encode(&message()).unwrap();
        for len in 0..bytes.len() {
            assert!(decode::<Message>(&bytes[..len]).is_err(), "{len} bytes");
            assert!(decode::<SlowMessage>(&bytes[..len]).is_err(), "{len} bytes");
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(decode::<Message>(&longer).is_err());
    }

    #[test]
    fn a_lying_count_is_a_typed_error() {
        // More elements than the bytes that follow: refused before anything is allocated.
        let mut frame = prefix(1000).to_vec();
        frame.extend_from_slice(&[0; 100]);
        let (error, counts) = counting(|| decode::<Vec<u64>>(&frame).unwrap_err());
        assert_eq!(
            error,
            "unexpected end of input: a sequence of 1000 elements of 8 bytes needs 8000 bytes but \
             only 100 remain"
        );
        assert_eq!(counts, (0, 1));
        let mut frame = prefix(4).to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            decode::<Vec<u8>>(&frame).unwrap_err(),
            "unexpected end of input: a sequence of 4 elements of 1 bytes needs 4 bytes but only \
             3 remain"
        );
        // A claim beyond the step budget is refused as for any sequence.
        let mut frame = prefix(u64::MAX).to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        let error = decode::<Vec<f32>>(&frame).unwrap_err();
        assert!(
            error.starts_with("decoding takes too many steps"),
            "{error}"
        );
        let error = decode::<Box<[u128]>>(&prefix(1 << 40)).unwrap_err();
        assert!(
            error.starts_with("decoding takes too many steps"),
            "{error}"
        );
        // Too few elements for the count: the decoder stays where the value began.
        let mut frame = prefix(3).to_vec();
        frame.extend_from_slice(&[1, 0, 2, 0]);
        let mut decoder = Decoder::new(&frame);
        assert!(decoder.next::<Vec<u16>>().is_err());
        assert_eq!(decoder.remaining(), &frame[..]);
        // The same bytes read as fewer, wider elements are fine.
        let mut frame = prefix(2).to_vec();
        frame.extend_from_slice(&[1, 0, 2, 0]);
        assert_eq!(decode::<Vec<u16>>(&frame).unwrap(), [1, 2]);
    }

    #[test]
    fn blocks_share_the_frame_with_other_values() {
        let mut frame = encode(&vec![1u8, 2, 3]).unwrap();
        frame.extend(encode(&5u32).unwrap());
        frame.extend(encode(&vec![-1i64]).unwrap());
        let mut decoder = Decoder::new(&frame);
        assert_eq!(decoder.next::<Vec<u8>>().unwrap(), [1, 2, 3]);
        assert_eq!(decoder.next::<u32>().unwrap(), 5);
        assert_eq!(decoder.next::<Vec<i64>>().unwrap(), [-1]);
        assert!(decoder.is_empty());
    }

    /// Reads a seq of `u8` into a `Vec<u8>`, reversed.
    fn reversed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        /// Collects, then reverses.
        struct Reverse;
        impl<'de> Visitor<'de> for Reverse {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                out.reverse();
                Ok(out)
            }
        }
        deserializer.deserialize_seq(Reverse)
    }

    /// Reads a seq of `u16` into a `Vec<u8>` of their low bytes: the same value type as a block
    /// of `u8`, other bytes on the wire.
    fn low_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        /// Narrows each element.
        struct Low;
        impl<'de> Visitor<'de> for Low {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("u16 values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(value) = seq.next_element::<u16>()? {
                    out.push(value.to_le_bytes()[0]);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(Low)
    }

    /// Goes through `Vec<u8>`'s own `Deserialize`, then maps: a block.
    fn doubled<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        Ok(Vec::<u8>::deserialize(deserializer)?
            .into_iter()
            .map(|b| b.wrapping_mul(2))
            .collect())
    }

    /// Writes the elements last to first (`collect_seq` of an iterator, not of a `&Vec`).
    fn backwards<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(bytes.iter().rev())
    }

    /// Fields whose `Vec<u8>` values have semantics of their own.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Custom {
        #[serde(deserialize_with = "reversed")]
        reversed: Vec<u8>,
        #[serde(deserialize_with = "low_bytes")]
        low: Vec<u8>,
        #[serde(deserialize_with = "doubled")]
        doubled: Vec<u8>,
        #[serde(serialize_with = "backwards")]
        backwards: Vec<u8>,
    }

    #[test]
    fn custom_visitors_keep_their_semantics() {
        let wire = (
            vec![1u8, 2, 3],
            vec![0x0101u16, 0x0202, 0xFF03],
            vec![5u8, 6],
            vec![7u8, 8],
        );
        let bytes = encode(&wire).unwrap();
        let (custom, counts) = counting(|| decode::<Custom>(&bytes).unwrap());
        assert_eq!(
            custom,
            Custom {
                reversed: vec![3, 2, 1],
                low: vec![1, 2, 3],
                doubled: vec![10, 12],
                backwards: vec![7, 8],
            }
        );
        // Only `doubled` (through `Vec<u8>`'s own visitor) and `backwards` read a block.
        assert_eq!(counts, (0, 2));
        let (again, counts) = counting(|| encode(&custom).unwrap());
        // `backwards` is written element by element, last to first.
        assert_eq!(counts, (3, 0));
        let expected = encode(&(
            vec![3u8, 2, 1],
            vec![1u8, 2, 3],
            vec![10u8, 12],
            vec![8u8, 7],
        ));
        assert_eq!(again, expected.unwrap());
    }

    /// One container level per `Level`, two for the `Leaf` (the variant, then the seq).
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Deep<V> {
        Leaf(V),
        Level(Box<Deep<V>>),
    }

    impl<V> Deep<V> {
        fn of(levels: usize, leaf: V) -> Deep<V> {
            let mut deep = Deep::Leaf(leaf);
            for _ in 0..levels {
                deep = Deep::Level(Box::new(deep));
            }
            deep
        }
    }

    /// Checks the depth limit on a block at the bottom of `levels` levels, on both paths.
    fn depth_limit_holds<V, S>(fast: impl Fn() -> V, slow: impl Fn() -> S)
    where
        V: Serialize + DeserializeOwned + PartialEq + Debug,
        S: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        let deepest = MAX_DEPTH - 2;
        let bytes = encode(&Deep::of(deepest, fast())).unwrap();
        assert_eq!(bytes, encode(&Deep::of(deepest, slow())).unwrap());
        assert_eq!(
            decode::<Deep<V>>(&bytes).unwrap(),
            Deep::of(deepest, fast())
        );
        assert_eq!(
            decode::<Deep<S>>(&bytes).unwrap(),
            Deep::of(deepest, slow())
        );
        let too_deep = "nested more than 1024 levels deep";
        assert_eq!(
            encode(&Deep::of(deepest + 1, fast())).unwrap_err(),
            too_deep
        );
        assert_eq!(
            encode(&Deep::of(deepest + 1, slow())).unwrap_err(),
            too_deep
        );
        // The bytes of one more level, built by hand: a `Level` variant index in front.
        let mut deeper = 1u32.to_le_bytes().to_vec();
        deeper.extend_from_slice(&bytes);
        assert_eq!(decode::<Deep<V>>(&deeper).unwrap_err(), too_deep);
        assert_eq!(decode::<Deep<S>>(&deeper).unwrap_err(), too_deep);
    }

    #[test]
    fn blocks_count_toward_the_depth_limit() {
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(|| {
                depth_limit_holds(|| vec![1u8, 2], || Elements(vec![1u8, 2]));
                depth_limit_holds(|| vec![0.5f64], || Elements(vec![0.5f64]));
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn bytes_and_blocks_are_the_same_format() {
        /// Written with `serialize_bytes`, as `serde_bytes` does.
        struct AsBytes<'a>(&'a [u8]);
        impl Serialize for AsBytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        let data: Vec<u8> = (0..100).collect();
        assert_eq!(encode(&AsBytes(&data)).unwrap(), encode(&data).unwrap());
    }

    #[test]
    fn large_blocks_round_trip() {
        let big: Vec<u8> = (0..(8u32 << 20)).map(|i| (i % 251) as u8).collect();
        assert_eq!(decode::<Vec<u8>>(&encode(&big).unwrap()).unwrap(), big);
        let wide: Vec<f64> = (0..(1u32 << 20)).map(f64::from).collect();
        assert_eq!(decode::<Vec<f64>>(&encode(&wide).unwrap()).unwrap(), wide);
    }
}
