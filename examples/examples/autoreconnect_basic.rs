//! Example 35, "Basic `autoreconnect`": a PostgreSQL connection opened in the parent is handed
//! to pool workers inside `star()` tuples; only its parameters cross (never the password nor
//! the socket), and `#[autoreconnect]` opens it again in each child before `__run__`.
//!
//! It needs a real PostgreSQL server, found through the environment:
//! `SKPROCESS_PG_{HOST,PORT,USER,DB,PASSWORD}`. `bash scripts/servers.sh up DIR` starts one on
//! loopback and writes these variables to `DIR/env` (`bash scripts/servers.sh down DIR` stops
//! it).
//!
//! Run: `. DIR/env && cargo run -p examples --features db --example autoreconnect_basic`

use skprocess::autoreconnect;
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::reconnect::Postgres;
use skprocess::reconnect::postgres::Config;
use skprocess::serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a worker fetched, and where from.
#[derive(Debug, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Fetched {
    rows: Vec<String>,
    /// The child process that ran the query.
    child_pid: u32,
    /// The server process serving the child's connection.
    backend_pid: i32,
}

// ANCHOR: worker
/// A process that runs one query through a database connection.
///
/// `#[autoreconnect]` opens `db` again in the child, before `__run__`, with the password it
/// reads there from `SKPROCESS_PG_PASSWORD`: the parent's password never crosses.
#[skprocess(runs = 1)]
#[autoreconnect(
    start_threads = false,
    Postgres = { "*": env("SKPROCESS_PG_PASSWORD") },
)]
struct DatabaseWorker {
    db: Postgres,
    query: String,
    results: Vec<String>,
    backend_pid: i32,
}

#[skprocess]
impl DatabaseWorker {
    fn new(db: Postgres, query: String) -> Self {
        DatabaseWorker {
            db,
            query,
            results: Vec::new(),
            backend_pid: 0,
        }
    }

    fn __run__(&mut self) -> Result<(), BoxError> {
        // the db connection was rebuilt in this process: a live client, not the parent's
        let query = &self.query;
        // a read is safe to repeat: `idempotent` runs it once more if the connection drops
        let rows = self
            .db
            .idempotent(|client| client.query(query.as_str(), &[]))?;
        self.results = rows.iter().map(|row| row.get(0)).collect();
        self.backend_pid = self.db.query_one("SELECT pg_backend_pid()", &[])?.get(0);
        Ok(())
    }

    fn __result__(&mut self) -> Fetched {
        Fetched {
            rows: std::mem::take(&mut self.results),
            child_pid: std::process::id(),
            backend_pid: self.backend_pid,
        }
    }
}
// ANCHOR_END: worker

/// The variables this example reads.
const VARS: [&str; 5] = [
    "SKPROCESS_PG_HOST",
    "SKPROCESS_PG_PORT",
    "SKPROCESS_PG_USER",
    "SKPROCESS_PG_DB",
    "SKPROCESS_PG_PASSWORD",
];

/// The values of `VARS`; when any is missing, says which to set and exits with status 2.
fn settings() -> [String; 5] {
    let values = VARS.map(|var| std::env::var(var).ok());
    let missing: Vec<&str> = VARS
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(var, _)| *var)
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "autoreconnect_basic needs a PostgreSQL server; set {}",
            VARS.join(", ")
        );
        eprintln!("missing: {}", missing.join(", "));
        eprintln!(
            "`bash scripts/servers.sh up DIR` starts one and writes them to DIR/env: \
             `. DIR/env`, then run again (`bash scripts/servers.sh down DIR` stops it)"
        );
        std::process::exit(2);
    }
    values.map(Option::unwrap_or_default)
}

/// Creates and fills the two tables, the same on every run.
fn setup(db: &mut Postgres) -> Result<(), Box<dyn std::error::Error>> {
    db.batch_execute(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS orders (
             id INTEGER PRIMARY KEY,
             user_id INTEGER NOT NULL REFERENCES users (id),
             item TEXT NOT NULL
         );
         DELETE FROM orders;
         DELETE FROM users;
         INSERT INTO users VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');
         INSERT INTO orders VALUES (1, 1, 'book'), (2, 3, 'lamp'), (3, 2, 'tea'), (4, 1, 'pen');
         COMMIT;",
    )?;
    Ok(())
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [host, port, user, dbname, password] = settings();

    // connect in the parent, with the password: it stays in this process
    let mut config = Config::new();
    config
        .host(&host)
        .port(port.parse()?)
        .user(&user)
        .dbname(&dbname)
        .password(&password);
    let mut db = Postgres::from_config(&config);
    db.open()?;
    setup(&mut db)?;
    let parent_backend: i32 = db.query_one("SELECT pg_backend_pid()", &[])?.get(0);
    println!(
        "parent process {}: connected as {user} (backend pid {parent_backend}), tables users \
         and orders ready",
        std::process::id()
    );

    let pool = Pool::new(2)?;
    let queries = vec![
        (
            db.clone(),
            "SELECT name FROM users ORDER BY id LIMIT 10".to_owned(),
        ),
        (
            db.clone(),
            "SELECT item FROM orders ORDER BY id LIMIT 10".to_owned(),
        ),
    ];
    let sql: Vec<String> = queries.iter().map(|(_, q)| q.clone()).collect();
    // star() unpacks each (db, query) tuple into DatabaseWorker::new's arguments
    let results = pool.star().processes().map(DatabaseWorker::new, queries)?;

    for (n, (query, fetched)) in sql.iter().zip(&results).enumerate() {
        println!(
            "query {}: {query} -> {} rows [{}]",
            n + 1,
            fetched.rows.len(),
            fetched.rows.join(", ")
        );
        println!(
            "  fetched in child process {} over its own connection (backend pid {}, parent's \
             is {parent_backend})",
            fetched.child_pid, fetched.backend_pid
        );
    }
    println!(
        "The connection was rebuilt in each child from its parameters; the password was not sent \
         (each child read SKPROCESS_PG_PASSWORD itself)"
    );
    Ok(())
}
// ANCHOR_END: main
