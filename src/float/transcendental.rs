//! sqrt and rsqrt, correctly rounded (the exact result passed once through `round()`), and exp:
//! correctly rounded in formats with `p + q <= 20` (`EXP_CR_MAX_BITS`), the shared algorithm of
//! [`super::exp_poly`] in wider formats (see `Float::exp_fn`).
//!
//! # The correctly rounded exp
//!
//! `x.exp_correctly_rounded()` is `round(e^x)` (docs/float.md: nearest p-bit significand, ties to
//! even, then saturation above `e_max` and flush below `e_min`). Since `e^x` is transcendental for
//! every nonzero rational `x`, it is never a rounding boundary, so the correctly rounded result is
//! a well-defined function of the input bits; a circuit reproduces it exactly as a lookup table
//! over the inputs whose result is neither saturated nor `round(1)`.
//!
//! Evaluation (Ziv's strategy with rigorous interval bounds, integer arithmetic only):
//! 1. `x = 0` gives `round(1)`. `|x| >= 2^17` saturates (`x > 0`) or flushes (`x < 0`), since
//!    `2^17 > (2^15 + 33) * ln 2 * 4` exceeds every format's range.
//! 2. Range reduction `x = k ln2 + r` with an integer `k` chosen so that `r >= 0` for the lower
//!    bound of `ln 2`, and `r < 1` always; `r` is known as an interval `[r_lo, r_hi]` from the
//!    interval `[L_lo, L_hi]` for `ln 2`.
//! 3. `e^r` is bounded by the Taylor series: the lower bound sums the terms rounded down at
//!    `r_lo` (dropping the positive tail); the upper bound sums the terms rounded up at `r_hi` and
//!    adds twice the first omitted term (the tail of `e^r` for `0 <= r < 1` after `n` terms is at
//!    most twice its first term).
//! 4. `e^x` lies in `[2^k lo, 2^k hi]`. `round()` is monotone, so if both bounds round to the same
//!    value that value is `round(e^x)`. Otherwise the precision is doubled and step 2 repeats.
//!
//! A fast path runs steps 2-4 once in `u128` fixed point (100-bit `ln 2`, 60-bit series); it only
//! returns when the two bounds agree, so it never changes a result. The fallback uses `BigUint`
//! with `ln 2 = sum 1/(k 2^k)` evaluated to the working precision.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

use super::exp_poly::{ExpPlan, EXP_CR_MAX_BITS};
use super::{Float, Format};

/// `floor(ln 2 * 2^100)`.
const LN2_100: u128 = 0xb_1721_7f7d_1cf7_9abc_9e3b_3980;
/// Fractional bits of the fast path's reduced argument and series.
const FAST_FRAC: u32 = 60;
/// Largest working precision of the exact fallback before it gives up refining (never reached
/// in practice: the hardest cases for p <= 32 need well under 200 bits).
const MAX_PREC: u64 = 1 << 16;

impl Float {
    /// `round(sqrt(x))`, correctly rounded; `sqrt` of a negative value is zero (docs/float.md).
    pub fn sqrt(self) -> Float {
        let f = self.format();
        if self.is_zero() || self.is_negative() {
            return f.zero();
        }
        let (m, e) = even_exponent(self);
        let k = f.p() / 2 + 3;
        let n = m << (2 * k);
        let s = n.isqrt();
        let sticky = s * s != n;
        f.round_u128(false, s, e / 2 - k as i64, sticky)
    }

    /// `round(1 / sqrt(x))` for `x > 0`, correctly rounded (computed exactly with integers).
    /// For `x <= 0` the result is the largest finite positive value: `1/sqrt(0)` under the
    /// `x/0` rule, and the same value for negative inputs (whose square root is taken as 0).
    pub fn rsqrt(self) -> Float {
        let f = self.format();
        if self.is_zero() || self.is_negative() {
            return f.max_finite(false);
        }
        let (m, e) = even_exponent(self);
        // r = floor(2^k / sqrt(m)) = isqrt(floor(4^k / m)), with at least p + 2 bits.
        let k = 3 * f.p() / 2 + 3;
        let num = 1u128 << (2 * k);
        let n = num / m;
        let r = n.isqrt();
        let sticky = num % m != 0 || r * r != n;
        f.round_u128(false, r, -(k as i64) - e / 2, sticky)
    }

