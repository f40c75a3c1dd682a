// Every name the expansion could use unqualified is shadowed here.
#![allow(dead_code, non_camel_case_types)]

use skprocess::timethis;

struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
struct Sktimer;
struct TimeThis;
struct core;
struct std;
struct f64;
struct usize;
fn concat() {}
fn module_path() {}

static TIMER: skprocess::timing::Sktimer = skprocess::timing::Sktimer::new();

#[timethis]
fn own() {}

#[timethis(timer = TIMER, threshold = 1, max_times = 2)]
fn shared() {}

#[timethis]
async fn own_async() -> u8 {
    1
}

fn main() {
    own();
    shared();
    let _ = own_async();
    let _ = own_timer();
}
