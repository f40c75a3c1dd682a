use skprocess::pool::Pool;

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {
    let pool = Pool::new(1).unwrap();
    // `add` takes two arguments: items must be pairs, unpacked with `star()`.
    let _ = pool.map(add, [(1, 2), (3, 4)]);
}
