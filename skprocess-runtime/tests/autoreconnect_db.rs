//! `#[autoreconnect]` against real servers: PostgreSQL and Redis started on loopback by
//! `scripts/servers.sh` (installed when missing), and SQLite files. Connections are rebuilt in
//! the child with the attribute's credentials, a wrong password is a typed error naming the
//! field, secrets never appear in the encoded bytes, and a server restarted in the middle of a
//! run is reconnected to without a silent second write.

use skprocess::prelude::*;
use skprocess::reconnect::redis::Commands;
use skprocess::reconnect::{CallError, ConnectFailure, Postgres, Redis, Sqlite};
use skprocess::{__testing, autoreconnect};

mod common;
#[path = "common/db.rs"]
mod db;
#[path = "common/servers.rs"]
mod servers;

use common::LIMIT;
use db::{assert_refused, child_env};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
use servers::servers;

/// A parent-side connection as `sk_main`, with its password.
fn parent_main() -> Postgres {
    let s = servers();
    Postgres::connect(&format!(
        "{} password={}",
        s.pg_main(),
        s.var("SKPROCESS_PG_PASSWORD")
    ))
    .expect("the parent connects")
}

#[skprocess(runs = 1)]
#[autoreconnect(
    start_threads = false,
    Postgres = {
        "*": env("SKPROCESS_PG_PASSWORD"),
        analytics_db: env("SKPROCESS_PG_ANALYTICS_PASSWORD"),
    },
    Redis = { "*": env("SKPROCESS_REDIS_PASSWORD") },
)]
struct MultiDb {
    main_db: Postgres,
    analytics_db: Postgres,
    cache: Redis,
    key: String,
}

#[skprocess]
impl MultiDb {
    fn __run__(&mut self) -> Result<(), BoxError> {
        self.main_db
            .execute("CREATE TABLE IF NOT EXISTS visits (who TEXT NOT NULL)", &[])?;
        self.main_db
            .execute("INSERT INTO visits (who) VALUES ($1)", &[&self.key])?;
        let _: () = self.cache.set(&self.key, std::process::id())?;
        Ok(())
    }

    fn __result__(&mut self) -> Result<Vec<String>, BoxError> {
        let mut seen = Vec::new();
        for db in [&mut self.main_db, &mut self.analytics_db] {
            let row = db.query_one("SELECT current_user::text, pg_backend_pid()", &[])?;
            seen.push(row.get::<_, String>(0));
            seen.push(row.get::<_, i32>(1).to_string());
        }
        let pid: u32 = self.cache.get(&self.key)?;
        seen.push(pid.to_string());
        seen.push(std::process::id().to_string());
        Ok(seen)
    }
}

fn multi_db(key: &str) -> MultiDb {
    let s = servers();
    MultiDb {
        main_db: parent_main(),
        analytics_db: Postgres::lazy(&s.pg_analytics()).expect("parses"),
        cache: Redis::lazy(&s.redis_url()).expect("parses"),
        key: key.to_owned(),
    }
}

#[test]
fn connections_are_rebuilt_in_the_child_with_default_and_per_field_credentials() {
    child_env();
    let mut parent = parent_main();
    let parent_backend: i32 = parent
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("query")
        .get(0);
    let seen = Skprocess::new(multi_db("rebuilt"))
        .timeout(LIMIT)
        .run()
        .expect("the child connects and works");
    let [
        main_user,
        main_backend,
        analytics_user,
        _,
        redis_pid,
        child_pid,
    ] = &seen[..]
    else {
        panic!("unexpected {seen:?}");
    };
    assert_eq!(main_user, "sk_main", "the \"*\" credential");
    assert_eq!(analytics_user, "sk_analytics", "the per-field credential");
    assert_ne!(
        main_backend,
        &parent_backend.to_string(),
        "the child has a connection of its own"
    );
    assert_eq!(
        redis_pid, child_pid,
        "the child wrote to Redis and read it back"
    );
    assert_ne!(child_pid, &std::process::id().to_string());
    // The parent sees the child's write.
    let count: i64 = parent
        .query_one("SELECT count(*) FROM visits WHERE who = 'rebuilt'", &[])
        .expect("query")
        .get(0);
    assert_eq!(count, 1);
}

#[skprocess(runs = 1)]
#[autoreconnect(
    Postgres = { "*": env("SKPROCESS_PG_PASSWORD"), analytics_db: "not-the-password" },
)]
struct WrongPassword {
    main_db: Postgres,
    analytics_db: Postgres,
}

