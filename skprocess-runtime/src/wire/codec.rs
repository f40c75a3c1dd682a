//! The codec seam: our own serde binary format, little endian and fixed width. Every value that
//! crosses a process boundary goes through [`encode`] / [`encode_into`] and [`decode`] /
//! [`Decoder`], so the format lives in this file alone (with its fast path for blocks of
//! numbers in `codec/block.rs`, which writes and reads the same bytes).
//!
//! # Format
//!
//! Integers and lengths are little endian and fixed width; nothing is self-describing, so both
//! sides must agree on the type (as with bincode, which this format replaces).
//!
//! | serde data model                         | bytes                                                      |
//! |------------------------------------------|------------------------------------------------------------|
//! | `bool`                                   | 1 byte, `0` or `1` (anything else is an error)             |
//! | `u8` / `i8`                              | 1 byte                                                     |
//! | `u16` / `i16`                            | 2 bytes                                                    |
//! | `u32` / `i32`                            | 4 bytes                                                    |
//! | `u64` / `i64`                            | 8 bytes                                                    |
//! | `u128` / `i128`                          | 16 bytes                                                   |
//! | `f32` / `f64`                            | 4 / 8 bytes, the bit pattern (any pattern is accepted)     |
//! | `char`                                   | `u32`, which must be a valid [`char::from_u32`]            |
//! | `str`                                    | `u64` length, then that many bytes of UTF-8                |
//! | `bytes`                                  | `u64` length, then that many bytes                         |
//! | `Option`                                 | 1 tag byte: `0` = `None`; `1` = `Some`, then the value     |
//! | `()`, unit struct                        | nothing                                                    |
//! | newtype struct                           | the inner value                                            |
//! | seq                                      | `u64` element count, then the elements                     |
//! | tuple, tuple struct, struct              | the fields in order, no length                             |
//! | map                                      | `u64` entry count, then key, value, key, value, ...        |
//! | enum                                     | `u32` variant index, then the variant's content            |
//! | unit / newtype / tuple / struct variant  | nothing / the value / the fields in order                  |
//!
//! `serialize_seq(None)` and `serialize_map(None)` work: the encoder reserves the 8-byte count
//! and patches it when the sequence ends. It checks every seq and map this way, so the count is
//! always the number of elements serialized, whatever length the `Serialize` impl announced.
//!
//! # Blocks
//!
//! A `Vec<T>`, `[T]`, `Box<[T]>` (or `Rc<[T]>`, `Arc<[T]>`) of plain numbers (`u8` to `u128`,
//! `i8` to `i128`, `f32`, `f64`, and `usize` and `isize` on 64-bit hosts) is a seq whose elements
//! are, on a little-endian host, exactly the elements' memory. So on such hosts it is written as
//! one copy of that memory and read back as one copy out of the buffer, without a serde call per
//! element: the same bytes, either way, as element by element (big-endian hosts take the
//! element-by-element path). This holds wherever the vector is: a whole item, a field, inside an
//! `Option`, a tuple, an enum. `codec/block.rs` says how the encoder recognises such values
//! (the `&Vec<T>` or `&[T]` handed to `collect_seq`) and the decoder (serde's own visitor of
//! `Vec<T>`, and only it: a `deserialize_with` visitor of your own keeps the element-by-element
//! path and its meaning), and why both are sound.
//!
//! `deserialize_any` and `deserialize_ignored_any` are errors, so untagged and internally tagged
//! enums, `flatten` and other self-describing shapes cannot be decoded. `skip_serializing_if` is
//! refused by the encoder, because a positional format cannot tell that a field is missing
//! (plain `#[serde(skip)]` works). `is_human_readable()` is `false` on both sides.
//!
//! # Limits
//!
//! The bytes come from another, untrusted process, so decoding is bounded in memory, time and
//! stack whatever they say:
//!
//! - **Lengths.** A `str` or `bytes` length is checked against the bytes that remain before
//!   anything is allocated; the visitor is handed a slice of the input. A block's count, times
//!   its elements' width, is checked the same way before its vector is allocated, and the block
//!   then consumes those bytes: the blocks of a buffer together allocate at most its length.
//! - **Preallocation.** The size hint a seq or map gives its visitor is the claimed count capped
//!   by the bytes that remain and by a preallocation budget of one element per byte of the
//!   buffer, shared by the whole [`Decoder`]: every hint is debited from it, so nested sequences
//!   that each claim everything cannot multiply it. Once it is spent, hints are `Some(0)` and
//!   collections grow as they fill. (Tuples and structs get their own length, capped by the bytes
//!   that remain, with no debit: their length comes from the type. A block gives no hint and
//!   takes none: it allocates exactly what it holds.)
//! - **Steps.** Every seq element and every map entry costs one step from a budget of the buffer's
//!   length plus [`STEP_ALLOWANCE`], shared by the whole [`Decoder`]. A container pays for all the
//!   elements it claims when it opens (a value that decodes reads them all, so this is the same
//!   total as paying per element, without a check in the loop; a block pays the same way).
//!   Elements that take at least a byte can never exhaust the budget; a `Vec<()>` claiming 2^60
//!   elements is refused at once.
//! - **Depth.** Every container level (`Some`, seq (a block too), map, tuple, struct, newtype
//!   struct, an enum variant's content) counts toward [`MAX_DEPTH`], when encoding and when
//!   decoding; deeper values are an error. The limit bounds the codec's recursion so that hostile
//!   bytes cannot run the decoding thread's stack out: 1000 levels of an ordinary type decode
//!   within 1 MiB of stack in a debug build (a type whose own `Deserialize` frames are large needs
//!   more per level).

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

#[cfg(target_endian = "little")]
mod block;

/// Containers nested deeper than this are refused by the encoder and the decoder.
pub(crate) const MAX_DEPTH: usize = 1024;

/// Steps a [`Decoder`] may take beyond one per byte of its buffer: room for sequences of
/// zero-sized elements (a `Vec<()>` of 1,000 in an 8-byte frame decodes).
const STEP_ALLOWANCE: usize = 65_536;

/// The width of a seq, map, `str` or `bytes` length prefix.
const LEN_WIDTH: usize = 8;

