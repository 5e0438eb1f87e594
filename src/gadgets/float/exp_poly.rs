//! exp for wide formats: the circuit of the shared algorithm `float::exp_poly` (range reduction
//! in fixed point, one table, a truncated polynomial, one rounding), bit-exact with
//! `Float::exp_shared` (hence with `Float::exp_fn` in every format with `p + q > 20`).
//!
//! # Construction (the steps of `float::exp_poly`)
//!
//! 1. **Clamp.** `|x| >= 2^I` is one gate on the exponent field (`e >= I - p + 1`); with the
//!    sign it becomes "saturate" or "flush", folded into the final rounding's exponent form as
//!    `+-BIG` (so its range tests fire), at no extra level.
//! 2. **Fixed point.** Bit t of `X = floor(|x| 2^F)` is bit `t - e - F` of m for the one
//!    exponent e present: gates `[E = e AND m_j]` (level 1). With the sign folded in, the two
//!    gates `a_t = [X_t AND NOT s]` and `b_t = [NOT X_t AND s]` (level 2) have the sum
//!    `y_t = X_t XOR s`, and `U_s = sum_t W_t y_t - s sum_t W_t` is exactly `+-U`.
//! 3. **Split.** With `W_t = 2^G hi_t + lo_t`: the fraction `U_s mod 2^G` is the low form
//!    `L = sum lo_t y_t - s (sum W_t mod 2^G)` modulo `2^G`, its bits staircases on L (level 4);
//!    the integer part is the *form* `n = sum hi_t y_t - s floor(sum W_t / 2^G) + floor(L / 2^G)`,
//!    the last term one bank on L (level 3). No bits of n are needed.
//! 4. **Polynomial.** The top bits of the fraction index the coefficient tables (level 6), the
//!    kept bit products are ANDs with the low fraction bits (level 7): `S` is one linear form.
//! 5. **Round once.** `round(S 2^(n - W))` by the shared product-rounding core
//!    (`mul::round_product_bounded`: shift tests, truncated staircases, exponent staircases on the
//!    form n, saturation and flush): levels 8 to 10.
//!
//! Depth 10 for every wide format. Size: `p (I + F)` shift gates, about `G` fraction staircases,
//! the tables (`2^t` entries), the kept bit products, and the rounding (`p` staircases per shift,
//! two or three shifts).

use crate::circuit::{Builder, Lit};
use crate::float::exp_poly::ExpPlan;
use crate::gadgets::error::Result;

use super::approx;
use super::mul::{round_product_bounded, ExactProduct};
use super::round::{gate_if, Cond};
use super::word::FloatWord;

