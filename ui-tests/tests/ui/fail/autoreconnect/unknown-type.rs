use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::Db;

// `String` is not a connection type; `Mongo` is no type at all.
#[skprocess]
#[autoreconnect(String = { "*": "pw" }, Mongo = { "*": "pw" })]
struct Worker {
    db: Db,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
