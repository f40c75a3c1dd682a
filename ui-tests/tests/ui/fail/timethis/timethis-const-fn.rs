use skprocess::timethis;

#[timethis]
const fn answer() -> u32 {
    42
}

fn main() {}
