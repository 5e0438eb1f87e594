//! Seeded random circuits for tests and benchmarks.
//!
//! Everything here is deterministic in its `seed` and built through [`Builder`], so the
//! circuits obey every netlist invariant (hash-consing, constant and negation folding, levels).
//! The generator uses its own small PRNG ([`SplitMix64`]) so that the library does not depend on
//! `rand` and the same seed gives the same circuit on every platform and version.
//!
//! - [`random_circuit`]: a random DAG of mixed gates (AND/OR of complemented literals, threshold
//!   gates with positive and negative weights, banks, majority, XOR, multiplexers, constants),
//!   deep or wide depending on [`RandomCircuitSpec::depth_bias`]: the acceptance circuits of the
//!   evaluators.
//! - [`layered`]: a levelized circuit of `layers` layers of `width` gates of one shape
//!   ([`LayerGate`]), the benchmark shapes (2-input AND/OR, unit-weight majority, wide weighted
//!   gates, a mixed random levelized circuit of millions of gates).

use super::builder::Builder;
use super::error::{CircuitError, Result};
use super::ids::Lit;
use super::netlist::Circuit;

/// The SplitMix64 generator (Steele, Lea and Flood 2014): 64 bits of state, one multiply-xorshift
/// mix per output. Not cryptographic; statistically good enough for test circuits.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`0` when `n == 0`), by Lemire's multiply-shift (bias below
    /// `n / 2^64`, irrelevant here).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A uniform value in `lo..=hi` (requires `lo <= hi`).
    #[inline]
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi as i128 - lo as i128 + 1) as u128;
        if span > u64::MAX as u128 {
            return self.next_u64() as i64;
        }
        (lo as i128 + self.below(span as u64) as i128) as i64
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }

    /// A fair coin.
    #[inline]
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

/// Parameters of [`random_circuit`].
///
/// The generator performs `gates` gate-creating builder operations; folding and hash-consing
/// may make the final gate count somewhat smaller (and XOR/multiplexer operations add two
/// levels each), so treat `gates` as a size, not an exact count.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomCircuitSpec {
    /// Number of primary inputs (one input word "x"); at least 1.
    pub inputs: u32,
    /// Number of gate-creating operations.
    pub gates: u32,
    /// Largest fan-in of AND/OR/threshold/bank gates (at least 2).
    pub max_fan_in: u32,
    /// Largest |weight| of threshold and bank gates (at least 1).
    pub max_weight: i64,
    /// Probability that an operation is a bank (one weighted sum, several thresholds).
    pub bank_prob: f64,
    /// Largest number of thresholds of a bank (at least 1).
    pub max_bank: u32,
    /// Probability that an operand is a constant literal (folded away by the builder).
    pub const_prob: f64,
    /// Probability that an operand is drawn from the 8 most recent results instead of all
    /// wires: near 1 gives deep, narrow circuits; near 0 wide, shallow ones.
    pub depth_bias: f64,
    /// Number of output bits (word "y"); results no other gate reads are preferred, and the
    /// constant literals true and false are always among the outputs when `const_prob > 0`.
    pub outputs: u32,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for RandomCircuitSpec {
    fn default() -> Self {
        RandomCircuitSpec {
            inputs: 64,
            gates: 2000,
            max_fan_in: 8,
            max_weight: 9,
            bank_prob: 0.15,
            max_bank: 5,
            const_prob: 0.02,
            depth_bias: 0.3,
            outputs: 128,
            seed: 1,
        }
    }
}

fn invalid(what: &str) -> CircuitError {
    // The builder's error type has no variant for bad generator parameters; an invalid name
    // error carries the explanation without extending another module's API.
    CircuitError::InvalidRegionName(format!("random circuit spec: {what}"))
}

