//! exp's shared algorithm for wide formats: fixed-point range reduction, one table lookup and a
//! truncated polynomial, rounded once. The exp circuit (`gadgets::float::exp_poly`) evaluates
//! exactly the same integers, so the two agree bit for bit.
//!
//! # The algorithm ([`ExpPlan::eval`])
//!
//! Parameters of a format F(p, q) (all fixed by [`ExpPlan::new`]):
//! - `I`, the smallest integer with `2^I >= max(e_max + p, 2 - p - e_min) ln 2`: for
//!   `|x| >= 2^I` the exact `e^x` is beyond the largest finite value (`x > 0`) or rounds below
//!   the smallest positive one (`x < 0`), so the result saturates or is zero (correctly
//!   rounded);
//! - `F = p + 9` fraction bits of the fixed-point argument, `G = F + ceil(log2(I + F)) + 1`
//!   fraction bits of the base-2 argument;
//! - `W_t = round(log2(e) 2^(t - F + G))` for `t` in `[0, I + F)` (nearest integer);
//! - a [`PiecewisePoly`] of degree `d` on `t_idx` index bits approximating `2^v` on `[0, 1)`
//!   (coefficients `round(2^(h / 2^t_idx) ln2^k / k! 2^(W - k t_idx + 2))`, grid `2^-W`).
//!
//! For `x` with `|x| < 2^I`:
//! 1. `X = floor(|x| 2^F)` (the bits of the significand shifted into a fixed-point word of
//!    `I + F` bits; bits below `2^-F` are dropped);
//! 2. `U = sum_{t : bit t of X set} W_t`, and `U_s = U` for `x >= 0`, `-U` for `x < 0`
//!    (`U_s / 2^G` approximates `x log2(e)`);
//! 3. `n = floor(U_s / 2^G)`, `v = U_s mod 2^G` split into the top `t_idx` bits `h` and the
//!    low bits `l`;
//! 4. `S = poly(h, l)` (an integer, about `2^(v / 2^G) 2^W`);
//! 5. the result is `round(S 2^(n - W))` (docs/float.md: nearest even, saturation, flush).
//!
//! Every step is integer arithmetic with a fixed truncation rule, so the circuit can reproduce
//! it. The error of `S 2^(n - W)` relative to `e^x` is bounded by [`ExpPlan::error_bound`]
//! (about `2^-(p + 8)`): the truncation of x (below `2^-F`), the rounding of the `W_t`, the
//! polynomial's remainder, its coefficient rounding and dropped bit products. Since that is far
//! below half a unit in the last place, the result is faithful (within one ulp of `e^x`, one of
//! the two values around it) and almost always the correctly rounded one.
//!
//! Choice of `d` and `t_idx` ([`exp_params`]): `d = 2` for `p <= 12`, else `d = 3`; `t_idx` is
//! the smallest index width whose Taylor remainder `2 (ln 2 / 2^t_idx)^(d+1) / (d+1)!` is at
//! most `2^-(p+11)`; the grid W is the smallest `W >= p + 12` whose dropped bit products weigh at
//! most `2^-(p+11)`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

use super::poly::PiecewisePoly;
use super::transcendental::ln2_bounds;
use super::{Float, Format};

/// Formats with `p + q <= EXP_CR_MAX_BITS` get the correctly rounded exp (their circuit is a
/// lookup table over every input); wider formats get the shared algorithm of this module.
pub const EXP_CR_MAX_BITS: u32 = 20;

/// Fraction bits of the fixed-point argument beyond p.
const X_GUARD: u32 = 9;
/// Extra bits of every coefficient of degree >= 1 below the grid's need.
const COEF_GUARD: u32 = 2;
/// Largest index width considered.
const MAX_INDEX_BITS: u32 = 14;

/// The degree and index width of the exp polynomial at significand width p (module docs).
pub fn exp_params(p: u32) -> (u32, u32) {
    let d = if p <= 12 { 2 } else { 3 };
    let fact: f64 = (1..=d + 1).map(|k| k as f64).product();
    let target = -((p + 11) as f64);
    let mut t = 1;
    while t < MAX_INDEX_BITS {
        let rem = 2.0 * (std::f64::consts::LN_2 / (t as f64).exp2()).powi(d as i32 + 1) / fact;
        if rem.log2() <= target {
            break;
        }
        t += 1;
    }
    (d, t)
}