    /// exp (docs/float.md): within one unit in the last place of `e^x`, by a documented algorithm
    /// that the circuits share exactly. In formats with `p + q <= EXP_CR_MAX_BITS` (= 20) it is
    /// `round(e^x)`, correctly rounded ([`Float::exp_correctly_rounded`]; the circuit is a
    /// lookup table over every input); in wider formats it is the shared algorithm of
    /// [`super::exp_poly`] ([`Float::exp_shared`]: faithful, almost always correctly rounded).
    /// `exp(0) = round(1)` in both.
    pub fn exp_fn(self) -> Float {
        let f = self.format();
        if f.p() + f.q() <= EXP_CR_MAX_BITS {
            self.exp_correctly_rounded()
        } else {
            self.exp_shared()
        }
    }

    /// The shared exp algorithm of [`super::exp_poly`] in this value's format (whatever its
    /// size): fixed-point range reduction, a table and a truncated polynomial, rounded once.
    pub fn exp_shared(self) -> Float {
        ExpPlan::cached(self.format()).eval(self)
    }

    /// `round(e^x)`, correctly rounded (so within one unit in the last place: relative error
    /// below `2^(1-p)` unless saturated or flushed); see the module docs of
    /// `float::transcendental` for the algorithm. `exp(0) = round(1)`.
    pub fn exp_correctly_rounded(self) -> Float {
        let f = self.format();
        if self.is_zero() {
            return f.round_u128(false, 1, 0, false);
        }
        // |x| = m * 2^e with 2^(b-1) <= m < 2^b: |x| < 2^(e+b).
        let b = 64 - self.sig().leading_zeros() as i64;
        let top = self.exp() as i64 + b;
        if top > 17 {
            return if self.is_negative() {
                f.zero()
            } else {
                f.max_finite(false)
            };
        }
        if let Some(v) = exp_fast(self) {
            return v;
        }
        exp_exact(self)
    }
}

/// `(m, e)` with `x = m * 2^e` and `e` even (`m` doubled if needed).
fn even_exponent(x: Float) -> (u128, i64) {
    let (m, e) = (x.sig() as u128, x.exp() as i64);
    if e.rem_euclid(2) == 1 {
        (m << 1, e - 1)
    } else {
        (m, e)
    }
}

/// Round both ends of `[lo, hi] * 2^exp2` (positive); the common value if they agree.
fn decide_u128(f: Format, lo: u128, hi: u128, exp2: i64) -> Option<Float> {
    let a = f.round_u128(false, lo, exp2, false);
    let b = f.round_u128(false, hi, exp2, false);
    (a == b).then_some(a)
}

/// Bounds on `e^r * 2^frac` for `r` in `[r_lo, r_hi] * 2^-frac`, `0 <= r_lo`, `r_hi < 2^frac`.
fn exp_series_u128(r_lo: u128, r_hi: u128, frac: u32) -> (u128, u128) {
    let one = 1u128 << frac;
    let (mut t_lo, mut t_hi) = (one, one);
    let (mut s_lo, mut s_hi) = (0u128, 0u128);
    let mut i: u128 = 0;
    loop {
        s_lo += t_lo;
        s_hi += t_hi;
        i += 1;
        t_lo = ((t_lo * r_lo) >> frac) / i;
        t_hi = ((t_hi * r_hi).div_ceil(one)).div_ceil(i);
        if t_hi <= 1 {
            // Tail after these terms: at most twice the next term, which is <= t_hi.
            return (s_lo, s_hi + 2 * t_hi);
        }
    }
}

