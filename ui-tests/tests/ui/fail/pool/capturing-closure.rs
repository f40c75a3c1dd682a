use skprocess::pool::Pool;

fn main() {
    let pool = Pool::new(1).unwrap();
    let offset = 10u64;
    // The task captures `offset`: it cannot travel to a worker as a code address.
    let _ = pool.map(move |x: u64| x + offset, 0..4);
}
