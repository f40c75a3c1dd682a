//! skprocess benchmarks, each against a baseline measured in the same run, printed as ratios.
//!
//! Run: `cargo run --release -p skprocess-bench` (add `--quick` for a smoke run with tiny counts,
//! `--only 6,7` for some sections).
//! The last lines have the form `bench: NAME VALUE UNIT`. Targets are reported, never enforced:
//! the machines are shared and noisy.
//!
//! | figure | baseline | target |
//! |---|---|---|
//! | a trivial process, start → result | re-exec of this binary + connect back | ≤ 1.5× |
//! | engine overhead per iteration (empty `__run__`) | — | ≤ 1 µs |
//! | `Pool(2).map(x * x)` over 10,000 and 1,000 `u64` | a sequential loop | — |
//! | CPU-bound `Pool(2).map` (~2 ms of hashing per item) | a 2-thread rayon pool | ≥ 0.9× throughput |
//! | a `#[shared]` call in the owning process | `Mutex<u64>` lock + add | — |
//! | shared-memory counter `fetch_add`, uncontended (and contended, 2 processes) | in-process `AtomicU64::fetch_add` (2 threads) | ≤ 3× |
//! | 4 processes calling one Share at once | 1 process calling alone | — |
//! | Pipe round trip and tell/listen round trip, small message, unpinned / one CPU / two CPUs | raw local-socket round trip, same placement | ≤ 0.5× (≤ 1.0× on one CPU) |
//! | `#[shared]` call from a child, the same placements | the same | ≤ 0.7× (≤ 1.2× on one CPU) |
//! | 1 GiB `Buffer`, from send until the child holds a mapped view | a 1 GiB memcpy | ≤ 0.01× |
//! | the child's checksum of it, sent back | the same checksum in this process | ≤ 1.2× |
//! | 64-byte messages per second, one way, on a pipe | raw socket, 64-byte messages | ≥ 2× |
//! | `InProcess`: a trivial process, start → result | the same process in a child | — |
//! | `InProcess` tell/listen round trip, small message | two `std::sync::mpsc` channels between two threads | — |
//! | `Pool(2).map(len)` over 400 `Vec<u8>` of 1 MiB, bytes per second | the same bytes in 1 MiB writes on a Unix socket to a child that discards them | ≥ 0.5× |
//! | `Pool(2).map(len)` over 10,000 `Vec<u8>` of 16 KiB | a sequential loop; the same bytes in 16 KiB writes | — |
//! | `Pool(2).submit(x * x).result()`, one task at a time, warm pool; 1,000 through `as_completed` | `pool.map(x * x, [x])`, one item | — |
//! | `NatsPool.map(x * x)` over 200,000 `u64`, and the CPU-bound map, one worker of 2 processes (`--features nats`) | a local `Pool(2)`, the same items | — |
//!
//! Python's figure for the last two (`multiprocessing.Pool(2).map(len, items)` on the same
//! bytes): `python3 bench/python/bulk_data.py`.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::Instant;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use skprocess::buffer::{Buffer, BufferMut};
use skprocess::pool::Pool;
use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize};

/// Where the two processes of a round trip run: (label, this process pinned to CPU 0, the
/// other process pinned to CPU 1 rather than 0). Unpinned: the scheduler decides.
const PLACEMENTS: [(&str, bool, bool); 3] = [
    ("unpinned", false, false),
    ("one_cpu", true, false),
    ("two_cpus", true, true),
];

/// How many 64-byte messages the one-way figure sends (set before a raw child is spawned: the
/// child reads it from its environment).
static MESSAGES_64: AtomicU64 = AtomicU64::new(0);
const MESSAGES_64_ENV: &str = "SKPROCESS_BENCH_MESSAGES_64";

/// Environment variable that makes this binary a raw baseline child (not a skprocess child).
const RAW_CHILD: &str = "SKPROCESS_BENCH_RAW_CHILD";

/// A process that does nothing, once.
#[skprocess(runs = 1)]
struct Trivial;

#[skprocess]
impl Trivial {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> u8 {
        1
    }
}

/// An empty `__run__`, many times.
#[skprocess]
struct Empty {
    runs: usize,
}

#[skprocess]
impl Empty {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.runs);
    }

    fn __run__(&mut self) {}
}

/// Echoes `rounds` messages back to the parent, in one `__run__`.
#[skprocess(runs = 1)]
struct Echo {
    rounds: usize,
}

#[skprocess]
impl Echo {
    fn __run__(
        &mut self,
        cx: &mut Context,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for _ in 0..self.rounds {
            let value: u64 = cx.listen()?;
            cx.tell(value)?;
        }
        Ok(())
    }
}

/// The shared object of the Share benchmarks.
#[derive(Serialize, Deserialize, Default)]
#[serde(crate = "skprocess::serde")]
struct Tally {
    n: u64,
}

#[shared]
impl Tally {
    fn add(&mut self, k: u64) -> u64 {
        self.n += k;
        self.n
    }
}

/// Calls `Tally::add` (or adds to a shared-memory counter) `rounds` times after a warm-up,
/// waiting for `go` first when given; returns seconds per call.
#[skprocess(runs = 1)]
struct ShareCaller {
    share: Share,
    rounds: usize,
    memory: bool,
    /// Start together with the others: spin until this shared flag is set.
    wait_for_go: bool,
}

#[skprocess]
impl ShareCaller {
    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Result<f64, ShareError> {
        let tally = self.share.get::<Tally>("tally")?;
        let hits = self.share.get::<u64>("hits")?;
        for _ in 0..100 {
            tally.add(0)?;
        }
        if self.wait_for_go {
            self.share.get::<u64>("ready")?.fetch_add(1)?;
            let go = self.share.get::<bool>("go")?;
            go.wait(std::time::Duration::from_secs(60))?;
        }
        let started = Instant::now();
        if self.memory {
            for _ in 0..self.rounds {
                hits.fetch_add(1)?;
            }
        } else {
            for _ in 0..self.rounds {
                std::hint::black_box(tally.add(1)?);
            }
        }
        Ok(started.elapsed().as_secs_f64() / self.rounds as f64)
    }
}

/// Echoes `u64` messages on its pipe until the pipe closes.
#[skprocess(runs = 1)]
struct PipeEcho {
    pipe: skprocess::pipe::Point,
}

#[skprocess]
impl PipeEcho {
    fn __run__(&mut self) -> Result<(), skprocess::pipe::PipeError> {
        loop {
            match self.pipe.recv::<u64>() {
                Ok(value) => self.pipe.send(&value)?,
                Err(skprocess::pipe::PipeError::Closed) => return Ok(()),
                Err(other) => return Err(other),
            }
        }
    }
}

