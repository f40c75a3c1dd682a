//! A real NATS server with JetStream for each test that needs one (Debian's `nats-server`, which
//! `scripts/test.sh` installs when it is missing), and worker hosts: each host is a network
//! namespace of its own, reaching the server over a veth pair, as another machine would (a
//! namespace cannot reach the host's loopback). Namespaces need root: with `CI=true` a failure
//! to create one fails the test; elsewhere the test says so and falls back to separate process
//! trees on loopback. Every server and worker dies with the test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to say it is ready.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// Sets the child's parent-death signal to SIGKILL, so nothing outlives a test that panicked
/// or was killed.
fn die_with_test(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

fn temp_dir(what: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "skprocess-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Copies what a child writes to `stderr` into `log`, line by line, on a thread of its own;
/// the receiver hears each time a line contains `marker`.
fn watch(
    stderr: std::process::ChildStderr,
    marker: &'static str,
    log: Arc<Mutex<String>>,
) -> mpsc::Receiver<()> {
    let (seen, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = seen.send(());
            }
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    receiver
}

/// A free TCP port (bound and released: another process could take it in between, which
/// would make the server fail to start loudly, not the test pass wrongly).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A running `nats-server -js`, listening on every address of this machine.
pub(crate) struct NatsServer {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    log: Arc<Mutex<String>>,
    tls: bool,
}

impl NatsServer {
    /// A server with JetStream and no authentication.
    pub(crate) fn start() -> NatsServer {
        NatsServer::with_config("", false)
    }

    /// A server whose configuration file also holds `extra` (an `authorization` or `tls`
    /// block); `tls` makes [`url`](Self::url) say `tls://`.
    pub(crate) fn with_config(extra: &str, tls: bool) -> NatsServer {
        let dir = temp_dir("nats");
        let port = free_port();
        let config = format!(
            "listen: 0.0.0.0:{port}\njetstream {{ store_dir: {store:?} }}\n{extra}\n",
            store = dir.join("store").display().to_string()
        );
        let file = dir.join("server.conf");
        std::fs::write(&file, config).expect("the server's configuration");
        let mut server = NatsServer {
            child: None,
            port,
            dir,
            log: Arc::new(Mutex::new(String::new())),
            tls,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut command = Command::new("nats-server");
        command
            .arg("-c")
            .arg(self.dir.join("server.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_test(&mut command);
        let mut child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot start nats-server ({error}): install it with `apt-get install -y \
                 nats-server` (scripts/test.sh does)"
            )
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let ready = watch(stderr, "Server is ready", Arc::clone(&self.log));
        if ready.recv_timeout(READY_LIMIT).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nats-server did not get ready within {READY_LIMIT:?}:\n{}",
                self.log.lock().unwrap()
            );
        }
        self.child = Some(child);
    }

    /// The server's URL as seen from `address` (a host's view of this machine).
    pub(crate) fn url_at(&self, address: &str) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        format!("{scheme}://{address}:{}", self.port)
    }

    /// The server's URL on loopback.
    pub(crate) fn url(&self) -> String {
        self.url_at("127.0.0.1")
    }

    /// Kills the server (SIGKILL): the server going away.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// What the server logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `ip` with `args`; `Err` with its output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run ip: {error}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A namespace and the veth pair that links it to this machine.
struct Namespace {
    name: String,
    /// This machine's end of the pair, as the namespace sees it.
    server_address: String,
}

impl Namespace {
    fn create() -> Result<Namespace, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("skp{pid}n{n}");
        // Interface names have at most 15 bytes.
        let outside = format!("skh{}x{n}", pid % 100_000);
        let inside = format!("skc{}x{n}", pid % 100_000);
        let (a, b) = (100 + pid % 100, n % 64 * 4);
        let (here, there) = (format!("10.{a}.{b}.1"), format!("10.{a}.{b}.2"));
        ip(&["netns", "add", &name])?;
        let namespace = Namespace {
            name,
            server_address: here.clone(),
        };
        let name = namespace.name.as_str();
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ])?;
        ip(&["link", "set", &inside, "netns", name])?;
        ip(&["addr", "add", &format!("{here}/30"), "dev", &outside])?;
        ip(&["link", "set", &outside, "up"])?;
        ip(&[
            "netns",
            "exec",
            name,
            "ip",
            "addr",
            "add",
            &format!("{there}/30"),
            "dev",
            &inside,
        ])?;
        ip(&["netns", "exec", name, "ip", "link", "set", &inside, "up"])?;
        ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// Every process inside.
    fn pids(&self) -> Vec<i32> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for pid in self.pids() {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Deleting the namespace deletes its end of the pair, and so the pair.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Creates namespaces if this machine lets us; says why not otherwise (a failure with
/// `CI=true`).
fn namespaces_available() -> bool {
    static CHECKED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CHECKED.get_or_init(|| match Namespace::create() {
        Ok(_) => true,
        Err(reason) => {
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("CI=true and network namespaces cannot be created: {reason}");
            }
            eprintln!(
                "network namespaces cannot be created here ({reason}): falling back to worker \
                 hosts as separate process trees on loopback"
            );
            false
        }
    })
}

/// A worker host: a namespace of its own (or, as the fallback, a process group), running
/// worker processes of this test executable.
pub(crate) struct Host {
    pub(crate) name: String,
    namespace: Option<Namespace>,
    workers: Vec<Child>,
    log: Arc<Mutex<String>>,
}

impl Host {
    /// A new host named `name` (the tasks see it in `SKP_TEST_HOST`).
    pub(crate) fn new(name: &str) -> Host {
        let namespace = if namespaces_available() {
            Some(Namespace::create().unwrap_or_else(|reason| panic!("{reason}")))
        } else {
            None
        };
        Host {
            name: name.to_owned(),
            namespace,
            workers: Vec::new(),
            log: Arc::new(Mutex::new(String::new())),
        }
    }

    /// The address this host reaches the server's machine at.
    pub(crate) fn server_address(&self) -> &str {
        self.namespace
            .as_ref()
            .map_or("127.0.0.1", |namespace| &namespace.server_address)
    }

    /// This test executable in worker mode, on this host, for the server at `server`.
    fn worker_command(&self, server: &NatsServer) -> Command {
        let exe = std::env::current_exe().expect("the test executable");
        let mut command = match &self.namespace {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &namespace.name]).arg(&exe);
                command
            }
            None => Command::new(&exe),
        };
        command.env(
            skprocess::nats::WORKER_ENV,
            server.url_at(self.server_address()),
        );
        command
    }

    /// Starts a worker (this test executable in worker mode) with `processes` local processes
    /// and the extra environment `env`, for the server at `server`; waits until it serves.
    pub(crate) fn start_worker(
        &mut self,
        server: &NatsServer,
        processes: usize,
        env: &[(&str, &str)],
    ) {
        let mut command = self.worker_command(server);
        command
            .env(skprocess::nats::PROCESSES_ENV, processes.to_string())
            .env("SKP_TEST_HOST", &self.name)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        die_with_test(&mut command);
        let mut child = command.spawn().expect("a worker process");
        let stderr = child.stderr.take().expect("piped stderr");
        let ready = watch(stderr, " serving pool ", Arc::clone(&self.log));
        if ready.recv_timeout(READY_LIMIT).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the worker on {} did not start serving within {READY_LIMIT:?}:\n{}",
                self.name,
                self.log()
            );
        }
        self.workers.push(child);
    }

    /// Starts a worker and returns how it ended (for workers that must fail to start).
    pub(crate) fn run_worker_to_end(
        &self,
        server: &NatsServer,
        env: &[(&str, &str)],
        limit: Duration,
    ) -> (std::process::ExitStatus, String) {
        let mut command = self.worker_command(server);
        command
            .env(skprocess::nats::PROCESSES_ENV, "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_test(&mut command);
        let out = crate::common::output_within(&mut command, limit);
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Kills every process of the host at once (SIGKILL): the host dies.
    pub(crate) fn kill(&mut self) {
        if let Some(namespace) = &self.namespace {
            for pid in namespace.pids() {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for worker in &mut self.workers {
            // SAFETY: as above; the worker leads its own process group.
            unsafe { libc::kill(-(worker.id() as i32), libc::SIGKILL) };
            let _ = worker.wait();
        }
        self.workers.clear();
    }

    /// The process ids of everything running on this host (workers and their local
    /// processes), sorted.
    pub(crate) fn pids(&self) -> Vec<i32> {
        let mut pids = match &self.namespace {
            Some(namespace) => namespace.pids(),
            None => {
                let groups: Vec<i32> = self.workers.iter().map(|w| w.id() as i32).collect();
                std::fs::read_dir("/proc")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
                    // SAFETY: getpgid has no memory effects.
                    .filter(|pid| groups.contains(&unsafe { libc::getpgid(*pid) }))
                    .collect()
            }
        };
        pids.sort_unstable();
        pids
    }

    /// Asks every worker of the host to stop (SIGTERM to the worker alone, as a supervisor
    /// would) and waits, up to `limit`, until they exited; their exit statuses.
    pub(crate) fn stop(&mut self, limit: Duration) -> Vec<Option<std::process::ExitStatus>> {
        for worker in &self.workers {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
        }
        let end = std::time::Instant::now() + limit;
        let statuses = self
            .workers
            .iter_mut()
            .map(|worker| {
                loop {
                    match worker.try_wait() {
                        Ok(Some(status)) => break Some(status),
                        Ok(None) if std::time::Instant::now() < end => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => break None,
                    }
                }
            })
            .collect();
        self.workers.clear();
        statuses
    }

    /// Whether every worker started on this host is still running.
    pub(crate) fn alive(&mut self) -> bool {
        self.workers
            .iter_mut()
            .all(|worker| matches!(worker.try_wait(), Ok(None)))
    }

    /// What the host's workers wrote to stderr.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- what the workers on {} wrote:\n{}",
                self.name,
                self.log()
            );
        }
    }
}

/// Makes a certificate authority and a server certificate for `addresses` (IPs) in `dir` with
/// openssl; returns (CA file, server certificate, server key).
pub(crate) fn make_certificates(dir: &Path, addresses: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|error| panic!("cannot run openssl ({error}): install it"));
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=skprocess test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&ca);
    let mut request = vec!["req", "-nodes"];
    request.extend(ec);
    request.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=nats",
    ]);
    run(&request);
    let names: Vec<String> = addresses
        .iter()
        .map(|address| format!("IP:{address}"))
        .chain(["DNS:localhost".to_owned()])
        .collect();
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            names.join(",")
        ),
    )
    .expect("the extensions file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A fresh temp dir for a test's files.
pub(crate) fn scratch(what: &str) -> PathBuf {
    temp_dir(what)
}

/// Waits until `check` holds, up to `limit`; whether it did.
pub(crate) fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}