/// Every parameter and table of the shared exp algorithm for one format (module docs).
#[derive(Clone, Debug)]
pub struct ExpPlan {
    fmt: Format,
    int_bits: u32,
    frac_bits: u32,
    u_frac: u32,
    index_bits: u32,
    grid: u32,
    weights: Vec<u128>,
    poly: PiecewisePoly,
    error_bound: f64,
}

/// Round `num / den` to the nearest integer (ties up; the callers' values are irrational).
fn round_ratio(num: &BigUint, den: &BigUint) -> BigUint {
    ((num << 1u32) + den) / (den << 1u32)
}

/// Bounds on `2^(h / 2^t) ln2^k / k! * 2^g` (integers, `g` fraction bits), `h < 2^t`, given
/// bounds `[l0, l1]` on `ln2 * 2^g`.
fn coeff_bounds(h: u64, t: u32, k: u32, g: u64, l0: &BigUint, l1: &BigUint) -> (BigUint, BigUint) {
    let one = BigUint::one() << g;
    // r = h ln2 / 2^t in [0, ln 2).
    let r_lo = (l0 * h) >> t;
    let r_hi = ((l1 * h) + ((BigUint::one() << t) - 1u32)) >> t;
    let (mut t_lo, mut t_hi) = (one.clone(), one.clone());
    let (mut s_lo, mut s_hi) = (BigUint::zero(), BigUint::zero());
    let mut i = 0u64;
    loop {
        s_lo += &t_lo;
        s_hi += &t_hi;
        i += 1;
        t_lo = ((&t_lo * &r_lo) >> g) / i;
        let up = ((&t_hi * &r_hi) + &one - 1u32) >> g;
        t_hi = (up + (i - 1)) / i;
        if t_hi <= BigUint::one() {
            // For 0 <= r < 1 the tail after a term is at most twice that term.
            s_hi += 2u32 * &t_hi;
            break;
        }
    }
    let (mut lo, mut hi) = (s_lo, s_hi);
    for _ in 0..k {
        lo = (&lo * l0) >> g;
        hi = ((&hi * l1) + &one - 1u32) >> g;
    }
    let fact: BigUint = (1..=k as u64).fold(BigUint::one(), |a, j| a * j);
    let hi = (&hi + &fact - 1u32) / &fact;
    (lo / &fact, hi)
}

/// Bounds on `ln 2` at `g` fraction bits, for the coefficient tables (computed once).
struct Ln2 {
    g: u64,
    lo: BigUint,
    hi: BigUint,
}

impl Ln2 {
    fn new(g: u64) -> Ln2 {
        let (lo, hi) = ln2_bounds(g);
        Ln2 { g, lo, hi }
    }
}

/// `round(2^(h / 2^t) ln2^k / k! * 2^sigma)` (nearest; never a tie except the exact `h = k = 0`),
/// evaluated with `ln` first, refined at doubling precision if its bounds do not decide.
fn coeff_with(ln: &Ln2, h: u64, t: u32, k: u32, sigma: u32) -> i128 {
    if (sigma as u64) + 64 <= ln.g {
        let (lo, hi) = coeff_bounds(h, t, k, ln.g, &ln.lo, &ln.hi);
        let den = BigUint::one() << (ln.g - sigma as u64);
        let a = round_ratio(&lo, &den);
        if a == round_ratio(&hi, &den) {
            return a.to_i128().unwrap_or(i128::MAX);
        }
    }
    coeff(h, t, k, sigma)
}

/// `round(2^(h / 2^t) ln2^k / k! * 2^sigma)` (nearest; never a tie except the exact `h = k = 0`).
fn coeff(h: u64, t: u32, k: u32, sigma: u32) -> i128 {
    let mut g = 160u64 + sigma as u64;
    loop {
        let (l0, l1) = ln2_bounds(g);
        let (lo, hi) = coeff_bounds(h, t, k, g, &l0, &l1);
        let den = BigUint::one() << (g - sigma as u64);
        let a = round_ratio(&lo, &den);
        let b = round_ratio(&hi, &den);
        if a == b || g > 4096 {
            return a.to_i128().unwrap_or(i128::MAX);
        }
        g *= 2;
    }
}