/// Seconds per pipe round trip with a child, for a placement: `None` unpinned, `Some(cpu)`:
/// this thread on CPU 0 and the child on `cpu`.
fn pipe_round_trips(
    rounds: usize,
    child_cpu: Option<usize>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (anchor, point) = skprocess::pipe::Pipe::pair()?;
    let process = Skprocess::new(PipeEcho { pipe: point });
    process.start()?;
    anchor.send(&0_u64)?;
    let _: u64 = anchor.recv()?;
    if let Some(cpu) = child_cpu {
        pin_process(process.pid().expect("started"), cpu);
    }
    let started = Instant::now();
    for i in 0..rounds as u64 {
        anchor.send(&i)?;
        let back: u64 = anchor.recv()?;
        assert_eq!(back, i);
    }
    let per = started.elapsed().as_secs_f64() / rounds as f64;
    anchor.close();
    process.result()?;
    Ok(per)
}

/// Holds a buffer it receives (answering with its length once it is mapped), then sums it
/// when asked.
#[skprocess(runs = 1)]
struct BufferProbe {
    pipe: skprocess::pipe::Point,
}

#[skprocess]
impl BufferProbe {
    fn __run__(&mut self) -> Result<(), skprocess::pipe::PipeError> {
        let buffer: Buffer = self.pipe.recv()?;
        self.pipe.send(&buffer.len())?;
        let () = self.pipe.recv()?;
        self.pipe.send(&checksum(&buffer))
    }
}

/// A read-bound checksum: the wrapping sum of the little-endian words.
fn checksum(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .map(|word| u64::from_le_bytes(word.try_into().expect("8 bytes")))
        .fold(0, u64::wrapping_add)
}

/// Seconds from sending `buffer` to a child until it holds a mapped view (its answer is in),
/// and from asking it for the checksum until it is in, with the checksum.
fn buffer_round(
    buffer: &Buffer,
    child_cpu: Option<usize>,
) -> Result<(f64, f64, u64), Box<dyn std::error::Error>> {
    let (anchor, point) = skprocess::pipe::Pipe::pair()?;
    let process = Skprocess::new(BufferProbe { pipe: point });
    process.start()?;
    if let Some(cpu) = child_cpu {
        pin_process(process.pid().expect("started"), cpu);
    }
    // The first message waits for the child to connect: send it before the clock starts.
    anchor.send(buffer)?;
    let started = Instant::now();
    let len: usize = anchor.recv()?;
    assert_eq!(len, buffer.len());
    let map = started.elapsed().as_secs_f64();
    let started = Instant::now();
    anchor.send(&())?;
    let sum: u64 = anchor.recv()?;
    let sum_time = started.elapsed().as_secs_f64();
    process.result()?;
    Ok((map, sum_time, sum))
}

/// Sends `count` 64-byte messages on its pipe once told to.
#[skprocess(runs = 1)]
struct Flood64 {
    pipe: skprocess::pipe::Point,
    count: u64,
}

#[skprocess]
impl Flood64 {
    fn __run__(&mut self) -> Result<(), skprocess::pipe::PipeError> {
        let message = vec![7u8; 64];
        let () = self.pipe.recv()?;
        for _ in 0..self.count {
            self.pipe.send(&message)?;
        }
        Ok(())
    }
}

