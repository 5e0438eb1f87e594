//! exp, sqrt and reciprocal square root by lookup (constructions.md item 9), correctly
//! rounded and bit-exact with `Float::exp_fn`, `Float::sqrt` and `Float::rsqrt`.
//!
//! # Construction: a staircase on the input's rank
//!
//! The encoding orders the values of one sign monotonically (exponent above significand, the
//! leading one explicit, zero = 0), so for every value `v` the comparison `[x >= v]` is ONE
//! threshold gate on one of two shared linear forms: `mag - 2^(p+q) * sign >= enc(v)` for
//! `v > 0`, and `2^(p+q) * (1 - sign) - mag >= -mag(v)` for `v < 0` (`mag` the unsigned value
//! of the low `p + q` bits); `[x >= 0]` is `!sign`. Enumerating all values in increasing order
//! (`Format::all_values`), the reference result `f(x)` is a step function of the rank; at each
//! rank where it changes, one comparison gate `T_r = [x >= v_r]` joins the bank (level 1), and
//! output bit k is `[f_k(v_min) + sum_r (f_k(v_r) - f_k(v_(r-1))) T_r >= 1]` (level 2).
//! Saturated, flushed and constant ranges (e.g. `exp(x) = round(1)` near 0, `sqrt(x < 0) = 0`)
//! cost nothing: the function does not change there.
//!
//! Depth 2 for every function; gates: one per change point of `f` over the sorted values (at
//! most the number of values, `2^(p+q+1) + 1`), hence the limit [`MAX_TABLE_BITS`].

use crate::circuit::{Builder, Lit};
use crate::float::{Float, Format};
use crate::gadgets::error::{GadgetError, Result};

use super::word::FloatWord;

/// Largest `p + q` for which a lookup table is built (the format then has at most
/// `2^(MAX_TABLE_BITS + 1) + 1` values, all enumerated at build time).
pub const MAX_TABLE_BITS: u32 = 20;

/// The gate `[x >= v]` on the encoding of `x` (see the module docs): depth 1.
fn ge_const(b: &mut Builder, x: &FloatWord, v: Float) -> Result<Lit> {
    let fmt = x.fmt;
    let n = (fmt.p() + fmt.q()) as usize;
    let big = 1i64 << n;
    let enc = v.to_bits() & ((1u64 << n) - 1);
    if v.is_zero() {
        return Ok(!x.sign());
    }
    let mag = &x.bits[..n];
    if !v.is_negative() {
        let mut t: Vec<(Lit, i64)> = mag
            .iter()
            .enumerate()
            .map(|(j, &l)| (l, 1i64 << j))
            .collect();
        t.push((x.sign(), -big));
        Ok(b.threshold(&t, enc as i64)?)
    } else {
        // big * (1 - s) - mag >= -enc  <=>  -mag - big * s >= -enc - big
        let mut t: Vec<(Lit, i64)> = mag
            .iter()
            .enumerate()
            .map(|(j, &l)| (l, -(1i64 << j)))
            .collect();
        t.push((x.sign(), -big));
        Ok(b.threshold(&t, -(enc as i64) - big)?)
    }
}

/// Any function of one float value as a depth-2 staircase on the input's rank (module docs).
///
/// Errors: `FormatMismatch` if `f` returns a value of another format; `Unsupported` when
/// `p + q > MAX_TABLE_BITS`.
pub fn unary_table(
    b: &mut Builder,
    op: &'static str,
    x: &FloatWord,
    f: impl Fn(Float) -> Float,
) -> Result<FloatWord> {
    let fmt: Format = x.fmt;
    if fmt.p() + fmt.q() > MAX_TABLE_BITS {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!(
                "p + q = {} > {MAX_TABLE_BITS}: the lookup table enumerates all 2^(p+q+1) values",
                fmt.p() + fmt.q()
            ),
        });
    }
    let width = fmt.width() as usize;
    let mut vals = fmt.all_values();
    let Some(first) = vals.next() else {
        return Ok(FloatWord::constant(fmt, 0));
    };
    let r0 = f(first);
    if r0.format() != fmt {
        return Err(GadgetError::FormatMismatch {
            op,
            left: fmt.to_string(),
            right: r0.format().to_string(),
        });
    }
    let mut prev = r0.to_bits();
    let mut stairs: Vec<Vec<(Lit, i64)>> = vec![Vec::new(); width];
    for v in vals {
        let r = f(v);
        if r.format() != fmt {
            return Err(GadgetError::FormatMismatch {
                op,
                left: fmt.to_string(),
                right: r.format().to_string(),
            });
        }
        let cur = r.to_bits();
        if cur != prev {
            let g = ge_const(b, x, v)?;
            for (k, st) in stairs.iter_mut().enumerate() {
                let d = ((cur >> k) & 1) as i64 - ((prev >> k) & 1) as i64;
                if d != 0 {
                    st.push((g, d));
                }
            }
            prev = cur;
        }
    }
    let mut bits = Vec::with_capacity(width);
    let r0 = r0.to_bits();
    for (k, st) in stairs.iter().enumerate() {
        let f0 = ((r0 >> k) & 1) as i64;
        bits.push(b.threshold(st, 1 - f0)?);
    }
    FloatWord::new(fmt, bits)
}

/// `round(e^x)`, correctly rounded (bit-exact with `Float::exp_fn`; saturating, flushing).
/// Depth 2 (lookup on the input's rank; see the module docs). Errors: `Unsupported` when
/// `p + q > MAX_TABLE_BITS`.
pub fn exp(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    unary_table(b, "float::exp", x, |v| v.exp_fn())
}

/// `round(sqrt(x))`, correctly rounded, `sqrt` of a negative value is 0 (bit-exact with
/// `Float::sqrt`). Depth 2. Errors: `Unsupported` when `p + q > MAX_TABLE_BITS`.
pub fn sqrt(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    unary_table(b, "float::sqrt", x, |v| v.sqrt())
}

/// `round(1 / sqrt(x))` for `x > 0`, and the largest finite positive value for `x <= 0`
/// (bit-exact with `Float::rsqrt`). Depth 2. Errors: `Unsupported` when
/// `p + q > MAX_TABLE_BITS`.
pub fn rsqrt(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    unary_table(b, "float::rsqrt", x, |v| v.rsqrt())
}
