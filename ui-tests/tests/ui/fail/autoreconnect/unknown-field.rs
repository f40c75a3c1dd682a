use skprocess::autoreconnect;
use skprocess::prelude::*;

#[path = "../../support/conns.rs"]
mod conns;
use conns::Db;

// `analytics` is not a field of `Worker`.
#[skprocess]
#[autoreconnect(Db = { "*": "pw", analytics: "other" })]
struct Worker {
    main_db: Db,
    analytics_db: Db,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {}
}

fn main() {}