/// Messages per second, one way, 64 bytes each, on a pipe.
fn pipe_flood(count: u64, child_cpu: Option<usize>) -> Result<f64, Box<dyn std::error::Error>> {
    let (anchor, point) = skprocess::pipe::Pipe::pair()?;
    let process = Skprocess::new(Flood64 { pipe: point, count });
    process.start()?;
    if let Some(cpu) = child_cpu {
        pin_process(process.pid().expect("started"), cpu);
    }
    anchor.send(&())?;
    let started = Instant::now();
    for _ in 0..count {
        let message: Vec<u8> = anchor.recv()?;
        debug_assert_eq!(message.len(), 64);
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    process.result()?;
    Ok(rate)
}

/// The same over a raw socket: 64-byte writes and reads.
fn raw_flood(count: u64, two_cpus: bool) -> f64 {
    MESSAGES_64.store(count, Ordering::Relaxed);
    let (listener, name) = raw_listener();
    let mut child = spawn_raw("flood", &name);
    let (mut stream, _) = listener.accept().expect("accept");
    if two_cpus {
        pin_process(child.id(), 1);
    }
    stream.write_all(&[1]).expect("go");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    for _ in 0..count {
        stream.read_exact(&mut buf).expect("read");
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    child.wait().expect("wait");
    rate
}

/// Starts `count` callers on `share`, pinned to `cpu` if given, and returns their results.
fn share_callers(
    share: &Share,
    count: usize,
    rounds: usize,
    memory: bool,
    cpu: Option<usize>,
) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    share.insert("ready", 0_u64)?;
    let go = share.insert("go", false)?;
    let together = count > 1;
    let processes: Vec<_> = (0..count)
        .map(|_| {
            let process = Skprocess::new(ShareCaller {
                share: share.clone(),
                rounds,
                memory,
                wait_for_go: together,
            });
            process.start().map(|()| process)
        })
        .collect::<Result<_, _>>()?;
    if let Some(cpu) = cpu {
        for process in &processes {
            pin_process(process.pid().expect("started"), cpu);
        }
    }
    if together {
        let ready = share.get::<u64>("ready")?;
        while ready.load()? < count as u64 {
            std::thread::yield_now();
        }
        go.set()?;
    }
    let mut out = Vec::new();
    for process in processes {
        out.push(process.result()?);
    }
    Ok(out)
}

fn square(x: u64) -> u64 {
    x * x
}

/// The CPU-bound map's items: 200 (20 with `--quick`) of about 2 ms of `hash_work` each,
/// calibrated on this machine.
fn cpu_items(quick: bool) -> Vec<u64> {
    let calibrate = Instant::now();
    hash_work(20_000);
    let per_round = calibrate.elapsed().as_secs_f64() / 20_000.0;
    let rounds_for_2ms = ((0.002 / per_round) as u64).max(1);
    (0..if quick { 20 } else { 200 })
        .map(|i| rounds_for_2ms + i % 3)
        .collect()
}

/// About 2 ms of SHA-256 on this machine class (calibrated at start). Never inlined, so that
/// every caller (the pool worker, rayon, the sequential loop) runs the very same machine code.
#[inline(never)]
fn hash_work(rounds: u64) -> u64 {
    let mut data = Sha256::digest(rounds.to_le_bytes());
    for _ in 1..rounds {
        data = Sha256::digest(data);
    }
    u64::from_le_bytes(data[..8].try_into().expect("8 bytes"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn time<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let started = Instant::now();
    let value = f();
    (started.elapsed().as_secs_f64(), value)
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
fn pin_self(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity on ourselves.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins every thread of process `pid` to `cpu`.
fn pin_process(pid: u32, cpu: usize) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: as in pin_self, for a thread of our own child.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(tid, size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

fn unpin_self() {
    // SAFETY: as in pin_self, with every CPU.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The raw baseline child: connect to the named abstract socket, then either say one byte and
/// leave ("start"), or echo 8-byte messages until the parent hangs up ("echo").
fn raw_child(spec: &str) -> ! {
    let (mode, name) = spec.split_once(':').expect("mode:name");
    let addr = SocketAddr::from_abstract_name(name).expect("abstract name");
    let mut stream = UnixStream::connect_addr(&addr).expect("connect");
    match mode {
        "start" => {
            stream.write_all(&[1]).expect("write");
        }
        // "flood": wait for one byte, then write MESSAGES_64 messages of 64 bytes.
        "flood" => {
            let mut go = [0u8; 1];
            stream.read_exact(&mut go).expect("go");
            let message = [7u8; 64];
            for _ in 0..MESSAGES_64.load(Ordering::Relaxed) {
                stream.write_all(&message).expect("write");
            }
        }
        // "sink": read and discard until the parent hangs up, then say one byte.
        "sink" => {
            let mut buf = vec![0u8; 1 << 20];
            while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            stream.write_all(&[1]).expect("write");
        }
        _ => {
            let mut buf = [0u8; 8];
            while stream.read_exact(&mut buf).is_ok() {
                if stream.write_all(&buf).is_err() {
                    break;
                }
            }
        }
    }
    std::process::exit(0);
}

fn raw_listener() -> (UnixListener, String) {
    let name = format!("skprocess-bench.{}.{}", std::process::id(), rand_suffix());
    let addr = SocketAddr::from_abstract_name(&name).expect("abstract name");
    (UnixListener::bind_addr(&addr).expect("bind"), name)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

fn spawn_raw(mode: &str, name: &str) -> std::process::Child {
    Command::new("/proc/self/exe")
        .env(RAW_CHILD, format!("{mode}:{name}"))
        .env(
            MESSAGES_64_ENV,
            MESSAGES_64.load(Ordering::Relaxed).to_string(),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the raw child")
}

/// Re-exec of this binary, connect back, one byte received: the floor for a process start.
/// (Reaping the child is not timed, as a process's result is in hand before its child exits.)
fn raw_start_once() -> f64 {
    let (listener, name) = raw_listener();
    let started = Instant::now();
    let mut child = spawn_raw("start", &name);
    let (mut stream, _) = listener.accept().expect("accept");
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).expect("read");
    let took = started.elapsed().as_secs_f64();
    child.wait().expect("wait");
    took
}

/// Bytes per second through a Unix socket to a child that reads and discards them: one write
/// per item, timed until the child has read them all.
fn raw_sink(items: &[Vec<u8>]) -> f64 {
    let (listener, name) = raw_listener();
    let mut child = spawn_raw("sink", &name);
    let (mut stream, _) = listener.accept().expect("accept");
    let started = Instant::now();
    for item in items {
        stream.write_all(item).expect("write");
    }
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut done = [0u8; 1];
    stream.read_exact(&mut done).expect("the child's answer");
    let bytes: usize = items.iter().map(Vec::len).sum();
    let rate = bytes as f64 / started.elapsed().as_secs_f64();
    child.wait().expect("wait");
    rate
}

/// `count` vectors of `size` bytes, each filled with its own byte.
fn bulk_items(size: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| vec![u8::try_from(i % 251).expect("below 251"); size])
        .collect()
}

/// The pool task of the bulk-data figures.
fn byte_len(bytes: Vec<u8>) -> usize {
    bytes.len()
}

/// Seconds for `pool.map(byte_len)` over `count` fresh vectors of `size` bytes (building them is
/// not timed).
fn pool_bulk(pool: &Pool, size: usize, count: usize) -> Result<f64, skprocess::pool::PoolError> {
    let items = bulk_items(size, count);
    let (took, lens) = time(|| pool.map(byte_len, items));
    let lens = lens?;
    assert!(lens.len() == count && lens.iter().all(|&len| len == size));
    Ok(took)
}

fn raw_round_trips(rounds: usize, two_cpus: bool) -> f64 {
    let (listener, name) = raw_listener();
    let mut child = spawn_raw("echo", &name);
    let (mut stream, _) = listener.accept().expect("accept");
    let mut buf = [0u8; 8];
    // warm up, then place the child
    stream.write_all(&0u64.to_le_bytes()).expect("write");
    stream.read_exact(&mut buf).expect("read");
    if two_cpus {
        pin_process(child.id(), 1);
    }
    let started = Instant::now();
    for i in 0..rounds as u64 {
        stream.write_all(&i.to_le_bytes()).expect("write");
        stream.read_exact(&mut buf).expect("read");
    }
    let per = started.elapsed().as_secs_f64() / rounds as f64;
    drop(stream);
    child.wait().expect("wait");
    per
}

/// Seconds per tell/listen round trip with a child; `child_cpu`: where to pin the child (its
/// threads are started by the runtime's spawner, which does not inherit this thread's CPU).
fn skprocess_round_trips(rounds: usize, child_cpu: Option<usize>) -> Result<f64, ProcessError> {
    let process = Skprocess::new(Echo { rounds: rounds + 1 });
    process.start()?;
    process.tell(0u64).map_err(|e| ProcessError::ChildSetup {
        message: e.to_string(),
    })?;
    let _: u64 = process.listen().map_err(|e| ProcessError::ChildSetup {
        message: e.to_string(),
    })?;
    if let Some(cpu) = child_cpu {
        pin_process(process.pid().expect("started"), cpu);
    }
    let started = Instant::now();
    for i in 0..rounds as u64 {
        process.tell(i).map_err(|e| ProcessError::ChildSetup {
            message: e.to_string(),
        })?;
        let back: u64 = process.listen().map_err(|e| ProcessError::ChildSetup {
            message: e.to_string(),
        })?;
        assert_eq!(back, i);
    }
    let per = started.elapsed().as_secs_f64() / rounds as f64;
    process.result()?;
    Ok(per)
}

/// Round trips with an `InProcess` echo: seconds per round trip.
fn in_process_round_trips(rounds: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let process = InProcess::new(Echo { rounds: rounds + 1 });
    process.start()?;
    process.tell(0u64)?;
    let _: u64 = process.listen()?;
    let started = Instant::now();
    for i in 0..rounds as u64 {
        process.tell(i)?;
        let back: u64 = process.listen()?;
        assert_eq!(back, i);
    }
    let per = started.elapsed().as_secs_f64() / rounds as f64;
    process.result()?;
    Ok(per)
}

/// The same round trips between two threads over two `std::sync::mpsc` channels.
fn mpsc_round_trips(rounds: usize) -> f64 {
    let (to_echo, echo_in) = std::sync::mpsc::channel::<u64>();
    let (echo_out, back) = std::sync::mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        for value in echo_in {
            if echo_out.send(value).is_err() {
                return;
            }
        }
    });
    to_echo.send(0).expect("the echo thread runs");
    back.recv().expect("the echo thread answers");
    let started = Instant::now();
    for i in 0..rounds as u64 {
        to_echo.send(i).expect("the echo thread runs");
        assert_eq!(back.recv().expect("the echo thread answers"), i);
    }
    let per = started.elapsed().as_secs_f64() / rounds as f64;
    drop(to_echo);
    echo.join().expect("the echo thread ends");
    per
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn figure(&mut self, name: &str, value: f64, unit: &str) {
        self.lines.push(format!("bench: {name} {value:.3} {unit}"));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(spec) = std::env::var(RAW_CHILD) {
        let count = std::env::var(MESSAGES_64_ENV)
            .ok()
            .and_then(|n| n.parse().ok());
        MESSAGES_64.store(count.unwrap_or(0), Ordering::Relaxed);
        raw_child(&spec);
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only 6,7` runs those sections (4 runs 4 and 5: they share a pool).
    let only: Option<Vec<u32>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| {
            list.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        });
    let want = |section: u32| only.as_ref().is_none_or(|only| only.contains(&section));
    let reps = if quick { 3 } else { 30 };
    let mut report = Report { lines: Vec::new() };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "skprocess benchmarks ({cpus} CPUs{})",
        if quick { ", quick" } else { "" }
    );

    if want(1) {
        // 1. start -> result of a trivial process, against a bare re-exec + connect.
        let _ = Skprocess::new(Trivial).run()?; // warm: the hub and the spawner thread exist
        let _ = raw_start_once();
        let mut sk = Vec::new();
        let mut raw = Vec::new();
        for _ in 0..reps {
            raw.push(raw_start_once());
            let process = Skprocess::new(Trivial);
            sk.push(time(|| process.run()).0);
            process.wait()?; // reaping, not timed (as for the baseline)
        }
        let (sk_start, raw_start) = (median(sk), median(raw));
        println!(
            "\nprocess start -> result: {:.3} ms; bare re-exec + connect: {:.3} ms; ratio {:.2}x (target <= 1.5x)",
            sk_start * 1e3,
            raw_start * 1e3,
            sk_start / raw_start
        );
        report.figure("process_start_to_result", sk_start * 1e3, "ms");
        report.figure("raw_reexec_connect", raw_start * 1e3, "ms");
        report.figure("process_start_ratio", sk_start / raw_start, "x");
    }
    if want(2) {
        // 2. engine overhead per iteration of an empty __run__.
        let runs = if quick { 10_000 } else { 2_000_000 };
        let mut per_iteration = Vec::new();
        for _ in 0..if quick { 1 } else { 5 } {
            let (one, _) = time(|| Skprocess::new(Empty { runs: 1 }).run());
            let (many, _) = time(|| Skprocess::new(Empty { runs: runs + 1 }).run());
            per_iteration.push((many - one) / runs as f64);
        }
        let per_iteration = median(per_iteration);
        println!(
            "\nengine overhead per iteration (empty __run__, timers on): {:.3} us (target <= 1 us)",
            per_iteration * 1e6
        );
        report.figure("engine_overhead_per_iteration", per_iteration * 1e6, "us");
    }
    if want(3) {
        // 3. tell/listen round trips against raw socket round trips, three placements.
        let rounds = if quick { 200 } else { 5_000 };
        for (label, pinned, two) in PLACEMENTS {
            if two && cpus < 2 {
                continue;
            }
            if pinned {
                pin_self(0);
            }
            let raw = median((0..3).map(|_| raw_round_trips(rounds, two)).collect());
            let sk = median(
                (0..3)
                    .map(|_| skprocess_round_trips(rounds, pinned.then_some(usize::from(two))))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            unpin_self();
            println!(
                "tell/listen round trip ({}): {:.1} us; raw socket: {:.1} us; ratio {:.2}x (target <= {})",
                label.replace('_', " "),
                sk * 1e6,
                raw * 1e6,
                sk / raw,
                if pinned && !two { "1.0x" } else { "0.5x" }
            );
            report.figure(&format!("tell_listen_rtt_{label}"), sk * 1e6, "us");
            report.figure(&format!("raw_socket_rtt_{label}"), raw * 1e6, "us");
            report.figure(&format!("tell_listen_ratio_{label}"), sk / raw, "x");
        }
    }
    if want(4) {
        // 4. Pool(2).map(x * x) over 10,000 and 1,000 u64.
        let (construct, pool) = time(|| Pool::new(2));
        let pool = pool?;
        report.figure("pool_construct_2_workers", construct * 1e3, "ms");
        // As the Python anchor (b2_pool.py) measures: a fresh pool, its first map only.
        let mut firsts = Vec::new();
        for _ in 0..reps.min(5) {
            let fresh = Pool::new(2)?;
            let (t, out) = time(|| fresh.map(square, 0..10_000u64));
            assert_eq!(out?.len(), 10_000);
            firsts.push(t);
        }
        let first = median(firsts);
        println!(
            "\nPool(2).map(x * x) over 10000, first call on a fresh pool (as Python's b2_pool.py): {:.3} ms",
            first * 1e3
        );
        report.figure("pool_map_square_10000_first_call", first * 1e3, "ms");
        let _ = pool.map(square, 0..1_000u64)?; // warm
        for n in [10_000u64, 1_000] {
            let mut totals = Vec::new();
            for _ in 0..reps.min(10) {
                let (t, out) = time(|| pool.map(square, 0..n));
                assert_eq!(out?.len() as u64, n);
                totals.push(t);
            }
            let total = median(totals);
            let (sequential, sum) =
                time(|| (0..n).map(square).map(std::hint::black_box).sum::<u64>());
            std::hint::black_box(sum);
            println!(
                "\nPool(2).map(x * x) over {n}: {:.3} ms, {:.3} us per item; a sequential loop: {:.6} ms ({:.0}x)",
                total * 1e3,
                total / n as f64 * 1e6,
                sequential * 1e3,
                total / sequential.max(1e-9)
            );
            report.figure(&format!("pool_map_square_{n}_total"), total * 1e3, "ms");
            report.figure(
                &format!("pool_map_square_{n}_per_item"),
                total / n as f64 * 1e6,
                "us",
            );
        }

        // 5. CPU-bound map against a 2-thread rayon pool on the same work.
        let items = cpu_items(quick);
        let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
        let mut ratios = Vec::new();
        let mut pool_times = Vec::new();
        let mut rayon_times = Vec::new();
        for _ in 0..if quick { 1 } else { 5 } {
            let (t_pool, a) = time(|| pool.map(hash_work, items.iter().copied()));
            let (t_rayon, b) = time(|| {
                use rayon::prelude::*;
                threads.install(|| items.par_iter().map(|&r| hash_work(r)).collect::<Vec<_>>())
            });
            assert_eq!(a?, b);
            ratios.push(t_rayon / t_pool);
            pool_times.push(t_pool);
            rayon_times.push(t_rayon);
        }
        let ratio = median(ratios);
        let (pool_ms, rayon_ms) = (median(pool_times) * 1e3, median(rayon_times) * 1e3);
        println!(
            "\nCPU-bound map, {} items of ~2 ms: pool {:.1} ms, rayon (2 threads) {:.1} ms; throughput ratio {:.2} (target >= 0.9)",
            items.len(),
            pool_ms,
            rayon_ms,
            ratio
        );
        report.figure("cpu_map_pool", pool_ms, "ms");
        report.figure("cpu_map_rayon", rayon_ms, "ms");
        report.figure("cpu_map_throughput_ratio", ratio, "x");
        drop(pool);
    }
    if want(6) {
        // 6. Share: a #[shared] call from a child against a raw socket round trip; the owner's own
        //    call; a shared-memory counter against an in-process atomic; 4 processes at once.
        let calls = if quick { 200 } else { 20_000 };
        println!();
        for (label, pinned, two) in PLACEMENTS {
            if two && cpus < 2 {
                continue;
            }
            if pinned {
                pin_self(0); // the Share's threads, created below, inherit this CPU
            }
            let share = Share::new()?;
            share.insert("tally", Tally::default())?;
            share.insert("hits", 0_u64)?;
            let raw = median((0..3).map(|_| raw_round_trips(calls, two)).collect());
            let callers_cpu = pinned.then_some(if two { 1 } else { 0 });
            let mut sk = Vec::new();
            for _ in 0..3 {
                sk.extend(share_callers(&share, 1, calls, false, callers_cpu)?);
            }
            let sk = median(sk);
            unpin_self();
            println!(
                "#[shared] call from a child ({}): {:.1} us; raw socket round trip: {:.1} us; ratio {:.2}x (target <= {})",
                label.replace('_', " "),
                sk * 1e6,
                raw * 1e6,
                sk / raw,
                if pinned && !two { "1.2x" } else { "0.7x" }
            );
            report.figure(&format!("share_call_child_{label}"), sk * 1e6, "us");
            report.figure(&format!("share_raw_socket_rtt_{label}"), raw * 1e6, "us");
            report.figure(&format!("share_call_ratio_{label}"), sk / raw, "x");
        }

        let share = Share::new()?;
        let tally = share.insert("tally", Tally::default())?;
        let hits = share.insert("hits", 0_u64)?;
        let owner_calls = if quick { 1_000 } else { 1_000_000 };
        let (owner, _) = time(|| {
            for _ in 0..owner_calls {
                std::hint::black_box(tally.add(1).expect("owner call"));
            }
        });
        let mutex = Mutex::new(0_u64);
        let (locked, _) = time(|| {
            for _ in 0..owner_calls {
                let mut n = mutex.lock().expect("not poisoned");
                *n += 1;
                std::hint::black_box(*n);
            }
        });
        let (owner, locked) = (owner / owner_calls as f64, locked / owner_calls as f64);
        println!(
            "the same call from the owning process: {:.3} us; Mutex<u64> lock + add: {:.3} us ({:.0}x)",
            owner * 1e6,
            locked * 1e6,
            owner / locked
        );
        report.figure("share_call_owner", owner * 1e6, "us");
        report.figure("share_call_owner_vs_mutex", owner / locked, "x");

        let adds = if quick { 10_000 } else { 10_000_000 };
        let local = AtomicU64::new(0);
        let (in_process, _) = time(|| {
            for _ in 0..adds {
                std::hint::black_box(local.fetch_add(1, Ordering::AcqRel));
            }
        });
        let (shared_memory, _) = time(|| {
            for _ in 0..adds {
                std::hint::black_box(hits.fetch_add(1).expect("add"));
            }
        });
        let (in_process, shared_memory) = (in_process / adds as f64, shared_memory / adds as f64);
        println!(
            "shared-memory counter fetch_add: {:.1} ns; in-process AtomicU64::fetch_add: {:.1} ns; ratio {:.2}x (target <= 3x)",
            shared_memory * 1e9,
            in_process * 1e9,
            shared_memory / in_process
        );
        report.figure("share_counter_add", shared_memory * 1e9, "ns");
        report.figure("share_counter_add_atomic_baseline", in_process * 1e9, "ns");
        report.figure("share_counter_add_ratio", shared_memory / in_process, "x");
        // Contended: two processes adding at once, against two threads on one atomic.
        let contended_adds = adds / 10;
        let per_process = share_callers(&share, 2, contended_adds, true, None)?;
        let contended = median(per_process);
        let (threads_time, _) = time(|| {
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        for _ in 0..contended_adds {
                            std::hint::black_box(local.fetch_add(1, Ordering::AcqRel));
                        }
                    });
                }
            });
        });
        let threads_per = threads_time / contended_adds as f64;
        println!(
            "contended (2 processes): {:.1} ns per add; 2 threads on one AtomicU64: {:.1} ns ({:.2}x)",
            contended * 1e9,
            threads_per * 1e9,
            contended / threads_per
        );
        report.figure("share_counter_add_contended", contended * 1e9, "ns");
        report.figure(
            "share_counter_add_contended_ratio",
            contended / threads_per,
            "x",
        );

        let alone = median(share_callers(&share, 1, calls, false, None)?);
        let four_started = Instant::now();
        let four = share_callers(&share, 4, calls, false, None)?;
        let four_wall = four_started.elapsed().as_secs_f64();
        // Throughput from the callers' own timings (their start is synchronised by a flag).
        let four_rate: f64 = four.iter().map(|per| 1.0 / per).sum();
        println!(
            "4 processes calling at once: {:.0} calls/s in all; 1 process alone: {:.0} calls/s ({:.2}x); wall {:.1} ms",
            four_rate,
            1.0 / alone,
            four_rate * alone,
            four_wall * 1e3
        );
        report.figure("share_calls_4_processes", four_rate / 1e3, "kcalls/s");
        report.figure("share_calls_1_process", 1.0 / alone / 1e3, "kcalls/s");
        report.figure("share_calls_4_vs_1", four_rate * alone, "x");
        share.stop()?;
    }
    if want(7) {
        // 7. Pipe round trips against raw socket round trips, three placements.
        let rounds = if quick { 200 } else { 5_000 };
        println!();
        for (label, child_cpu) in [
            ("unpinned", None),
            ("one_cpu", Some(0)),
            ("two_cpus", Some(1)),
        ] {
            if child_cpu == Some(1) && cpus < 2 {
                continue;
            }
            if child_cpu.is_some() {
                pin_self(0);
            }
            let raw = median(
                (0..3)
                    .map(|_| raw_round_trips(rounds, child_cpu == Some(1)))
                    .collect(),
            );
            let mut piped = Vec::new();
            for _ in 0..3 {
                piped.push(pipe_round_trips(rounds, child_cpu)?);
            }
            let piped = median(piped);
            unpin_self();
            println!(
                "Pipe round trip ({}): {:.1} us; raw socket: {:.1} us; ratio {:.2}x",
                label.replace('_', " "),
                piped * 1e6,
                raw * 1e6,
                piped / raw
            );
            report.figure(&format!("pipe_rtt_{label}"), piped * 1e6, "us");
            report.figure(&format!("pipe_raw_socket_rtt_{label}"), raw * 1e6, "us");
            report.figure(&format!("pipe_ratio_{label}"), piped / raw, "x");
        }
    }
    if want(8) {
        // 8. Zero-copy buffers: 1 GiB to a child against a 1 GiB memcpy; the child's checksum
        //    of it against the same checksum here; 64-byte messages per second one way on a
        //    pipe against a raw socket. Three placements.
        let size = if quick { 64 << 20 } else { 1 << 30 };
        let mut writable = BufferMut::<u8>::zeroed(size)?;
        for (i, byte) in writable.iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let buffer = writable.freeze()?;
        let mut copy = vec![1u8; size]; // touched: the copy measures bandwidth, not page faults
        let memcpy = median(
            (0..3)
                .map(|_| time(|| copy.copy_from_slice(&buffer)).0)
                .collect(),
        );
        std::hint::black_box(&copy);
        drop(copy);
        let (local_sum_time, local_sum) = time(|| checksum(&buffer));
        let count = if quick { 20_000 } else { 1_000_000 };
        println!();
        for (label, pinned, two) in PLACEMENTS {
            if two && cpus < 2 {
                continue;
            }
            if pinned {
                pin_self(0);
            }
            let child_cpu = pinned.then_some(usize::from(two));
            let mut maps = Vec::new();
            let mut sums = Vec::new();
            for _ in 0..3 {
                let (map, sum_time, sum) = buffer_round(&buffer, child_cpu)?;
                assert_eq!(sum, local_sum);
                maps.push(map);
                sums.push(sum_time);
            }
            let (map, sum_time) = (median(maps), median(sums));
            let raw = median((0..3).map(|_| raw_flood(count, two)).collect());
            let piped = median(
                (0..3)
                    .map(|_| pipe_flood(count, child_cpu))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            unpin_self();
            let gib = size as f64 / f64::from(1 << 30);
            println!(
                "{gib:.2} GiB buffer ({}): child holds it after {:.3} ms; memcpy {:.1} ms; ratio {:.4}x (target <= 0.01x)",
                label.replace('_', " "),
                map * 1e3,
                memcpy * 1e3,
                map / memcpy
            );
            println!(
                "  the child's checksum of it, sent back: {:.1} ms; here: {:.1} ms; ratio {:.2}x (target <= 1.2x)",
                sum_time * 1e3,
                local_sum_time * 1e3,
                sum_time / local_sum_time
            );
            println!(
                "  64-byte messages one way on a pipe: {:.2} M/s; raw socket: {:.2} M/s; ratio {:.2}x (target >= 2x)",
                piped / 1e6,
                raw / 1e6,
                piped / raw
            );
            report.figure(&format!("buffer_to_child_{label}"), map * 1e3, "ms");
            report.figure(&format!("buffer_memcpy_{label}"), memcpy * 1e3, "ms");
            report.figure(&format!("buffer_ratio_{label}"), map / memcpy, "x");
            report.figure(
                &format!("buffer_checksum_child_{label}"),
                sum_time * 1e3,
                "ms",
            );
            report.figure(
                &format!("buffer_checksum_local_{label}"),
                local_sum_time * 1e3,
                "ms",
            );
            report.figure(
                &format!("buffer_checksum_ratio_{label}"),
                sum_time / local_sum_time,
                "x",
            );
            report.figure(&format!("pipe_64b_msgs_{label}"), piped / 1e6, "M/s");
            report.figure(&format!("raw_64b_msgs_{label}"), raw / 1e6, "M/s");
            report.figure(&format!("pipe_64b_ratio_{label}"), piped / raw, "x");
        }
    }

    if want(11) {
        // 11. imap and unordered_imap against map over 100,000 trivial items: adaptive chunks,
        // and a fixed chunk size of 256 (as multiprocessing's imap(chunksize=256)).
        let n = if quick { 10_000u64 } else { 100_000 };
        // 2 workers, and the default count (the CPUs) when that is another number.
        let counts = if cpus == 2 { vec![2] } else { vec![2, cpus] };
        for workers in counts {
            let pool = Pool::new(workers)?;
            let _ = pool.map(square, 0..1_000u64)?; // warm
            let runs = if quick { 1 } else { 5 };
            let mut measure = |label: &str, run: &dyn Fn() -> usize| {
                let t = median(
                    (0..runs)
                        .map(|_| {
                            let (t, count) = time(run);
                            assert_eq!(count as u64, n);
                            t
                        })
                        .collect(),
                );
                report.figure(&format!("pool_{label}_square_{workers}w"), t * 1e3, "ms");
                t
            };
            let map = measure("map", &|| pool.map(square, 0..n).map_or(0, |v| v.len()));
            let imap = measure("imap", &|| {
                pool.imap(square, 0..n).filter(Result::is_ok).count()
            });
            let unordered = measure("unordered_imap", &|| {
                pool.unordered_imap(square, 0..n)
                    .filter(Result::is_ok)
                    .count()
            });
            let fixed = measure("imap_chunk256", &|| {
                pool.chunk_size(256)
                    .imap(square, 0..n)
                    .filter(Result::is_ok)
                    .count()
            });
            // One item per chunk, as `imap` was before adaptive chunks (timed once: it is slow).
            let (single, count) = time(|| {
                pool.chunk_size(1)
                    .imap(square, 0..n)
                    .filter(Result::is_ok)
                    .count()
            });
            assert_eq!(count as u64, n);
            report.figure(
                &format!("pool_imap_chunk1_square_{workers}w"),
                single * 1e3,
                "ms",
            );
            println!(
                "\nPool({workers}) over {n} trivial items: map {:.1} ms; imap {:.1} ms ({:.2}x map); unordered_imap {:.1} ms ({:.2}x map) (target <= 2x); imap chunk_size(256) {:.1} ms; chunk_size(1) {:.0} ms",
                map * 1e3,
                imap * 1e3,
                imap / map,
                unordered * 1e3,
                unordered / map,
                fixed * 1e3,
                single * 1e3,
            );
            report.figure(&format!("pool_imap_ratio_{workers}w"), imap / map, "x");
            report.figure(
                &format!("pool_unordered_imap_ratio_{workers}w"),
                unordered / map,
                "x",
            );
        }
    }
    if want(12) {
        // 12. A single task: submit -> result of a trivial task on a warm Pool(2), against a
        //     map of one item on the same pool (the same trip through the queue and a worker,
        //     without a handle), and a burst of 1,000 submits collected with as_completed.
        let pool = Pool::new(2)?;
        let _ = pool.map(square, 0..1_000u64)?; // warm
        let rounds = if quick { 20 } else { 2_000 };
        let (mut submits, mut maps) = (Vec::new(), Vec::new());
        for x in 0..rounds {
            // Alternate, so that both see the same load.
            let (t, value) = time(|| pool.submit(square, x).result());
            assert_eq!(value?, x * x);
            submits.push(t);
            let (t, value) = time(|| pool.map(square, [x]));
            assert_eq!(value?, [x * x]);
            maps.push(t);
        }
        let (submit, map) = (median(submits), median(maps));
        let n = if quick { 100 } else { 1_000 };
        let (burst, count) = time(|| {
            let handles: Vec<_> = (0..n).map(|x| pool.submit(square, x)).collect();
            skprocess::pool::as_completed(handles)
                .filter(|(_, handle)| handle.is_finished())
                .count()
        });
        assert_eq!(count as u64, n);
        println!(
            "\nPool(2) submit -> result of a trivial task: {:.1} us; map of one item: {:.1} us; ratio {:.2}x; {n} submits through as_completed: {:.2} ms ({:.1} us per task)",
            submit * 1e6,
            map * 1e6,
            submit / map,
            burst * 1e3,
            burst / n as f64 * 1e6,
        );
        report.figure("pool_submit_roundtrip", submit * 1e6, "us");
        report.figure("pool_submit_vs_map1_ratio", submit / map, "x");
        report.figure("pool_submit_burst_per_task", burst / n as f64 * 1e6, "us");
    }
    if want(13) {
        // 13. AsyncPool (in-process mode): trivial async tasks per second, against the same
        //     tasks spawned on a plain single-threaded tokio runtime.
        let n: u64 = if quick { 10_000 } else { 200_000 };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let mut pooled = Vec::new();
        let mut spawned = Vec::new();
        for _ in 0..if quick { 1 } else { 5 } {
            let pool = skprocess::pool::AsyncPool::new(1_000);
            let (t, out) = time(|| {
                runtime.block_on(pool.map(
                    |x: u64| async move {
                        tokio::task::yield_now().await;
                        x * 2
                    },
                    0..n,
                ))
            });
            assert_eq!(out?.len() as u64, n);
            pooled.push(t);
            let (t, total) = time(|| {
                runtime.block_on(async {
                    let handles: Vec<_> = (0..n)
                        .map(|x| {
                            tokio::spawn(async move {
                                tokio::task::yield_now().await;
                                x * 2
                            })
                        })
                        .collect();
                    let mut total = 0u64;
                    for handle in handles {
                        total += handle.await.expect("a task");
                    }
                    total
                })
            });
            assert_eq!(total, n * (n - 1));
            spawned.push(t);
        }
        let (pooled, spawned) = (median(pooled), median(spawned));
        println!(
            "\nAsyncPool(1000) in-process map of {n} trivial async tasks (each yields once): {:.0} tasks/s; the same spawned on a plain tokio runtime: {:.0} tasks/s; AsyncPool throughput {:.2}x the plain runtime's",
            n as f64 / pooled,
            n as f64 / spawned,
            spawned / pooled,
        );
        report.figure("async_pool_tasks_per_second", n as f64 / pooled, "/s");
        report.figure("tokio_spawn_tasks_per_second", n as f64 / spawned, "/s");
        async_workers_line(&mut report, n, spawned, quick)?;
    }
    if want(9) {
        // 9. InProcess: start -> result of a trivial process against the same in a child, and
        //    a tell/listen round trip against two mpsc channels between two threads.
        let _ = InProcess::new(Trivial).run()?; // warm
        let mut here = Vec::new();
        let mut child = Vec::new();
        for _ in 0..reps {
            here.push(time(|| InProcess::new(Trivial).run()).0);
            let process = Skprocess::new(Trivial);
            child.push(time(|| process.run()).0);
            process.wait()?;
        }
        let (here, child) = (median(here), median(child));
        println!(
            "\nInProcess start -> result: {:.3} ms; in a child: {:.3} ms; ratio {:.3}x",
            here * 1e3,
            child * 1e3,
            here / child
        );
        report.figure("in_process_start_to_result", here * 1e3, "ms");
        report.figure("in_process_start_ratio", here / child, "x");
        let rounds = if quick { 200 } else { 20_000 };
        let sk = median(
            (0..3)
                .map(|_| in_process_round_trips(rounds))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let mpsc = median((0..3).map(|_| mpsc_round_trips(rounds)).collect());
        println!(
            "InProcess tell/listen round trip: {:.2} us; two mpsc channels between two threads: {:.2} us; ratio {:.2}x",
            sk * 1e6,
            mpsc * 1e6,
            sk / mpsc
        );
        report.figure("in_process_tell_listen_rtt", sk * 1e6, "us");
        report.figure("mpsc_threads_rtt", mpsc * 1e6, "us");
        report.figure("in_process_tell_listen_ratio", sk / mpsc, "x");
    }
    if want(10) {
        // 10. Bulk data: 1 MiB items through a pool against the same bytes on a raw socket;
        //    16 KiB items through a pool against a sequential loop (and a raw socket).
        let mib = 1 << 20;
        let count = if quick { 40 } else { 400 };
        let pool = Pool::new(2)?;
        pool_bulk(&pool, mib, 8)?; // warm: the workers have run a chunk
        // The baseline writes the very items the pool is given (not one buffer again and
        // again, which would stay in the cache). Rounds alternate the two, so that both see the
        // same load; the ratio is the median of the rounds' ratios.
        let bytes = (count * mib) as f64;
        let (mut rates, mut raws, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..if quick { 1 } else { 5 } {
            let items = bulk_items(mib, count);
            let raw = raw_sink(&items);
            drop(items);
            let rate = bytes / pool_bulk(&pool, mib, count)?;
            rates.push(rate);
            raws.push(raw);
            ratios.push(rate / raw);
        }
        let (rate, raw, ratio) = (median(rates), median(raws), median(ratios));
        let gib = f64::from(1 << 30);
        println!(
            "\nPool(2).map(len) over {count} Vec<u8> of 1 MiB: {:.1} ms, {:.2} GiB/s; 1 MiB writes on a raw socket: {:.2} GiB/s; ratio {:.2}x (target >= 0.5x)",
            bytes / rate * 1e3,
            rate / gib,
            raw / gib,
            ratio
        );
        report.figure("bulk_pool_1mib_rate", rate / gib, "GiB/s");
        report.figure("bulk_raw_socket_1mib_rate", raw / gib, "GiB/s");
        report.figure("bulk_1mib_ratio", ratio, "x");

        let small = 16 << 10;
        let count = if quick { 1_000 } else { 10_000 };
        let took = median(
            (0..3)
                .map(|_| pool_bulk(&pool, small, count))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let items = bulk_items(small, count);
        let (sequential, total) = time(|| {
            items
                .iter()
                .map(|item| std::hint::black_box(item).len())
                .sum::<usize>()
        });
        assert_eq!(total, small * count);
        let raw = median((0..3).map(|_| raw_sink(&items)).collect());
        let rate = (count * small) as f64 / took;
        println!(
            "Pool(2).map(len) over {count} Vec<u8> of 16 KiB: {:.1} ms, {:.2} us per item, {:.2} GiB/s; a sequential loop: {:.3} ms; 16 KiB writes on a raw socket: {:.2} GiB/s ({:.2}x)",
            took * 1e3,
            took / count as f64 * 1e6,
            rate / gib,
            sequential * 1e3,
            raw / gib,
            rate / raw
        );
        report.figure("bulk_pool_16kib_total", took * 1e3, "ms");
        report.figure("bulk_pool_16kib_rate", rate / gib, "GiB/s");
        report.figure("bulk_raw_socket_16kib_rate", raw / gib, "GiB/s");
        drop(pool);
    }
    if want(14) {
        // 14. The NATS backend: trivial items and the CPU-bound map through a NatsPool with one
        //     worker of 2 local processes, against a local Pool(2) on the same items.
        nats_section(&mut report, quick)?;
    }

    println!();
    for line in &report.lines {
        println!("{line}");
    }
    Ok(())
}

/// Section 13's line for AsyncPool across worker processes: the same trivial tasks through
/// `AsyncPool::with_workers(2, 1000)`, against the plain tokio runtime's time `spawned` measured
/// in the same run.
#[cfg(feature = "async-workers")]
fn async_workers_line(
    report: &mut Report,
    n: u64,
    spawned: f64,
    quick: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = skprocess::pool::AsyncPool::with_workers(2, 1_000)?;
    // Warm: the workers' runtimes start on their first task.
    pool.block_on(pool.map(|x: u64| async move { x }, 0..1_000u64))?;
    let mut across = Vec::new();
    for _ in 0..if quick { 1 } else { 5 } {
        let (t, out) = time(|| {
            pool.block_on(pool.map(
                |x: u64| async move {
                    tokio::task::yield_now().await;
                    x * 2
                },
                0..n,
            ))
        });
        assert_eq!(out?.len() as u64, n);
        across.push(t);
    }
    let across = median(across);
    println!(
        "AsyncPool::with_workers(2, 1000) map of the same {n} tasks across 2 worker processes: {:.0} tasks/s; {:.3}x the plain runtime's throughput (each task crosses processes twice)",
        n as f64 / across,
        spawned / across,
    );
    report.figure(
        "async_worker_pool_tasks_per_second",
        n as f64 / across,
        "/s",
    );
    Ok(())
}

#[cfg(not(feature = "async-workers"))]
fn async_workers_line(
    _: &mut Report,
    _: u64,
    _: f64,
    _: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "(AsyncPool across worker processes: build with `--features async-workers` for its line)"
    );
    Ok(())
}

#[cfg(feature = "nats")]
skprocess::remote_tasks!(square, hash_work);

/// Section 14: a `NatsPool` on a `nats-server` started here (loopback, JetStream in a temp
/// dir), served by one worker (this binary in worker mode) with 2 local processes, against a
/// local `Pool(2)` on the same items, in the same run.
#[cfg(feature = "nats")]
fn nats_section(report: &mut Report, quick: bool) -> Result<(), Box<dyn std::error::Error>> {
    use skprocess::nats::{NatsOptions, NatsPool, POOL_ENV, PROCESSES_ENV, WORKER_ENV};

    struct Killed(std::process::Child, std::path::PathBuf);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("skprocess-bench-nats-{}", std::process::id()));
    let server = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| {
            format!("cannot start nats-server ({error}): apt-get install nats-server")
        })?;
    let _server = Killed(server, dir.clone());
    let url = format!("nats://127.0.0.1:{port}");
    let options = NatsOptions::new(url.clone()).pool("bench");
    let started = Instant::now();
    let pool = loop {
        match NatsPool::connect(options.clone()) {
            Ok(pool) => break pool,
            Err(_) if started.elapsed().as_secs() < 10 => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(error) => return Err(error.into()),
        }
    };
    let worker = Command::new(std::env::current_exe()?)
        .env(WORKER_ENV, &url)
        .env(POOL_ENV, "bench")
        .env(PROCESSES_ENV, "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let _worker = Killed(worker, dir.join("none"));
    // Warm: the worker connected and its processes started.
    assert_eq!(pool.map(square, 0..100u64)?.len(), 100);
    let local = Pool::new(2)?;

    let n: u64 = if quick { 2_000 } else { 200_000 };
    let runs = if quick { 1 } else { 3 };
    let mut remote = Vec::new();
    let mut here = Vec::new();
    for _ in 0..runs {
        let (t, out) = time(|| pool.map(square, 0..n));
        assert_eq!(out?.len() as u64, n);
        remote.push(t);
        let (t, out) = time(|| local.map(square, 0..n));
        assert_eq!(out?.len() as u64, n);
        here.push(t);
    }
    let (remote, here) = (median(remote), median(here));
    println!(
        "\nNATS backend, {n} trivial items (square): NatsPool (1 worker, 2 processes) {:.0} items/s; local Pool(2) {:.0} items/s; ratio {:.3}x",
        n as f64 / remote,
        n as f64 / here,
        here / remote
    );
    report.figure("nats_trivial_items_per_second", n as f64 / remote, "/s");
    report.figure("nats_trivial_vs_local_ratio", here / remote, "x");

    let items = cpu_items(quick);
    let mut remote = Vec::new();
    let mut here = Vec::new();
    for _ in 0..runs {
        let (t, a) = time(|| pool.chunk_size(1).map(hash_work, items.iter().copied()));
        let (t_local, b) = time(|| local.map(hash_work, items.iter().copied()));
        assert_eq!(a?, b?);
        remote.push(t);
        here.push(t_local);
    }
    let (remote, here) = (median(remote), median(here));
    println!(
        "NATS backend, CPU-bound map of {} items of ~2 ms: NatsPool {:.1} ms, local Pool(2) {:.1} ms; throughput ratio {:.2}",
        items.len(),
        remote * 1e3,
        here * 1e3,
        here / remote
    );
    report.figure("nats_cpu_map", remote * 1e3, "ms");
    report.figure("nats_cpu_map_vs_local_ratio", here / remote, "x");
    Ok(())
}

#[cfg(not(feature = "nats"))]
fn nats_section(_: &mut Report, _: bool) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n(the NATS backend: build with `--features nats` for its lines)");
    Ok(())
}