#[skprocess]
impl WrongPassword {
    fn __run__(&mut self) {
        panic!("never runs: a field cannot be opened");
    }
}

#[skprocess(runs = 1)]
#[autoreconnect(Redis = { "*": "not-the-password" })]
struct WrongRedisPassword {
    cache: Redis,
}

#[skprocess]
impl WrongRedisPassword {
    fn __run__(&mut self) {
        panic!("never runs: a field cannot be opened");
    }
}

#[test]
fn a_wrong_password_is_a_typed_error_naming_the_field() {
    let s = child_env();
    assert_refused(
        Skprocess::new(WrongPassword {
            main_db: Postgres::lazy(&s.pg_main()).expect("parses"),
            analytics_db: Postgres::lazy(&s.pg_analytics()).expect("parses"),
        })
        .timeout(LIMIT)
        .run(),
        "analytics_db",
        "postgres",
    );

    assert_refused(
        Skprocess::new(WrongRedisPassword {
            cache: Redis::lazy(&s.redis_url()).expect("parses"),
        })
        .timeout(LIMIT)
        .run(),
        "cache",
        "redis",
    );
}

#[test]
fn no_secret_at_all_is_its_own_typed_error() {
    let s = servers();
    let mut db = Postgres::lazy(&s.pg_main()).expect("parses");
    let error = db.open().err().expect("the server wants a password");
    assert_eq!(error.failure(), &ConnectFailure::NoSecret, "{error}");
    let mut cache = Redis::lazy(&s.redis_url()).expect("parses");
    let error = cache.open().err().expect("the server wants a password");
    assert_eq!(error.failure(), &ConnectFailure::NoSecret, "{error}");
}

#[test]
fn secrets_of_live_connections_never_appear_in_the_encoded_bytes() {
    let s = servers();
    let pg_password = s.var("SKPROCESS_PG_PASSWORD");
    let redis_password = s.var("SKPROCESS_REDIS_PASSWORD");
    let mut worker = multi_db("bytes");
    worker.cache = Redis::connect(&format!(
        "redis://:{redis_password}@{}:{}/0",
        s.var("SKPROCESS_REDIS_HOST"),
        s.var("SKPROCESS_REDIS_PORT")
    ))
    .expect("the parent connects to Redis");
    assert!(worker.main_db.is_open() && worker.cache.is_open());
    let bytes = __testing::encode(&worker).expect("encodes");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(pg_password),
        "the PostgreSQL password crossed"
    );
    assert!(!text.contains(redis_password), "the Redis password crossed");
    assert!(
        text.contains("sk_main"),
        "the parameters do cross: {text:?}"
    );
    // A pool item or star() tuple is encoded the same way.
    let item = (worker.main_db.clone(), "SELECT 1".to_owned());
    let text = String::from_utf8_lossy(&__testing::encode(&item).expect("encodes")).into_owned();
    assert!(!text.contains(pg_password));
}

/// Runs three times: before the servers restart, then (told by the parent) after.
#[skprocess(runs = 2)]
#[autoreconnect(
    Postgres = { "*": env("SKPROCESS_PG_PASSWORD") },
    Redis = { "*": env("SKPROCESS_REDIS_PASSWORD") },
)]
struct SurvivesRestart {
    db: Postgres,
    cache: Redis,
    table: String,
    /// What happened to the first write after the restart: `"ok"` or `"lost"`.
    first_write_after: String,
    count_after: i64,
    redis_after: Option<String>,
}

