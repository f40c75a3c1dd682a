//! The codec seam: serde + bincode 2 (little endian, fixed-width integers). Every value that crosses a
//! process boundary goes through [`encode`] and [`decode`], so swapping the format (postcard,
//! for instance) touches only this file.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The bincode configuration: little endian, fixed-width integers. Fixed widths cost a few
/// bytes on small numbers and save the varint branches on every integer: on the local socket,
/// encoding speed matters more than size (the pool's per-item cost dropped by a fifth).
const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
> = bincode::config::standard().with_fixed_int_encoding();

/// Encodes a value. The error is the codec's message.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| e.to_string())
}

/// Decodes a value; bytes left over after the value are an error (they mean the two sides
/// disagree about the type).
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the value (the sender used another type)",
            bytes.len() - used
        ));
    }
    Ok(value)
}

/// Appends a value's encoding to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Decodes a value at the start of `bytes`; returns it and the number of bytes it took.
pub(crate) fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), String> {
    bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode(&(1u32, "two".to_string(), vec![3.0f64])).unwrap();
        let back: (u32, String, Vec<f64>) = decode(&bytes).unwrap();
        assert_eq!(back, (1, "two".to_string(), vec![3.0]));
    }

    #[test]
    fn wrong_type_is_an_error() {
        let bytes = encode(&(1u8, 2u8, 3u8)).unwrap();
        assert!(decode::<u8>(&bytes).is_err());
        assert!(decode::<String>(&[200, 1, 2]).is_err());
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A Vec length of u64::MAX, then nothing.
        let bytes = [253u8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode::<Vec<u64>>(&bytes).is_err());
    }
}

/// TEMPORARY shim until the new codec lands.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes }
    }
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Result<T, String> {
        let (v, used) = decode_prefix(self.bytes)?;
        self.bytes = &self.bytes[used..];
        Ok(v)
    }
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.bytes
    }
    #[allow(dead_code)]
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
