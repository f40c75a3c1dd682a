//! Zero-copy buffers: bytes, or slices of plain numbers, that live in shared memory and cross
//! to another process as a descriptor, not as a copy.
//!
//! A [`Buffer`] is read-only. Its memory is sealed (`F_SEAL_WRITE | F_SEAL_SHRINK |
//! F_SEAL_GROW`) before anyone else can see it, so no process, the one that made it included,
//! can change or truncate it under a reader. Clones and copies in other processes share the
//! same pages.
//!
//! A [`BufferMut`] is writable and has one owner at a time: to move it to another process, hand
//! it over ([`BufferMut::hand_over`]); this process unmaps it, and the [`Handover`] opens in
//! exactly one place. [`BufferMut::freeze`] seals it into a `Buffer`.
//!
//! ```
//! use skprocess::buffer::Buffer;
//! use skprocess::prelude::*;
//!
//! #[skprocess(runs = 1)]
//! struct Sum {
//!     numbers: Buffer<f64>,
//! }
//!
//! #[skprocess]
//! impl Sum {
//!     fn __run__(&mut self) {}
//!
//!     fn __result__(&mut self) -> f64 {
//!         self.numbers.iter().sum() // the parent's pages, mapped read-only
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let numbers = Buffer::from_slice(&[1.5_f64, 2.5, 4.0])?;
//! assert_eq!(Skprocess::new(Sum { numbers }).run()?, 8.0);
//! # Ok(())
//! # }
//! ```
//!
//! Buffers travel inside a process value (`Skprocess::new`), in pool items, and in messages on
//! a [`Pipe`](crate::pipe::Pipe). Other paths (a `tell`, a Share call, a pool task's result)
//! refuse them with an encode error that says so.

use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a buffer could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BufferError {
    /// The system refused (memory, descriptors, seals).
    #[error("shared memory for the buffer: {0}")]
    Io(#[from] io::Error),
    /// This handover was sent to another process already: it opens there, not here.
    #[error("this buffer was handed over to another process already")]
    HandedOver,
}

mod sealed {
    pub trait Sealed {}
}

/// Plain numbers a buffer may hold: every bit pattern is a valid value, and there is no
/// padding. Implemented for `u8`–`u64`, `i8`–`i64`, `f32` and `f64`.
pub trait Pod: sealed::Sealed + Copy + Send + Sync + 'static {}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Pod for $t {}
    )*};
}
pod!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// A mapping of a buffer's file.
struct Mapping {
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the mapping is plain memory; a read-only one is never written, a writable one has
// one owner (BufferMut is not Clone, and &mut access goes through it).
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, bytes: usize, writable: bool) -> io::Result<Mapping> {
        if bytes == 0 {
            return Ok(Mapping {
                ptr: std::ptr::NonNull::<u64>::dangling().as_ptr().cast(),
                bytes,
            });
        }
        let protection = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a shared mapping of a file we hold, of a size the caller checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                protection,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            bytes,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.bytes > 0 {
            // SAFETY: unmapping what `new` mapped, once.
            unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
        }
    }
}

fn bytes_for<T>(len: usize) -> io::Result<usize> {
    len.checked_mul(size_of::<T>())
        .filter(|&bytes| bytes <= isize::MAX as usize)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the buffer is too large"))
}

/// The seals and size of a descriptor from another process.
fn seals_and_size(fd: BorrowedFd<'_>) -> io::Result<(i32, usize)> {
    // SAFETY: fcntl/fstat on a valid descriptor; fstat writes into a zeroed stat we own.
    unsafe {
        let seals = libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS);
        let mut stat: libc::stat = std::mem::zeroed();
        if seals < 0 || libc::fstat(fd.as_raw_fd(), &mut stat) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((
            seals,
            usize::try_from(stat.st_size).map_err(|_| io::ErrorKind::InvalidData)?,
        ))
    }
}

const READ_ONLY_SEALS: i32 =
    libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
const FIXED_SIZE_SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

// ----- read-only ---------------------------------------------------------------------------------

