//! How process types are registered so that a child can find them: by `#[skprocess]` under a
//! name built from the module, the type and the place of its `impl`; under a name of your choice;
//! per instantiation of a generic type with `register!`; and by hand.
//!
//! Run: `cargo run -p examples --example registration`

// ANCHOR: all
use skprocess::prelude::*;
use skprocess::serde::de::DeserializeOwned;
use skprocess::serde::{Deserialize, Serialize};
use skprocess::{Failure, Lifecycle};

// ANCHOR: default_name
/// Registered by `#[skprocess]` under a name it builds.
#[skprocess(runs = 2)]
struct Heartbeat {
    beats: u32,
}

#[skprocess]
impl Heartbeat {
    fn __run__(&mut self) {
        self.beats += 1;
    }

    fn __result__(&mut self) -> u32 {
        self.beats
    }
}
// ANCHOR_END: default_name

// ANCHOR: named
/// Registered under a name of our own.
#[skprocess(name = "examples::registration::Beacon", runs = 1)]
struct Beacon;

#[skprocess]
impl Beacon {
    fn __run__(&mut self) {}
}
// ANCHOR_END: named

// ANCHOR: generic
/// A generic process type: each instantiation that is spawned is registered with `register!`.
#[skprocess]
struct Repeat<T> {
    value: T,
    times: usize,
}

#[skprocess]
impl<T> Repeat<T>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn __config__(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.times);
    }

    fn __run__(&mut self) {}

    fn __result__(&mut self) -> Vec<T> {
        vec![self.value.clone(); self.times]
    }
}

skprocess::register!(Repeat<u32>);
skprocess::register!(Repeat<String>);
// ANCHOR_END: generic

// ANCHOR: by_hand
/// What `#[skprocess]` would generate, written by hand: serde, `Lifecycle`, `register!`.
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Countdown {
    from: u32,
    seen: Vec<u32>,
}

impl Lifecycle for Countdown {
    type Output = Vec<u32>;

    fn configure(&self, config: &mut ProcessConfig) {
        config.runs = Some(self.from as usize);
    }

    fn run(&mut self, cx: &mut Context) -> Result<(), Failure> {
        self.seen.push(self.from - cx.current_run() as u32);
        Ok(())
    }

    fn result(&mut self, _cx: &mut Context) -> Result<Vec<u32>, Failure> {
        Ok(std::mem::take(&mut self.seen))
    }
}

skprocess::register!(Countdown);
// ANCHOR_END: by_hand

fn main() -> Result<(), ProcessError> {
    // ANCHOR: main
    println!(
        "Heartbeat: {}",
        Skprocess::new(Heartbeat { beats: 0 }).run()?
    );
    Skprocess::new(Beacon).run()?;
    let numbers = Skprocess::new(Repeat {
        value: 7u32,
        times: 3,
    })
    .run()?;
    let words = Skprocess::new(Repeat {
        value: "hi".to_string(),
        times: 2,
    });
    println!("Repeat: {numbers:?} {:?}", words.run()?);
    let countdown = Skprocess::new(Countdown {
        from: 3,
        seen: Vec::new(),
    });
    println!("Countdown: {:?}", countdown.run()?);

    // the names the child looks its type up by
    println!("{}", skprocess::registered_name::<Heartbeat, _>());
    println!("{}", skprocess::registered_name::<Beacon, _>());
    println!("{}", skprocess::registered_name::<Repeat<u32>, _>());
    println!("{}", skprocess::registered_name::<Countdown, _>());
    // ANCHOR_END: main
    Ok(())
}
// ANCHOR_END: all
