use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use skprocess::prelude::*;

// One error per field that cannot cross, at the field, saying what to do. Locks and atomics
// cross (as copies), and a field with its own `#[serde]` attribute is left alone.
#[skprocess]
struct Worker {
    socket: TcpStream,
    peer: UnixStream,
    local: Rc<Vec<u8>>,
    shared: Arc<Mutex<u64>>,
    counter: Mutex<u64>,
    hits: AtomicU64,
    #[serde(skip)]
    log: Option<std::fs::File>,
    name: String,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
