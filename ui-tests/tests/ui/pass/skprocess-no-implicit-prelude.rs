#![no_implicit_prelude]

extern crate skprocess;

#[skprocess::skprocess(runs = 2, lives = 2, timeouts(run = 1.5))]
struct Worker {
    count: u32,
}

#[skprocess::skprocess]
impl Worker {
    fn __config__(&self, config: &mut skprocess::ProcessConfig) {
        config.timer_window = 10;
    }
    fn __prerun__(&mut self, cx: &mut skprocess::Context) {
        let _ = cx.current_run();
    }
    fn __run__(&mut self) -> ::std::result::Result<(), ::std::string::String> {
        self.count += 1;
        ::std::result::Result::Ok(())
    }
    fn __result__(&mut self) -> u32 {
        self.count
    }
    fn __error__(&mut self, error: skprocess::ProcessError) -> u32 {
        let _ = error;
        0
    }
}

#[skprocess::skprocess(runs = 1)]
struct Echo<T> {
    value: T,
}

#[skprocess::skprocess]
impl<T: skprocess::Transferable + ::std::clone::Clone> Echo<T> {
    fn __run__(&mut self) {}
    fn __result__(&mut self) -> T {
        ::std::clone::Clone::clone(&self.value)
    }
}

skprocess::register!(Echo<u32>);

fn main() {
    let _ = skprocess::Skprocess::new(Worker { count: 0 });
    skprocess::register!(Echo<u8>);
    let _ = skprocess::Skprocess::new(Echo { value: 1u8 });
    let _ = skprocess::Skprocess::new(Echo { value: 1u32 });
}
