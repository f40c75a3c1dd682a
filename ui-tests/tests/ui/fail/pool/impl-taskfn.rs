use skprocess::pool::mode::{Plain, Value};
use skprocess::pool::{TaskError, TaskFn};

// A type of one's own cannot pose as a task: `TaskFn` is sealed.
#[derive(Clone, Copy)]
struct MyToken;

impl TaskFn<Plain, Value, u8> for MyToken {
    type Output = u8;

    fn call_task(self, input: u8) -> Result<u8, TaskError> {
        Ok(input)
    }
}

fn main() {}
