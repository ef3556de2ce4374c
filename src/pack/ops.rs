//! A pack's op stream: write op *i* is one of the pack's commands, read op *j* one of its
//! queries, each drawn by the mix's weights from (seed, index), and each op's parameters a
//! pure function of (seed, index, name) — as the shop's stream is, so every backend runs the
//! same ops and a run replays exactly. Writes and reads draw from streams of their own.

use std::collections::BTreeMap;

use super::params::Params;
use crate::metrics::{OpKey, OpName};
use crate::workload::rng::Rng;
use crate::workload::source::OpSource;

/// The mix's streams (the shop's use 1 and 2 with the scenario's seed; a pack's are apart).
const WRITE_STREAM: u64 = 0x7061_636b_0001;
const READ_STREAM: u64 = 0x7061_636b_0002;
/// Reads draw their parameters with the seed moved by this, so that read op *j* and write op
/// *j* do not draw the same values.
const READ_PARAMS_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// One op of a pack: a command or query by name, and its index in its lane's stream (which
/// its parameters are drawn from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PackOp {
    pub name: OpName,
    pub index: u64,
}

pub struct PackStream {
    seed: u64,
    writes: Vec<(OpName, f64)>,
    reads: Vec<(OpName, f64)>,
    write_params: Params,
    read_params: Params,
}

/// The mix as cumulative shares, as the shop's stream keeps it.
fn cumulative(mix: &BTreeMap<String, f64>) -> Vec<(OpName, f64)> {
    let named: BTreeMap<OpName, f64> = mix.iter().map(|(k, w)| (OpName::intern(k), *w)).collect();
    crate::workload::mix::cumulative(&named)
}

fn pick(table: &[(OpName, f64)], seed: u64, stream: u64, i: u64) -> Option<OpName> {
    crate::workload::mix::pick(table, Rng::derive(seed, stream, i).next_f64())
}

impl PackStream {
    /// The stream of a pack's commands (`writes`: name -> weight) and queries (`reads`),
    /// with parameters drawn by `params` and `read_params` (made by [`PackStream::params`]).
    pub fn new(
        seed: u64,
        writes: &BTreeMap<String, f64>,
        reads: &BTreeMap<String, f64>,
        (write_params, read_params): (Params, Params),
    ) -> PackStream {
        PackStream {
            seed,
            writes: cumulative(writes),
            reads: cumulative(reads),
            write_params,
            read_params,
        }
    }

    /// The samplers for writes and for reads at `sizes`. `Err`: (parameter, problem) for
    /// each range that does not fit the sizes.
    pub fn params(
        seed: u64,
        pack: &super::Pack,
        sizes: &BTreeMap<String, i64>,
    ) -> Result<(Params, Params), Vec<(String, String)>> {
        Ok((
            Params::new(seed, &pack.parameters, sizes)?,
            Params::new(seed ^ READ_PARAMS_SEED, &pack.parameters, sizes)?,
        ))
    }

    /// What write ops draw their parameters from.
    pub fn write_params(&self) -> &Params {
        &self.write_params
    }

    /// What read ops draw their parameters from.
    pub fn read_params(&self) -> &Params {
        &self.read_params
    }
}

impl OpSource for PackStream {
    type Write = PackOp;
    type Read = PackOp;

    fn write_op(&self, i: u64) -> Option<PackOp> {
        pick(&self.writes, self.seed, WRITE_STREAM, i).map(|name| PackOp { name, index: i })
    }

    fn read_op(&self, j: u64) -> Option<PackOp> {
        pick(&self.reads, self.seed, READ_STREAM, j).map(|name| PackOp { name, index: j })
    }

    fn write_key(op: &PackOp) -> OpKey {
        OpKey::Write(op.name)
    }

    fn read_key(op: &PackOp) -> OpKey {
        OpKey::Read(op.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(writes: &[(&str, f64)], seed: u64) -> PackStream {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/ledger");
        let pack = super::super::Pack::load(&dir).unwrap();
        let mix = writes.iter().map(|(k, w)| (k.to_string(), *w)).collect();
        let reads = BTreeMap::from([("balance".into(), 1.0), ("activity".into(), 3.0)]);
        let params = PackStream::params(seed, &pack, &pack.sizes).unwrap();
        PackStream::new(seed, &mix, &reads, params)
    }

    #[test]
    fn the_mix_is_followed_and_the_stream_is_a_function_of_seed_and_index() {
        let s = stream(&[("transfer", 1.0)], 7);
        let n = 4_000;
        let activity = (0..n)
            .filter(|j| s.read_op(*j).unwrap().name.as_str() == "activity")
            .count();
        // 3 of every 4 reads, within 4 standard deviations (sqrt(4000 * 0.75 * 0.25) = 27).
        assert!((activity as i64 - 3_000).abs() < 110, "{activity}");
        let again = stream(&[("transfer", 1.0)], 7);
        for i in [0, 1, 99, 3_999] {
            assert_eq!(s.write_op(i), again.write_op(i));
            assert_eq!(s.read_op(i), again.read_op(i));
            assert_eq!(s.write_op(i).unwrap().index, i);
        }
    }

    #[test]
    fn reads_and_writes_draw_apart_and_no_writes_means_none() {
        let s = stream(&[], 7);
        assert_eq!(s.write_op(0), None);
        let same = (0..200)
            .filter(|i| s.write_params().draw(*i, "account") == s.read_params().draw(*i, "account"))
            .count();
        // Zipf over 1000 accounts repeats a value now and then, never for most indexes.
        assert!(same < 100, "{same}");
    }
}