/// The fast path: one u128 evaluation at 60 bits; `None` when the bounds do not decide the
/// rounding (or the input needs more range than the fast path handles).
fn exp_fast(x: Float) -> Option<Float> {
    let f = x.format();
    let b = 64 - x.sig().leading_zeros() as i64;
    let top = x.exp() as i64 + b; // |x| < 2^top, top <= 17
    if top <= -64 {
        // |x| < 2^-64: e^x lies strictly inside (1 - 2^-64, 1 + 2^-63).
        return decide_u128(f, (1u128 << 64) - 1, (1u128 << 64) + 2, -64);
    }
    // |x| * 2^100 exactly, < 2^117; x.exp() >= -64 - 32 - 1 > -100.
    let shift = x.exp() as i64 + 100;
    if !(0..=117).contains(&shift) {
        return None;
    }
    let big_x = (x.sig() as u128) << shift;
    let (l_lo, l_hi) = (LN2_100, LN2_100 + 1);
    let (k, r_lo, r_hi): (i64, u128, u128) = if !x.is_negative() {
        let k = big_x / l_hi;
        (k as i64, big_x - k * l_hi, big_x - k * l_lo)
    } else {
        let k = big_x.div_ceil(l_lo);
        (-(k as i64), k * l_lo - big_x, k * l_hi - big_x)
    };
    let drop = 100 - FAST_FRAC;
    let r_lo = r_lo >> drop;
    let r_hi = r_hi.div_ceil(1u128 << drop);
    if r_hi >= 1u128 << FAST_FRAC {
        return None;
    }
    let (lo, hi) = exp_series_u128(r_lo, r_hi, FAST_FRAC);
    decide_u128(f, lo, hi, k - FAST_FRAC as i64)
}

/// Bounds `[lo, hi]` on `ln 2 * 2^prec` (integers).
pub(super) fn ln2_bounds(prec: u64) -> (BigUint, BigUint) {
    // ln 2 = sum_{j>=1} 1 / (j 2^j). Work with `g` guard bits.
    let g = prec + 16;
    let one = BigUint::one() << g;
    let mut lo = BigUint::zero();
    let mut hi = BigUint::zero();
    let mut j: u64 = 1;
    loop {
        let denom = BigUint::from(j) << j;
        let t_lo = &one / &denom;
        let t_hi = (&one + &denom - 1u32) / &denom;
        // Stop once the term is below one unit: the tail after term j is < 2 / (j 2^j).
        if t_lo.is_zero() {
            hi += 2u32 * t_hi;
            break;
        }
        lo += t_lo;
        hi += t_hi;
        j += 1;
    }
    // Back from g to prec fractional bits: floor for the lower bound, ceiling for the upper.
    let guard = g - prec;
    (lo >> guard, (hi >> guard) + 1u32)
}

/// Bounds on `e^x` as `[lo, hi] * 2^exp2` at working precision `prec` (bits).
fn exp_bounds_big(x: Float, prec: u64) -> (BigUint, BigUint, i64) {
    let g = prec + 24; // fractional bits of the reduced argument
    let (l_lo, l_hi) = ln2_bounds(g);
    // |x| * 2^g bounds (exact when x.exp() >= -g).
    let m = BigUint::from(x.sig());
    let s = x.exp() as i64 + g as i64;
    let (a_lo, a_hi) = if s >= 0 {
        let v = m << (s as u64);
        (v.clone(), v)
    } else {
        let sh = (-s) as u64;
        let v_lo = &m >> sh;
        let v_hi = (&m + (BigUint::one() << sh) - 1u32) >> sh;
        (v_lo, v_hi)
    };
    let (k, r_lo, r_hi): (i64, BigUint, BigUint) = if !x.is_negative() {
        let k = &a_lo / &l_hi;
        let r_lo = &a_lo - &k * &l_hi;
        let r_hi = &a_hi - &k * &l_lo;
        (k.to_i64().unwrap_or(i64::MAX), r_lo, r_hi)
    } else {
        let k = (&a_hi + &l_lo - 1u32) / &l_lo;
        let r_lo = &k * &l_lo - &a_hi;
        let r_hi = &k * &l_hi - &a_lo;
        (-k.to_i64().unwrap_or(i64::MAX), r_lo, r_hi)
    };
    // Taylor series at `g` fractional bits.
    let one = BigUint::one() << g;
    let mut t_lo = one.clone();
    let mut t_hi = one.clone();
    let mut s_lo = BigUint::zero();
    let mut s_hi = BigUint::zero();
    let mut i: u64 = 0;
    loop {
        s_lo += &t_lo;
        s_hi += &t_hi;
        i += 1;
        t_lo = ((&t_lo * &r_lo) >> g) / i;
        let prod = &t_hi * &r_hi;
        let up = (prod + &one - 1u32) >> g;
        t_hi = (up + (i - 1)) / i;
        if t_hi <= BigUint::one() {
            s_hi += 2u32 * t_hi;
            break;
        }
    }
    (s_lo, s_hi, k.saturating_sub(g as i64))
}