/// A read-only slice of `T` in sealed shared memory: it crosses to another process as a
/// descriptor, and every process reads the same pages. Dereferences to `&[T]`.
pub struct Buffer<T: Pod = u8> {
    inner: Arc<Sealed>,
    len: usize,
    _type: PhantomData<T>,
}

struct Sealed {
    fd: OwnedFd,
    map: Mapping,
}

impl<T: Pod> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer {
            inner: Arc::clone(&self.inner),
            len: self.len,
            _type: PhantomData,
        }
    }
}

impl<T: Pod + std::fmt::Debug> std::fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Pod> Buffer<T> {
    /// Copies `data` into new shared memory (the one copy), then seals it.
    ///
    /// # Errors
    ///
    /// [`BufferError::Io`] if the system refuses the memory.
    pub fn from_slice(data: &[T]) -> Result<Buffer<T>, BufferError> {
        let mut writable = BufferMut::<T>::zeroed(data.len())?;
        writable.copy_from_slice(data);
        writable.freeze()
    }

    fn sealed(fd: OwnedFd, len: usize) -> io::Result<Buffer<T>> {
        let map = Mapping::new(fd.as_fd(), bytes_for::<T>(len)?, false)?;
        Ok(Buffer {
            inner: Arc::new(Sealed { fd, map }),
            len,
            _type: PhantomData,
        })
    }

    /// The numbers.
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the mapping holds `len` values of T (checked when made or received), is
        // aligned to a page, lives as long as `inner`, and is sealed: nobody writes it.
        unsafe { std::slice::from_raw_parts(self.inner.map.ptr.cast::<T>(), self.len) }
    }
}

impl<T: Pod> std::ops::Deref for Buffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

// ----- writable ----------------------------------------------------------------------------------

/// A writable slice of `T` in shared memory, owned by one process at a time. Dereferences to
/// `&mut [T]`. [`freeze`](Self::freeze) seals it into a [`Buffer`];
/// [`hand_over`](Self::hand_over) moves it to another process.
pub struct BufferMut<T: Pod = u8> {
    fd: OwnedFd,
    map: Mapping,
    len: usize,
    _type: PhantomData<T>,
}

impl<T: Pod> std::fmt::Debug for BufferMut<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferMut")
            .field("len", &self.len)
            .field("type", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Pod> BufferMut<T> {
    /// `len` zeroes in new shared memory.
    ///
    /// # Errors
    ///
    /// [`BufferError::Io`] if the system refuses the memory.
    pub fn zeroed(len: usize) -> Result<BufferMut<T>, BufferError> {
        let bytes = bytes_for::<T>(len)?;
        let fd = crate::sys::memfd(c"skprocess-buffer", bytes)?;
        // Its size is fixed for good; writing stays possible until it is frozen.
        crate::sys::add_seals(fd.as_fd(), FIXED_SIZE_SEALS)?;
        let map = Mapping::new(fd.as_fd(), bytes, true)?;
        Ok(BufferMut {
            fd,
            map,
            len,
            _type: PhantomData,
        })
    }

    /// Seals the memory against writing and resizing and returns it read-only. No copy.
    ///
    /// # Errors
    ///
    /// [`BufferError::Io`] if the seal or the new mapping is refused.
    pub fn freeze(self) -> Result<Buffer<T>, BufferError> {
        let BufferMut { fd, map, len, .. } = self;
        // A write seal needs every writable mapping gone first.
        drop(map);
        crate::sys::add_seals(fd.as_fd(), READ_ONLY_SEALS)?;
        Ok(Buffer::sealed(fd, len)?)
    }

    /// Unmaps the memory here and returns what opens it in another process, exactly once.
    pub fn hand_over(self) -> Handover<T> {
        let BufferMut { fd, map, len, .. } = self;
        drop(map);
        Handover {
            fd,
            len,
            sent: Arc::new(AtomicBool::new(false)),
            _type: PhantomData,
        }
    }
}

impl<T: Pod> std::ops::Deref for BufferMut<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `len` values of T in a live, page-aligned mapping only this value reaches.
        unsafe { std::slice::from_raw_parts(self.map.ptr.cast::<T>(), self.len) }
    }
}

