use skprocess::pool::Pool;
use std::rc::Rc;

fn wrap(x: u64) -> Rc<u64> {
    Rc::new(x)
}

fn main() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.map(wrap, 0..4);
}
