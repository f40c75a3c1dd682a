use skprocess::child_init;

#[child_init]
fn setup<T: Default>() {
    let _ = T::default();
}

fn main() {}
