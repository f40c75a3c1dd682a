//! Synchronization primitives in process fields: they cross processes as **copies** of their
//! value, never as the same lock.
//!
//! A process value is encoded in the parent and decoded in the child, so a lock, an atomic or a
//! semaphore in one of its fields arrives as a new one holding the same value. Nothing links
//! the two afterwards: a lock taken in the child does not exclude the parent, and a permit
//! the child takes is not missing in the parent. To share state between processes, put it in
//! a [`Share`](crate::share::Share) (its [`Semaphore`](crate::share::Semaphore) and
//! [`Queue`](crate::share::Queue) are shared, not copied).
//!
//! `std::sync::Mutex`, `RwLock` and the atomics need nothing: serde encodes them as their
//! value (a poisoned lock fails to encode). Note that encoding a std lock *takes* it: if it is
//! held when the value is sent, the encoder waits for it (and deadlocks if the sending thread
//! holds it itself). For tokio's primitives (feature `tokio`), name a
//! helper of this module on the field:
//!
//! ```ignore
//! use std::sync::Arc;
//! use skprocess::prelude::*;
//!
//! #[skprocess]
//! struct Crawler {
//!     #[serde(with = "skprocess::copies::tokio_semaphore")]
//!     permits: Arc<tokio::sync::Semaphore>, // the same number of available permits
//!     #[serde(with = "skprocess::copies::tokio_mutex")]
//!     seen: tokio::sync::Mutex<Vec<String>>, // the same value, unlocked
//!     #[serde(with = "skprocess::copies::tokio_notify")]
//!     wake: tokio::sync::Notify, // a new one
//! }
//! ```
//!
//! Each helper works for the primitive itself and for an `Arc` of it. A tokio `Mutex` or
//! `RwLock` that is locked (for writing) when the value is encoded fails to encode, with a
//! message saying so, rather than blocking or copying a value in the middle of a change. A
//! tokio `Semaphore` crosses as the permits *available* at that moment: permits held then are
//! not in the copy (tokio does not tell a semaphore's capacity), so send it while none are
//! held if the copy should start full.

#[cfg(feature = "tokio")]
pub mod tokio_mutex {
    //! `#[serde(with = "skprocess::copies::tokio_mutex")]` on a `tokio::sync::Mutex<T>` or an
    //! `Arc` of one: crosses as its value; arrives unlocked.

    use std::borrow::Borrow;

    use serde::de::DeserializeOwned;
    use serde::{Serialize, Serializer};
    use tokio::sync::Mutex;

    /// Encodes the value; fails if the mutex is locked.
    pub fn serialize<P, T, S>(mutex: &P, serializer: S) -> Result<S::Ok, S::Error>
    where
        P: Borrow<Mutex<T>>,
        T: Serialize,
        S: Serializer,
    {
        match mutex.borrow().try_lock() {
            Ok(value) => value.serialize(serializer),
            Err(_) => Err(serde::ser::Error::custom(
                "a tokio Mutex was locked while its value was being copied to another process",
            )),
        }
    }

    /// A new, unlocked mutex holding the value.
    pub fn deserialize<'de, P, T, D>(deserializer: D) -> Result<P, D::Error>
    where
        P: From<Mutex<T>>,
        T: DeserializeOwned,
        D: serde::Deserializer<'de>,
    {
        T::deserialize(deserializer).map(|value| P::from(Mutex::new(value)))
    }
}

#[cfg(feature = "tokio")]
pub mod tokio_rwlock {
    //! `#[serde(with = "skprocess::copies::tokio_rwlock")]` on a `tokio::sync::RwLock<T>` or an
    //! `Arc` of one: crosses as its value; arrives unlocked.

    use std::borrow::Borrow;

    use serde::de::DeserializeOwned;
    use serde::{Serialize, Serializer};
    use tokio::sync::RwLock;

    /// Encodes the value; fails if the lock is held for writing.
    pub fn serialize<P, T, S>(lock: &P, serializer: S) -> Result<S::Ok, S::Error>
    where
        P: Borrow<RwLock<T>>,
        T: Serialize,
        S: Serializer,
    {
        match lock.borrow().try_read() {
            Ok(value) => value.serialize(serializer),
            Err(_) => Err(serde::ser::Error::custom(
                "a tokio RwLock was locked for writing while its value was being copied to \
                 another process",
            )),
        }
    }

    /// A new, unlocked lock holding the value.
    pub fn deserialize<'de, P, T, D>(deserializer: D) -> Result<P, D::Error>
    where
        P: From<RwLock<T>>,
        T: DeserializeOwned,
        D: serde::Deserializer<'de>,
    {
        T::deserialize(deserializer).map(|value| P::from(RwLock::new(value)))
    }
}

#[cfg(feature = "tokio")]
pub mod tokio_semaphore {
    //! `#[serde(with = "skprocess::copies::tokio_semaphore")]` on a `tokio::sync::Semaphore`
    //! or an `Arc` of one: crosses as its available permits (and whether it is closed).

    use std::borrow::Borrow;

    use serde::{Deserialize, Serialize, Serializer};
    use tokio::sync::Semaphore;

    /// Encodes the available permits and the closed flag.
    pub fn serialize<P, S>(semaphore: &P, serializer: S) -> Result<S::Ok, S::Error>
    where
        P: Borrow<Semaphore>,
        S: Serializer,
    {
        let semaphore = semaphore.borrow();
        (semaphore.available_permits() as u64, semaphore.is_closed()).serialize(serializer)
    }

    /// A new semaphore with that many permits (closed if the original was).
    pub fn deserialize<'de, P, D>(deserializer: D) -> Result<P, D::Error>
    where
        P: From<Semaphore>,
        D: serde::Deserializer<'de>,
    {
        let (permits, closed) = <(u64, bool)>::deserialize(deserializer)?;
        let permits = usize::try_from(permits)
            .ok()
            .filter(|&p| p <= Semaphore::MAX_PERMITS)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{permits} permits is more than a tokio Semaphore holds"
                ))
            })?;
        let semaphore = Semaphore::new(permits);
        if closed {
            semaphore.close();
        }
        Ok(P::from(semaphore))
    }
}

#[cfg(feature = "tokio")]
pub mod tokio_notify {
    //! `#[serde(with = "skprocess::copies::tokio_notify")]` on a `tokio::sync::Notify` or an
    //! `Arc` of one: arrives as a new one (a stored `notify_one` permit is not observable, so
    //! it does not cross).

    use std::borrow::Borrow;

    use serde::{Deserialize, Serialize, Serializer};
    use tokio::sync::Notify;

    /// Encodes nothing.
    pub fn serialize<P, S>(notify: &P, serializer: S) -> Result<S::Ok, S::Error>
    where
        P: Borrow<Notify>,
        S: Serializer,
    {
        let _ = notify.borrow();
        ().serialize(serializer)
    }

    /// A new `Notify`.
    pub fn deserialize<'de, P, D>(deserializer: D) -> Result<P, D::Error>
    where
        P: From<Notify>,
        D: serde::Deserializer<'de>,
    {
        <()>::deserialize(deserializer)?;
        Ok(P::from(Notify::new()))
    }
}