impl<T: Pod> std::ops::DerefMut for BufferMut<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for deref; `&mut self` makes the access unique in this process, and the
        // memory is mapped writable in no other (a handover unmaps it here first).
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.cast::<T>(), self.len) }
    }
}

/// A writable buffer on its way to another process: send it (in a process value or on a pipe)
/// and [`open`](Self::open) it there. It opens once: the copy left behind after sending refuses.
pub struct Handover<T: Pod = u8> {
    fd: OwnedFd,
    len: usize,
    /// Set when it is encoded for sending; set back if that send fails.
    sent: Arc<AtomicBool>,
    _type: PhantomData<T>,
}

impl<T: Pod> std::fmt::Debug for Handover<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("len", &self.len)
            .field("sent", &self.sent.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Pod> Handover<T> {
    /// Maps the memory writable here.
    ///
    /// # Errors
    ///
    /// [`BufferError::HandedOver`] if this handover was sent on (it opens at its destination);
    /// [`BufferError::Io`] if the mapping is refused.
    pub fn open(self) -> Result<BufferMut<T>, BufferError> {
        if self.sent.load(Ordering::Acquire) {
            return Err(BufferError::HandedOver);
        }
        let map = Mapping::new(self.fd.as_fd(), bytes_for::<T>(self.len)?, true)?;
        Ok(BufferMut {
            fd: self.fd,
            map,
            len: self.len,
            _type: PhantomData,
        })
    }
}

// ----- crossing processes ------------------------------------------------------------------------

/// What an encode collected: the descriptors of the buffers it met, in order, and the
/// handovers among them (to be set back to unsent if the message is not sent after all).
#[derive(Default)]
pub(crate) struct Outgoing {
    pub(crate) fds: Vec<OwnedFd>,
    handovers: Vec<Arc<AtomicBool>>,
}

impl Outgoing {
    /// The message was not sent: its handovers may be opened or sent again.
    pub(crate) fn unsent(&self) {
        for sent in &self.handovers {
            sent.store(false, Ordering::Release);
        }
    }

    /// How much was collected so far, for [`truncate`](Self::truncate).
    pub(crate) fn mark(&self) -> (usize, usize) {
        (self.fds.len(), self.handovers.len())
    }

    /// Forgets what was collected since `mark` (an encode whose bytes were thrown away): its
    /// descriptors close, and its handovers may be opened or sent again.
    pub(crate) fn truncate(&mut self, (fds, handovers): (usize, usize)) {
        self.fds.truncate(fds);
        for sent in self.handovers.drain(handovers.min(self.handovers.len())..) {
            sent.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    /// What the encode under way collects (`None`: this encode cannot carry descriptors).
    static OUTGOING: RefCell<Option<Outgoing>> = const { RefCell::new(None) };
    /// Descriptors that arrived with the message being decoded, taken by index.
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Puts a thread-local back as it was when dropped, even by a panic in an encode or decode.
struct Restore<T: 'static> {
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    outer: Option<Option<T>>,
}

impl<T> Drop for Restore<T> {
    fn drop(&mut self) {
        let outer = self.outer.take().flatten();
        self.key.with(|slot| slot.replace(outer));
    }
}

/// Runs `encode` collecting the descriptors of the buffers it meets, in order.
pub(crate) fn collecting<R>(encode: impl FnOnce() -> R) -> (R, Outgoing) {
    let outer = OUTGOING.with(|slot| slot.replace(Some(Outgoing::default())));
    let restore = Restore {
        key: &OUTGOING,
        outer: Some(outer),
    };
    let result = encode();
    let collected = OUTGOING
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_default();
    drop(restore);
    (result, collected)
}

/// Runs `encode` adding the descriptors of the buffers it meets to `outgoing`, after those
/// already there (so that several values encoded one after the other share one list).
pub(crate) fn collecting_into<R>(outgoing: &mut Outgoing, encode: impl FnOnce() -> R) -> R {
    let outer = OUTGOING.with(|slot| slot.replace(Some(std::mem::take(outgoing))));
    let restore = Restore {
        key: &OUTGOING,
        outer: Some(outer),
    };
    let result = encode();
    *outgoing = OUTGOING
        .with(|slot| slot.borrow_mut().take())
        .unwrap_or_default();
    drop(restore);
    result
}

/// Runs `decode` with `fds` available to the buffers it meets (those it does not take close).
pub(crate) fn providing<R>(fds: Vec<OwnedFd>, decode: impl FnOnce() -> R) -> R {
    let outer = INCOMING.with(|slot| slot.replace(Some(fds.into_iter().map(Some).collect())));
    let _restore = Restore {
        key: &INCOMING,
        outer: Some(outer),
    };
    decode()
}

fn send_fd<S: Serializer>(fd: BorrowedFd<'_>) -> Result<u32, S::Error> {
    let dup = fd.try_clone_to_owned().map_err(|err| {
        S::Error::custom(format!("cannot duplicate the buffer's descriptor: {err}"))
    })?;
    OUTGOING.with(|slot| match slot.borrow_mut().as_mut() {
        Some(outgoing) => {
            outgoing.fds.push(dup);
            Ok((outgoing.fds.len() - 1) as u32)
        }
        None => Err(S::Error::custom(
            "a buffer travels in a process value, a pool item or on a pipe; this path (a tell, \
             a Share call, a pool task's result, or an encoding outside skprocess) cannot carry \
             its descriptor",
        )),
    })
}

fn take_fd<'de, D: Deserializer<'de>>(index: u32) -> Result<OwnedFd, D::Error> {
    INCOMING.with(|slot| {
        slot.borrow_mut()
            .as_mut()
            .and_then(|fds| fds.get_mut(index as usize))
            .and_then(Option::take)
            .ok_or_else(|| D::Error::custom("a buffer arrived without its descriptor"))
    })
}

/// What a buffer looks like in a message.
#[derive(Serialize, Deserialize)]
#[serde(rename = "SharedBuffer")]
struct Wire {
    descriptor: u32,
    len: u64,
    elem: u8,
}

impl Wire {
    fn of<T>(descriptor: u32, len: usize) -> Wire {
        Wire {
            descriptor,
            len: len as u64,
            elem: size_of::<T>() as u8,
        }
    }
}

fn received<'de, D: Deserializer<'de>, T: Pod>(
    wire: &Wire,
    want_seals: i32,
    refuse_seals: i32,
) -> Result<(OwnedFd, usize), D::Error> {
    if usize::from(wire.elem) != size_of::<T>() {
        return Err(D::Error::custom(format!(
            "a buffer of {}-byte numbers arrived where {}-byte ones were expected",
            wire.elem,
            size_of::<T>()
        )));
    }
    let fd = take_fd::<D>(wire.descriptor)?;
    let len = usize::try_from(wire.len).map_err(D::Error::custom)?;
    let bytes = bytes_for::<T>(len).map_err(D::Error::custom)?;
    let (seals, size) = seals_and_size(fd.as_fd()).map_err(D::Error::custom)?;
    if seals & want_seals != want_seals || seals & refuse_seals != 0 || size < bytes {
        return Err(D::Error::custom(format!(
            "a buffer's memory arrived unsealed or short (seals {seals:#x}, {size} bytes for \
             {bytes})"
        )));
    }
    Ok((fd, len))
}

impl<T: Pod> Serialize for Buffer<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::wire::codec::refuse_if_crossing_hosts::<S::Error>("a shared-memory buffer")?;
        let descriptor = send_fd::<S>(self.inner.fd.as_fd())?;
        Wire::of::<T>(descriptor, self.len).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Buffer<T> {
    /// Maps the sender's pages read-only, after checking that they are sealed against writing
    /// and resizing and hold the stated length.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Buffer<T>, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let (fd, len) = received::<D, T>(&wire, READ_ONLY_SEALS & !libc::F_SEAL_SEAL, 0)?;
        Buffer::sealed(fd, len).map_err(D::Error::custom)
    }
}

impl<T: Pod> Serialize for Handover<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::wire::codec::refuse_if_crossing_hosts::<S::Error>("a shared-memory buffer")?;
        if self.sent.swap(true, Ordering::AcqRel) {
            return Err(S::Error::custom(
                "this buffer was handed over already; it opens in one process only",
            ));
        }
        let descriptor = send_fd::<S>(self.fd.as_fd()).inspect_err(|_| {
            self.sent.store(false, Ordering::Release);
        })?;
        OUTGOING.with(|slot| {
            if let Some(outgoing) = slot.borrow_mut().as_mut() {
                outgoing.handovers.push(Arc::clone(&self.sent));
            }
        });
        Wire::of::<T>(descriptor, self.len).serialize(serializer)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Handover<T> {
    /// Takes the descriptor after checking that the memory's size is sealed and holds the
    /// stated length, and that it is not sealed against writing.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Handover<T>, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let (fd, len) = received::<D, T>(&wire, FIXED_SIZE_SEALS, libc::F_SEAL_WRITE)?;
        Ok(Handover {
            fd,
            len,
            sent: Arc::new(AtomicBool::new(false)),
            _type: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_sealed_and_reads_back() {
        let buffer = Buffer::from_slice(&[1u32, 2, 3]).unwrap();
        assert_eq!(&*buffer, &[1, 2, 3]);
        let (seals, size) = seals_and_size(buffer.inner.fd.as_fd()).unwrap();
        assert_eq!(seals & READ_ONLY_SEALS, READ_ONLY_SEALS);
        assert_eq!(size, 12);
        // Nobody can write the file any more, through any descriptor.
        let rc = unsafe { libc::pwrite(buffer.inner.fd.as_raw_fd(), [9u8].as_ptr().cast(), 1, 0) };
        assert_eq!(rc, -1);
        let empty = Buffer::<u8>::from_slice(&[]).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn buffers_cross_an_encode_only_with_their_descriptors() {
        let buffer = Buffer::from_slice(&[1.5f64, -2.0]).unwrap();
        assert!(crate::wire::encode(&buffer).is_err());
        let (bytes, outgoing) = collecting(|| crate::wire::encode(&buffer));
        let (bytes, fds) = (bytes.unwrap(), outgoing.fds);
        assert_eq!(fds.len(), 1);
        let back: Buffer<f64> = providing(fds, || crate::wire::decode(&bytes)).unwrap();
        assert_eq!(&*back, &[1.5, -2.0]);
        // Without its descriptor, or as another element type, it is refused.
        assert!(crate::wire::decode::<Buffer<f64>>(&bytes).is_err());
        let (_, outgoing) = collecting(|| crate::wire::encode(&buffer));
        assert!(providing(outgoing.fds, || crate::wire::decode::<Buffer<u8>>(&bytes)).is_err());
    }

    #[test]
    fn a_handover_opens_once_and_an_unsealed_file_is_not_a_buffer() {
        let mut writable = BufferMut::<u16>::zeroed(4).unwrap();
        writable[3] = 7;
        let handover = writable.hand_over();
        // A send that failed leaves it usable.
        let (_, outgoing) = collecting(|| crate::wire::encode(&handover));
        outgoing.unsent();
        let (bytes, outgoing) = collecting(|| crate::wire::encode(&handover));
        let (bytes, fds) = (bytes.unwrap(), outgoing.fds);
        assert!(matches!(handover.open(), Err(BufferError::HandedOver)));
        // The writable file is not a read-only buffer: it is not sealed against writing.
        let (_, again) = (0, fds.iter().map(|fd| fd.try_clone().unwrap()).collect());
        assert!(providing(again, || crate::wire::decode::<Buffer<u16>>(&bytes)).is_err());
        let arrived: Handover<u16> = providing(fds, || crate::wire::decode(&bytes)).unwrap();
        let mut opened = arrived.open().unwrap();
        assert_eq!(&*opened, &[0, 0, 0, 7]);
        opened[0] = 1;
        let frozen = opened.freeze().unwrap();
        assert_eq!(&*frozen, &[1, 0, 0, 7]);
    }
}
