use skprocess::child_init;

struct Settings;

impl Settings {
    #[child_init]
    fn load(&self) {}
}

fn main() {}
