use skprocess::prelude::*;

#[skprocess]
struct Repeat<T> {
    value: T,
}

#[skprocess]
impl<T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static> Repeat<T> {
    fn __run__(&mut self) {}
}

fn main() {
    let _ = Skprocess::new(Repeat { value: 1u32 });
}
use skprocess::serde;
