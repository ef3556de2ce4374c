//! Where the driver's ops come from: write op *i* and read op *j*, each a pure function of
//! its index, and the name each is recorded under. The built-in shop's [`OpStream`] is one
//! source (its impl is in `mix`); a pack's stream (`pack::ops`) is another. The driver, the recorder and the floor
//! see only this trait, so the shop and a team's pack are driven by one loop.

use crate::metrics::OpKey;

pub trait OpSource: Send + Sync + 'static {
    /// A write op, ready to execute (built before its due time, so building it is not part
    /// of its latency).
    type Write: Send + Sync + 'static;
    type Read: Send + Sync + 'static;
    /// Write op `i`; `None` when the stream sends no writes.
    fn write_op(&self, i: u64) -> Option<Self::Write>;
    /// Read op `j`; `None` when the stream sends no reads.
    fn read_op(&self, j: u64) -> Option<Self::Read>;
    /// What a write is recorded under (`write.<name>`).
    fn write_key(op: &Self::Write) -> OpKey;
    /// What a read is recorded under (`read.<name>`).
    fn read_key(op: &Self::Read) -> OpKey;
}
