use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::Db;

// The Python spelling of a connection type.
#[skprocess]
#[autoreconnect(start_threads = false, "psycopg2.Connection" = { "*": "pw" })]
struct Worker {
    db: Db,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