/// Ziv loop with `BigUint` bounds at doubling precision.
fn exp_exact(x: Float) -> Float {
    exp_exact_from(x, 96)
}

/// Ziv loop starting at working precision `prec` (bits).
fn exp_exact_from(x: Float, mut prec: u64) -> Float {
    let f = x.format();
    loop {
        let (lo, hi, exp2) = exp_bounds_big(x, prec.max(1));
        let a = f.round_exact(false, &lo, exp2);
        let b = f.round_exact(false, &hi, exp2);
        if a == b || prec >= MAX_PREC {
            return a;
        }
        prec *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln2_constant_matches_series() {
        let (lo, hi) = ln2_bounds(100);
        assert!(lo <= BigUint::from(LN2_100) && BigUint::from(LN2_100) < hi);
        assert!(&hi - &lo <= BigUint::from(2u32));
    }

    /// The fast path, when it answers, agrees with the exact Ziv loop.
    #[test]
    fn fast_path_agrees_with_exact() {
        for (p, q) in [(8, 5), (11, 6), (24, 8), (32, 16)] {
            let f = Format::new(p, q).unwrap();
            let n = f.num_values();
            let step = (n / 3000).max(1);
            let mut checked = 0;
            for v in f.all_values().step_by(step as usize) {
                if v.is_zero() || v.exp() as i64 + 64 - v.sig().leading_zeros() as i64 > 17 {
                    continue;
                }
                if let Some(fast) = exp_fast(v) {
                    assert_eq!(fast, exp_exact(v), "exp of {v}");
                    checked += 1;
                }
            }
            assert!(checked > 1000);
        }
    }

    /// The Ziv loop started at a tiny precision must refine (several doublings) to the same
    /// result, and the bounds at every precision must contain those at a higher one.
    #[test]
    fn ziv_refinement_and_nested_bounds() {
        for (p, q) in [(4, 4), (11, 6), (24, 9), (32, 16)] {
            let f = Format::new(p, q).unwrap();
            let step = (f.num_values() / 400).max(1) as usize;
            for v in f.all_values().step_by(step) {
                let b = 64 - v.sig().leading_zeros() as i64;
                if v.is_zero() || v.exp() as i64 + b > 17 {
                    continue;
                }
                let want = v.exp_correctly_rounded();
                assert_eq!(exp_exact_from(v, 2), want, "exp of {v} from 2 bits");
                assert_eq!(exp_exact(v), want, "exp of {v}");
                let (lo_a, hi_a, e_a) = exp_bounds_big(v, 8);
                let (lo_b, hi_b, e_b) = exp_bounds_big(v, 160);
                // The 8-bit interval is far wider than the 160-bit one and contains it.
                let e = e_a.min(e_b);
                let sh = |x: &BigUint, ex: i64| x << ((ex - e) as u64);
                assert!(sh(&lo_a, e_a) <= sh(&lo_b, e_b), "lower bounds of {v}");
                assert!(sh(&hi_b, e_b) <= sh(&hi_a, e_a), "upper bounds of {v}");
                assert!(lo_b < hi_b);
            }
        }
    }
}
