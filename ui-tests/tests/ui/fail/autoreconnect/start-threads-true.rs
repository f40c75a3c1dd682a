use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::Db;

#[skprocess]
#[autoreconnect(start_threads = true, Db = { "*": "pw" })]
struct Worker {
    db: Db,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
