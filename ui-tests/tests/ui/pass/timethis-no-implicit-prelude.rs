#![no_implicit_prelude]

static SHARED: ::skprocess::timing::Sktimer = ::skprocess::timing::Sktimer::new();

#[::skprocess::timethis]
fn own(x: u32) -> u32 {
    x
}

#[::skprocess::timethis(timer = SHARED, threshold = 0.0, max_times = 10)]
fn shared() -> ::std::result::Result<u8, ::std::string::String> {
    ::std::result::Result::Ok(1)
}

struct Worker;

impl Worker {
    #[::skprocess::timethis(max_times = 3)]
    fn work(&self) -> u8 {
        0
    }

    #[::skprocess::timethis]
    async fn work_async(&mut self) -> ::std::vec::Vec<u8> {
        ::std::vec::Vec::new()
    }
}

fn main() {
    own(1);
    let _ = shared();
    let mut worker = Worker;
    worker.work();
    let _ = worker.work_async();
    let _ = own_timer().num_times();
    let _ = Worker::work_timer().num_times();
    let _ = Worker::work_async_timer();
}
