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

fn main() {
    let _ = skprocess::Skprocess::new(Worker { count: 0 });
}