/// `round(log2(e) 2^e)` for `e >= 0` (nearest integer).
fn log2e_scaled(e: u32) -> u128 {
    let mut g = 192u64;
    loop {
        let (l0, l1) = ln2_bounds(g);
        let num = BigUint::one() << (e as u64 + 2 * g);
        // log2(e) 2^e = 2^(e + g) / (ln2 2^g); with L in [l0, l1] the value lies between
        // num / l1 and num / l0 at g fraction bits.
        let den = BigUint::one() << g;
        let a = round_ratio(&(&num / &l1), &den);
        let b = round_ratio(&((&num + &l0 - 1u32) / &l0), &den);
        if a == b || g > 4096 {
            return a.to_u128().unwrap_or(u128::MAX);
        }
        g *= 2;
    }
}

impl ExpPlan {
    /// The plan of format `fmt` with the parameters of the module docs.
    pub fn new(fmt: Format) -> ExpPlan {
        let (d, t) = exp_params(fmt.p());
        ExpPlan::with_params(fmt, d, t)
    }

    /// The plan of format `fmt` with polynomial degree `d` (1 to 3) and `t` index bits (the
    /// other parameters as in the module docs). Used to compare parameter choices.
    pub fn with_params(fmt: Format, d: u32, t: u32) -> ExpPlan {
        let p = fmt.p();
        let ln2 = std::f64::consts::LN_2;
        let span = ((fmt.e_max() as f64 + p as f64).max(2.0 - p as f64 - fmt.e_min() as f64)) * ln2;
        let mut int_bits = 1u32;
        while (int_bits as f64).exp2() < span {
            int_bits += 1;
        }
        let frac_bits = p + X_GUARD;
        let nt = int_bits + frac_bits;
        let u_frac = frac_bits + (32 - (nt - 1).leading_zeros()) + 1;
        let d = d.clamp(1, 3);
        let t = t.clamp(1, u_frac.min(MAX_INDEX_BITS));
        let weights: Vec<u128> = (0..nt)
            .map(|j| log2e_scaled(j + u_frac - frac_bits))
            .collect();
        let low_bits = u_frac - t;
        let target = -((p + 11) as f64);
        let mut grid = p + 12;
        let ln = Ln2::new(256);
        loop {
            let sigma = |k: u32| (grid + COEF_GUARD).saturating_sub(k * t);
            let coeffs: Vec<Vec<i128>> = (0..=d)
                .map(|k| {
                    let s = if k == 0 { grid } else { sigma(k) };
                    (0..1u64 << t)
                        .map(|h| coeff_with(&ln, h, t, k, s))
                        .collect()
                })
                .collect();
            // Term k is C_k 2^-sigma_k (l 2^-G)^k on the grid 2^-W: shift sigma_k + k G - W.
            let shifts: Vec<i32> = (0..=d)
                .map(|k| {
                    if k == 0 {
                        0
                    } else {
                        sigma(k) as i32 + (k * u_frac) as i32 - grid as i32
                    }
                })
                .collect();
            let poly = PiecewisePoly::new(low_bits, coeffs, shifts)
                .expect("exp tables are consistent by construction");
            let trunc = poly.truncation_bound();
            let fact: f64 = (1..=d + 1).map(|k| k as f64).product();
            let rem = 2.0 * (ln2 / (t as f64).exp2()).powi(d as i32 + 1) / fact;
            // Coefficient rounding: half a unit of each coefficient times max l^k.
            let coef: f64 = 0.5
                + (1..=d)
                    .map(|_| 0.5 * (-(COEF_GUARD as f64)).exp2())
                    .sum::<f64>();
            let poly_err = rem + (trunc + coef) * (-(grid as f64)).exp2();
            if poly_err.log2() <= target + 1.0 || grid > p + 40 {
                let x_err = (-(frac_bits as f64)).exp2() * 1.0001;
                let w_err = nt as f64 * 0.5 * (-(u_frac as f64)).exp2() * ln2 * 1.0001;
                let error_bound = (1.0 + x_err) * (1.0 + w_err) * (1.0 + poly_err) - 1.0;
                return ExpPlan {
                    fmt,
                    int_bits,
                    frac_bits,
                    u_frac,
                    index_bits: t,
                    grid,
                    weights,
                    poly,
                    error_bound,
                };
            }
            grid += 1;
        }
    }