thread_local! {
    /// How many encodes are running on this thread (they nest: a value's `Serialize` may
    /// encode another value).
    static ENCODING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether this thread is inside one of this codec's encodes, that is, encoding for one of the
/// runtime's authenticated connections. Values that carry secrets (a Share) refuse to be
/// encoded anywhere else.
pub(crate) fn on_the_wire() -> bool {
    ENCODING.with(|count| count.get() > 0)
}

/// Marks this thread as encoding until dropped.
struct OnTheWire;

impl OnTheWire {
    fn enter() -> OnTheWire {
        ENCODING.with(|count| count.set(count.get() + 1));
        OnTheWire
    }
}

impl Drop for OnTheWire {
    fn drop(&mut self) {
        ENCODING.with(|count| count.set(count.get() - 1));
    }
}

thread_local! {
    /// Set while this thread encodes for another host (the NATS backend): values that only mean
    /// something on this machine refuse, and the first refusal is kept here.
    static CROSSING: std::cell::Cell<Option<Option<&'static str>>> =
        const { std::cell::Cell::new(None) };
}

/// Called by the `Serialize` of a value that only means something on this machine (a Share, a
/// pipe point, a shared-memory buffer): `Err` naming it while this thread encodes for another
/// host, `Ok` otherwise.
pub(crate) fn refuse_if_crossing_hosts<E: ser::Error>(what: &'static str) -> Result<(), E> {
    CROSSING.with(|crossing| match crossing.get() {
        Some(first) => {
            crossing.set(Some(first.or(Some(what))));
            Err(E::custom(format_args!(
                "{what} cannot cross to another host"
            )))
        }
        None => Ok(()),
    })
}

/// Why a value cannot be encoded for another host.
#[cfg(feature = "nats")]
#[derive(Debug)]
pub(crate) enum HostEncodeError {
    /// It holds something that only means something on this machine.
    Local(&'static str),
    /// Its own `Serialize` failed.
    Other(String),
}

/// Encodes a value for a process on another host: as [`encode`], but a Share, a pipe point or a
/// shared-memory buffer anywhere inside it is [`HostEncodeError::Local`].
#[cfg(feature = "nats")]
pub(crate) fn encode_for_another_host<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, HostEncodeError> {
    struct Leave(Option<Option<&'static str>>);
    impl Drop for Leave {
        fn drop(&mut self) {
            CROSSING.with(|crossing| crossing.set(self.0));
        }
    }
    let leave = Leave(CROSSING.with(|crossing| crossing.replace(Some(None))));
    let result = encode(value);
    let refused = CROSSING.with(std::cell::Cell::get).flatten();
    drop(leave);
    match (result, refused) {
        (_, Some(what)) => Err(HostEncodeError::Local(what)),
        (Ok(bytes), None) => Ok(bytes),
        (Err(message), None) => Err(HostEncodeError::Other(message)),
    }
}

/// Encodes a value.
///
/// # Errors
///
/// The value's own `Serialize` error, a container nested more than [`MAX_DEPTH`] levels deep, or
/// a field skipped by `skip_serializing_if`.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    let _wire = OnTheWire::enter();
    let mut encoder = Encoder {
        out: Vec::new(),
        depth: 0,
    };
    match value.serialize(&mut encoder) {
        Ok(()) => Ok(encoder.out),
        Err(error) => Err(error.into_message()),
    }
}

/// Appends a value's encoding to `out`; on error `out` is truncated back to its length before the
/// call.
///
/// # Errors
///
/// As for [`encode`].
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    let _wire = OnTheWire::enter();
    let start = out.len();
    let mut lent = Lent {
        encoder: Encoder {
            out: std::mem::take(out),
            depth: 0,
        },
        home: out,
    };
    match value.serialize(&mut lent.encoder) {
        Ok(()) => Ok(()),
        Err(error) => {
            lent.encoder.out.truncate(start);
            Err(error.into_message())
        }
    }
}

/// An encoder writing into a buffer moved out of `home`, and back into it when dropped (even by a
/// panic in a `Serialize` impl). A `Vec` owned by the encoder is measurably faster to append to
/// than one behind a reference.
struct Lent<'o> {
    /// The encoder, which owns the buffer for now.
    encoder: Encoder,
    /// Where the buffer came from.
    home: &'o mut Vec<u8>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        std::mem::swap(self.home, &mut self.encoder.out);
    }
}

/// Decodes exactly one value from the whole slice.
///
/// # Errors
///
/// Bytes that are not a valid encoding of `T`, or bytes left over after the value (the two sides
/// disagree about the type).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut decoder = Decoder::new(bytes);
    let value = decoder.next()?;
    if decoder.is_empty() {
        Ok(value)
    } else {
        Err(format!(
            "{} trailing bytes after the value (the sender used another type)",
            decoder.remaining().len()
        ))
    }
}

/// Decodes several values one after another from one buffer (a frame), with one step budget and
/// one preallocation budget for the whole buffer, so a frame of many items cannot multiply the
/// allowance of a single decode.
pub(crate) struct Decoder<'a> {
    /// The deserializer; it keeps the budgets between values.
    reader: Reader<'a>,
}

impl<'a> Decoder<'a> {
    /// Creates a decoder over `bytes`, with budgets sized for that buffer.
    pub(crate) fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder {
            reader: Reader {
                rest: bytes,
                frame_len: bytes.len(),
                steps: bytes.len().saturating_add(STEP_ALLOWANCE),
                prealloc: bytes.len(),
                depth: 0,
            },
        }
    }

    /// Decodes the next value.
    ///
    /// # Errors
    ///
    /// Bytes that are not a valid encoding of `T`, or a spent budget. The decoder then stays
    /// where the value began ([`remaining`](Decoder::remaining) still starts with it), but the
    /// budgets it used are gone.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let start = self.reader.rest;
        self.reader.depth = 0;
        T::deserialize(&mut self.reader).map_err(|error| {
            self.reader.rest = start;
            error.into_message()
        })
    }

    /// Returns the bytes not decoded yet.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.reader.rest
    }

    /// Returns whether every byte has been decoded.
    pub(crate) fn is_empty(&self) -> bool {
        self.reader.rest.is_empty()
    }
}

impl fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("frame_len", &self.reader.frame_len)
            .field("remaining", &self.reader.rest.len())
            .field("steps", &self.reader.steps)
            .field("prealloc", &self.reader.prealloc)
            .finish_non_exhaustive()
    }
}

// ----- errors ----------------------------------------------------------------------------------

/// The error of both halves of the codec: a message, which ends up as text in public errors.
/// Boxed, so that a `Result<(), Error>` or `Result<u64, Error>` is returned in registers: every
/// serde call returns one, and a bigger error measurably slows the whole codec down.
#[derive(Debug)]
#[allow(
    clippy::box_collection,
    reason = "a thin pointer keeps results small; the error path is cold"
)]
struct Error(Box<String>);

impl Error {
    /// Wraps a message.
    #[cold]
    #[inline(never)]
    fn new(message: String) -> Error {
        Error(Box::new(message))
    }

    /// Returns the message.
    fn into_message(self) -> String {
        *self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::new(message.to_string())
    }
}

impl de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error::new(message.to_string())
    }
}

/// Builds the error for a container nested more than [`MAX_DEPTH`] levels deep.
#[cold]
#[inline(never)]
fn too_deep() -> Error {
    Error::new(format!("nested more than {MAX_DEPTH} levels deep"))
}

/// Builds the error for a read past the end of the input.
#[cold]
#[inline(never)]
fn end_of_input(needed: usize, available: usize) -> Error {
    Error::new(format!(
        "unexpected end of input: needed {needed} bytes but only {available} remain"
    ))
}

/// Builds the error for a `str` or `bytes` length longer than the input.
#[cold]
#[inline(never)]
fn length_claim(claimed: u64, available: usize) -> Error {
    Error::new(format!(
        "length prefix claims {claimed} bytes but only {available} remain"
    ))
}

/// Builds the error for a length that does not fit in the format's `u64`.
#[cold]
#[inline(never)]
fn length_too_big(len: usize) -> Error {
    Error::new(format!("length {len} does not fit in a u64"))
}

/// Converts a length to the wire's `u64`.
#[inline]
fn wire_len(len: usize) -> Result<u64, Error> {
    u64::try_from(len).map_err(|_| length_too_big(len))
}

// ----- encoding --------------------------------------------------------------------------------

/// The serializer: writes straight into the output buffer.
struct Encoder {
    /// The buffer the encoding is appended to.
    out: Vec<u8>,
    /// How many containers are open around the value being written.
    depth: usize,
}

impl Encoder {
    /// Opens a container level.
    #[inline]
    fn enter(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.depth += 1;
        Ok(())
    }

    /// Closes a container level.
    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Writes a length prefix.
    #[inline]
    fn write_len(&mut self, len: usize) -> Result<(), Error> {
        let len = wire_len(len)?;
        self.out.extend_from_slice(&len.to_le_bytes());
        Ok(())
    }