/// A random DAG of mixed gates following `spec` (see [`RandomCircuitSpec`]).
///
/// Operations, chosen at random: AND and OR of random literals (random complements), threshold
/// gates with weights in `[-max_weight, max_weight] \ {0}` and a threshold anywhere in (and
/// slightly beyond) the attainable range, banks of several such thresholds on one sum,
/// majority, XOR and multiplexers. Errors only for a degenerate spec (`inputs == 0`,
/// `max_fan_in < 2`, `max_weight < 1`, `max_bank < 1`) or a builder limit.
pub fn random_circuit(spec: &RandomCircuitSpec) -> Result<Circuit> {
    if spec.inputs == 0 {
        return Err(invalid("inputs must be at least 1"));
    }
    if spec.max_fan_in < 2 {
        return Err(invalid("max_fan_in must be at least 2"));
    }
    if spec.max_weight < 1 || spec.max_weight > (1 << 40) {
        return Err(invalid("max_weight must be in 1..=2^40"));
    }
    if spec.max_bank < 1 {
        return Err(invalid("max_bank must be at least 1"));
    }
    let mut rng = SplitMix64::new(spec.seed ^ 0x7463_7661_725f_7263);
    let mut b = Builder::new();
    let inputs = b.input_word("x", spec.inputs)?;
    // Pool of wires to read (as positive literals); `used[i]` tells whether pool[i] was read.
    let mut pool: Vec<Lit> = inputs.clone();
    let mut used: Vec<bool> = vec![true; pool.len()];
    let mut recent: Vec<usize> = Vec::new();

    let pick =
        |rng: &mut SplitMix64, pool: &Vec<Lit>, used: &mut Vec<bool>, recent: &Vec<usize>| {
            if rng.chance(spec.const_prob) {
                return Lit::constant(rng.coin());
            }
            let i = if !recent.is_empty() && rng.chance(spec.depth_bias) {
                recent[rng.below(recent.len() as u64) as usize]
            } else {
                rng.below(pool.len() as u64) as usize
            };
            used[i] = true;
            let l = pool[i];
            if rng.coin() {
                !l
            } else {
                l
            }
        };

    for _ in 0..spec.gates {
        let fan_in = 2 + rng.below(spec.max_fan_in as u64 - 1) as usize;
        let mut lits: Vec<Lit> = (0..fan_in)
            .map(|_| pick(&mut rng, &pool, &mut used, &recent))
            .collect();
        let op = rng.below(100);
        let results: Vec<Lit> = if rng.chance(spec.bank_prob) {
            let (terms, lo, hi) = random_terms(&mut rng, &lits, spec.max_weight);
            let k = 1 + rng.below(spec.max_bank as u64) as usize;
            let thetas: Vec<i64> = (0..k).map(|_| rng.range_i64(lo - 1, hi + 1)).collect();
            b.bank(&terms, &thetas)?
        } else if op < 22 {
            vec![b.and(&lits)?]
        } else if op < 44 {
            vec![b.or(&lits)?]
        } else if op < 52 {
            lits.truncate(2);
            vec![b.and2(lits[0], lits[1])?]
        } else if op < 60 {
            lits.truncate(2);
            vec![b.or2(lits[0], lits[1])?]
        } else if op < 68 {
            vec![b.majority(&lits)?]
        } else if op < 73 {
            lits.truncate(3);
            vec![b.xor(&lits)?]
        } else if op < 77 && lits.len() >= 3 {
            vec![b.mux(lits[0], lits[1], lits[2])?]
        } else {
            let (terms, lo, hi) = random_terms(&mut rng, &lits, spec.max_weight);
            vec![b.threshold(&terms, rng.range_i64(lo - 1, hi + 1))?]
        };
        for r in results {
            if r.is_constant() {
                continue;
            }
            let pos = Lit::new(r.wire(), false);
            // A hash-consed result may already be in the pool; a duplicate entry is harmless.
            pool.push(pos);
            used.push(false);
            recent.push(pool.len() - 1);
            if recent.len() > 8 {
                recent.remove(0);
            }
        }
    }

    // Outputs: unread results first (in random order), then random literals.
    let mut sinks: Vec<Lit> = pool
        .iter()
        .zip(&used)
        .filter(|(_, &u)| !u)
        .map(|(&l, _)| l)
        .collect();
    for i in (1..sinks.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        sinks.swap(i, j);
    }
    let mut outs: Vec<Lit> = Vec::with_capacity(spec.outputs as usize);
    if spec.const_prob > 0.0 && spec.outputs >= 2 {
        outs.push(Lit::TRUE);
        outs.push(Lit::FALSE);
    }
    let mut s = sinks.into_iter();
    while outs.len() < spec.outputs as usize {
        let l = match s.next() {
            Some(l) => l,
            None => pool[rng.below(pool.len() as u64) as usize],
        };
        outs.push(if rng.coin() { !l } else { l });
    }
    b.output_word("y", &outs)?;
    Ok(b.finish())
}

