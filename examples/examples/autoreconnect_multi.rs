//! Example 36, "`autoreconnect` with Multiple Connection Types": two PostgreSQL connections
//! (one with the default credential, one with its own) and a Redis connection, opened in the
//! parent, rebuilt in the child by `#[autoreconnect]` with the credentials it names, and used
//! there.
//!
//! The Python original also has a MongoDB connection; it is left out here: no MongoDB server
//! can be installed from the registries this project builds with.
//!
//! It needs real PostgreSQL and Redis servers, found through the environment (the variables
//! are listed in `VARS` below). `bash scripts/servers.sh up DIR` starts both on loopback and
//! writes these variables to `DIR/env` (`bash scripts/servers.sh down DIR` stops them).
//!
//! Run: `. DIR/env && cargo run -p examples --features db --example autoreconnect_multi`

use skprocess::autoreconnect;
use skprocess::prelude::*;
use skprocess::reconnect::postgres::Config;
use skprocess::reconnect::redis::Commands;
use skprocess::reconnect::{Postgres, Redis};
use skprocess::serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the child saw on each connection.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Observed {
    status: String,
    child_pid: u32,
    main_user: String,
    main_backend: i32,
    /// The note the child wrote through `main_db` and read back.
    main_note: String,
    analytics_user: String,
    analytics_backend: i32,
    /// The total the child stored through `analytics_db` and read back.
    analytics_total: i64,
    /// The value the child SET in Redis and read back with GET.
    cache_value: String,
}

// ANCHOR: worker
/// A process that uses several database connections, each with its own credentials.
///
/// For every `Postgres` field the `"*"` credential applies, unless the field has its own entry
/// (`analytics_db`); `Redis` fields have theirs. `env("VAR")` is read in the child when it
/// connects: no password is in the source, and none crosses from the parent.
// MongoDB (the original's `pymongo.MongoClient` entry) is left out: no server is available
// from the reachable registries.
#[skprocess(runs = 1)]
#[autoreconnect(
    start_threads = false,
    Postgres = {
        "*": env("SKPROCESS_PG_PASSWORD"),
        analytics_db: env("SKPROCESS_PG_ANALYTICS_PASSWORD"),
    },
    Redis = { "*": env("SKPROCESS_REDIS_PASSWORD") },
)]
struct MultiDbWorker {
    main_db: Postgres,      // the "*" credential
    analytics_db: Postgres, // its own credential
    cache: Redis,           // Redis's "*" credential
    observed: Observed,
}

#[skprocess]
impl MultiDbWorker {
    fn new(main_db: Postgres, analytics_db: Postgres, cache: Redis) -> Self {
        MultiDbWorker {
            main_db,
            analytics_db,
            cache,
            observed: Observed::default(),
        }
    }

    fn __run__(&mut self) -> Result<(), BoxError> {
        // all connections were rebuilt in this process before __run__
        let pid = std::process::id();
        let seen = &mut self.observed;
        seen.child_pid = pid;

        let row = self
            .main_db
            .query_one("SELECT current_user::text, pg_backend_pid()", &[])?;
        (seen.main_user, seen.main_backend) = (row.get(0), row.get(1));
        self.main_db.batch_execute(
            "CREATE TABLE IF NOT EXISTS worker_notes (pid BIGINT PRIMARY KEY, note TEXT NOT NULL)",
        )?;
        let note = format!("hello from child {pid}");
        self.main_db.execute(
            "INSERT INTO worker_notes (pid, note) VALUES ($1, $2)
             ON CONFLICT (pid) DO UPDATE SET note = EXCLUDED.note",
            &[&i64::from(pid), &note],
        )?;
        seen.main_note = self
            .main_db
            .query_one(
                "SELECT note FROM worker_notes WHERE pid = $1",
                &[&i64::from(pid)],
            )?
            .get(0);

        let row = self
            .analytics_db
            .query_one("SELECT current_user::text, pg_backend_pid()", &[])?;
        (seen.analytics_user, seen.analytics_backend) = (row.get(0), row.get(1));
        self.analytics_db.batch_execute(
            "CREATE TABLE IF NOT EXISTS daily_totals (metric TEXT PRIMARY KEY, total BIGINT NOT NULL);
             INSERT INTO daily_totals (metric, total) VALUES ('page_views', 42)
             ON CONFLICT (metric) DO UPDATE SET total = EXCLUDED.total",
        )?;
        seen.analytics_total = self
            .analytics_db
            .query_one(
                "SELECT total FROM daily_totals WHERE metric = 'page_views'",
                &[],
            )?
            .get(0);

        // a SET is safe to repeat: `idempotent` sends it once more if the connection drops
        let value = format!("written by child {pid}");
        let _: () = self
            .cache
            .idempotent(|redis| redis.set("multi_db_worker:last", &value))?;
        seen.cache_value = self.cache.get("multi_db_worker:last")?;
        Ok(())
    }