    /// Writes a `u64` length prefix and the bytes.
    #[inline]
    fn write_bytes(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.write_len(bytes.len())?;
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes an enum variant index.
    #[inline]
    fn write_variant(&mut self, index: u32) {
        self.out.extend_from_slice(&index.to_le_bytes());
    }

    /// Opens a seq or map: writes the length the `Serialize` impl announced (or 0), to be
    /// corrected by [`Counted::finish`] if the elements serialized do not match it.
    #[inline]
    fn counted(&mut self, len: Option<usize>) -> Result<Counted<'_>, Error> {
        self.enter()?;
        let start = self.out.len();
        let written = wire_len(len.unwrap_or(0))?;
        self.out.extend_from_slice(&written.to_le_bytes());
        Ok(Counted {
            encoder: self,
            start,
            written,
            count: 0,
        })
    }
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Counted<'a>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Counted<'a>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push(u8::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.out.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.out.extend_from_slice(&u32::from(v).to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.write_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.write_bytes(v)
    }

    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        self.out.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.out.push(1);
        self.enter()?;
        value.serialize(&mut *self)?;
        self.leave();
        Ok(())
    }

    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
    ) -> Result<(), Error> {
        self.write_variant(variant_index);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.enter()?;
        value.serialize(&mut *self)?;
        self.leave();
        Ok(())
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.write_variant(variant_index);
        self.enter()?;
        value.serialize(&mut *self)?;
        self.leave();
        Ok(())
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Counted<'a>, Error> {
        self.counted(len)
    }

    /// Writes a seq from an iterator; the same bytes as the default (`serialize_seq` with the
    /// iterator's length if it is exact, then the elements), in a body small enough to be inlined
    /// into the caller's loop.
    #[inline]
    fn collect_seq<I>(self, iter: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        // A `&Vec<T>` or `&[T]` of plain numbers: one copy of their bytes, which are the same as
        // the elements one by one.
        #[cfg(target_endian = "little")]
        if let Some((count, bytes)) = block::as_block(&iter) {
            return self.write_block(count, bytes);
        }
        let iter = iter.into_iter();
        let len = match iter.size_hint() {
            (lower, Some(upper)) if lower == upper => Some(lower),
            _ => None,
        };
        let mut seq = self.counted(len)?;
        for item in iter {
            seq.tick();
            item.serialize(&mut *seq.encoder)?;
        }
        seq.finish();
        Ok(())
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self, Error> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.write_variant(variant_index);
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Counted<'a>, Error> {
        self.counted(len)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, Error> {
        self.enter()?;
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, Error> {
        self.write_variant(variant_index);
        self.enter()?;
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A seq or map being written: counts its elements (or entries), then corrects the count it
/// wrote if they differ (always for `serialize_seq(None)`, never for an honest length).
struct Counted<'a> {
    /// The serializer, one level deeper.
    encoder: &'a mut Encoder,
    /// Where the 8-byte count sits in the output.
    start: usize,
    /// The count written there.
    written: u64,
    /// Elements (or entries) serialized so far.
    count: u64,
}

impl Counted<'_> {
    /// Counts one element (or entry).
    #[inline]
    fn tick(&mut self) {
        self.count += 1;
    }

    /// Closes the container, writing the real count over the announced one if they differ. (The
    /// bytes are always there: the buffer only grows while encoding.)
    #[inline]
    fn finish(self) {
        self.encoder.leave();
        if self.count != self.written {
            let end = self.start + LEN_WIDTH;
            if let Some(reserved) = self.encoder.out.get_mut(self.start..end) {
                reserved.copy_from_slice(&self.count.to_le_bytes());
            }
        }
    }
}

impl ser::SerializeSeq for Counted<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.tick();
        value.serialize(&mut *self.encoder)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeMap for Counted<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.tick();
        key.serialize(&mut *self.encoder)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.encoder)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Encoder {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.leave();
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Encoder {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.leave();
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Encoder {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.leave();
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Encoder {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Error> {
        Err(skipped_field(key))
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.leave();
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Encoder {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(&mut **self)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Error> {
        Err(skipped_field(key))
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.leave();
        Ok(())
    }
}

/// Builds the error for a field skipped by `skip_serializing_if`.
#[cold]
#[inline(never)]
fn skipped_field(key: &str) -> Error {
    Error::new(format!(
        "field `{key}` was skipped by `skip_serializing_if`, which this positional format cannot \
         decode (use `#[serde(skip)]` or always serialize it)"
    ))
}

// ----- decoding --------------------------------------------------------------------------------

/// The deserializer: reads from the front of a slice, within the [`Decoder`]'s budgets.
struct Reader<'de> {
    /// The bytes not decoded yet.
    rest: &'de [u8],
    /// The length of the whole buffer, for messages.
    frame_len: usize,
    /// Seq elements and map entries that may still be decoded.
    steps: usize,
    /// Elements that may still be announced to visitors in size hints.
    prealloc: usize,
    /// How many containers are open around the value being read.
    depth: usize,
}

/// What a length-prefixed container holds, for messages.
#[derive(Clone, Copy, Debug)]
enum Container {
    /// A seq: elements.
    Seq,
    /// A map: entries.
    Map,
}

impl<'de> Reader<'de> {
    /// Opens a container level.
    #[inline]
    fn enter(&mut self) -> Result<(), Error> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        self.depth += 1;
        Ok(())
    }

    /// Closes a container level.
    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Reads `N` bytes.
    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(end_of_input(N, self.rest.len())),
        }
    }

    /// Reads a byte.
    #[inline]
    fn byte(&mut self) -> Result<u8, Error> {
        match self.rest.split_first() {
            Some((&head, tail)) => {
                self.rest = tail;
                Ok(head)
            }
            None => Err(end_of_input(1, 0)),
        }
    }

    /// Reads a `u32`.
    #[inline]
    fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a `u64`.
    #[inline]
    fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a `u64` length and that many bytes, checking the length against the input first.
    #[inline]
    fn bytes(&mut self) -> Result<&'de [u8], Error> {
        let claimed = self.u64()?;
        let available = self.rest.len();
        match usize::try_from(claimed) {
            Ok(len) if len <= available => {
                let (head, tail) = self.rest.split_at(len);
                self.rest = tail;
                Ok(head)
            }
            _ => Err(length_claim(claimed, available)),
        }
    }

    /// Reads a `str`.
    #[inline]
    fn str(&mut self) -> Result<&'de str, Error> {
        std::str::from_utf8(self.bytes()?).map_err(|_| invalid_utf8())
    }

    /// Returns the size hint for a seq or map claiming `claimed` elements, and debits it from the
    /// preallocation budget.
    #[inline]
    fn debit_hint(&mut self, claimed: usize) -> usize {
        let hint = self.capped_hint(claimed).min(self.prealloc);
        self.prealloc -= hint;
        hint
    }

    /// Caps a claimed element count by the bytes that remain.
    #[inline]
    fn capped_hint(&self, claimed: usize) -> usize {
        claimed.min(self.rest.len())
    }

    /// Takes one step per element (or entry) a seq or map claims, all at once when it opens.
    /// A value that decodes reads every element it claims, so this is the same total as a step
    /// per element read, and a claim the budget cannot cover fails at once.
    #[inline]
    fn take_steps(&mut self, claimed: u64, container: Container) -> Result<usize, Error> {
        match usize::try_from(claimed) {
            Ok(count) if count <= self.steps => {
                self.steps -= count;
                Ok(count)
            }
            _ => Err(too_many_steps(
                self.frame_len,
                claimed,
                self.steps,
                container,
            )),
        }
    }

    /// Reads a seq or map's count and hands the visitor its elements (or entries).
    #[inline]
    fn counted<V: Visitor<'de>>(
        &mut self,
        container: Container,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let claimed = self.u64()?;
        self.enter()?;
        let count = self.take_steps(claimed, container)?;
        let hint = self.debit_hint(count);
        let mut left = 0;
        let access = Prefixed {
            reader: &mut *self,
            left: count,
            hint,
            report: &mut left,
        };
        let value = match container {
            Container::Seq => visitor.visit_seq(access)?,
            Container::Map => visitor.visit_map(access)?,
        };
        if left != 0 {
            return Err(unread(count, left, container));
        }
        self.leave();
        Ok(value)
    }

    /// Hands the visitor `len` fields with no length prefix (a tuple or a struct).
    #[inline]
    fn fixed<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let hint = self.capped_hint(len);
        let value = visitor.visit_seq(Fixed {
            reader: &mut *self,
            left: len,
            hint,
        })?;
        self.leave();
        Ok(value)
    }
}

/// Builds the error for bytes that are not UTF-8 where a `str` is expected.
#[cold]
#[inline(never)]
fn invalid_utf8() -> Error {
    Error::new("invalid UTF-8 in a string".to_owned())
}

