use skprocess::timethis;

#[timethis]
pub enum State {
    Idle,
    Busy,
}

fn main() {}
