use skprocess::autoreconnect;

#[path = "../../support/conns.rs"]
mod conns;
use conns::Db;

// Not a process struct: nothing would open the connections.
#[autoreconnect(Db = { "*": "pw" })]
struct Settings {
    db: Db,
}

fn main() {}