/// Random nonzero weights for `lits`, with the least and largest attainable sums.
fn random_terms(
    rng: &mut SplitMix64,
    lits: &[Lit],
    max_weight: i64,
) -> (Vec<(Lit, i64)>, i64, i64) {
    let mut lo = 0i64;
    let mut hi = 0i64;
    let terms = lits
        .iter()
        .map(|&l| {
            let mut w = rng.range_i64(1, max_weight);
            if rng.coin() {
                w = -w;
            }
            if w < 0 {
                lo += w;
            } else {
                hi += w;
            }
            (l, w)
        })
        .collect();
    (terms, lo, hi)
}

/// The gate shape of every gate of a [`layered`] circuit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LayerGate {
    /// 2-input AND or OR (chosen at random per gate) of randomly complemented literals.
    AndOr2,
    /// Unit-weight majority of `fan_in` randomly complemented literals (`[sum >= fan_in / 2]`).
    Majority {
        /// Fan-in (at least 2).
        fan_in: u32,
    },
    /// Threshold gate of `fan_in` terms with weights uniform in `[-max_weight, max_weight] \ {0}`
    /// and a threshold uniform in the attainable range.
    Weighted {
        /// Fan-in (at least 2).
        fan_in: u32,
        /// Largest |weight| (1..=2^40).
        max_weight: i64,
    },
    /// A mix: 80% 2-input AND/OR, 10% 3-input majority, 10% 4-input threshold gates with
    /// weights up to 7.
    Mixed,
}

/// Parameters of [`layered`].
#[derive(Clone, Debug, PartialEq)]
pub struct LayeredSpec {
    /// Number of primary inputs (word "x"); at least 2.
    pub inputs: u32,
    /// Gates per layer; at least 1.
    pub width: u32,
    /// Number of layers (the depth); at least 1.
    pub layers: u32,
    /// Shape of every gate.
    pub gate: LayerGate,
    /// How many earlier layers a gate's other operands may come from: 1 reads only the previous
    /// layer (a difflogic-style network), `u32::MAX` any earlier wire including the inputs.
    pub reach: u32,
    /// Seed of the generator.
    pub seed: u64,
}