    fn __result__(&mut self) -> Observed {
        let mut observed = std::mem::take(&mut self.observed);
        observed.status = "done".to_owned();
        observed
    }
}
// ANCHOR_END: worker

/// The variables this example reads.
const VARS: [&str; 11] = [
    "SKPROCESS_PG_HOST",
    "SKPROCESS_PG_PORT",
    "SKPROCESS_PG_USER",
    "SKPROCESS_PG_DB",
    "SKPROCESS_PG_PASSWORD",
    "SKPROCESS_PG_ANALYTICS_USER",
    "SKPROCESS_PG_ANALYTICS_DB",
    "SKPROCESS_PG_ANALYTICS_PASSWORD",
    "SKPROCESS_REDIS_HOST",
    "SKPROCESS_REDIS_PORT",
    "SKPROCESS_REDIS_PASSWORD",
];

/// The values of `VARS`; when any is missing, says which to set and exits with status 2.
fn settings() -> [String; 11] {
    let values = VARS.map(|var| std::env::var(var).ok());
    let missing: Vec<&str> = VARS
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(var, _)| *var)
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "autoreconnect_multi needs PostgreSQL and Redis servers; set {}",
            VARS.join(", ")
        );
        eprintln!("missing: {}", missing.join(", "));
        eprintln!(
            "`bash scripts/servers.sh up DIR` starts them and writes these to DIR/env: \
             `. DIR/env`, then run again (`bash scripts/servers.sh down DIR` stops them)"
        );
        std::process::exit(2);
    }
    values.map(Option::unwrap_or_default)
}

/// Connects now to `dbname` as `user`; the password stays in this process.
fn connect_pg(
    host: &str,
    port: &str,
    user: &str,
    dbname: &str,
    password: &str,
) -> Result<Postgres, Box<dyn std::error::Error>> {
    let mut config = Config::new();
    config
        .host(host)
        .port(port.parse()?)
        .user(user)
        .dbname(dbname)
        .password(password);
    let mut db = Postgres::from_config(&config);
    db.open()?;
    Ok(db)
}

/// `current_user` and `pg_backend_pid()` of a connection.
fn whoami(db: &mut Postgres) -> Result<(String, i32), Box<dyn std::error::Error>> {
    let row = db.query_one("SELECT current_user::text, pg_backend_pid()", &[])?;
    Ok((row.get(0), row.get(1)))
}

// ANCHOR: main
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [
        pg_host,
        pg_port,
        main_user,
        main_dbname,
        main_password,
        analytics_user,
        analytics_dbname,
        analytics_password,
        redis_host,
        redis_port,
        redis_password,
    ] = settings();

    // the parent's live connections, each with its password
    let mut main_db = connect_pg(&pg_host, &pg_port, &main_user, &main_dbname, &main_password)?;
    let mut analytics_db = connect_pg(
        &pg_host,
        &pg_port,
        &analytics_user,
        &analytics_dbname,
        &analytics_password,
    )?;
    let cache = Redis::connect(&format!(
        "redis://:{redis_password}@{redis_host}:{redis_port}/0"
    ))?;
    let parent = std::process::id();
    let (user, main_backend) = whoami(&mut main_db)?;
    println!("parent process {parent}: main_db connected as {user} (backend pid {main_backend})");
    let (user, analytics_backend) = whoami(&mut analytics_db)?;
    println!(
        "parent process {parent}: analytics_db connected as {user} (backend pid \
         {analytics_backend})"
    );
    println!("parent process {parent}: cache connected to redis at {redis_host}:{redis_port}");

    let process = Skprocess::new(MultiDbWorker::new(
        main_db.clone(),
        analytics_db.clone(),
        cache.clone(),
    ));
    process.start()?;
    process.wait()?;
    let seen = process.result()?;

    println!("child process {}:", seen.child_pid);
    println!(
        "main_db: connected in child as {} (backend pid {}, parent's is {main_backend}); \
         wrote and read back '{}'",
        seen.main_user, seen.main_backend, seen.main_note
    );
    println!(
        "analytics_db: connected in child as {} (backend pid {}, parent's is \
         {analytics_backend}); page_views total -> {}",
        seen.analytics_user, seen.analytics_backend, seen.analytics_total
    );
    println!("cache: redis SET/GET in child -> '{}'", seen.cache_value);
    // the parent sees what the child wrote, through its own connection
    let note: String = main_db
        .query_one(
            "SELECT note FROM worker_notes WHERE pid = $1",
            &[&i64::from(seen.child_pid)],
        )?
        .get(0);
    println!("parent process {parent}: reads the child's note back -> '{note}'");
    println!("Result: {}", seen.status);
    Ok(())
}
// ANCHOR_END: main
