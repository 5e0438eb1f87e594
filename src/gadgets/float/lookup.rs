//! Any unary function of a float as a lookup circuit (constructions.md item 9), depth 2.

use crate::circuit::{Builder, Lit};
use crate::float::Float;
use rustc_hash::FxHashMap;

use super::super::error::{GadgetError, Result};
use super::FloatWord;

/// Largest number of values of a format [`lookup`] enumerates (2^22: F(p, q) with p + q <= 21).
pub const MAX_LOOKUP_VALUES: u64 = 1 << 22;

/// `f(x)` for every value x of the format, as a circuit: the output is the most common result
/// `y0` except on the inputs where `f` differs from it; each of those inputs gets one minterm
/// gate `[sum_{k: v_k = 1} x_k - sum_{k: v_k = 0} x_k >= popcount(v)]` (depth 1), and output bit
/// k is `y0_k` XOR the OR of the minterms of the inputs whose result differs from `y0` in bit
/// k (depth 2). Exact by construction: the table is `f` itself, evaluated on every canonical
/// encoding, so the circuit agrees with `f` bit for bit on every value of the format (inputs
/// must be canonical encodings, as every gadget produces).
///
/// `f` must return values of the same format. Errors: a format with more than
/// [`MAX_LOOKUP_VALUES`] values, or `f` returning another format.
pub fn lookup(b: &mut Builder, x: &FloatWord, f: impl Fn(Float) -> Float) -> Result<FloatWord> {
    let fmt = x.fmt;
    if fmt.num_values() > MAX_LOOKUP_VALUES {
        return Err(GadgetError::Unsupported {
            op: "float lookup",
            limit: format!(
                "{fmt} has {} values, the lookup limit is {MAX_LOOKUP_VALUES}",
                fmt.num_values()
            ),
        });
    }
    let table: Vec<(u64, u64)> = fmt
        .all_values()
        .map(|v| {
            let y = f(v);
            (v.to_bits(), y)
        })
        .map(|(v, y)| {
            if y.format() != fmt {
                Err(GadgetError::FormatMismatch {
                    op: "float lookup",
                    left: fmt.to_string(),
                    right: y.format().to_string(),
                })
            } else {
                Ok((v, y.to_bits()))
            }
        })
        .collect::<Result<_>>()?;
    let mut counts: FxHashMap<u64, usize> = FxHashMap::default();
    for &(_, y) in &table {
        *counts.entry(y).or_default() += 1;
    }
    let y0 = counts
        .iter()
        .max_by_key(|&(y, c)| (*c, std::cmp::Reverse(*y)))
        .map(|(&y, _)| y)
        .unwrap_or(0);
    let w = fmt.width() as usize;
    let mut ors: Vec<Vec<Lit>> = vec![Vec::new(); w];
    for &(v, y) in &table {
        let diff = y ^ y0;
        if diff == 0 {
            continue;
        }
        let terms: Vec<(Lit, i64)> = (0..w)
            .map(|k| (x.bits[k], if (v >> k) & 1 == 1 { 1 } else { -1 }))
            .collect();
        let m = b.threshold(&terms, v.count_ones() as i64)?;
        for (k, o) in ors.iter_mut().enumerate() {
            if (diff >> k) & 1 == 1 {
                o.push(m);
            }
        }
    }
    let mut bits = Vec::with_capacity(w);
    for (k, o) in ors.iter().enumerate() {
        let any = b.or(o)?;
        bits.push(if (y0 >> k) & 1 == 1 { !any } else { any });
    }
    FloatWord::new(fmt, bits)
}