#[skprocess]
impl SurvivesRestart {
    fn __run__(&mut self, cx: &mut Context) -> Result<(), BoxError> {
        let insert = format!("INSERT INTO {} (n) VALUES ($1)", self.table);
        if cx.current_run() == 0 {
            self.db
                .call(|c| c.execute(&insert, &[&0_i32]))
                .map_err(|e| e.to_string())?;
            let _: () = self
                .cache
                .call(|c| c.set("restart-key", "before"))
                .map_err(|e| e.to_string())?;
            cx.tell("ready".to_owned())?;
            let go: String = cx.listen_timeout::<String>(std::time::Duration::from_secs(120))?;
            assert_eq!(go, "go");
            return Ok(());
        }
        // The servers restarted: the old connections are dead, the process does not know yet.
        match self.db.call(|c| c.execute(&insert, &[&1_i32])) {
            Ok(_) => self.first_write_after = "ok".to_owned(),
            Err(CallError::Lost(_)) => {
                // Lost mid-request: `call` did not send it again. This process knows the
                // server restarted before it could run, so it sends it once more itself.
                self.first_write_after = "lost".to_owned();
                self.db
                    .call(|c| c.execute(&insert, &[&1_i32]))
                    .map_err(|e| e.to_string())?;
            }
            Err(other) => return Err(other.to_string().into()),
        }
        let count_sql = format!("SELECT count(*) FROM {}", self.table);
        self.count_after = self
            .db
            .idempotent(|c| c.query_one(&count_sql, &[]))
            .map_err(|e| e.to_string())?
            .get(0);
        self.redis_after = self
            .cache
            .idempotent(|c| c.get("restart-key"))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn __result__(&mut self) -> (String, i64, Option<String>) {
        (
            self.first_write_after.clone(),
            self.count_after,
            self.redis_after.clone(),
        )
    }
}

#[test]
fn servers_restarted_mid_run_are_reconnected_to_without_a_silent_second_write() {
    let s = child_env();
    let table = format!("restart_{}", std::process::id());
    let mut parent = parent_main();
    parent
        .batch_execute(&format!("CREATE TABLE {table} (n INTEGER NOT NULL)"))
        .expect("create table");
    let process = Skprocess::new(SurvivesRestart {
        db: Postgres::lazy(&s.pg_main()).expect("parses"),
        cache: Redis::lazy(&s.redis_url()).expect("parses"),
        table: table.clone(),
        first_write_after: String::new(),
        count_after: -1,
        redis_after: None,
    });
    process.start().expect("starts");
    let ready: String = process.listen_timeout(LIMIT).expect("listens");
    assert_eq!(ready, "ready");
    s.restart("postgres");
    s.restart("redis");
    process.tell("go".to_owned()).expect("tells");
    let (first_write_after, count_after, redis_after) = process
        .result_timeout(LIMIT)
        .expect("a result within the limit")
        .expect("the child reconnects and finishes");
    assert!(
        ["ok", "lost"].contains(&first_write_after.as_str()),
        "{first_write_after}"
    );
    assert_eq!(
        count_after, 2,
        "exactly one row before and one after: no silent second write"
    );
    assert_eq!(
        redis_after, None,
        "Redis restarted without persistence: the key is gone"
    );
    let mut parent = parent_main();
    let rows: Vec<i32> = parent
        .query(&format!("SELECT n FROM {table} ORDER BY n"), &[])
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, [0, 1]);
}

#[skprocess(runs = 1)]
#[autoreconnect]
struct Notes {
    db: Sqlite,
    note: String,
}

#[skprocess]
impl Notes {
    fn __run__(&mut self) -> Result<(), BoxError> {
        self.db.execute(
            "INSERT INTO notes (pid, note) VALUES (?1, ?2)",
            (std::process::id(), &self.note),
        )?;
        Ok(())
    }
}

fn note_count(db: &Sqlite) -> i64 {
    db.query_row("SELECT count(*) FROM notes", (), |r| r.get(0))
        .expect("count")
}

