//! Float division `round(x / y)` by candidate-quotient thresholds (constructions.md item 8).
//!
//! # Construction
//!
//! The significand ratio `rho = m_x / m_y` lies in `(1/2, 2)`, and the rounded ratio
//! `R = round_p(rho)` (nearest even at p significant bits) takes one of the `2^p + 1` values
//! `v` of `[1/2, 2]` with p-bit significands. `R >= v` exactly when `rho` lies above the
//! midpoint between `v` and its predecessor (or on it, when `v`'s significand is even: ties to
//! even), which is ONE threshold gate `T_v = [D * m_x - N_v * m_y >= 0 or 1]` with the midpoint
//! `N_v / D` (level 1). The `T_v` are a thermometer code of R, so every bit of R's significand
//! is one more gate `[f(v_min) + sum_v (f(v) - f(pred v)) T_v >= 1]`; the binade of R
//! (`T_1 + T_2`) shifts the exponent, whose bits are staircases on `E_x - E_y + T_1 + T_2`.
//! Overflow (saturation), underflow (flush), `x / 0` (largest finite value with the sign of x)
//! and `0 / y` (zero, including `0 / 0`) are gates on the same exponent form and the nonzero
//! bits, folded into the output gates.
//!
//! Depth 3: thermometer (1), exponent banks and range tests (2), outputs (3).
//! Size: about `2^p` forms of `2p` terms each, hence the limit [`MAX_DIV_P`].

use crate::circuit::{Builder, Lit};
use crate::gadgets::error::{GadgetError, Result};

use super::mul::{form_range, stair_fn, value_terms};
use super::word::FloatWord;

/// Largest significand width p for which [`div`] is built (about `2^p` threshold gates of
/// fan-in `2p`).
pub const MAX_DIV_P: u32 = 12;

/// `round(x / y)` (DESIGN §2, bit-exact with `Float::div`): the exact quotient rounded once to
/// nearest even, saturating above e_max and flushing below e_min; `x / 0` is the largest finite
/// value with the sign of x and `0 / 0 = 0`.
///
/// Depth 3. Gates: about `2^p` candidate-quotient thresholds plus `O(p + 2^q)`.
///
/// Errors: `FormatMismatch` for operands of different formats; `Unsupported` for
/// `p > MAX_DIV_P` (the candidate-quotient construction has `2^p` gates).
pub fn div(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::div";
    x.check_same(OP, y)?;
    let fmt = x.fmt;
    let p = fmt.p();
    let q = fmt.q();
    if p > MAX_DIV_P {
        return Err(GadgetError::Unsupported {
            op: OP,
            limit: format!(
                "p = {p} > {MAX_DIV_P}: the candidate-quotient construction needs 2^p gates"
            ),
        });
    }
    // Candidate rounded ratios, in units of 2^-(p+2): (value, significand, binade offset).
    let half = 1i64 << (p - 1);
    let mut cands: Vec<(i64, i64, i64)> = Vec::with_capacity((1usize << p) + 1);
    for j in half..2 * half {
        cands.push((4 * j, j, 0)); // j * 2^-p
    }
    for j in half..2 * half {
        cands.push((8 * j, j, 1)); // j * 2^-(p-1)
    }
    cands.push((1i64 << (p + 3), half, 2)); // 2
    let d = 1i64 << (p + 2);
    let (mx, my) = (x.sig(), y.sig());
    let mut therm: Vec<Lit> = Vec::with_capacity(cands.len());
    for w in cands.windows(2) {
        let (prev, cur) = (w[0], w[1]);
        let mid = (prev.0 + cur.0) / 2; // all values are even
        let mut terms: Vec<(Lit, i64)> = Vec::with_capacity(2 * p as usize);
        for (i, &l) in mx.iter().enumerate() {
            terms.push((l, d << i));
        }
        for (i, &l) in my.iter().enumerate() {
            terms.push((l, -(mid << i)));
        }
        let theta = if cur.1 % 2 == 0 { 0 } else { 1 };
        therm.push(b.threshold(&terms, theta)?);
    }
    // T_1 and T_2: the thresholds of the candidates 1 and 2 (binade offsets).
    let t1 = therm[half as usize - 1];
    let t2 = therm[therm.len() - 1];

    // Exponent form W = E_x - E_y + T_1 + T_2; biased result exponent W + c.
    let c = -(p as i64) - fmt.e_min() as i64;
    let mut w_terms = value_terms(x.exp());
    w_terms.extend(value_terms(y.exp()).into_iter().map(|(l, w)| (l, -w)));
    w_terms.push((t1, 1));
    w_terms.push((t2, 1));
    let (wlo, whi) = form_range(&w_terms);
    let top = 1i64 << q;
    let m =
        (whi - wlo) as i64 + (top - c).abs() + (c + 1).abs() + wlo.abs() as i64 + whi as i64 + 1;
    let (nzx, nzy) = (x.nonzero(), y.nonzero());
    // ov: x nonzero and (y zero or W + c >= 2^q).
    let mut ov_t = w_terms.clone();
    ov_t.push((!nzy, m));
    ov_t.push((nzx, 2 * m));
    let ov = b.threshold(&ov_t, 2 * m + top - c)?;
    // fl: y nonzero and W + c <= -1.
    let mut fl_t: Vec<(Lit, i64)> = w_terms.iter().map(|&(l, w)| (l, -w)).collect();
    fl_t.push((nzy, m));
    let fl = b.threshold(&fl_t, c + 1 + m)?;
    let extra = [(ov, 2), (!nzx, -2), (fl, -2)];

    let mut word = vec![Lit::FALSE; fmt.width() as usize];
    for k in 0..p - 1 {
        let bit = |sig: i64| (sig >> k) & 1 == 1;
        let f0 = bit(cands[0].1);
        let mut st: Vec<(Lit, i64)> = Vec::new();
        for (i, w) in cands.windows(2).enumerate() {
            let delta = bit(w[1].1) as i64 - bit(w[0].1) as i64;
            if delta != 0 {
                st.push((therm[i], delta));
            }
        }
        st.extend_from_slice(&extra);
        word[k as usize] = b.threshold(&st, 1 - f0 as i64)?;
    }
    word[p as usize - 1] = b.threshold(&[(nzx, 1), (fl, -1)], 1)?;
    for j in 0..q {
        let modulus = 1i128 << (j + 1);
        let trunc: Vec<(Lit, i64)> = w_terms
            .iter()
            .filter_map(|&(l, w)| {
                let r = (w as i128).rem_euclid(modulus);
                (r != 0).then_some((l, r as i64))
            })
            .collect();
        let f = |v: i128| ((v + c as i128).rem_euclid(modulus) >> j) & 1 == 1;
        word[(p + j) as usize] = stair_fn(b, OP, &trunc, f, &extra, 0)?;
    }
    let sx = b.xor2(x.sign(), y.sign())?;
    word[(p + q) as usize] = b.threshold(&[(sx, 1), (nzx, 1), (fl, -1)], 2)?;
    FloatWord::new(fmt, word)
}
