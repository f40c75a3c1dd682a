//! The async connection types against real servers: `AsyncPostgres` (tokio-postgres) and
//! `AsyncRedis` (a multiplexed connection), started on loopback by `scripts/servers.sh` as for
//! `autoreconnect_db.rs`. An async process gets its connections rebuilt in the child with the
//! attribute's credentials and uses them with `.await`; a wrong password is a typed error naming
//! the field; secrets never appear in the encoded bytes; a server restarted in the middle of a
//! run is reconnected to without a silent second write; a server that never answers is
//! `Unreachable` within the deadline; a blocking open inside a runtime is a typed error.

use std::future::Future;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use skprocess::prelude::*;
use skprocess::reconnect::redis::AsyncCommands;
use skprocess::reconnect::{AsyncPostgres, AsyncRedis, CallError, ConnectFailure};
use skprocess::{__testing, autoreconnect};

mod common;
#[path = "common/db.rs"]
mod db;
#[path = "common/servers.rs"]
mod servers;

use common::LIMIT;
use db::{assert_refused, child_env};
use servers::servers;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The servers restart in one test: the others hold this for reading, so none of them is in
/// the middle of a connect when they do.
static RESTARTS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    RESTARTS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    RESTARTS.write().unwrap_or_else(|e| e.into_inner())
}

/// Runs `future` on a runtime of the test's own (not the process's), bounded by `LIMIT`.
fn block<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async { tokio::time::timeout(LIMIT, future).await })
        .expect("no hang")
}

/// The parent's `sk_main` configuration, with its password.
fn pg_main_with_password() -> String {
    let s = servers();
    format!(
        "{} password={}",
        s.pg_main(),
        s.var("SKPROCESS_PG_PASSWORD")
    )
}

/// Runs `sql` as `sk_main` from the parent (on a runtime of the test's own).
fn parent_execute(sql: &str) {
    let config = pg_main_with_password();
    block(async {
        let db = AsyncPostgres::connect_async(&config)
            .await
            .expect("the parent connects");
        db.batch_execute(sql).await.expect("the statement runs");
    });
}

/// The first column of every row of `sql`, as `sk_main` from the parent.
fn parent_column<T>(sql: &str) -> Vec<T>
where
    T: for<'a> skprocess::reconnect::tokio_postgres::types::FromSql<'a>,
{
    let config = pg_main_with_password();
    block(async {
        let db = AsyncPostgres::connect_async(&config)
            .await
            .expect("the parent connects");
        db.query(sql, &[])
            .await
            .expect("the query runs")
            .iter()
            .map(|row| row.get(0))
            .collect()
    })
}

// ANCHOR: async_process
#[skprocess(runs = 1)]
#[autoreconnect(
    AsyncPostgres = {
        "*": env("SKPROCESS_PG_PASSWORD"),
        analytics_db: env("SKPROCESS_PG_ANALYTICS_PASSWORD"),
    },
    AsyncRedis = { "*": env("SKPROCESS_REDIS_PASSWORD") },
)]
struct AsyncMultiDb {
    main_db: AsyncPostgres,
    analytics_db: AsyncPostgres,
    cache: AsyncRedis,
    key: String,
}

#[skprocess]
impl AsyncMultiDb {
    async fn __run__(&mut self) -> Result<(), BoxError> {
        // Opened before this method ran: no connect here, only `.await`s on the clients.
        assert!(self.main_db.is_open() && self.analytics_db.is_open());
        self.main_db
            .execute(
                "CREATE TABLE IF NOT EXISTS async_visits (who TEXT NOT NULL, pid BIGINT NOT NULL)",
                &[],
            )
            .await?;
        self.main_db
            .execute(
                "INSERT INTO async_visits (who, pid) VALUES ($1, $2)",
                &[&self.key, &i64::from(std::process::id())],
            )
            .await?;
        let _: () = self.cache.set(&self.key, std::process::id()).await?;
        Ok(())
    }
    // ANCHOR_END: async_process