#[test]
fn sqlite_crosses_as_its_path_in_fields_and_pool_items() {
    let dir = std::env::temp_dir().join(format!("sk-sqlite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("notes.db");
    let db = Sqlite::open_path(&path).expect("opens");
    db.execute_batch("CREATE TABLE notes (pid INTEGER, note TEXT)")
        .expect("creates");
    Skprocess::new(Notes {
        db: db.clone(),
        note: "from a child".to_owned(),
    })
    .timeout(LIMIT)
    .run()
    .expect("the child writes");
    assert_eq!(note_count(&db), 1);

    let pool = Pool::new(2).expect("a pool");
    let pids: Vec<u32> = pool
        .timeout(LIMIT)
        .star()
        .map(
            |db: Sqlite, note: String| {
                db.execute(
                    "INSERT INTO notes (pid, note) VALUES (?1, ?2)",
                    (std::process::id(), note),
                )
                .expect("insert");
                std::process::id()
            },
            (0..6).map(|i| (db.clone(), format!("item {i}"))),
        )
        .expect("the items run");
    assert_eq!(note_count(&db), 7);
    assert!(pids.iter().all(|&p| p != std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_in_pool_items_opens_lazily_with_the_secret_named_by_the_parent() {
    let s = child_env();
    let pool = Pool::new(2).expect("a pool");
    let db = Postgres::lazy(&s.pg_main())
        .expect("parses")
        .secret_from_env("SKPROCESS_PG_PASSWORD");
    let users: Vec<String> = pool
        .timeout(LIMIT)
        .map(
            |mut db: Postgres| -> String {
                db.query_one("SELECT current_user::text", &[])
                    .expect("query")
                    .get(0)
            },
            vec![db; 4],
        )
        .expect("the items run");
    assert_eq!(users, ["sk_main"; 4]);
}

/// A pool worker's state: one connection per worker, opened in the worker, kept across items.
fn open_state() -> Postgres {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set for workers"));
    Postgres::lazy(&format!(
        "host={} port={} user={} dbname={}",
        var("SKPROCESS_PG_HOST"),
        var("SKPROCESS_PG_PORT"),
        var("SKPROCESS_PG_USER"),
        var("SKPROCESS_PG_DB"),
    ))
    .expect("parses")
    .secret_from_env("SKPROCESS_PG_PASSWORD")
}

fn backend_of(db: &mut Postgres, _item: u32) -> (u32, i32) {
    let backend: i32 = db
        .idempotent(|c| c.query_one("SELECT pg_backend_pid()", &[]))
        .expect("query")
        .get(0);
    (std::process::id(), backend)
}

#[test]
fn a_connection_in_a_pool_worker_state_is_opened_once_per_worker() {
    child_env();
    let pool = Pool::builder()
        .workers(2)
        .initializer(open_state)
        .build()
        .expect("a pool");
    let seen: Vec<(u32, i32)> = pool
        .timeout(LIMIT)
        .with_state()
        .chunk_size(1)
        .map(backend_of, 0..40)
        .expect("the items run");
    let mut per_worker = std::collections::BTreeMap::<u32, std::collections::BTreeSet<i32>>::new();
    for (worker, backend) in seen {
        per_worker.entry(worker).or_default().insert(backend);
    }
    assert!(!per_worker.is_empty());
    for (worker, backends) in &per_worker {
        assert_eq!(
            backends.len(),
            1,
            "worker {worker} kept one connection: {per_worker:?}"
        );
    }
}

/// A server that takes connections and never answers: connecting gives up at its deadline
/// (the drivers' own timeouts cover only the socket's connect).
#[test]
fn a_server_that_never_answers_is_a_typed_error_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accept and hold every connection, never writing a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });

    let started = std::time::Instant::now();
    let mut db = Postgres::lazy(&format!(
        "host=127.0.0.1 port={port} user=u dbname=d connect_timeout=1"
    ))
    .expect("parses");
    let error = db.open().err().expect("no session");
    assert_eq!(error.failure(), &ConnectFailure::Unreachable, "{error}");
    assert!(started.elapsed() < LIMIT, "took {:?}", started.elapsed());

    let started = std::time::Instant::now();
    let mut cache = Redis::lazy(&format!("redis://127.0.0.1:{port}/0")).expect("parses");
    let error = cache.open().err().expect("no session");
    assert_eq!(error.failure(), &ConnectFailure::Unreachable, "{error}");
    assert!(started.elapsed() < LIMIT, "took {:?}", started.elapsed());
}

#[test]
fn a_configuration_that_requires_tls_is_never_downgraded_and_every_setting_crosses() {
    let s = servers();
    let mut db = Postgres::lazy(&format!(
        "{} password={} sslmode=require",
        s.pg_main(),
        s.var("SKPROCESS_PG_PASSWORD")
    ))
    .expect("parses");
    let error = db.open().err().expect("no TLS here, so no connection");
    assert!(error.message().contains("TLS"), "{error}");

    let db = Postgres::lazy(
        "host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=5433 user=u dbname=d \
         target_session_attrs=read-write load_balance_hosts=random channel_binding=require \
         keepalives_idle=30 tcp_user_timeout=5 connect_timeout=3",
    )
    .expect("parses");
    let back: Postgres =
        __testing::decode(&__testing::encode(&db).expect("encodes")).expect("decodes");
    assert_eq!(back.params(), db.params());
    let params = back.params();
    assert_eq!(params.hostaddrs.len(), 2);
    assert_eq!(
        params.target_session_attrs,
        skprocess::reconnect::PgSessionAttrs::ReadWrite
    );
    assert!(params.load_balance_hosts);
    assert_eq!(
        params.channel_binding,
        skprocess::reconnect::PgChannelBinding::Require
    );
    assert_eq!(params.keepalives_idle, std::time::Duration::from_secs(30));
    assert_eq!(
        params.tcp_user_timeout,
        Some(std::time::Duration::from_secs(5))
    );
}