/// A levelized random circuit: `layers` layers of `width` gates of shape `spec.gate`.
///
/// Layer 0 is the inputs. A gate of layer `l` reads as its first operand the wire
/// `perm_l[i mod |layer l-1|]` of the previous layer, where `perm_l` is a random permutation,
/// so that every wire of the previous layer is read and every gate is live; its other operands
/// are random distinct wires of the previous `reach` layers. The outputs (word "y") are the
/// gates of the last layer. Folding and hash-consing may remove a few gates (e.g. a 2-input
/// gate that happens to repeat another), so the gate count is about `width * layers`.
///
/// Cost: about `width * layers` builder operations, each with a few small allocations, and
/// about 150 bytes per gate of builder memory (a 10M-gate circuit builds in tens of seconds
/// and under 2 GB).
pub fn layered(spec: &LayeredSpec) -> Result<Circuit> {
    if spec.inputs < 2 || spec.width == 0 || spec.layers == 0 || spec.reach == 0 {
        return Err(invalid(
            "layered needs inputs >= 2, width >= 1, layers >= 1, reach >= 1",
        ));
    }
    let fan_in = match spec.gate {
        LayerGate::AndOr2 => 2,
        LayerGate::Majority { fan_in } => fan_in,
        LayerGate::Weighted { fan_in, max_weight } => {
            if !(1..=(1i64 << 40)).contains(&max_weight) {
                return Err(invalid("max_weight must be in 1..=2^40"));
            }
            fan_in
        }
        LayerGate::Mixed => 4,
    };
    if fan_in < 2 {
        return Err(invalid("fan_in must be at least 2"));
    }
    let mut rng = SplitMix64::new(spec.seed ^ 0x6c61_7965_7265_6421);
    let mut b = Builder::new();
    let inputs = b.input_word("x", spec.inputs)?;
    // Wires of all layers, layer after layer; layer_start[l] indexes `wires`.
    let mut wires: Vec<Lit> = inputs;
    let mut layer_start: Vec<usize> = vec![0, wires.len()];
    let mut lits: Vec<Lit> = Vec::with_capacity(fan_in as usize);
    let mut terms: Vec<(Lit, i64)> = Vec::with_capacity(fan_in as usize);
    let mut perm: Vec<u32> = Vec::new();
    for l in 1..=spec.layers as usize {
        let prev = layer_start[l - 1]..layer_start[l];
        let first = if spec.reach as usize >= l {
            0
        } else {
            layer_start[l - spec.reach as usize]
        };
        let span = layer_start[l] - first;
        perm.clear();
        perm.extend(0..prev.len() as u32);
        for i in (1..perm.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            perm.swap(i, j);
        }
        for i in 0..spec.width as usize {
            let a = wires[prev.start + perm[i % perm.len()] as usize];
            let k = match spec.gate {
                LayerGate::Mixed => match rng.below(10) {
                    0 => 3,
                    1 => 4,
                    _ => 2,
                },
                _ => fan_in as usize,
            };
            lits.clear();
            lits.push(a);
            // Distinct operands (a repeated wire would fold the gate away); give up after a
            // few tries when the span is too small.
            let mut tries = 0;
            while lits.len() < k && tries < 8 * k {
                tries += 1;
                let x = wires[first + rng.below(span as u64) as usize];
                if !lits.iter().any(|y| y.wire() == x.wire()) {
                    lits.push(x);
                }
            }
            for x in lits.iter_mut() {
                if rng.coin() {
                    *x = !*x;
                }
            }
            let g = match (spec.gate, k) {
                (LayerGate::AndOr2, _) | (LayerGate::Mixed, 2) => {
                    if lits.len() < 2 {
                        lits.push(Lit::TRUE);
                    }
                    if rng.coin() {
                        b.and2(lits[0], lits[1])?
                    } else {
                        b.or2(lits[0], lits[1])?
                    }
                }
                (LayerGate::Majority { .. }, _) | (LayerGate::Mixed, 3) => b.majority(&lits)?,
                (LayerGate::Weighted { max_weight, .. }, _) => {
                    weighted_gate(&mut b, &mut rng, &lits, max_weight, &mut terms)?
                }
                (LayerGate::Mixed, _) => weighted_gate(&mut b, &mut rng, &lits, 7, &mut terms)?,
            };
            if !g.is_constant() {
                wires.push(g);
            }
        }
        if wires.len() == layer_start[l] {
            // Everything folded to constants (tiny widths only): keep the previous layer.
            let prev_wires: Vec<Lit> = wires[prev].to_vec();
            wires.extend(prev_wires);
        }
        layer_start.push(wires.len());
    }
    let last = layer_start[spec.layers as usize]..layer_start[spec.layers as usize + 1];
    let outs: Vec<Lit> = wires[last].to_vec();
    drop(wires);
    b.output_word("y", &outs)?;
    Ok(b.finish())
}