    /// The plan of `fmt`, built once per format and shared.
    pub fn cached(fmt: Format) -> Arc<ExpPlan> {
        static CACHE: OnceLock<Mutex<HashMap<Format, Arc<ExpPlan>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(p) = cache.lock().ok().and_then(|c| c.get(&fmt).cloned()) {
            return p;
        }
        let plan = Arc::new(ExpPlan::new(fmt));
        if let Ok(mut c) = cache.lock() {
            c.insert(fmt, plan.clone());
        }
        plan
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.fmt
    }

    /// `I`: inputs with `|x| >= 2^I` saturate (`x > 0`) or give zero.
    pub fn int_bits(&self) -> u32 {
        self.int_bits
    }

    /// `F`: fraction bits of the fixed-point argument `X = floor(|x| 2^F)`.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// `G`: fraction bits of `U_s`.
    pub fn u_frac(&self) -> u32 {
        self.u_frac
    }

    /// Index bits of the polynomial (the top bits of `U_s mod 2^G`).
    pub fn index_bits(&self) -> u32 {
        self.index_bits
    }

    /// `W`: `S` is on the grid `2^-W`.
    pub fn grid(&self) -> u32 {
        self.grid
    }

    /// `W_t` for every bit t of `X` (`I + F` weights).
    pub fn weights(&self) -> &[u128] {
        &self.weights
    }

    /// The polynomial.
    pub fn poly(&self) -> &PiecewisePoly {
        &self.poly
    }

    /// A bound on `|S 2^(n - W) / e^x - 1|` for every x with `|x| < 2^I` (module docs).
    pub fn error_bound(&self) -> f64 {
        self.error_bound
    }

    /// The shared algorithm's result for `x` (module docs). `x` must be of the plan's format
    /// (another format's value is evaluated in this plan's format: callers check).
    pub fn eval(&self, x: Float) -> Float {
        let f = self.fmt;
        let p = f.p() as i64;
        let e = x.exp() as i64;
        if !x.is_zero() && e + p > self.int_bits as i64 {
            return if x.is_negative() {
                f.zero()
            } else {
                f.max_finite(false)
            };
        }
        // X = floor(|x| 2^F).
        let sh = e + self.frac_bits as i64;
        let xfix: u128 = if x.is_zero() || sh <= -64 {
            0
        } else if sh >= 0 {
            (x.sig() as u128) << sh
        } else {
            (x.sig() >> (-sh)) as u128
        };
        let mut u: u128 = 0;
        let mut bits = xfix;
        while bits != 0 {
            let t = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            u += self.weights[t];
        }
        let us: i128 = if x.is_negative() {
            -(u as i128)
        } else {
            u as i128
        };
        let g = self.u_frac;
        let n = us >> g;
        let v = (us & ((1i128 << g) - 1)) as u64;
        let low = g - self.index_bits;
        let h = (v >> low) as usize;
        let l = v & ((1u64 << low) - 1);
        let s = self.poly.eval(h, l);
        f.round_u128(false, s.max(0) as u128, n as i64 - self.grid as i64, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_and_tables() {
        // log2(e) = 1.4426950408889634...
        assert_eq!(log2e_scaled(0), 1);
        assert_eq!(log2e_scaled(20), 1_512_775); // 1.4426950408889634 * 2^20 = 1512775.4
        assert_eq!(coeff(0, 8, 0, 30), 1 << 30);
        // 2^(1/2) * 2^30 = 1518500249.98...
        assert_eq!(coeff(128, 8, 0, 30), 1_518_500_250);
        // 2^(1/2) ln 2 * 2^30 = 1052544166.96...
        assert_eq!(coeff(128, 8, 1, 30), 1_052_544_167);
    }

    #[test]
    fn plans_of_several_formats() {
        for (p, q) in [(2, 2), (4, 4), (8, 5), (11, 6), (16, 8), (24, 9), (32, 16)] {
            let f = Format::new(p, q).unwrap();
            let plan = ExpPlan::new(f);
            assert!(
                plan.error_bound() < (-(p as f64) - 6.0).exp2(),
                "{f}: bound {}",
                plan.error_bound()
            );
            assert_eq!(plan.eval(f.zero()), f.round_u128(false, 1, 0, false));
        }
    }
}