/// `Float::exp_shared(x)` (the shared exp algorithm of `float::exp_poly`), bit for bit, for
/// every format. Depth 10.
///
/// Errors: `Unsupported` when a weight bound is exceeded (not the case for supported formats).
pub fn exp_poly(b: &mut Builder, x: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::exp";
    let fmt = x.fmt;
    let plan = ExpPlan::cached(fmt);
    let (p, q) = (fmt.p() as i64, fmt.q());
    let e_min = fmt.e_min() as i64;
    let (ib, fb, g) = (
        plan.int_bits() as i64,
        plan.frac_bits() as i64,
        plan.u_frac(),
    );
    let m = x.sig();
    let ebits = x.exp();
    let (s, nz) = (x.sign(), x.nonzero());
    let e_form: Vec<(Lit, i64)> = ebits
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, 1i64 << i))
        .collect();
    // 1. Clamp: biased exponent >= I - p + 1 - e_min (x nonzero).
    let e_clamp = ib - p + 1 - e_min;
    let (sat, flush) = if e_clamp >= 1i64 << q {
        (Lit::FALSE, Lit::FALSE)
    } else {
        let th = e_clamp.max(0);
        (
            gate_if(b, &e_form, th, &[&Cond::lit(nz), &Cond::not(s)])?,
            gate_if(b, &e_form, th, &[&Cond::lit(nz), &Cond::lit(s)])?,
        )
    };
    // 2. Fixed point: X_t = OR_e [E = e AND m_(t - e - F)] over unclamped exponents.
    let nt = (ib + fb) as usize;
    let mut xg: Vec<Vec<Lit>> = vec![Vec::new(); nt];
    for eb in 0..1i64 << q {
        let e = eb + e_min;
        if e + p > ib {
            break;
        }
        let cond = Cond::word_eq(ebits, eb as u64);
        for (j, &mj) in m.iter().enumerate() {
            let t = j as i64 + e + fb;
            if t < 0 || t >= nt as i64 {
                continue;
            }
            let gte = gate_if(b, &[(mj, 1)], 1, &[&cond])?;
            xg[t as usize].push(gte);
        }
    }
    let mut y: Vec<(Lit, Lit)> = Vec::with_capacity(nt);
    for gs in &xg {
        let mut at: Vec<(Lit, i64)> = gs.iter().map(|&l| (l, 1)).collect();
        at.push((s, -1));
        let a = b.threshold(&at, 1)?;
        let mut bt: Vec<(Lit, i64)> = gs.iter().map(|&l| (l, -1)).collect();
        bt.push((s, 1));
        let bb = b.threshold(&bt, 1)?;
        y.push((a, bb));
    }
    // 3. Split W_t = 2^G hi + lo.
    let unit = 1u128 << g;
    let wsum: u128 = plan.weights().iter().sum();
    let (wsum_hi, wsum_lo) = ((wsum >> g) as i64, (wsum % unit) as i64);
    let mut low: Vec<(Lit, i64)> = Vec::with_capacity(2 * nt + 1);
    let mut n_form: Vec<(Lit, i64)> = Vec::new();
    for (t, &(a, bb)) in y.iter().enumerate() {
        let w = plan.weights()[t];
        let (hi, lo) = ((w >> g) as i64, (w % unit) as i64);
        if lo != 0 {
            low.push((a, lo));
            low.push((bb, lo));
        }
        if hi != 0 {
            n_form.push((a, hi));
            n_form.push((bb, hi));
        }
    }
    if wsum_lo != 0 {
        low.push((s, -wsum_lo));
    }
    if wsum_hi != 0 {
        n_form.push((s, -wsum_hi));
    }
    // floor(L / 2^G) = -1 + sum_{a >= 0} [L >= a 2^G].
    let lmax: i128 = low.iter().map(|&(_, w)| (w as i128).max(0)).sum();
    let thetas: Vec<i128> = (0..=lmax >> g).map(|a| a << g).collect();
    let carries = b.bank_i128(&low, &thetas)?;
    n_form.extend(carries.iter().map(|&l| (l, 1i64)));
    // 4. Fraction bits and the polynomial.
    let poly = plan.poly();
    let t_idx = plan.index_bits();
    let lb = g - t_idx;
    let lo_bit = poly.min_low_bit();
    let frac = approx::form_bits(b, OP, &low, lo_bit, g)?;
    let bit = |j: u32| frac[(j - lo_bit) as usize];
    let low_lits: Vec<Lit> = (0..lb)
        .map(|j| if j < lo_bit { Lit::FALSE } else { bit(j) })
        .collect();
    let index: Vec<Lit> = (lb..g).map(bit).collect();
    let s_form = approx::poly_form(b, OP, poly, &index, &low_lits)?;
    // 5. Round once: S in [2^W, pmax]; exponent n - W (+-BIG when clamped).
    let lmask = if lb == 0 { 0 } else { (1u64 << lb) - 1 };
    let pmax = (0..poly.pieces())
        .map(|h| poly.eval(h, lmask))
        .max()
        .unwrap_or(0);
    let big = 1i64 << (ib + 3).max(q as i64 + 2);
    n_form.push((sat, big));
    n_form.push((flush, -big));
    let xp = ExactProduct {
        sig_terms: &s_form,
        lead_min: plan.grid(),
        exp_terms: &n_form,
        exp_const: -1 - plan.grid() as i64 - e_min,
        nonzero: &[],
        sign: Lit::FALSE,
    };
    round_product_bounded(b, fmt, OP, &xp, pmax)
}
