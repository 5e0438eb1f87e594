//! exp, sqrt and reciprocal square root: lookup constructions (docs/float.md item 9) for
//! narrow formats, bit-exact with `Float::exp_fn`, `Float::sqrt` and `Float::rsqrt`, and the
//! dispatch to the arithmetic constructions for wide formats ([`super::exp_poly`],
//! [`super::root`]; the rule is stated on [`exp`] and [`root_uses_table`], and in
//! `docs/float.md` §8).
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
use crate::float::exp_poly::EXP_CR_MAX_BITS;
use crate::float::{Float, Format};
use crate::gadgets::error::{GadgetError, Result};

use super::mul::stair_fn;
use super::word::FloatWord;

/// Largest `p + q` for which a lookup table is built (the format then has at most
/// `2^(MAX_TABLE_BITS + 1) + 1` values, all enumerated at build time).
pub const MAX_TABLE_BITS: u32 = EXP_CR_MAX_BITS;

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

/// `Float::exp_fn(x)`, bit for bit. Construction by format (the same rule as the reference's):
/// for `p + q <= EXP_CR_MAX_BITS` (= `MAX_TABLE_BITS` = 20) the lookup on the input's rank of
/// the correctly rounded exp (depth 2, module docs); for wider formats the circuit of the shared
/// algorithm, [`super::exp_poly::exp_poly`] (depth 10, faithful and almost always correctly
/// rounded; see `docs/float.md`).
pub fn exp(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    let fmt = x.fmt;
    if fmt.p() + fmt.q() <= EXP_CR_MAX_BITS {
        unary_table(b, "float::exp", x, |v| v.exp_fn())
    } else {
        super::exp_poly::exp_poly(b, x)
    }
}

/// Whether [`sqrt`] and [`rsqrt`] use the lookup tables (depth 2, about `2^p + 4 2^q` gates) for
/// this format: `p <= ROOT_TABLE_MAX_P` and `p + q <= MAX_TABLE_BITS`; otherwise the seed and
/// exact-check constructions of [`super::root`].
pub fn root_uses_table(fmt: Format) -> bool {
    fmt.p() <= ROOT_TABLE_MAX_P && fmt.p() + fmt.q() <= MAX_TABLE_BITS
}

/// Largest p at which [`sqrt`] and [`rsqrt`] are lookup tables (see [`root_uses_table`]).
pub const ROOT_TABLE_MAX_P: u32 = 12;

