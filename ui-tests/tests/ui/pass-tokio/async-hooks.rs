//! Every lifecycle method can be an `async fn`, in every form a sync one can take, mixed with
//! sync ones (with skprocess's `tokio` feature).

use skprocess::prelude::*;

#[skprocess(runs = 2, timeouts(run = 5.0, error = 5.0))]
struct AllAsync {
    n: u32,
}

#[skprocess]
impl AllAsync {
    async fn __prerun__(&mut self, cx: &Context) {
        let _ = cx.current_run();
    }

    async fn __run__(&mut self, cx: &mut Context) -> Result<(), String> {
        cx.tell_async(self.n).await.map_err(|e| e.to_string())?;
        self.n += 1;
        Ok(())
    }

    async fn __postrun__(&self) {}

    async fn __onfinish__(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    async fn __result__(&mut self) -> Result<u32, String> {
        Ok(self.n)
    }

    async fn __error__(&mut self, cx: &mut Context, error: &ProcessError) -> Result<u32, ProcessError> {
        let _ = (cx, error);
        Ok(0)
    }
}

#[skprocess]
struct Mixed;

#[skprocess]
impl Mixed {
    fn __prerun__(&mut self) {}

    async fn __run__(&mut self) {}

    async fn __error__(&mut self, error: ProcessError) -> String {
        error.to_string()
    }

    fn __result__(&mut self) -> String {
        String::new()
    }
}

#[skprocess]
struct UnitResult;

#[skprocess]
impl UnitResult {
    async fn __run__(&mut self) {}

    async fn __result__(&mut self) {}
}

fn main() {
    let _ = (
        Skprocess::new(AllAsync { n: 0 }),
        Skprocess::new(Mixed),
        Skprocess::new(UnitResult),
    );
}
