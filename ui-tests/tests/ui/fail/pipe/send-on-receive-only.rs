use skprocess::pipe::Pipe;

fn main() -> Result<(), skprocess::pipe::PipeError> {
    let (anchor, point) = Pipe::one_way()?;
    // The point of a one-way pipe only receives, its anchor only sends.
    point.send(&1_u8)?;
    let _: u8 = anchor.recv()?;
    Ok(())
}