/// Builds the error for a seq or map claiming more elements (or entries) than the step budget
/// has left.
#[cold]
#[inline(never)]
fn too_many_steps(frame_len: usize, claimed: u64, steps: usize, container: Container) -> Error {
    let (what, unit) = match container {
        Container::Seq => ("sequence", "elements"),
        Container::Map => ("map", "entries"),
    };
    Error::new(format!(
        "decoding takes too many steps for a frame of {frame_len} bytes (a {what} claims \
         {claimed} {unit}, only {steps} steps remain)"
    ))
}

/// Builds the error for a visitor that stopped before the end of a seq or map.
#[cold]
#[inline(never)]
fn unread(claimed: usize, left: usize, container: Container) -> Error {
    let (what, unit) = match container {
        Container::Seq => ("sequence", "elements"),
        Container::Map => ("map", "entries"),
    };
    Error::new(format!(
        "the type read only {} of the {claimed} {unit} the {what} claims",
        claimed - left
    ))
}

/// Builds the error for a `deserialize_any` or `deserialize_ignored_any` call.
#[cold]
#[inline(never)]
fn not_self_describing() -> Error {
    Error::new(
        "this format cannot decode `deserialize_any` (untagged enums, flatten and other \
         self-describing types are not supported)"
            .to_owned(),
    )
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(not_self_describing())
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(Error::new(format!("invalid bool byte {other}"))),
        }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i8(i8::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i16(i16::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i32(i32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(i64::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i128(i128::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u8(self.byte()?)
    }

    #[inline]
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u16(u16::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(self.u32()?)
    }

    #[inline]
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(self.u64()?)
    }

    #[inline]
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u128(u128::from_le_bytes(self.array()?))
    }

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f32(f32::from_bits(self.u32()?))
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(f64::from_bits(self.u64()?))
    }

    #[inline]
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let code = self.u32()?;
        match char::from_u32(code) {
            Some(c) => visitor.visit_char(c),
            None => Err(Error::new(format!("invalid char {code:#X}"))),
        }
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.str()?)
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.str()?)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => {
                self.enter()?;
                let value = visitor.visit_some(&mut *self)?;
                self.leave();
                Ok(value)
            }
            other => Err(Error::new(format!("invalid Option tag {other}"))),
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.enter()?;
        let value = visitor.visit_newtype_struct(&mut *self)?;
        self.leave();
        Ok(value)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A `Vec` of plain numbers: one copy out of the input (see `block` for when).
        #[cfg(target_endian = "little")]
        let visitor = match block::read_block(self, visitor) {
            Ok(value) => return value,
            Err(visitor) => visitor,
        };
        self.counted(Container::Seq, visitor)
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.fixed(len, visitor)
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fixed(len, visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.counted(Container::Map, visitor)
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fixed(fields.len(), visitor)
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u32(self.u32()?)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(not_self_describing())
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a seq or the entries of a map, after their `u64` count (already paid for in
/// steps).
struct Prefixed<'r, 'de> {
    /// The deserializer.
    reader: &'r mut Reader<'de>,
    /// Elements (or entries) not read yet.
    left: usize,
    /// The size hint granted when the container opened.
    hint: usize,
    /// Receives `left` when the visitor is done with the access. (The visitor owns the access,
    /// so `left` can live in a register while it loops.)
    report: &'r mut usize,
}

impl Drop for Prefixed<'_, '_> {
    fn drop(&mut self) {
        *self.report = self.left;
    }
}

impl Prefixed<'_, '_> {
    /// Returns the size hint: the granted one, never more than what is left.
    #[inline]
    fn hint(&self) -> usize {
        self.left.min(self.hint)
    }

    /// Moves to the next element (or entry); `false` at the end.
    #[inline]
    fn advance(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}

impl<'de> de::SeqAccess<'de> for Prefixed<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.advance() {
            seed.deserialize(&mut *self.reader).map(Some)
        } else {
            Ok(None)
        }
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        Some(self.hint())
    }
}

impl<'de> de::MapAccess<'de> for Prefixed<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.advance() {
            seed.deserialize(&mut *self.reader).map(Some)
        } else {
            Ok(None)
        }
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.reader)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        Some(self.hint())
    }
}

/// The fields of a tuple or a struct: as many as the type says, no prefix.
struct Fixed<'r, 'de> {
    /// The deserializer.
    reader: &'r mut Reader<'de>,
    /// Fields not read yet.
    left: usize,
    /// The size hint: the length, capped by the bytes that remained when the tuple opened.
    hint: usize,
}

impl<'de> de::SeqAccess<'de> for Fixed<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.reader).map(Some)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        Some(self.left.min(self.hint))
    }
}

impl<'de> de::EnumAccess<'de> for &mut Reader<'de> {
    type Error = Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let index: de::value::U32Deserializer<Error> = self.u32()?.into_deserializer();
        let variant = seed.deserialize(index)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Reader<'de> {
    type Error = Error;

    #[inline]
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.enter()?;
        let value = seed.deserialize(&mut *self)?;
        self.leave();
        Ok(value)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.fixed(len, visitor)
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fixed(fields.len(), visitor)
    }
}

/// `#[serde(with = "crate::wire::codec::bytes")]` for `Vec<u8>` fields of the protocol's own
/// messages: they travel as one block of bytes (a length and a copy), not element by element.
/// (A plain `Vec<u8>` is written the same way on a little-endian host, as a block; this one is,
/// with the same bytes, on any host.)
pub(crate) mod bytes {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a block of bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
    use std::fmt::Debug;
    use std::marker::PhantomData;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::de::{MapAccess, SeqAccess};
    use serde::ser::{SerializeSeq, Serializer};
    use serde::{Deserialize, Deserializer, Serialize};

    use super::*;

    // ----- helpers and test types --------------------------------------------------------------