fn weighted_gate(
    b: &mut Builder,
    rng: &mut SplitMix64,
    lits: &[Lit],
    max_weight: i64,
    terms: &mut Vec<(Lit, i64)>,
) -> Result<Lit> {
    terms.clear();
    let (mut lo, mut hi) = (0i64, 0i64);
    for &l in lits {
        let mut w = rng.range_i64(1, max_weight);
        if rng.coin() {
            w = -w;
        }
        if w < 0 {
            lo += w;
        } else {
            hi += w;
        }
        terms.push((l, w));
    }
    // A threshold strictly inside (lo, hi] gives a real gate.
    b.threshold(terms, rng.range_i64(lo + 1, hi.max(lo + 1)))
}

/// The benchmark circuits shared by `benches/cpu_eval.rs` and `benches/gpu_eval.rs`, so that
/// `cargo bench` compares the two evaluators on identical circuits: a wide level of 2-input
/// AND/OR gates, unit-weight majority gates of fan-in 16, weighted gates of fan-in 32 with
/// weights up to 2^20, and a random levelized circuit of about `big_gates` gates in 20 layers.
pub fn bench_shapes(big_gates: u32) -> Vec<(&'static str, LayeredSpec)> {
    let big_layers = 20;
    vec![
        (
            "and_or2_wide",
            LayeredSpec {
                inputs: 1024,
                width: 32768,
                layers: 4,
                gate: LayerGate::AndOr2,
                reach: 1,
                seed: 1,
            },
        ),
        (
            "majority16",
            LayeredSpec {
                inputs: 1024,
                width: 8192,
                layers: 2,
                gate: LayerGate::Majority { fan_in: 16 },
                reach: 1,
                seed: 2,
            },
        ),
        (
            "weighted32_w2e20",
            LayeredSpec {
                inputs: 1024,
                width: 4096,
                layers: 2,
                gate: LayerGate::Weighted {
                    fan_in: 32,
                    max_weight: 1 << 20,
                },
                reach: 1,
                seed: 3,
            },
        ),
        (
            "mixed_random_big",
            LayeredSpec {
                inputs: 1024,
                width: (big_gates / big_layers).max(1),
                layers: big_layers,
                gate: LayerGate::Mixed,
                reach: u32::MAX,
                seed: 4,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_deterministic_and_spread() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut hist = [0u32; 10];
        for _ in 0..10_000 {
            hist[a.below(10) as usize] += 1;
        }
        assert!(hist.iter().all(|&h| (800..1200).contains(&h)), "{hist:?}");
    }

    #[test]
    fn random_circuit_has_many_mixed_gates() {
        let c = random_circuit(&RandomCircuitSpec::default()).unwrap();
        let lv = c.levelize();
        assert!(lv.num_gates() > 500, "{}", lv.num_gates());
        assert!(!lv.thresholds.is_empty());
        assert!(lv.bank_offsets.windows(2).any(|w| w[1] - w[0] > 1));
        assert!(lv.gate_offsets.len() > 100);
        assert!(lv.depth() > 5);
        // Same seed, same circuit.
        assert_eq!(c, random_circuit(&RandomCircuitSpec::default()).unwrap());
    }

    #[test]
    fn layered_keeps_every_layer_live() {
        let spec = LayeredSpec {
            inputs: 64,
            width: 500,
            layers: 6,
            gate: LayerGate::Mixed,
            reach: u32::MAX,
            seed: 3,
        };
        let lv = layered(&spec).unwrap().levelize();
        assert_eq!(lv.depth(), 6);
        assert!(lv.num_gates() >= 2900, "{}", lv.num_gates());
        let spec = LayeredSpec {
            gate: LayerGate::Weighted {
                fan_in: 32,
                max_weight: 1 << 20,
            },
            reach: 1,
            ..spec
        };
        let lv = layered(&spec).unwrap().levelize();
        assert_eq!(lv.num_gates(), 3000);
        // A few thresholds at the edge of the range are classified as AND/OR by the levelizer.
        assert_eq!(lv.num_terms(), 3000 * 32);
    }
}
