//! A pack's parameters: typed values drawn per op from seeded distributions. The value of
//! parameter `name` for op `index` is a pure function of (seed, index, name): each is drawn
//! from its own ChaCha stream (the shop's `workload::rng`), keyed by the seed and a hash of
//! the name, so adding a parameter or drawing them in another order changes no other value.
//! Key ranges use the shop's samplers (`workload::keys`): uniform, Zipf, hotspot.

use std::collections::BTreeMap;

use crate::dataset::NAME_WORDS;
use crate::db::sql::{Param, ParamKind};
use crate::workload::keys::{KeyDist, KeySampler};
use crate::workload::rng::Rng;

/// One end of a range: a number, or a dataset size by name (`1..=accounts`).
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Int(i64),
    Size(String),
}

impl Bound {
    fn resolve(&self, sizes: &BTreeMap<String, i64>) -> Result<i64, String> {
        match self {
            Bound::Int(n) => Ok(*n),
            Bound::Size(name) => sizes
                .get(name)
                .copied()
                .ok_or_else(|| format!("unknown dataset size `{name}`")),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Int(n) => write!(f, "{n}"),
            Bound::Size(s) => f.write_str(s),
        }
    }
}

/// An inclusive integer range `lo..=hi`.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub lo: Bound,
    pub hi: Bound,
}

impl Range {
    /// Reads `LO..=HI`, each end an integer or a name.
    pub fn parse(text: &str) -> Result<Range, String> {
        let bad = || {
            format!(
                "expected LO..=HI (integers or dataset sizes, e.g. \"1..=accounts\"), got {text:?}"
            )
        };
        let (lo, hi) = text.split_once("..=").ok_or_else(bad)?;
        let bound = |s: &str| {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                Some(Bound::Int(n))
            } else if super::sql::is_name(s) {
                Some(Bound::Size(s.to_string()))
            } else {
                None
            }
        };
        Ok(Range {
            lo: bound(lo).ok_or_else(bad)?,
            hi: bound(hi).ok_or_else(bad)?,
        })
    }

    /// The range's ends with `sizes` in place of names; `Err` when a name is unknown or the
    /// range is empty.
    pub fn resolve(&self, sizes: &BTreeMap<String, i64>) -> Result<(i64, i64), String> {
        let lo = self.lo.resolve(sizes)?;
        let hi = self.hi.resolve(sizes)?;
        if hi < lo {
            return Err(format!("{self} is empty ({lo}..={hi})"));
        }
        Ok((lo, hi))
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.lo, self.hi)
    }
}

/// How one parameter is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamSpec {
    /// An integer in a range, by a key distribution (uniform, zipf, hotspot).
    Range { dist: KeyDist, range: Range },
    /// One of the values, each as likely (all integers or all text).
    Choice(Vec<Param>),
    /// `count` words of the shop's vocabulary, separated by single spaces.
    Words { count: u32 },
}

impl ParamSpec {
    /// The type its values are bound with.
    pub fn kind(&self) -> ParamKind {
        match self {
            ParamSpec::Range { .. } => ParamKind::Int,
            ParamSpec::Choice(values) => values.first().map_or(ParamKind::Text, Param::kind),
            ParamSpec::Words { .. } => ParamKind::Text,
        }
    }
}

/// The most words one `words` parameter draws.
pub const MAX_WORDS: u32 = 64;

enum Sampler {
    Range { lo: i64, keys: KeySampler },
    Choice(Vec<Param>),
    Words(u32),
}

/// The samplers of a pack's parameters for given dataset sizes, built once per run.
pub struct Params {
    seed: u64,
    samplers: BTreeMap<String, (u64, Sampler)>,
}

/// The stream of parameter `name` (FNV-1a of the name): independent of every other name.
fn stream_of(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "pack.parameter.".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn all_words() -> impl Iterator<Item = &'static str> {
    NAME_WORDS.iter().flat_map(|list| list.iter().copied())
}

