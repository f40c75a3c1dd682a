//! Real PostgreSQL and Redis servers for the tests that need them, started once per test binary
//! by `scripts/servers.sh` (which installs Debian's packages when they are missing) on loopback
//! ports with passwords. A watchdog stops them when the test binary exits. A server that cannot
//! start fails the test that asked for it, loudly, with the script's output. Needs the tests'
//! `common` module next to it (for `output_within`).

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// The running servers: their addresses and passwords, as `scripts/servers.sh` wrote them.
#[derive(Debug)]
pub(crate) struct Servers {
    vars: HashMap<String, String>,
    dir: PathBuf,
}

/// How long installing and starting the servers may take (an `apt-get install` included).
const START_LIMIT: Duration = Duration::from_secs(600);

/// The script, from this file's crate (`skprocess-runtime/` or `examples/`).
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("servers.sh")
}

/// The servers of this test binary, started on first use.
pub(crate) fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(Servers::start)
}

impl Servers {
    fn start() -> Servers {
        let dir = std::env::temp_dir().join(format!(
            "skprocess-servers-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        ));
        let out = run_script(&[
            "up",
            dir.to_str().expect("a UTF-8 temp dir"),
            "--owner",
            &std::process::id().to_string(),
        ]);
        let text = std::fs::read_to_string(dir.join("env.plain")).unwrap_or_else(|e| {
            panic!(
                "servers.sh up wrote no env.plain ({e})\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let vars = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Servers { vars, dir }
    }

    /// A variable of the env file (`SKPROCESS_PG_PORT`, ...).
    pub(crate) fn var(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("servers.sh did not write {key}"))
    }

    /// Every variable, to hand to a child or an example.
    pub(crate) fn vars(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The libpq-style configuration of the `sk_main` role, without its password.
    pub(crate) fn pg_main(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.var("SKPROCESS_PG_HOST"),
            self.var("SKPROCESS_PG_PORT"),
            self.var("SKPROCESS_PG_USER"),
            self.var("SKPROCESS_PG_DB"),
        )
    }

    /// The same for the `sk_analytics` role.
    pub(crate) fn pg_analytics(&self) -> String {
        format!(
            "host={} port={} user={} dbname={}",
            self.var("SKPROCESS_PG_HOST"),
            self.var("SKPROCESS_PG_PORT"),
            self.var("SKPROCESS_PG_ANALYTICS_USER"),
            self.var("SKPROCESS_PG_ANALYTICS_DB"),
        )
    }

    /// The Redis URL, without the password.
    pub(crate) fn redis_url(&self) -> String {
        format!(
            "redis://{}:{}/0",
            self.var("SKPROCESS_REDIS_HOST"),
            self.var("SKPROCESS_REDIS_PORT")
        )
    }

    /// Restarts `which` (`"postgres"` or `"redis"`) on the same port; waits until it is ready.
    pub(crate) fn restart(&self, which: &str) {
        run_script(&["restart", which, self.dir.to_str().expect("UTF-8")]);
    }
}

/// Runs the script with a deadline; panics with its output if it fails.
fn run_script(args: &[&str]) -> Output {
    let out = crate::common::output_within(
        Command::new("bash")
            .arg(script())
            .args(args)
            // Its own process group: past the deadline the whole group goes (apt, a server
            // being started), not only bash.
            .process_group(0),
        START_LIMIT,
    );
    assert!(
        out.status.success(),
        "scripts/servers.sh {args:?} failed ({}): a server could not start\n--- stdout\n{}\n--- \
         stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
