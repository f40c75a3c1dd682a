use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::{Cache, Db};

// Not a map; a number for a password; a key that is neither "*" nor a name; a repeated key.
#[skprocess]
#[autoreconnect(
    Db = "pw",
    Cache = { "*": 42 },
)]
struct Worker {
    db: Db,
    cache: Cache,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

#[skprocess]
#[autoreconnect(Db = { "*": "a", "*": "b", "not a field": "c", db: env(VAR) })]
struct Other {
    db: Db,
}

#[skprocess]
impl Other {
    fn __run__(&mut self) {}
}

fn main() {}
