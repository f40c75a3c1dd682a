use skprocess::timethis;

#[timethis]
fn count() -> u32 {
    "three"
}

fn main() {}
