use skprocess::prelude::*;

#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Err;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Some;
#[allow(dead_code)]
struct None;
#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct Duration;
#[allow(dead_code)]
struct Context;
#[allow(dead_code)]
struct ProcessConfig;
#[allow(dead_code)]
mod serde {}
#[allow(dead_code)]
mod core {}

#[skprocess(runs = 1, join_in = 2.0, timeouts(result = 1.0))]
struct Worker {
    count: u32,
}

#[skprocess]
impl Worker {
    fn __run__(&mut self) {
        self.count += 1;
    }
    fn __result__(&mut self) -> ::std::result::Result<u32, ::std::string::String> {
        ::std::result::Result::Ok(self.count)
    }
}

#[allow(dead_code)]
struct __SkRegistration;
#[allow(dead_code)]
struct ProcessEntry;
#[allow(dead_code)]
mod linkme {}

#[skprocess(runs = 1)]
struct Echo<T> {
    value: T,
}

#[skprocess]
impl<T: skprocess::Transferable + ::std::clone::Clone> Echo<T> {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> T {
        self.value.clone()
    }
}

skprocess::register!(Echo<u32>);

fn main() {
    let _ = Skprocess::new(Worker { count: 0 });
    let _ = Skprocess::new(Echo { value: 1u32 });
}
