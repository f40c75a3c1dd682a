use skprocess::timethis;

#[timethis]
async fn count() -> u32 {
    let n: u32 = 3;
    n.to_string()
}

fn main() {}
