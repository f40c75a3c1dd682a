use skprocess::timethis;
use skprocess::timing::Sktimer;

static A: Sktimer = Sktimer::new();
static B: Sktimer = Sktimer::new();

#[timethis(timer = A, timer = B)]
fn work() {}

fn main() {}
