//! Bulk data through the pool: `Vec`s and boxed slices of plain numbers as items, as results and
//! as fields of both, small and large (a chunk of several large items, a chunk of one item larger
//! than a chunk's usual size), arrive intact and in order with every method.

use skprocess::pool::Pool;
use skprocess::serde::{Deserialize, Serialize};

mod common;
use common::LIMIT;

const MIB: usize = 1 << 20;

fn pool() -> Pool {
    Pool::new(2).expect("a pool starts")
}

/// `len` bytes, each from its position and `seed` (so that a misplaced chunk shows).
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(31))
        .collect()
}

/// The bytes back, reversed: every byte goes through the worker.
fn reversed(mut v: Vec<u8>) -> Vec<u8> {
    v.reverse();
    v
}

/// Each float doubled, and the count.
fn doubled(v: Vec<f64>) -> (usize, Vec<f64>) {
    (v.len(), v.iter().map(|x| x * 2.0).collect())
}

/// The length and a checksum of the bytes.
fn summed(v: Vec<u8>) -> (usize, u64) {
    (v.len(), v.iter().map(|&b| u64::from(b)).sum())
}

/// An image-like record: bulk fields beside small ones.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(crate = "skprocess::serde")]
struct Frame {
    id: u32,
    label: String,
    pixels: Vec<u8>,
    weights: Vec<f32>,
    offsets: Option<Box<[i64]>>,
    rows: Vec<Vec<u16>>,
}

/// The record with its pixels inverted, its weights halved and its offsets negated.
fn invert(mut frame: Frame) -> Frame {
    for pixel in &mut frame.pixels {
        *pixel = !*pixel;
    }
    for weight in &mut frame.weights {
        *weight /= 2.0;
    }
    if let Some(offsets) = &mut frame.offsets {
        for offset in offsets.iter_mut() {
            *offset = -*offset;
        }
    }
    frame.label.push('!');
    frame
}

fn frame(id: u32, pixels: usize) -> Frame {
    Frame {
        id,
        label: format!("frame {id}"),
        pixels: bytes(pixels, id as u8),
        weights: (0..pixels / 8).map(|i| i as f32 + 0.5).collect(),
        offsets: id.is_multiple_of(2).then(|| (0..id as i64 * 3).collect()),
        rows: vec![vec![id as u16; 10], Vec::new()],
    }
}

#[test]
fn byte_vectors_of_every_size_go_and_come_back() {
    let pool = pool();
    // Empty, tiny, a chunk of several large items, and items larger than a chunk's usual size,
    // in an order that makes the chunks' sizes vary.
    let sizes = [
        0,
        1,
        1000,
        MIB,
        3 * MIB,
        7,
        5 * MIB,
        MIB + 3,
        0,
        2 * MIB,
        64 * 1024,
    ];
    let items: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| bytes(len, i as u8))
        .collect();
    let expected: Vec<Vec<u8>> = items.iter().cloned().map(reversed).collect();
    let back = pool.timeout(LIMIT).map(reversed, items.clone()).unwrap();
    assert!(back == expected, "map: the bytes came back changed");
    let back: Vec<Vec<u8>> = pool
        .timeout(LIMIT)
        .imap(reversed, items.clone())
        .map(Result::unwrap)
        .collect();
    assert!(back == expected, "imap: the bytes came back changed");
    let mut back = pool.timeout(LIMIT).unordered_map(reversed, items).unwrap();
    let mut expected = expected;
    back.sort();
    expected.sort();
    assert!(
        back == expected,
        "unordered_map: the bytes came back changed"
    );
}

#[test]
fn many_large_items_keep_their_order() {
    let pool = pool();
    // 24 items of 0.5 to 2 MiB: chunks of one to seven items, cut by bytes.
    let items: Vec<Vec<u8>> = (0..24u8)
        .map(|i| bytes(MIB / 2 + (usize::from(i) * 97_001) % (3 * MIB / 2), i))
        .collect();
    let expected: Vec<(usize, u64)> = items.iter().cloned().map(summed).collect();
    assert_eq!(pool.timeout(LIMIT).map(summed, items).unwrap(), expected);
}

#[test]
fn float_vectors_keep_every_bit() {
    let pool = pool();
    let nan = f64::from_bits(0x7FF8_0000_0000_1234);
    let items = vec![
        Vec::new(),
        vec![1.5, -0.0, f64::INFINITY, f64::MIN_POSITIVE],
        (0..200_000).map(f64::from).collect(),
        vec![nan],
    ];
    let back = pool.timeout(LIMIT).map(doubled, items.clone()).unwrap();
    assert_eq!(back.len(), items.len());
    for (item, (count, out)) in items.iter().zip(&back) {
        assert_eq!(*count, item.len());
        let expected: Vec<u64> = item.iter().map(|x| (x * 2.0).to_bits()).collect();
        let got: Vec<u64> = out.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, expected);
    }
}

#[test]
fn records_with_bulk_fields_go_and_come_back() {
    let pool = pool();
    let frames: Vec<Frame> = (0..40)
        .map(|i| frame(i, (i as usize % 5) * 300_000))
        .collect();
    let expected: Vec<Frame> = frames.iter().cloned().map(invert).collect();
    let back = pool.timeout(LIMIT).map(invert, frames.clone()).unwrap();
    assert!(back == expected, "the records came back changed");
    // As tuples with `star()`, and boxed slices as results.
    let pairs: Vec<(Vec<u8>, Box<[u32]>)> = (0..10u32)
        .map(|i| (bytes(i as usize * 1000, i as u8), (0..i * 100).collect()))
        .collect();
    let joined = pool
        .star()
        .timeout(LIMIT)
        .map(
            |a: Vec<u8>, b: Box<[u32]>| -> Box<[u64]> {
                a.iter()
                    .map(|&x| u64::from(x))
                    .chain(b.iter().map(|&x| u64::from(x)))
                    .collect()
            },
            pairs.clone(),
        )
        .unwrap();
    for ((a, b), out) in pairs.iter().zip(&joined) {
        assert_eq!(out.len(), a.len() + b.len());
        assert!(
            out[..a.len()]
                .iter()
                .zip(a)
                .all(|(&x, &y)| x == u64::from(y))
        );
        assert!(
            out[a.len()..]
                .iter()
                .zip(b.iter())
                .all(|(&x, &y)| x == u64::from(y))
        );
    }
}
