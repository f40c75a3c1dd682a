//! Every accepted shape of every lifecycle method, and the result of running them.

use std::time::Duration;

use skprocess::prelude::*;
use skprocess::serde::{Deserialize, Serialize, de::DeserializeOwned};

#[skprocess(runs = 2, lives = 2, timer_window = 16, timeouts(prerun = 5, postrun = 0.5))]
#[derive(Debug, Clone)]
struct AllHooks {
    r#type: String,
    trace: Vec<String>,
}

#[skprocess]
impl AllHooks {
    /// Ordinary associated functions and methods live alongside the hooks.
    fn new() -> Self {
        AllHooks {
            r#type: "all".into(),
            trace: Vec::new(),
        }
    }

    fn note(&mut self, what: &str) {
        self.trace.push(what.to_owned());
    }

    fn __config__(&self, config: &mut ProcessConfig) {
        config.join_in = Some(Duration::from_secs(60));
    }

    fn __prerun__(&mut self, cx: &Context) {
        let _ = cx.lives_left();
        self.note("prerun");
    }

    fn __run__(&mut self, cx: &mut Context) -> Result<(), TellError> {
        self.note("run");
        cx.tell(self.trace.len())
    }

    #[cfg(all())]
    fn __postrun__(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.note("postrun");
        Ok(())
    }

    fn __onfinish__(&self) {}

    fn __result__(&mut self, cx: &mut Context) -> std::io::Result<Vec<String>> {
        let _ = cx.config();
        Ok(self.trace.clone())
    }

    fn __error__(&mut self, cx: &mut Context, error: &ProcessError) -> Result<Vec<String>, ProcessError> {
        let _ = (cx, error);
        Ok(vec![self.r#type.clone()])
    }
}

/// No result, no error hook: `Output` is `()`.
#[skprocess]
struct Minimal;

#[skprocess]
impl Minimal {
    fn __run__(&mut self, cx: &mut Context) {
        cx.stop();
    }
}

/// A generic type with lifetimes in its helper signatures.
#[skprocess(runs = 1)]
#[derive(Serialize, Deserialize)]
#[serde(crate = "skprocess::serde")]
struct Carrier<T> {
    item: T,
}

#[skprocess(crate = "skprocess")]
impl<T> Carrier<T>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    fn borrow_item<'a>(&'a self) -> &'a T {
        &self.item
    }

    fn __run__(&mut self) {
        let _ = self.borrow_item();
    }

    fn __result__(&mut self) -> T {
        self.item.clone()
    }
}

skprocess::register!(Carrier<Vec<u8>>);

fn main() -> Result<(), ProcessError> {
    let all = Skprocess::new(AllHooks::new());
    assert_eq!(all.run()?, ["prerun", "run", "postrun", "prerun", "run", "postrun"]);
    Skprocess::new(Minimal).run()?;
    assert_eq!(Skprocess::new(Carrier { item: vec![1u8] }).run()?, vec![1]);
    Ok(())
}
