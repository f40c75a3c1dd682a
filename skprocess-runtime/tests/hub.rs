//! The hub children connect to, under hostile or broken clients: a client of another user is
//! closed before a byte is read, a client that trickles bytes holds up nothing and is dropped at
//! the handshake's deadline, and a child that stops while its start message is being written
//! holds up no other spawn.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

use skprocess::__testing;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Deserializer, Serialize, Serializer};

mod common;
use common::{LIMIT, probe, within};

#[skprocess]
struct Quick {
    n: u32,
}

#[skprocess]
impl Quick {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(1);
    }
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> u32 {
        self.n * 2
    }
}

fn quick(n: u32) -> u32 {
    Skprocess::new(Quick { n })
        .timeout(Duration::from_secs(20))
        .run()
        .unwrap_or_else(|e| panic!("process {n}: {e}"))
}

/// The hub of this process (started by running one process).
fn hub() -> String {
    quick(0);
    __testing::hub_name().expect("a hub")
}

fn connect(name: &str) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    UnixStream::connect_addr(&addr).expect("the hub accepts connections")
}

#[test]
fn clients_that_trickle_bytes_hold_up_no_spawn_and_are_dropped_at_the_deadline() {
    let name = hub();
    // Ten clients, each sending one byte every 0.9 s after the server's hello.
    let tricklers: Vec<_> = (0..10)
        .map(|_| {
            let mut stream = connect(&name);
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut hello = [0u8; 37];
                stream.set_read_timeout(Some(LIMIT)).unwrap();
                stream.read_exact(&mut hello).expect("a hello");
                while started.elapsed() < Duration::from_secs(60) {
                    std::thread::sleep(Duration::from_millis(900));
                    if stream.write_all(&[0]).is_err() {
                        return started.elapsed();
                    }
                    stream
                        .set_read_timeout(Some(Duration::from_millis(1)))
                        .unwrap();
                    if let Ok(0) = stream.read(&mut [0u8; 1]) {
                        return started.elapsed();
                    }
                }
                panic!("a trickling client was never dropped");
            })
        })
        .collect();
    // Meanwhile, processes start as fast as ever.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    for n in 1..=10 {
        assert_eq!(quick(n), n * 2);
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "spawns were held up by trickling clients: {:?}",
        started.elapsed()
    );
    // Each trickler is dropped once the whole handshake's deadline (10 s) passes.
    for trickler in tricklers {
        let dropped_after = within(LIMIT, move || trickler.join().unwrap());
        assert!(dropped_after < Duration::from_secs(25), "{dropped_after:?}");
    }
}

/// Connects to the socket named in `common::PROBE_ENV` and prints what it got (see
/// `common::probe_helper`).
#[test]
#[ignore = "a helper started by another test, as another user"]
fn helper_probe_the_hub() {
    common::probe_helper();
}

#[test]
fn a_client_of_another_user_is_closed_before_a_byte_is_read_or_sent() {
    common::assert_root();
    let name = hub();
    assert_eq!(probe("helper_probe_the_hub", &name, None), "hello");
    assert_eq!(probe("helper_probe_the_hub", &name, Some(65534)), "closed");
    // The hub still serves its own children.
    assert_eq!(quick(21), 42);
}

/// Bytes that travel as one block (not one element at a time).
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl skprocess::serde::de::Visitor<'_> for Bytes {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

#[skprocess]
struct Heavy {
    blob: Blob,
}

#[skprocess]
impl Heavy {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(1);
    }
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> usize {
        self.blob.0.len()
    }
}

/// The resident memory of process `pid`, in bytes (it grows as the child receives its start
/// message: socket reads are not counted in `/proc/<pid>/io`).
fn resident(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn a_child_stopped_while_its_start_message_is_written_holds_up_no_other_spawn() {
    let heavy = Skprocess::new(Heavy {
        blob: Blob(vec![1; 256 << 20]),
    });
    heavy.start().unwrap();
    let pid = heavy.pid().unwrap();
    // Stop it once it is reading its 256 MiB start message.
    let deadline = Instant::now() + Duration::from_secs(30);
    while resident(pid) < (32 << 20) {
        assert!(
            Instant::now() < deadline,
            "the heavy child never started reading"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    // SAFETY: signalling our own child, whose pid is held by its live handle.
    unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGSTOP) };
    let started = Instant::now();
    for n in 0..3 {
        assert_eq!(quick(n), n * 2);
    }
    let took = started.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGCONT) };
    assert!(
        took < Duration::from_secs(20),
        "spawns waited for a stopped child: {took:?}"
    );
    assert_eq!(
        heavy.timeout(Duration::from_secs(60)).result().unwrap(),
        256 << 20
    );
}