    async fn __result__(&mut self) -> Result<Vec<String>, BoxError> {
        let mut seen = Vec::new();
        for db in [&self.main_db, &self.analytics_db] {
            let row = db
                .query_one("SELECT current_user::text, pg_backend_pid()", &[])
                .await?;
            seen.push(row.get::<_, String>(0));
            seen.push(row.get::<_, i32>(1).to_string());
        }
        // ANCHOR: async_calls
        // The same, through the async call forms: futures that own a clone of the client.
        let key = self.key.clone();
        let pid: u32 = self
            .cache
            .idempotent_async(|mut c| {
                let key = key.clone();
                async move { c.get(&key).await }
            })
            .await?;
        seen.push(pid.to_string());
        seen.push(std::process::id().to_string());
        let key = self.key.clone();
        let count: i64 = self
            .main_db
            .call_async(|c| async move {
                c.query_one("SELECT count(*) FROM async_visits WHERE who = $1", &[&key])
                    .await
            })
            .await?
            .get(0);
        // ANCHOR_END: async_calls
        seen.push(count.to_string());
        // A server's error on a healthy connection is `Failed`, and the connection stays open.
        match self
            .main_db
            .call_async(|c| async move { c.execute("SELECT * FROM no_such_table", &[]).await })
            .await
        {
            Err(CallError::Failed(_)) => seen.push("failed".to_owned()),
            other => return Err(format!("expected CallError::Failed, got {other:?}").into()),
        }
        assert!(
            self.main_db.is_open(),
            "a failed query keeps the connection"
        );
        Ok(seen)
    }
}

#[test]
fn an_async_process_gets_its_connections_rebuilt_and_uses_them_with_await() {
    let _shared = shared();
    let s = child_env();
    let seen = Skprocess::new(AsyncMultiDb {
        main_db: AsyncPostgres::lazy(&pg_main_with_password()).expect("parses"),
        analytics_db: AsyncPostgres::lazy(&s.pg_analytics()).expect("parses"),
        cache: AsyncRedis::lazy(&s.redis_url()).expect("parses"),
        key: format!("async-rebuilt-{}", std::process::id()),
    })
    .timeout(LIMIT)
    .run()
    .expect("the child connects and works");
    let [
        main_user,
        main_backend,
        analytics_user,
        analytics_backend,
        redis_pid,
        child_pid,
        count,
        failed,
    ] = &seen[..]
    else {
        panic!("unexpected {seen:?}");
    };
    assert_eq!(main_user, "sk_main", "the \"*\" credential");
    assert_eq!(analytics_user, "sk_analytics", "the per-field credential");
    assert_ne!(main_backend, analytics_backend, "two sessions");
    assert_eq!(
        redis_pid, child_pid,
        "the child wrote to Redis and read it back"
    );
    assert_ne!(child_pid, &std::process::id().to_string());
    assert_eq!(count, "1");
    assert_eq!(failed, "failed");
    // The parent sees the child's write.
    let pids: Vec<i64> = parent_column(&format!(
        "SELECT pid FROM async_visits WHERE who = 'async-rebuilt-{}'",
        std::process::id()
    ));
    assert_eq!(pids, [child_pid.parse::<i64>().expect("a pid")]);
}

#[skprocess(runs = 1)]
#[autoreconnect(
    AsyncPostgres = { "*": env("SKPROCESS_PG_PASSWORD"), analytics_db: "not-the-password" },
)]
struct AsyncWrongPassword {
    main_db: AsyncPostgres,
    analytics_db: AsyncPostgres,
}

#[skprocess]
impl AsyncWrongPassword {
    async fn __run__(&mut self) {
        panic!("never runs: a field cannot be opened");
    }
}

#[skprocess(runs = 1)]
#[autoreconnect(AsyncRedis = { "*": "not-the-password" })]
struct AsyncWrongRedisPassword {
    cache: AsyncRedis,
}

#[skprocess]
impl AsyncWrongRedisPassword {
    async fn __run__(&mut self) {
        panic!("never runs: a field cannot be opened");
    }
}

#[test]
fn a_wrong_password_is_a_typed_error_naming_the_field() {
    let _shared = shared();
    let s = child_env();
    assert_refused(
        Skprocess::new(AsyncWrongPassword {
            main_db: AsyncPostgres::lazy(&s.pg_main()).expect("parses"),
            analytics_db: AsyncPostgres::lazy(&s.pg_analytics()).expect("parses"),
        })
        .timeout(LIMIT)
        .run(),
        "analytics_db",
        "postgres",
    );

    assert_refused(
        Skprocess::new(AsyncWrongRedisPassword {
            cache: AsyncRedis::lazy(&s.redis_url()).expect("parses"),
        })
        .timeout(LIMIT)
        .run(),
        "cache",
        "redis",
    );
}

