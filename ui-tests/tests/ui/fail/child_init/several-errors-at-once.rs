use skprocess::child_init;

#[child_init(order = 1.5, first)]
async fn setup<T>(value: T) {
    let _ = value;
}

fn main() {}
