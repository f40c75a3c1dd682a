use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::{Cache, Db};

// `cache` holds a `Cache`, not a `Db`.
#[skprocess]
#[autoreconnect(Db = { "*": "pw", cache: "other" })]
struct Worker {
    db: Db,
    cache: Cache,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