/// sqrt-like functions by the exponent-parity decomposition: for `x > 0` with biased exponent
/// `E = 2A + E_0` and significand m, `f(x)` has significand `S(L)` and biased exponent
/// `sigma * A + c(L)` where `L = m + 2^p E_0` (the significand and the exponent's parity: the
/// true exponent `E + e_min` has the parity of `E_0` since `e_min` is even). This holds for sqrt
/// (`sigma = 1`) and 1/sqrt (`sigma = -1`), and is checked here against the reference for every
/// positive value; `None` when it does not hold (then the rank table is used).
///
/// Significand bits are staircases on the form L (one shared bank, about `2^p` thresholds);
/// exponent bit j is a staircase on the truncated form `(A mod 2^(j+1)) * 2^(p+1) + L`
/// (about `4 * 2^(j+1)` thresholds). Inputs `x <= 0` give the constant `at_nonpositive`,
/// folded into the output gates with the sign and nonzero bits. Depth 2.
fn parity_table(
    b: &mut Builder,
    op: &'static str,
    x: &FloatWord,
    f: impl Fn(Float) -> Float,
    sigma: i64,
    at_nonpositive: Float,
) -> Result<Option<FloatWord>> {
    let fmt = x.fmt;
    let (p, q) = (fmt.p(), fmt.q());
    if fmt.e_min() % 2 != 0 || q < 2 {
        return Ok(None);
    }
    let lsize = 1usize << (p + 1);
    let mut sig: Vec<Option<u64>> = vec![None; lsize];
    let mut cl: Vec<Option<i64>> = vec![None; lsize];
    for e in 0..1u64 << q {
        for m in 1u64 << (p - 1)..1u64 << p {
            let v = fmt
                .from_bits(m | (e << p))
                .map_err(|e| GadgetError::Float(e.to_string()))?;
            let r = f(v);
            if r.format() != fmt || r.is_zero() || r.is_negative() {
                return Ok(None);
            }
            let l = (m | ((e & 1) << p)) as usize;
            let er = (r.exp() - fmt.e_min()) as i64;
            let c = er - sigma * (e >> 1) as i64;
            match (sig[l], cl[l]) {
                (None, None) => {
                    sig[l] = Some(r.sig());
                    cl[l] = Some(c);
                }
                (Some(s0), Some(c0)) if s0 == r.sig() && c0 == c => {}
                _ => return Ok(None),
            }
        }
    }
    // Don't-care L values (unreachable by nonzero inputs) copy their nearest defined neighbour.
    let first = sig.iter().position(|s| s.is_some()).unwrap_or(0);
    let (mut ps, mut pc) = (sig[first].unwrap_or(0), cl[first].unwrap_or(0));
    for l in 0..lsize {
        match (sig[l], cl[l]) {
            (Some(s0), Some(c0)) => {
                ps = s0;
                pc = c0;
            }
            _ => {
                sig[l] = Some(ps);
                cl[l] = Some(pc);
            }
        }
    }
    let sig: Vec<u64> = sig.into_iter().map(|s| s.unwrap_or(0)).collect();
    let cl: Vec<i64> = cl.into_iter().map(|c| c.unwrap_or(0)).collect();
    let e_bits = x.exp();
    let mut l_terms: Vec<(Lit, i64)> = x
        .sig()
        .iter()
        .enumerate()
        .map(|(j, &l)| (l, 1i64 << j))
        .collect();
    l_terms.push((e_bits[0], 1i64 << p));
    let special = at_nonpositive.to_bits();
    let (s, nz) = (x.sign(), x.nonzero());
    // Output bit k: f_k for x > 0, special_k for x <= 0 (s = 1 or nz = 0).
    let extra = |k: u32| -> (Vec<(Lit, i64)>, i64) {
        if (special >> k) & 1 == 1 {
            (vec![(s, 2), (nz, -2)], -2)
        } else {
            (vec![(s, -2), (nz, 2)], 2)
        }
    };
    let mut bits = vec![Lit::FALSE; fmt.width() as usize];
    for k in 0..p {
        let (ex, need) = extra(k);
        bits[k as usize] = stair_fn(
            b,
            op,
            &l_terms,
            |v| (sig[v as usize] >> k) & 1 == 1,
            &ex,
            need,
        )?;
    }
    let modl = lsize as i128;
    for j in 0..q {
        let mut t = l_terms.clone();
        for i in 1..q.min(j + 2) {
            t.push((e_bits[i as usize], (1i64 << (i - 1)) << (p + 1)));
        }
        let modulus = 1i128 << (j + 1);
        let fj = |v: i128| {
            let (a, l) = (v / modl, (v % modl) as usize);
            let e = sigma as i128 * a + cl[l] as i128;
            (e.rem_euclid(modulus) >> j) & 1 == 1
        };
        let (ex, need) = extra(p + j);
        bits[(p + j) as usize] = stair_fn(b, op, &t, fj, &ex, need)?;
    }
    let (ex, need) = extra(p + q);
    bits[(p + q) as usize] = b.threshold(&ex, 1 + need)?;
    Ok(Some(FloatWord::new(fmt, bits)?))
}

/// `round(sqrt(x))`, correctly rounded, `sqrt` of a negative value is 0 (bit-exact with
/// `Float::sqrt`). Where [`root_uses_table`]: depth 2, the exponent-parity decomposition
/// (significand from `m` and the exponent's parity, about `2^p + 4 * 2^q` gates), or the rank
/// table when the decomposition does not apply; otherwise [`super::root::sqrt_checked`] (seed and
/// exact check, depth 9).
pub fn sqrt(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::sqrt";
    if !root_uses_table(x.fmt) {
        return super::root::sqrt_checked(b, x);
    }
    match parity_table(b, OP, x, |v| v.sqrt(), 1, x.fmt.zero())? {
        Some(w) => Ok(w),
        None => unary_table(b, OP, x, |v| v.sqrt()),
    }
}

/// `round(1 / sqrt(x))` for `x > 0`, and the largest finite positive value for `x <= 0`
/// (bit-exact with `Float::rsqrt`, correctly rounded). Constructed as [`sqrt`]: depth 2 tables
/// where [`root_uses_table`], else [`super::root::rsqrt_checked`] (depth 10).
pub fn rsqrt(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::rsqrt";
    if !root_uses_table(x.fmt) {
        return super::root::rsqrt_checked(b, x);
    }
    match parity_table(b, OP, x, |v| v.rsqrt(), -1, x.fmt.max_finite(false))? {
        Some(w) => Ok(w),
        None => unary_table(b, OP, x, |v| v.rsqrt()),
    }
}