#[test]
fn no_secret_at_all_is_its_own_typed_error() {
    let _shared = shared();
    let s = servers();
    let error = block(async {
        let mut db = AsyncPostgres::lazy(&s.pg_main()).expect("parses");
        db.open_async()
            .await
            .expect_err("the server wants a password")
    });
    assert_eq!(error.failure(), &ConnectFailure::NoSecret, "{error}");
    let error = block(async {
        let mut cache = AsyncRedis::lazy(&s.redis_url()).expect("parses");
        cache
            .open_async()
            .await
            .expect_err("the server wants a password")
    });
    assert_eq!(error.failure(), &ConnectFailure::NoSecret, "{error}");
}

#[test]
fn secrets_of_live_connections_never_appear_in_the_encoded_bytes() {
    let _shared = shared();
    let s = servers();
    let pg_password = s.var("SKPROCESS_PG_PASSWORD");
    let redis_password = s.var("SKPROCESS_REDIS_PASSWORD");
    // Opened from sync code (no runtime on this thread): the blocking forms.
    let worker = AsyncMultiDb {
        main_db: AsyncPostgres::connect(&pg_main_with_password()).expect("the parent connects"),
        analytics_db: AsyncPostgres::lazy(&s.pg_analytics())
            .expect("parses")
            .secret_from_env("SKPROCESS_PG_ANALYTICS_PASSWORD"),
        cache: AsyncRedis::connect(&format!(
            "redis://:{redis_password}@{}:{}/0",
            s.var("SKPROCESS_REDIS_HOST"),
            s.var("SKPROCESS_REDIS_PORT")
        ))
        .expect("the parent connects to Redis"),
        key: "bytes".to_owned(),
    };
    assert!(worker.main_db.is_open() && worker.cache.is_open());
    let bytes = __testing::encode(&worker).expect("encodes");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(pg_password),
        "the PostgreSQL password crossed"
    );
    assert!(!text.contains(redis_password), "the Redis password crossed");
    assert!(
        text.contains("sk_main") && text.contains("SKPROCESS_PG_ANALYTICS_PASSWORD"),
        "the parameters and the variable's name do cross: {text:?}"
    );
    // Decoded: the same parameters, not connected, no secret.
    let back: AsyncMultiDb = __testing::decode(&bytes).expect("decodes");
    assert_eq!(back.main_db.params(), worker.main_db.params());
    assert_eq!(back.cache.params(), worker.cache.params());
    assert!(!back.main_db.is_open() && !back.cache.is_open());
    assert!(!format!("{back:?}").contains(pg_password));
    // A pool item or star() tuple is encoded the same way.
    let item = (worker.main_db.clone(), worker.cache.clone(), 7_u32);
    let text = String::from_utf8_lossy(&__testing::encode(&item).expect("encodes")).into_owned();
    assert!(!text.contains(pg_password) && !text.contains(redis_password));
}

impl std::fmt::Debug for AsyncMultiDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncMultiDb")
            .field("main_db", &self.main_db)
            .field("analytics_db", &self.analytics_db)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Writes before the servers restart (run 0), then, told by the parent, after (run 1).
#[skprocess(runs = 2)]
#[autoreconnect(
    AsyncPostgres = { "*": env("SKPROCESS_PG_PASSWORD") },
    AsyncRedis = { "*": env("SKPROCESS_REDIS_PASSWORD") },
)]
struct AsyncSurvivesRestart {
    db: AsyncPostgres,
    cache: AsyncRedis,
    table: String,
    /// What happened to the first write after the restart: `"ok"` or `"lost"`.
    first_write_after: String,
    count_after: i64,
    redis_after: Option<String>,
}