impl Params {
    /// Samplers for `specs` at `sizes`. `Err`: (parameter, problem) for each range that is
    /// empty or names an unknown size.
    pub fn new(
        seed: u64,
        specs: &BTreeMap<String, ParamSpec>,
        sizes: &BTreeMap<String, i64>,
    ) -> Result<Params, Vec<(String, String)>> {
        let mut samplers = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, spec) in specs {
            let sampler = match spec {
                ParamSpec::Range { dist, range } => match range.resolve(sizes) {
                    Ok((lo, hi)) => Sampler::Range {
                        lo,
                        keys: KeySampler::new(dist.clone(), hi - lo + 1),
                    },
                    Err(e) => {
                        problems.push((name.clone(), e));
                        continue;
                    }
                },
                ParamSpec::Choice(values) => Sampler::Choice(values.clone()),
                ParamSpec::Words { count } => Sampler::Words(*count),
            };
            samplers.insert(name.clone(), (stream_of(name), sampler));
        }
        if problems.is_empty() {
            Ok(Params { seed, samplers })
        } else {
            Err(problems)
        }
    }

    /// The value of parameter `name` for op `index`; `None` for a name that is no parameter.
    pub fn draw(&self, index: u64, name: &str) -> Option<Param> {
        let (stream, sampler) = self.samplers.get(name)?;
        let mut rng = Rng::derive(self.seed, *stream, index);
        Some(match sampler {
            Sampler::Range { lo, keys } => Param::Int(lo - 1 + keys.sample(&mut rng)),
            Sampler::Choice(values) => {
                values[rng.range(0, values.len() as i64 - 1) as usize].clone()
            }
            Sampler::Words(count) => {
                let n = all_words().count() as i64;
                let words: Vec<&str> = (0..*count)
                    .map(|_| {
                        all_words()
                            .nth(rng.range(0, n - 1) as usize)
                            .unwrap_or("word")
                    })
                    .collect();
                Param::Text(words.join(" "))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[(&str, ParamSpec)]) -> BTreeMap<String, ParamSpec> {
        list.iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect()
    }

    fn range(dist: KeyDist, text: &str) -> ParamSpec {
        ParamSpec::Range {
            dist,
            range: Range::parse(text).unwrap(),
        }
    }

    fn int(p: Option<Param>) -> i64 {
        match p {
            Some(Param::Int(n)) => n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    #[test]
    fn ranges_read_and_resolve_sizes() {
        let sizes = BTreeMap::from([("accounts".to_string(), 50)]);
        let r = Range::parse("1..=accounts").unwrap();
        assert_eq!(r.resolve(&sizes), Ok((1, 50)));
        assert_eq!(
            Range::parse(" -5 ..= 5").unwrap().resolve(&sizes),
            Ok((-5, 5))
        );
        assert!(Range::parse("1..accounts").is_err());
        assert!(Range::parse("1..=a-b").is_err());
        assert!(Range::parse("10..=1")
            .unwrap()
            .resolve(&sizes)
            .unwrap_err()
            .contains("empty"));
        assert!(Range::parse("1..=users")
            .unwrap()
            .resolve(&sizes)
            .unwrap_err()
            .contains("`users`"));
    }

    #[test]
    fn uniform_stays_in_range_and_replays_by_seed_and_index() {
        let specs = specs(&[("n", range(KeyDist::Uniform, "1..=10"))]);
        let sizes = BTreeMap::new();
        let a = Params::new(7, &specs, &sizes).unwrap();
        let b = Params::new(7, &specs, &sizes).unwrap();
        let other_seed = Params::new(8, &specs, &sizes).unwrap();
        let draws: Vec<i64> = (0..2_000).map(|i| int(a.draw(i, "n"))).collect();
        assert!(draws.iter().all(|v| (1..=10).contains(v)));
        // Every value of a 10-value range shows up in 2,000 uniform draws.
        for v in 1..=10 {
            assert!(draws.contains(&v), "{v} never drawn");
        }
        // The same (seed, index) gives the same value, in any order of asking.
        for i in (0..2_000).rev() {
            assert_eq!(int(b.draw(i, "n")), draws[i as usize]);
        }
        let differs = (0..100).filter(|i| int(other_seed.draw(*i, "n")) != draws[*i as usize]);
        assert!(differs.count() > 50, "another seed gives another stream");
        assert_eq!(a.draw(0, "missing"), None);
    }

    #[test]
    fn parameters_draw_independently_of_each_other() {
        let one = specs(&[("a", range(KeyDist::Uniform, "1..=1000000"))]);
        let two = specs(&[
            ("a", range(KeyDist::Uniform, "1..=1000000")),
            ("b", range(KeyDist::Uniform, "1..=1000000")),
        ]);
        let sizes = BTreeMap::new();
        let p1 = Params::new(3, &one, &sizes).unwrap();
        let p2 = Params::new(3, &two, &sizes).unwrap();
        for i in 0..100 {
            assert_eq!(p1.draw(i, "a"), p2.draw(i, "a"));
        }
        let same = (0..100).filter(|i| p2.draw(*i, "a") == p2.draw(*i, "b"));
        assert!(same.count() < 5, "two names are two streams");
    }

    #[test]
    fn hotspot_sends_most_draws_to_the_hot_keys() {
        // 1000 keys, 10% hot, 90% of draws to them: the 100 most drawn keys get about 90%.
        let specs = specs(&[(
            "k",
            range(
                KeyDist::Hotspot {
                    hot_keys: 0.1,
                    hot_ops: 0.9,
                },
                "1001..=2000",
            ),
        )]);
        let p = Params::new(1, &specs, &BTreeMap::new()).unwrap();
        let mut counts = vec![0u32; 1000];
        for i in 0..20_000 {
            let k = int(p.draw(i, "k"));
            assert!((1001..=2000).contains(&k), "{k}");
            counts[(k - 1001) as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..100].iter().sum();
        let share = f64::from(top) / 20_000.0;
        assert!((0.87..0.93).contains(&share), "hot share {share}");
    }

    #[test]
    fn choices_and_words() {
        let specs = specs(&[
            (
                "c",
                ParamSpec::Choice(vec![Param::Text("a".into()), Param::Text("b".into())]),
            ),
            ("w", ParamSpec::Words { count: 3 }),
        ]);
        let p = Params::new(5, &specs, &BTreeMap::new()).unwrap();
        let mut seen = Vec::new();
        for i in 0..200 {
            let c = p.draw(i, "c").unwrap();
            assert!(c == Param::Text("a".into()) || c == Param::Text("b".into()));
            if !seen.contains(&c) {
                seen.push(c);
            }
            let Some(Param::Text(w)) = p.draw(i, "w") else {
                panic!("words are text")
            };
            let words: Vec<&str> = w.split(' ').collect();
            assert_eq!(words.len(), 3, "{w}");
            assert!(words.iter().all(|x| all_words().any(|y| y == *x)), "{w}");
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(specs["c"].kind(), ParamKind::Text);
        assert_eq!(specs["w"].kind(), ParamKind::Text);
    }

    #[test]
    fn an_empty_range_is_refused_with_its_name() {
        let specs = specs(&[("k", range(KeyDist::Uniform, "1..=accounts"))]);
        let sizes = BTreeMap::from([("accounts".to_string(), 0)]);
        let Err(problems) = Params::new(1, &specs, &sizes) else {
            panic!("an empty range was accepted")
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "k");
        assert!(
            problems[0].1.contains("1..=accounts is empty (1..=0)"),
            "{problems:?}"
        );
    }
}