    /// Encodes `value`, decodes it back, checks it is equal and returns the bytes.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
        let bytes = encode(value).unwrap();
        let back: T = decode(&bytes).unwrap();
        assert_eq!(&back, value);
        bytes
    }

    /// A `u64` length prefix.
    fn prefix(len: u64) -> [u8; 8] {
        len.to_le_bytes()
    }

    /// A unit struct.
    #[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Unit;

    /// A newtype struct.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Newtype(u32);

    /// A tuple struct.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct TupleStruct(u8, String, i64);

    /// An enum with every kind of variant.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Shape {
        /// A unit variant.
        Empty,
        /// A newtype variant.
        Circle(f64),
        /// A tuple variant.
        Rect(u32, u32),
        /// A struct variant.
        Named { name: String, sides: u8 },
    }

    /// A struct with many fields of many shapes.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Many {
        a: u8,
        b: u16,
        c: u32,
        d: u64,
        e: i8,
        f: i16,
        g: i32,
        h: i64,
        i: f32,
        j: f64,
        k: bool,
        l: char,
        m: String,
        n: Vec<u16>,
        o: Option<Box<Many>>,
        p: (u8, Unit, Newtype),
        q: Vec<Shape>,
        r: BTreeMap<u8, String>,
        s: [u8; 32],
        t: Result<u8, String>,
    }

    /// A `Many` with something in every field, `nested` levels deep through `o`.
    fn many(nested: u32) -> Many {
        Many {
            a: 1,
            b: 2,
            c: 3,
            d: u64::MAX,
            e: -1,
            f: i16::MIN,
            g: -3,
            h: i64::MIN,
            i: 1.5,
            j: -0.25,
            k: true,
            l: 'ß',
            m: "héllo, 世界".to_owned(),
            n: vec![1, 2, 3],
            o: (nested > 0).then(|| Box::new(many(nested - 1))),
            p: (9, Unit, Newtype(7)),
            q: vec![
                Shape::Empty,
                Shape::Circle(2.0),
                Shape::Rect(3, 4),
                Shape::Named {
                    name: "tri".to_owned(),
                    sides: 3,
                },
            ],
            r: BTreeMap::from([(1, "one".to_owned()), (2, String::new())]),
            s: [0xAB; 32],
            t: Err("no".to_owned()),
        }
    }

    /// A recursive type: two container levels (newtype struct, `Some`) per node.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Node(Option<Box<Node>>);

    impl Node {
        /// Builds a chain of `len` nodes below a root.
        fn chain(len: usize) -> Node {
            let mut node = Node(None);
            for _ in 0..len {
                node = Node(Some(Box::new(node)));
            }
            node
        }
    }

    impl Drop for Node {
        /// Unlinks the chain iteratively, so dropping a deep one cannot overflow the stack.
        fn drop(&mut self) {
            let mut next = self.0.take();
            while let Some(mut node) = next {
                next = node.0.take();
            }
        }
    }

    /// A recursive type: one container level (the variant's content) per node.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum List {
        /// The end.
        Nil,
        /// One more level.
        Cons(Box<List>),
    }

    impl List {
        /// Builds a list of `len` conses.
        fn of(len: usize) -> List {
            let mut list = List::Nil;
            for _ in 0..len {
                list = List::Cons(Box::new(list));
            }
            list
        }

        /// The encoding of a list of `len` conses, built by hand.
        fn bytes(len: usize) -> Vec<u8> {
            let mut bytes = [1, 0, 0, 0].repeat(len);
            bytes.extend_from_slice(&[0, 0, 0, 0]);
            bytes
        }
    }

    /// Bytes that serialize with `serialize_bytes`, as `serde_bytes` does.
    #[derive(PartialEq, Debug)]
    struct Bytes(Vec<u8>);

    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Accepts bytes, borrowed or owned.
            struct BytesVisitor;
            impl Visitor<'_> for BytesVisitor {
                type Value = Bytes;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
                fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }

    /// A sequence serialized with an unknown length (`serialize_seq(None)`).
    struct Unknown(Vec<u32>);

    impl Serialize for Unknown {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(None)?;
            for item in self.0.iter().filter(|_| true) {
                seq.serialize_element(item)?;
            }
            seq.end()
        }
    }

    /// A sequence that announces 3 elements and serializes 2.
    struct Liar;

    impl Serialize for Liar {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(3))?;
            seq.serialize_element(&1u8)?;
            seq.serialize_element(&2u8)?;
            seq.end()
        }
    }

    thread_local! {
        /// The size hints the recording visitors were given, in order.
        static HINTS: RefCell<Vec<Option<usize>>> = const { RefCell::new(Vec::new()) };
    }

    /// Takes the recorded size hints.
    fn take_hints() -> Vec<Option<usize>> {
        HINTS.with(RefCell::take)
    }

    /// A sequence of `T` that records its size hint.
    #[derive(Debug)]
    struct FlatSeq<T = u8>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for FlatSeq<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Records the hint, then reads every element.
            struct FlatVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for FlatVisitor<T> {
                type Value = FlatSeq<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlatSeq<T>, A::Error> {
                    HINTS.with(|hints| hints.borrow_mut().push(seq.size_hint()));
                    while seq.next_element::<T>()?.is_some() {}
                    Ok(FlatSeq(PhantomData))
                }
            }
            deserializer.deserialize_seq(FlatVisitor(PhantomData))
        }
    }

    /// A map of `u8` to `u8` that records its size hint.
    #[derive(Debug)]
    struct FlatMap;

    impl<'de> Deserialize<'de> for FlatMap {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Records the hint, then reads every entry.
            struct FlatVisitor;
            impl<'de> Visitor<'de> for FlatVisitor {
                type Value = FlatMap;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map of u8")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatMap, A::Error> {
                    HINTS.with(|hints| hints.borrow_mut().push(map.size_hint()));
                    while map.next_entry::<u8, u8>()?.is_some() {}
                    Ok(FlatMap)
                }
            }
            deserializer.deserialize_map(FlatVisitor)
        }
    }

    /// A sequence of itself that records its size hint at every level.
    #[derive(Debug)]
    struct Nest;

    impl<'de> Deserialize<'de> for Nest {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Records the hint, then reads every element as another `Nest`.
            struct NestVisitor;
            impl<'de> Visitor<'de> for NestVisitor {
                type Value = Nest;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a nest")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Nest, A::Error> {
                    HINTS.with(|hints| hints.borrow_mut().push(seq.size_hint()));
                    while seq.next_element::<Nest>()?.is_some() {}
                    Ok(Nest)
                }
            }
            deserializer.deserialize_seq(NestVisitor)
        }
    }

    /// A string that remembers whether the visitor was handed a borrowed slice.
    #[derive(Debug)]
    struct SeenStr {
        text: String,
        borrowed: bool,
    }

    impl<'de> Deserialize<'de> for SeenStr {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            /// Notes which `visit_*` was called.
            struct SeenVisitor;
            impl<'de> Visitor<'de> for SeenVisitor {
                type Value = SeenStr;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<SeenStr, E> {
                    Ok(SeenStr {
                        text: v.to_owned(),
                        borrowed: true,
                    })
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<SeenStr, E> {
                    Ok(SeenStr {
                        text: v.to_owned(),
                        borrowed: false,
                    })
                }
            }
            deserializer.deserialize_string(SeenVisitor)
        }
    }

    // ----- format and round trips ------------------------------------------------------------

    #[test]
    fn encoding_matches_the_documented_format() {
        let bytes = encode(&(
            true,
            0x0102u16,
            Some('é'),
            "ab",
            Shape::Rect(1, 2),
            vec![7u8],
            None::<u8>,
            (),
        ))
        .unwrap();
        let mut expected = vec![1, 2, 1, 1, 0xE9, 0, 0, 0];
        expected.extend_from_slice(&prefix(2));
        expected.extend_from_slice(b"ab");
        expected.extend_from_slice(&[2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        expected.extend_from_slice(&prefix(1));
        expected.extend_from_slice(&[7, 0]);
        assert_eq!(bytes, expected);

        let mut map = prefix(1).to_vec();
        map.extend_from_slice(&[5, 6]);
        assert_eq!(encode(&BTreeMap::from([(5u8, 6u8)])).unwrap(), map);
        assert_eq!(
            encode(&Shape::Named {
                name: String::new(),
                sides: 3
            })
            .unwrap(),
            {
                let mut named = vec![3, 0, 0, 0];
                named.extend_from_slice(&prefix(0));
                named.push(3);
                named
            }
        );
    }

    #[test]
    fn integers_round_trip_at_their_extremes() {
        round_trip(&(u8::MIN, u8::MAX, i8::MIN, i8::MAX));
        round_trip(&(u16::MIN, u16::MAX, i16::MIN, i16::MAX));
        round_trip(&(u32::MIN, u32::MAX, i32::MIN, i32::MAX));
        round_trip(&(u64::MIN, u64::MAX, i64::MIN, i64::MAX));
        round_trip(&(u128::MIN, u128::MAX, i128::MIN, i128::MAX));
        assert_eq!(round_trip(&u128::MAX).len(), 16);
        assert_eq!(round_trip(&-1i128).len(), 16);
        round_trip(&(usize::MAX, isize::MIN));
    }

    #[test]
    fn floats_round_trip_bit_for_bit() {
        for value in [
            0.0f64,
            -0.0,
            1.5,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            round_trip(&value);
        }
        for value in [
            0.0f32,
            -0.0,
            1.5,
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            round_trip(&value);
        }
        let nan = f64::from_bits(0x7FF8_0000_0000_1234);
        let back: f64 = decode(&encode(&nan).unwrap()).unwrap();
        assert_eq!(back.to_bits(), nan.to_bits());
        let nan = f32::from_bits(0xFFC0_0001);
        let back: f32 = decode(&encode(&nan).unwrap()).unwrap();
        assert_eq!(back.to_bits(), nan.to_bits());
    }

    #[test]
    fn chars_and_strings_round_trip() {
        for c in ['\0', 'a', 'é', '€', '😀', char::MAX] {
            round_trip(&c);
        }
        round_trip(&String::new());
        round_trip(&"héllo, 世界 😀".to_owned());
        round_trip(&vec![String::new(), "x".to_owned()]);
        round_trip(&Bytes(Vec::new()));
        round_trip(&Bytes(vec![0, 1, 255]));
    }

    #[test]
    fn strings_are_handed_to_visitors_borrowed() {
        let seen: SeenStr = decode(&encode("borrowed").unwrap()).unwrap();
        assert_eq!(seen.text, "borrowed");
        assert!(seen.borrowed);
    }

    #[test]
    fn collections_round_trip() {
        round_trip(&Vec::<u64>::new());
        round_trip(&vec![1u64, 2, 3]);
        round_trip(&vec![vec![1u8], vec![], vec![2, 3]]);
        round_trip(&VecDeque::from([1u16, 2, 3]));
        round_trip(&HashMap::from([
            ("a".to_owned(), vec![1u64]),
            ("b".to_owned(), vec![]),
        ]));
        round_trip(&BTreeMap::from([(1i32, Some(2u8)), (3, None)]));
        round_trip(&HashSet::from(["x".to_owned(), "y".to_owned()]));
        round_trip(&[0xCDu8; 32]);
        round_trip(&[(); 4]);
        round_trip(&Box::new([1u32, 2]));
    }

    #[test]
    fn options_units_and_structs_round_trip() {
        round_trip(&None::<u8>);
        round_trip(&Some(5u8));
        round_trip(&Some(None::<u8>));
        round_trip(&Some(Some(String::from("deep"))));
        round_trip(&());
        round_trip(&Unit);
        round_trip(&Newtype(42));
        round_trip(&TupleStruct(1, "two".to_owned(), -3));
        round_trip(&many(3));
        round_trip(&Node::chain(5));
    }

    #[test]
    fn enums_and_results_round_trip() {
        for shape in [
            Shape::Empty,
            Shape::Circle(1.0),
            Shape::Rect(2, 3),
            Shape::Named {
                name: "square".to_owned(),
                sides: 4,
            },
        ] {
            round_trip(&shape);
        }
        round_trip(&Ok::<u32, String>(1));
        round_trip(&Err::<u32, String>("bad".to_owned()));
        round_trip(&Some(Ok::<Shape, ()>(Shape::Empty)));
    }

    #[test]
    fn times_round_trip() {
        round_trip(&Duration::ZERO);
        round_trip(&Duration::new(5, 999_999_999));
        round_trip(&Duration::MAX);
        round_trip(&UNIX_EPOCH);
        round_trip(&(UNIX_EPOCH + Duration::new(1_700_000_000, 123)));
        round_trip(&SystemTime::now());
    }

    #[test]
    fn serde_skip_fields_round_trip() {
        /// A struct with a skipped field.
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct WithSkip {
            kept: u32,
            #[serde(skip)]
            skipped: u32,
            last: String,
        }
        let bytes = encode(&WithSkip {
            kept: 1,
            skipped: 99,
            last: "z".to_owned(),
        })
        .unwrap();
        assert_eq!(bytes.len(), 4 + 8 + 1);
        let back: WithSkip = decode(&bytes).unwrap();
        assert_eq!(
            back,
            WithSkip {
                kept: 1,
                skipped: 0,
                last: "z".to_owned()
            }
        );
    }

    #[test]
    fn skip_serializing_if_is_refused() {
        /// A struct whose field may be left out.
        #[derive(Serialize)]
        struct Sometimes {
            #[serde(skip_serializing_if = "Option::is_none")]
            value: Option<u8>,
        }
        assert!(encode(&Sometimes { value: Some(1) }).is_ok());
        let error = encode(&Sometimes { value: None }).unwrap_err();
        assert!(error.contains("`value`"), "{error}");
        assert!(error.contains("skip_serializing_if"), "{error}");
    }

    #[test]
    fn unknown_length_sequences_are_patched() {
        let bytes = encode(&Unknown(vec![1, 2, 3])).unwrap();
        assert_eq!(bytes, encode(&vec![1u32, 2, 3]).unwrap());
        assert_eq!(decode::<Vec<u32>>(&bytes).unwrap(), [1, 2, 3]);
        let empty = encode(&Unknown(Vec::new())).unwrap();
        assert_eq!(decode::<Vec<u32>>(&empty).unwrap(), Vec::<u32>::new());

        // Nested, and in the middle of other data.
        let bytes = encode(&(7u8, vec![Unknown(vec![4]), Unknown(vec![])], 8u8)).unwrap();
        let back: (u8, Vec<Vec<u32>>, u8) = decode(&bytes).unwrap();
        assert_eq!(back, (7, vec![vec![4], vec![]], 8));
    }

    #[test]
    fn the_count_written_is_the_count_serialized() {
        /// An iterator whose size hint claims 5 exactly, and which yields 2 items.
        struct Lying(u8);
        impl Iterator for Lying {
            type Item = u8;
            fn next(&mut self) -> Option<u8> {
                self.0 = self.0.checked_sub(1)?;
                Some(self.0)
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                (5, Some(5))
            }
        }
        /// Serializes a `Lying` iterator with `collect_seq`.
        struct Collected;
        impl Serialize for Collected {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(Lying(2))
            }
        }
        let bytes = encode(&Liar).unwrap();
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), [1, 2]);

        let bytes = encode(&Collected).unwrap();
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), [1, 0]);
        let bytes = encode(&(Collected, 7u8)).unwrap();
        assert_eq!(decode::<(Vec<u8>, u8)>(&bytes).unwrap(), (vec![1, 0], 7));
    }

    #[test]
    fn a_panicking_serialize_leaves_the_buffer_in_place() {
        /// Panics when serialized.
        struct Panics;
        impl Serialize for Panics {
            fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
                panic!("serialize panicked on purpose")
            }
        }
        let mut out = vec![1, 2, 3];
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            encode_into(&mut out, &(5u8, Panics))
        }));
        assert!(result.is_err());
        assert!(out.starts_with(&[1, 2, 3]), "{out:?}");
    }

    #[test]
    fn encode_into_appends() {
        let mut out = vec![0xFF];
        encode_into(&mut out, &1u16).unwrap();
        encode_into(&mut out, "a").unwrap();
        let mut expected = vec![0xFF, 1, 0];
        expected.extend_from_slice(&prefix(1));
        expected.push(b'a');
        assert_eq!(out, expected);
    }

    // ----- the decoder -----------------------------------------------------------------------

    #[test]
    fn decoder_reads_values_one_after_another() {
        let mut frame = Vec::new();
        encode_into(&mut frame, &Ok::<u32, String>(10)).unwrap();
        encode_into(&mut frame, &Err::<u32, String>("three".to_owned())).unwrap();
        encode_into(&mut frame, &Ok::<u32, String>(30)).unwrap();
        let mut decoder = Decoder::new(&frame);
        assert_eq!(decoder.next::<Result<u32, String>>().unwrap(), Ok(10));
        assert_eq!(
            decoder.next::<Result<u32, String>>().unwrap(),
            Err("three".to_owned())
        );
        assert!(!decoder.is_empty());
        assert_eq!(decoder.remaining().len(), 4 + 4);
        assert_eq!(decoder.next::<Result<u32, String>>().unwrap(), Ok(30));
        assert!(decoder.is_empty());
        assert!(decoder.next::<u8>().is_err());
        assert!(format!("{decoder:?}").starts_with("Decoder"));
    }

    #[test]
    fn a_failed_decode_leaves_the_decoder_where_the_value_began() {
        let frame = encode(&(1u8, "abc")).unwrap();
        let mut decoder = Decoder::new(&frame);
        assert_eq!(decoder.next::<u8>().unwrap(), 1);
        let before = decoder.remaining();
        assert!(decoder.next::<bool>().is_err());
        assert_eq!(decoder.remaining(), before);
        assert_eq!(decoder.next::<String>().unwrap(), "abc");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let bytes = encode(&(1u8, 2u8, 3u8)).unwrap();
        assert_eq!(
            decode::<u8>(&bytes).unwrap_err(),
            "2 trailing bytes after the value (the sender used another type)"
        );
        assert!(decode::<String>(&[200, 1, 2]).is_err());
        assert!(decode::<()>(&[0]).is_err());
    }

    #[test]
    fn invalid_bytes_are_errors() {
        assert_eq!(decode::<bool>(&[7]).unwrap_err(), "invalid bool byte 7");
        assert_eq!(
            decode::<Option<u8>>(&[5, 0]).unwrap_err(),
            "invalid Option tag 5"
        );
        assert_eq!(
            decode::<char>(&0xD800u32.to_le_bytes()).unwrap_err(),
            "invalid char 0xD800"
        );
        assert_eq!(
            decode::<char>(&0x11_0000u32.to_le_bytes()).unwrap_err(),
            "invalid char 0x110000"
        );
        let mut bad_utf8 = prefix(2).to_vec();
        bad_utf8.extend_from_slice(&[0xC3, 0x28]);
        assert_eq!(
            decode::<String>(&bad_utf8).unwrap_err(),
            "invalid UTF-8 in a string"
        );
        let error = decode::<Shape>(&[9, 0, 0, 0]).unwrap_err();
        assert!(error.contains("variant index"), "{error}");
        assert_eq!(
            decode::<u32>(&[1, 2]).unwrap_err(),
            "unexpected end of input: needed 4 bytes but only 2 remain"
        );
    }

    #[test]
    fn self_describing_types_are_refused() {
        /// Needs `deserialize_any`.
        #[derive(Deserialize, Debug)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Untagged {
            A(u8),
        }
        /// Needs `deserialize_any` too.
        #[derive(Deserialize, Debug)]
        #[serde(tag = "type")]
        #[allow(dead_code)]
        enum Internal {
            A { x: u8 },
        }
        let message = "this format cannot decode `deserialize_any` (untagged enums, flatten and \
                       other self-describing types are not supported)";
        assert_eq!(decode::<Untagged>(&[1]).unwrap_err(), message);
        assert_eq!(decode::<Internal>(&[1]).unwrap_err(), message);
        assert_eq!(decode::<de::IgnoredAny>(&[1]).unwrap_err(), message);
    }

    #[test]
    fn identifiers_decode_as_u32() {
        /// Reads itself with `deserialize_identifier`.
        #[derive(Debug, PartialEq)]
        struct Ident(u32);
        impl<'de> Deserialize<'de> for Ident {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                /// Accepts an index.
                struct IdentVisitor;
                impl Visitor<'_> for IdentVisitor {
                    type Value = Ident;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an identifier")
                    }
                    fn visit_u32<E: de::Error>(self, v: u32) -> Result<Ident, E> {
                        Ok(Ident(v))
                    }
                }
                deserializer.deserialize_identifier(IdentVisitor)
            }
        }
        assert_eq!(decode::<Ident>(&[3, 0, 0, 0]).unwrap(), Ident(3));
    }

    #[test]
    fn wrong_types_and_truncations_are_errors_at_every_length() {
        let value = many(2);
        let bytes = encode(&value).unwrap();
        for len in 0..bytes.len() {
            assert!(
                decode::<Many>(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        assert_eq!(decode::<Many>(&bytes).unwrap(), value);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<Many>(&longer).is_err());
    }

    // ----- safety: lengths, hints, steps, depth ----------------------------------------------

    #[test]
    fn length_prefixes_are_checked_before_allocating() {
        // The 9-byte frame that aborted bincode: a string of 2^40 bytes, then one byte.
        let mut frame = prefix(1 << 40).to_vec();
        frame.push(b'x');
        assert_eq!(
            decode::<String>(&frame).unwrap_err(),
            "length prefix claims 1099511627776 bytes but only 1 remain"
        );
        assert!(decode::<Bytes>(&frame).is_err());
        // As a sequence of u8 (how a `Vec<u8>` serializes): the hint is capped, then the input
        // runs out.
        assert!(decode::<Vec<u8>>(&frame).is_err());

        let mut frame = prefix(u64::MAX).to_vec();
        frame.extend_from_slice(b"abc");
        assert_eq!(
            decode::<String>(&frame).unwrap_err(),
            format!("length prefix claims {} bytes but only 3 remain", u64::MAX)
        );
        assert!(decode::<Bytes>(&frame).is_err());
        assert!(decode::<Vec<u8>>(&frame).is_err());
        assert!(decode::<Vec<u64>>(&frame).is_err());
        assert!(decode::<Vec<String>>(&frame).is_err());
        assert!(decode::<HashMap<u64, String>>(&frame).is_err());
        assert!(decode::<VecDeque<u128>>(&frame).is_err());
        assert!(decode::<HashSet<u32>>(&frame).is_err());
    }

    #[test]
    fn size_hints_are_capped_by_the_bytes_that_remain() {
        take_hints();
        let mut frame = prefix(60_000).to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<FlatSeq>(&frame).is_err());
        assert_eq!(take_hints(), [Some(3)]);

        let mut frame = prefix(5).to_vec();
        frame.extend_from_slice(&[1, 2, 3, 4, 5]);
        decode::<FlatSeq>(&frame).unwrap();
        assert_eq!(take_hints(), [Some(5)]);

        let mut frame = prefix(60_000).to_vec();
        frame.extend_from_slice(&[1, 2, 3, 4]);
        assert!(decode::<FlatMap>(&frame).is_err());
        assert_eq!(take_hints(), [Some(4)]);

        // A claim the step budget cannot cover fails before any hint is given.
        let mut frame = prefix(1 << 40).to_vec();
        frame.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<FlatSeq>(&frame).is_err());
        assert!(decode::<FlatMap>(&frame).is_err());
        assert_eq!(take_hints(), []);
    }

    #[test]
    fn nested_size_hints_share_one_budget() {
        take_hints();
        // 100 nested sequences, each claiming 600 elements: each could claim every byte that
        // remains, but together they get at most one element per byte of the buffer.
        let frame = prefix(600).repeat(100);
        assert!(decode::<Nest>(&frame).is_err());
        let hints = take_hints();
        assert_eq!(hints.len(), 100);
        assert_eq!(hints[0], Some(600));
        assert_eq!(hints[1], Some(200));
        assert!(hints[2..].iter().all(|hint| *hint == Some(0)));
        let total: usize = hints.iter().flatten().sum();
        assert!(total <= frame.len());

        // The budget is per buffer, not per value: eight valid sequences of 1,000 zero-sized
        // elements in a 64-byte frame get 64 elements of hints between them.
        let frame = prefix(1000).repeat(8);
        let mut decoder = Decoder::new(&frame);
        while !decoder.is_empty() {
            decoder.next::<FlatSeq<()>>().unwrap();
        }
        let hints = take_hints();
        assert_eq!(hints[..3], [Some(56), Some(8), Some(0)]);
        let total: usize = hints.iter().flatten().sum();
        assert_eq!(total, frame.len());
    }

    #[test]
    #[allow(
        clippy::zero_sized_map_values,
        reason = "zero-sized entries are the point"
    )]
    fn zero_sized_elements_run_out_of_steps() {
        let huge = prefix(1 << 60);
        let expected = "decoding takes too many steps for a frame of 8 bytes (a sequence claims \
                        1152921504606846976 elements, only 65544 steps remain)";
        assert_eq!(decode::<Vec<()>>(&huge).unwrap_err(), expected);
        assert_eq!(decode::<VecDeque<Unit>>(&huge).unwrap_err(), expected);
        assert_eq!(
            decode::<HashMap<(), ()>>(&huge).unwrap_err(),
            "decoding takes too many steps for a frame of 8 bytes (a map claims \
             1152921504606846976 entries, only 65544 steps remain)"
        );
        assert!(decode::<BTreeMap<Unit, ()>>(&huge).is_err());
        assert!(decode::<Vec<[(); 3]>>(&huge).is_err());

        // Nested: every inner sequence claims 2^60 too.
        let frame = huge.repeat(64);
        assert!(decode::<Vec<Vec<()>>>(&frame).is_err());
        // Nested claims that each fit, but not together.
        let mut frame = prefix(3).to_vec();
        frame.extend_from_slice(&prefix(30_000).repeat(3));
        let error = decode::<Vec<Vec<()>>>(&frame).unwrap_err();
        assert_eq!(
            error,
            "decoding takes too many steps for a frame of 32 bytes (a sequence claims 30000 \
             elements, only 5565 steps remain)"
        );
    }

    #[test]
    #[allow(
        clippy::zero_sized_map_values,
        reason = "zero-sized entries are the point"
    )]
    fn zero_sized_elements_within_the_allowance_decode() {
        let bytes = round_trip(&vec![(); 1000]);
        assert_eq!(bytes.len(), 8);
        round_trip(&vec![Unit; 60_000]);
        round_trip(&vec![vec![(); 1000]; 20]);
        round_trip(&HashMap::from([((), ())]));
    }

    #[test]
    fn a_frame_shares_one_step_budget() {
        // Two sequences of 40,000 zero-sized elements: each alone fits the allowance, both in one
        // frame do not.
        let one = encode(&vec![(); 40_000]).unwrap();
        assert!(decode::<Vec<()>>(&one).is_ok());
        let frame = one.repeat(2);
        let mut decoder = Decoder::new(&frame);
        assert_eq!(decoder.next::<Vec<()>>().unwrap().len(), 40_000);
        let error = decoder.next::<Vec<()>>().unwrap_err();
        assert!(
            error.starts_with("decoding takes too many steps"),
            "{error}"
        );
    }

    #[test]
    fn large_valid_values_decode() {
        let strings = vec![String::new(); 1_000_000];
        let bytes = encode(&strings).unwrap();
        assert_eq!(decode::<Vec<String>>(&bytes).unwrap().len(), 1_000_000);

        let big: Vec<u8> = (0..10_000_000u32).map(|i| i.to_le_bytes()[0]).collect();
        let bytes = encode(&big).unwrap();
        assert_eq!(decode::<Vec<u8>>(&bytes).unwrap(), big);
        let bytes = encode(&Bytes(big)).unwrap();
        assert_eq!(decode::<Bytes>(&bytes).unwrap().0.len(), 10_000_000);

        let map: HashMap<String, Vec<u64>> = (0..10_000u64)
            .map(|i| (i.to_string(), (0..i % 7).collect()))
            .collect();
        round_trip(&map);
    }

    #[test]
    fn deep_input_is_refused_without_overflowing_the_stack() {
        // Node(Some(Node(Some(... 10,000 deep, then None.
        let mut bytes = vec![1u8; 10_000];
        bytes.push(0);
        assert_eq!(
            decode::<Node>(&bytes).unwrap_err(),
            "nested more than 1024 levels deep"
        );
        assert!(decode::<List>(&List::bytes(10_000)).is_err());
        let mut nest = prefix(1).repeat(10_000);
        nest.extend_from_slice(&prefix(0));
        assert!(decode::<Nest>(&nest).is_err());
        let mut options = vec![1u8; 10_000];
        options.push(0);
        assert!(decode::<Option<Option<Option<u8>>>>(&options).is_err());
    }

    #[test]
    fn values_at_the_depth_limit_decode_within_a_mebibyte_of_stack() {
        // What the module's documentation promises (and what keeps 1024 safe on threads with
        // 2 MiB of stack, Rust's default): the deepest accepted values, and refusals of deeper
        // ones, on a thread with 1 MiB.
        let decoded = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                let nested = |levels: usize| {
                    let mut bytes = prefix(1).repeat(levels - 1);
                    bytes.extend_from_slice(&prefix(0));
                    bytes
                };
                let mut chain = vec![1u8; MAX_DEPTH / 2 - 1];
                chain.push(0);
                (
                    decode::<List>(&List::bytes(MAX_DEPTH)).is_ok(),
                    decode::<Nest>(&nested(MAX_DEPTH)).is_ok(),
                    decode::<Node>(&chain).is_ok(),
                    decode::<Nest>(&nested(10_000)).is_err(),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(decoded, (true, true, true, true));
    }

    #[test]
    fn deep_values_are_refused_by_the_encoder() {
        let deep = Node::chain(10_000);
        let mut out = vec![1, 2, 3];
        assert_eq!(
            encode_into(&mut out, &deep).unwrap_err(),
            "nested more than 1024 levels deep"
        );
        assert_eq!(out, [1, 2, 3]);
        assert!(encode(&List::of(MAX_DEPTH + 44)).is_err());
    }

    #[test]
    fn depth_limit_is_exact_on_both_sides() {
        // One level per cons: MAX_DEPTH pass, one more does not.
        let bytes = round_trip(&List::of(MAX_DEPTH));
        assert_eq!(bytes, List::bytes(MAX_DEPTH));
        assert!(encode(&List::of(MAX_DEPTH + 1)).is_err());
        assert!(decode::<List>(&List::bytes(MAX_DEPTH + 1)).is_err());
        round_trip(&List::of(200));

        // Two levels per node (newtype, `Some`) and one for the last node: a chain of
        // MAX_DEPTH / 2 - 1 below the root is MAX_DEPTH - 1 levels, of MAX_DEPTH / 2 is
        // MAX_DEPTH + 1.
        round_trip(&Node::chain(MAX_DEPTH / 2 - 1));
        assert!(encode(&Node::chain(MAX_DEPTH / 2)).is_err());
        let mut bytes = vec![1u8; MAX_DEPTH / 2];
        bytes.push(0);
        assert!(decode::<Node>(&bytes).is_err());
        round_trip(&Node::chain(100));

        // Sequences of sequences, by hand.
        let nested = |levels: usize| {
            let mut bytes = prefix(1).repeat(levels - 1);
            bytes.extend_from_slice(&prefix(0));
            bytes
        };
        assert!(decode::<Nest>(&nested(MAX_DEPTH)).is_ok());
        assert!(decode::<Nest>(&nested(MAX_DEPTH + 1)).is_err());
    }

    // ----- no panics -------------------------------------------------------------------------

    /// A xorshift64 generator.
    struct XorShift(u64);

    impl XorShift {
        /// Returns the next pseudo-random number.
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Decodes `bytes` as several types and a frame of values; returns how many decodes
    /// succeeded. Errors are expected; a panic fails the test.
    fn decode_as_many_types(bytes: &[u8]) -> usize {
        let mut successes = 0;
        successes += usize::from(decode::<Many>(bytes).is_ok());
        successes += usize::from(decode::<Vec<Option<String>>>(bytes).is_ok());
        successes += usize::from(decode::<HashMap<u8, Vec<Shape>>>(bytes).is_ok());
        successes += usize::from(decode::<(char, bool, f32, Bytes, Node)>(bytes).is_ok());
        successes += usize::from(decode::<Vec<List>>(bytes).is_ok());
        let mut frame = Decoder::new(bytes);
        while frame.next::<Result<Shape, String>>().is_ok() {
            successes += 1;
        }
        successes
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut decoded = 0;
        for _ in 0..100_000 {
            let len = usize::try_from(rng.next() % 64).unwrap();
            // Mostly zeros and ones, so that lengths, tags and indices are often valid.
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.next().to_le_bytes() {
                    [0..128, ..] => 0,
                    [128..192, ..] => 1,
                    [_, byte, ..] => byte,
                })
                .collect();
            decoded += decode_as_many_types(&bytes);
        }
        assert!(decoded > 0);
    }

    #[test]
    fn mutated_encodings_never_panic() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let valid = [
            encode(&many(2)).unwrap(),
            encode(&vec![Some("a".to_owned()), None]).unwrap(),
            encode(&HashMap::from([(
                1u8,
                vec![Shape::Rect(1, 2), Shape::Empty],
            )]))
            .unwrap(),
            encode(&('é', true, 1.0f32, Bytes(vec![1, 2]), Node::chain(3))).unwrap(),
            encode(&vec![List::of(3), List::Nil]).unwrap(),
        ];
        for _ in 0..20_000 {
            let pick = usize::try_from(rng.next() % 5).unwrap();
            let mut bytes = valid[pick].clone();
            for _ in 0..=rng.next() % 3 {
                let at = usize::try_from(rng.next()).unwrap() % bytes.len();
                bytes[at] = rng.next().to_le_bytes()[0];
            }
            let keep = usize::try_from(rng.next()).unwrap() % (bytes.len() + 1);
            bytes.truncate(keep.max(bytes.len() / 2));
            decode_as_many_types(&bytes);
        }
    }
}