#[skprocess]
impl AsyncSurvivesRestart {
    async fn __run__(&mut self, cx: &mut Context) -> Result<(), BoxError> {
        let insert = format!("INSERT INTO {} (n) VALUES ($1)", self.table);
        let write = |n: i32| {
            let insert = insert.clone();
            move |c: std::sync::Arc<skprocess::reconnect::tokio_postgres::Client>| async move {
                c.execute(&insert, &[&n]).await
            }
        };
        if cx.current_run() == 0 {
            self.db
                .call_async(write(0))
                .await
                .map_err(|e| e.to_string())?;
            let _: () = self
                .cache
                .call_async(|mut c| async move { c.set("async-restart-key", "before").await })
                .await
                .map_err(|e| e.to_string())?;
            cx.tell_async("ready".to_owned()).await?;
            let go: String = cx
                .listen_timeout_async::<String>(Duration::from_secs(120))
                .await?;
            assert_eq!(go, "go");
            return Ok(());
        }
        // The servers restarted: the old connections are dead, the process may not know yet.
        // ANCHOR: async_restart
        match self.db.call_async(write(1)).await {
            Ok(_) => self.first_write_after = "ok".to_owned(),
            Err(CallError::Lost(_)) => {
                // Lost mid-request: `call_async` did not send it again. This process knows the
                // server restarted before it could run, so it sends it once more itself.
                self.first_write_after = "lost".to_owned();
                self.db
                    .call_async(write(1))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Err(other) => return Err(other.to_string().into()),
        }
        // ANCHOR_END: async_restart
        let count_sql = format!("SELECT count(*) FROM {}", self.table);
        self.count_after = self
            .db
            .idempotent_async(|c| {
                let count_sql = count_sql.clone();
                async move { c.query_one(&count_sql, &[]).await }
            })
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        self.redis_after = self
            .cache
            .idempotent_async(|mut c| async move { c.get("async-restart-key").await })
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn __result__(&mut self) -> (String, i64, Option<String>) {
        (
            self.first_write_after.clone(),
            self.count_after,
            self.redis_after.clone(),
        )
    }
}

#[test]
fn servers_restarted_mid_run_are_reconnected_to_without_a_silent_second_write() {
    let _exclusive = exclusive();
    let s = child_env();
    let table = format!("async_restart_{}", std::process::id());
    parent_execute(&format!("CREATE TABLE {table} (n INTEGER NOT NULL)"));
    let process = Skprocess::new(AsyncSurvivesRestart {
        db: AsyncPostgres::lazy(&s.pg_main()).expect("parses"),
        cache: AsyncRedis::lazy(&s.redis_url()).expect("parses"),
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
    let rows: Vec<i32> = parent_column(&format!("SELECT n FROM {table} ORDER BY n"));
    assert_eq!(rows, [0, 1]);
}

/// A server that takes connections and never answers: connecting gives up at its deadline, in
/// the async form and in the blocking one.
#[test]
fn a_server_that_never_answers_is_unreachable_within_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accept and hold every connection, never writing a byte.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let silent_pg = format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=1");

    let started = Instant::now();
    let error = block(async {
        let mut db = AsyncPostgres::lazy(&silent_pg).expect("parses");
        db.open_async().await.expect_err("no session")
    });
    assert_eq!(error.failure(), &ConnectFailure::Unreachable, "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the 1 s deadline held: {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let mut db = AsyncPostgres::lazy(&silent_pg).expect("parses");
    let error = db.open().expect_err("no session");
    assert_eq!(error.failure(), &ConnectFailure::Unreachable, "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Redis's deadline is the fixed 10 s.
    let started = Instant::now();
    let error = block(async {
        let mut cache = AsyncRedis::lazy(&format!("redis://127.0.0.1:{port}/0")).expect("parses");
        cache.open_async().await.expect_err("no session")
    });
    assert_eq!(error.failure(), &ConnectFailure::Unreachable, "{error}");
    assert!(started.elapsed() < LIMIT, "took {:?}", started.elapsed());
}

#[test]
fn a_blocking_open_inside_a_runtime_is_a_typed_error_and_the_async_forms_work_there() {
    let _shared = shared();
    let s = servers();
    let config = pg_main_with_password();
    let (db, sync_error, connect_error) = block(async {
        let mut db = AsyncPostgres::lazy(&config).expect("parses");
        // Inside a runtime: the blocking forms refuse, typed, without trying.
        let sync_error = db.open().expect_err("refused inside a runtime");
        let connect_error =
            AsyncRedis::connect(&s.redis_url()).expect_err("refused inside a runtime");
        // The async form works, and what it opened does not depend on this runtime.
        db.open_async().await.expect("connects");
        (db, sync_error, connect_error)
    });
    assert_eq!(sync_error.failure(), &ConnectFailure::InsideRuntime);
    assert!(
        sync_error.to_string().contains("open_async"),
        "{sync_error}"
    );
    assert_eq!(sync_error.kind(), "postgres");
    assert_eq!(connect_error.failure(), &ConnectFailure::InsideRuntime);
    // The runtime that opened it is gone; the connection runs on the process's runtime.
    let user: String = block(async {
        db.query_one("SELECT current_user::text", &[])
            .await
            .expect("still connected")
            .get(0)
    });
    assert_eq!(user, "sk_main");
}

#[test]
fn a_configuration_that_requires_tls_is_never_downgraded_and_every_setting_crosses() {
    let _shared = shared();
    let s = servers();
    let config = format!(
        "{} password={} sslmode=require",
        s.pg_main(),
        s.var("SKPROCESS_PG_PASSWORD")
    );
    let error = block(async {
        let mut db = AsyncPostgres::lazy(&config).expect("parses");
        db.open_async()
            .await
            .expect_err("no TLS here, so no connection")
    });
    assert!(error.message().contains("TLS"), "{error}");
    let mut db = AsyncPostgres::lazy(&config).expect("parses");
    let error = db.open().expect_err("no TLS here, so no connection");
    assert!(error.message().contains("TLS"), "{error}");

    let db = AsyncPostgres::lazy(
        "host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 port=5433 user=u dbname=d \
         target_session_attrs=read-write load_balance_hosts=random channel_binding=require \
         keepalives_idle=30 tcp_user_timeout=5 connect_timeout=3 sslmode=require",
    )
    .expect("parses");
    let back: AsyncPostgres =
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
    assert_eq!(params.ssl_mode, skprocess::reconnect::PgSslMode::Require);
    assert_eq!(params.keepalives_idle, Duration::from_secs(30));
    assert_eq!(params.tcp_user_timeout, Some(Duration::from_secs(5)));
    assert_eq!(params.connect_timeout, Some(Duration::from_secs(3)));
}

/// An async process type as a pool task, built in the worker from a pool item holding a
/// connection, which opens lazily (no `#[autoreconnect]`) inside its async method, with the
/// secret the parent named.
#[skprocess(runs = 1)]
struct AsyncPoolTask {
    db: AsyncPostgres,
    n: i32,
}

impl AsyncPoolTask {
    fn new((db, n): (AsyncPostgres, i32)) -> AsyncPoolTask {
        AsyncPoolTask { db, n }
    }
}

#[skprocess]
impl AsyncPoolTask {
    async fn __run__(&mut self) -> Result<(), BoxError> {
        // The blocking open is refused here, typed, not a panic.
        match self.db.open() {
            Err(e) if e.failure() == &ConnectFailure::InsideRuntime => {}
            other => return Err(format!("expected InsideRuntime, got {other:?}").into()),
        }
        Ok(())
    }

    async fn __result__(&mut self) -> Result<(i32, String, u32), BoxError> {
        let n = self.n;
        let row = self
            .db
            .idempotent_async(|c| async move {
                c.query_one("SELECT $1::INT4 * 2, current_user::text", &[&n])
                    .await
            })
            .await?;
        Ok((row.get(0), row.get(1), std::process::id()))
    }
}

#[test]
fn async_processes_with_connections_run_as_pool_tasks() {
    let _shared = shared();
    let s = child_env();
    let db = AsyncPostgres::lazy(&s.pg_main())
        .expect("parses")
        .secret_from_env("SKPROCESS_PG_PASSWORD");
    let pool = Pool::new(2).expect("a pool");
    let seen: Vec<(i32, String, u32)> = pool
        .processes()
        .timeout(LIMIT)
        .map(AsyncPoolTask::new, (0..4).map(|n| (db.clone(), n)))
        .expect("the tasks run");
    assert_eq!(
        seen.iter().map(|(n, _, _)| *n).collect::<Vec<_>>(),
        [0, 2, 4, 6]
    );
    assert!(seen.iter().all(|(_, user, _)| user == "sk_main"));
    assert!(seen.iter().all(|(_, _, pid)| *pid != std::process::id()));
}
