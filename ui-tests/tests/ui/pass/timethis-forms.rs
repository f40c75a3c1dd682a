//! Generics, lifetimes, raw identifiers, `#[cfg]`, async, methods of every receiver kind.

use std::fmt::Debug;
use std::future::Future;

use skprocess::timethis;
use skprocess::timing::Sktimer;

#[timethis]
fn generic<T: Clone + Debug, const N: usize>(items: [T; N]) -> Vec<T>
where
    T: PartialEq,
{
    items.to_vec()
}

#[timethis]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() { a } else { b }
}

#[timethis]
fn elided(s: &str) -> &str {
    s.trim()
}

#[timethis]
fn impl_trait_arg(items: impl IntoIterator<Item = u8>) -> impl Iterator<Item = u8> {
    items.into_iter().map(|x| x + 1)
}

#[timethis]
fn r#match(r#type: u8) -> u8 {
    r#type
}

#[cfg(any())]
#[timethis]
fn never_compiled() -> DoesNotExist {}

#[timethis]
#[inline]
#[must_use]
fn with_other_attributes() -> u8 {
    #![allow(clippy::let_and_return)]
    let x = 1;
    x
}

#[timethis]
fn never_returns() -> ! {
    loop {
        std::thread::park();
    }
}

#[timethis]
async fn async_borrow<'a>(s: &'a str, n: &u8) -> &'a str {
    let _ = n;
    s
}

#[timethis]
async fn async_impl_trait() -> impl Debug {
    5_u8
}

#[timethis]
async fn async_question_mark(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    Ok(n * 2)
}

#[timethis]
fn returns_future() -> impl Future<Output = u8> {
    async { 1 }
}

#[derive(Default)]
struct Machine<T> {
    value: T,
    timer: Sktimer,
}

impl<T: Clone + Default> Machine<T> {
    #[timethis]
    fn new() -> Self {
        Machine::default()
    }

    #[timethis]
    fn by_ref(&self) -> &T {
        &self.value
    }

    #[timethis]
    fn by_mut(&mut self, value: T) {
        self.value = value;
    }

    #[timethis]
    fn by_value(self) -> T {
        self.value
    }

    #[timethis]
    fn boxed(self: Box<Self>) -> T {
        self.value.clone()
    }

    #[timethis(timer = self.timer)]
    fn with_own_field(&mut self) -> T {
        self.value.clone()
    }

    #[timethis]
    fn r#try(&self) -> bool {
        true
    }

    #[cfg(any())]
    #[timethis]
    fn cfg_out(&self) -> Missing {}

    #[timethis]
    async fn async_by_ref(&self) -> T {
        self.value.clone()
    }

    #[timethis]
    async fn async_by_value(self) -> T {
        self.value
    }

    #[timethis(timer = &self.timer)]
    async fn async_given(&self) -> usize {
        1
    }
}

trait Job {
    fn run(&self) -> u8;

    #[timethis(timer = JOBS)]
    fn provided(&self) -> u8 {
        self.run()
    }
}

static JOBS: Sktimer = Sktimer::new();

impl Job for Machine<u8> {
    #[timethis(timer = JOBS)]
    fn run(&self) -> u8 {
        self.value
    }
}

fn main() {
    let _ = generic([1, 2, 3]);
    let _ = longest("a", "bc");
    let _ = elided(" x ");
    let _ = impl_trait_arg([1, 2]).count();
    let _ = r#match(1);
    let _ = match_timer();
    let _ = with_other_attributes();
    let _ = never_returns as fn() -> !;
    let _ = async_borrow("s", &1);
    let _ = async_impl_trait();
    let _ = async_question_mark("1");
    let _ = returns_future();
    let mut machine: Machine<u8> = Machine::new();
    let _ = machine.by_ref();
    machine.by_mut(2);
    let _ = machine.with_own_field();
    let _ = machine.r#try();
    let _ = Machine::<u8>::try_timer();
    let _ = machine.provided();
    let _ = machine.async_by_ref();
    let _ = machine.async_given();
    let _ = Box::new(Machine::<u8>::new()).boxed();
    let _ = machine.async_by_value();
    let _ = Machine::<u8>::new().by_value();
    let _ = Machine::<u8>::by_ref_timer().num_times();
}
