//! A process under a small frame limit (64 KiB): a state, a message or a result too large for
//! one frame is a typed error where it is sent, and the other side never sees it.

use std::time::Duration;

use skprocess::prelude::*;

const LIMIT: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(60);

/// Returns `result_len` bytes; tells its parent `tell_len` bytes first.
#[skprocess(runs = 1)]
struct Sized {
    state: Vec<u8>,
    tell_len: usize,
    result_len: usize,
}

#[skprocess]
impl Sized {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.frame_limit = LIMIT;
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        if self.tell_len > 0 {
            match cx.tell(vec![1u8; self.tell_len]) {
                Err(TellError::Encode(message)) => cx.tell(format!("refused: {message}"))?,
                other => other?,
            }
        }
        Ok(())
    }

    fn __result__(&mut self) -> Vec<u8> {
        vec![2; self.result_len]
    }
}

fn sized(state: usize, tell_len: usize, result_len: usize) -> Skprocess<Sized> {
    Skprocess::new(Sized {
        state: vec![0; state],
        tell_len,
        result_len,
    })
}

#[test]
fn a_state_over_the_limit_is_refused_before_anything_is_spawned() {
    let process = sized(100_000, 0, 0);
    match process.start() {
        Err(ProcessError::Encode { message, .. }) => {
            assert!(message.contains("frame limit"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(process.pid().is_none());
}

#[test]
fn a_result_over_the_limit_is_the_processes_error() {
    match sized(10, 0, 100_000).timeout(DEADLINE).run() {
        Err(ProcessError::Encode { what, message }) => {
            assert!(what.contains("the result"), "{what}");
            assert!(message.contains("frame limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sized(10, 0, 1000).timeout(DEADLINE).run().unwrap().len(),
        1000
    );
}

#[test]
fn messages_over_the_limit_are_refused_where_they_are_sent() {
    // child -> parent: the child's tell is refused, it says so in a small message
    let process = sized(10, 100_000, 0);
    process.start().unwrap();
    let said: String = process.listen_timeout(DEADLINE).unwrap();
    assert!(
        said.starts_with("refused: ") && said.contains("exceeds the limit"),
        "{said}"
    );
    process.timeout(DEADLINE).result().unwrap();
    // parent -> child
    let process = sized(10, 0, 0);
    process.start().unwrap();
    match process.tell(vec![0u8; 100_000]) {
        Err(TellError::Encode(message)) => {
            assert!(message.contains("exceeds the limit"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    process.timeout(DEADLINE).result().unwrap();
}

/// Fails its first run with an error whose text alone is over the frame limit.
#[skprocess(runs = 1)]
struct Loud {
    len: usize,
}

#[skprocess]
impl Loud {
    fn __config__(&self, config: &mut ProcessConfig) {
        config.frame_limit = LIMIT;
    }

    fn __run__(&mut self) -> Result<(), String> {
        Err(format!("start of a long story{}", "!".repeat(self.len)))
    }
}

#[test]
fn an_error_over_the_limit_arrives_cut_short_not_as_a_crash() {
    match Skprocess::new(Loud { len: 2 * LIMIT })
        .timeout(DEADLINE)
        .run()
    {
        Err(ProcessError::ChildSetup { message }) => {
            assert!(message.contains("start of a long story"), "{message}");
            assert!(message.contains("could not be sent"), "{message}");
            assert!(message.contains("frame limit"), "{message}");
            assert!(message.len() < 8 * 1024, "{} bytes", message.len());
        }
        other => panic!("{other:?}"),
    }
}
