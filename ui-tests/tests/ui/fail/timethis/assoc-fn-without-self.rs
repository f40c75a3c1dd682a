use skprocess::timethis;

struct Parser;

impl Parser {
    // No receiver and no `Self`: the macro cannot tell this is inside an impl.
    #[timethis]
    fn helper(x: u8) -> u8 {
        x
    }
}

fn main() {}
