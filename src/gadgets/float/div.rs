//! Float division `round(x / y)`: candidate-quotient thresholds for narrow formats
//! (docs/float.md item 8), a reciprocal seed with an exact remainder check for wide ones.
//! [`div`] picks by p (`DIV_CANDIDATES_MAX_P`); both are bit-exact with `Float::div`.
//!
//! # Candidate quotients ([`div_candidates`], `p <= 12`)
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
//!
//! # Reciprocal and exact check ([`div_reciprocal`], every p)
//!
//! A polynomial seed of `1 / m_y`, one truncated multiplication by `m_x`, and an exact check of
//! the candidate quotients against `m_x` and `m_y` (see the function's docs): depth 12, about
//! `p^2` products per stage plus a table of a few hundred entries (`docs/float.md` §8).

use crate::circuit::{Builder, Lit};
use crate::gadgets::error::{GadgetError, Result};

use super::approx;
use super::mul::{form_range, stair_fn, value_terms};
use super::word::FloatWord;

/// Largest significand width p for which [`div_candidates`] is built (about `2^p` threshold
/// gates of fan-in `2p`).
pub const MAX_DIV_P: u32 = 12;

/// [`div`] uses [`div_candidates`] up to this p and [`div_reciprocal`] above.
pub const DIV_CANDIDATES_MAX_P: u32 = 11;

/// `round(x / y)` (docs/float.md, bit-exact with `Float::div`): the exact quotient rounded once to
/// nearest even, saturating above e_max and flushing below e_min; `x / 0` is the largest finite
/// value with the sign of x and `0 / 0 = 0`.
///
/// Construction by format: [`div_candidates`] (depth 3, about `2^p` gates) for
/// `p <= DIV_CANDIDATES_MAX_P`, [`div_reciprocal`] (reciprocal seed, one multiplication and an
/// exact remainder check; depth about 12, polynomial size) above.
///
/// Errors: `FormatMismatch` for operands of different formats; `Unsupported` when a
/// construction limit is hit (named in the message).
pub fn div(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    if x.fmt.p() <= DIV_CANDIDATES_MAX_P {
        div_candidates(b, x, y)
    } else {
        div_reciprocal(b, x, y)
    }
}

/// `round(x / y)` by candidate-quotient thresholds (module docs), bit-exact with `Float::div`.
///
/// Depth 3. Gates: about `2^p` candidate-quotient thresholds plus `O(p + 2^q)`.
///
/// Errors: `FormatMismatch` for operands of different formats; `Unsupported` for
/// `p > MAX_DIV_P` (the candidate-quotient construction has `2^p` gates).
pub fn div_candidates(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::div";
    x.check_same(OP, y)?;
    let fmt = x.fmt;
    let p = fmt.p();
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
    pack_quotient(b, OP, x, y, &w_terms, c, &mut |b, k, extra| {
        let bit = |sig: i64| (sig >> k) & 1 == 1;
        let f0 = bit(cands[0].1);
        let mut st: Vec<(Lit, i64)> = Vec::new();
        for (i, w) in cands.windows(2).enumerate() {
            let delta = bit(w[1].1) as i64 - bit(w[0].1) as i64;
            if delta != 0 {
                st.push((therm[i], delta));
            }
        }
        st.extend_from_slice(extra);
        Ok(b.threshold(&st, 1 - f0 as i64)?)
    })
}

/// Builds significand bit `k` of a quotient with the special-case terms `extra` folded in.
type SigBit<'a> = dyn FnMut(&mut Builder, u32, &[(Lit, i64)]) -> Result<Lit> + 'a;

/// The fields of a quotient: significand bits `k < p - 1` from `sig_bit(b, k, extra)` (which
/// must return `[bit_k + sum extra >= 1]`), the exponent `W + c` (W the form `w_terms`) with
/// saturation (`x != 0` and `y = 0` or `W + c >= 2^q`) and flush (`W + c < 0`) folded into every
/// output gate through `extra`, the leading one, and the sign `s_x XOR s_y`. `0 / y` is zero.
/// Depth: 2 above the form's literals for the range tests, one more for the outputs.
fn pack_quotient(
    b: &mut Builder,
    op: &'static str,
    x: &FloatWord,
    y: &FloatWord,
    w_terms: &[(Lit, i64)],
    c: i64,
    sig_bit: &mut SigBit<'_>,
) -> Result<FloatWord> {
    let fmt = x.fmt;
    let (p, q) = (fmt.p(), fmt.q());
    let (wlo, whi) = form_range(w_terms);
    let top = 1i64 << q;
    let m =
        (whi - wlo) as i64 + (top - c).abs() + (c + 1).abs() + wlo.abs() as i64 + whi as i64 + 1;
    let (nzx, nzy) = (x.nonzero(), y.nonzero());
    // ov: x nonzero and (y zero or W + c >= 2^q).
    let mut ov_t = w_terms.to_vec();
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
        word[k as usize] = sig_bit(b, k, &extra)?;
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
        word[(p + j) as usize] = stair_fn(b, op, &trunc, f, &extra, 0)?;
    }
    let sx = b.xor2(x.sign(), y.sign())?;
    word[(p + q) as usize] = b.threshold(&[(sx, 1), (nzx, 1), (fl, -1)], 2)?;
    FloatWord::new(fmt, word)
}

/// Bits of the reciprocal `y ~ 2^(p + 3) / v` beyond p (`y`'s grid is `2^-(p+3)` of `1/v`).
const RECIP_EXTRA_BITS: u32 = 3;
/// Guard bits of the seed's own grid below the reciprocal's that are tried.
const RECIP_GUARDS: std::ops::RangeInclusive<u32> = 3..=12;

/// `round(x / y)` by a reciprocal seed, one multiplication and an exact remainder check;
/// bit-exact with `Float::div` (docs/float.md: correctly rounded, saturating, flushing, `x / 0` the
/// largest finite value with the sign of x, `0 / y = 0`).
///
/// Construction (`m_x`, `m_y` the significands, `v = m_y / 2^(p-1)` in `[1, 2)`):
/// 1. `lt = [m_y > m_x]` (one gate) and `A = m_x 2^lt`, so that the exact significand ratio
///    `Q = A 2^(p-1) / m_y = A / v` lies in `[2^(p-1), 2^p)`;
/// 2. a piecewise polynomial in the bits of `m_y` (`approx::choose_seed`: a table on the top
///    bits, a truncated polynomial in the rest) gives `y ~ 2^(p+3) / v` within three units, its
///    bits read off with `approx::form_bits`;
/// 3. `c = floor(A y 2^-(p+3))` from the bit products `A_i AND y_j` (truncated below `2^-g`, g
///    the smallest width that keeps the error small enough), so that
///    `|c + 1/2 - Q| < 1/2 + delta` with `delta < 1.45` proved at build time from the seed's
///    bound and the dropped products;
/// 4. the exact check: the rounded ratio `R = RNE(Q)` satisfies `R >= c + j` exactly when
///    `F_j = 2^p A - (2c + 2j - 1) m_y > 0`, or `F_j = 0` and `c + j` is even (ties to even);
///    `F_j` is one linear form over `A`, `m_y` and the products `c_i AND m_y_k` (one gate, or
///    `approx::ge_big_weights` when its weights exceed one gate's bound), checked for
///    `j in [1 - mm, 1 + mm]` with `mm = floor(delta + 1/2)`, and `R = c - mm + sum passes`;
/// 5. `R = 2^p` (the carry into the next binade) is `[2^p A >= (2^(p+1) - 1) m_y]`; the
///    exponent `E_x - E_y - lt + carry + 1 - p - e_min`, saturation, flush, `x / 0` and `0 / y`
///    are folded into the output gates as in [`div_candidates`].
///
/// Depth about 12 (comparison 1, `A` 3, seed bits 5, quotient bits 8, products 9, check 10,
/// outputs 12), independent of the data; about `p^2` products per stage.
///
/// Errors: `FormatMismatch` for operands of different formats; `Unsupported` if no seed meets
/// the error target (not the case for any supported format).
pub fn div_reciprocal(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::div";
    x.check_same(OP, y)?;
    let fmt = x.fmt;
    let p = fmt.p();
    let (ma, mb) = (x.sig(), y.sig());
    // 1. Normalise the dividend.
    let mut lt_terms = value_terms(mb);
    lt_terms.extend(value_terms(ma).into_iter().map(|(l, w)| (l, -w)));
    let lt = b.threshold(&lt_terms, 1)?;
    let mut a = Vec::with_capacity(p as usize + 1);
    for i in 0..=p as usize {
        let keep = ma.get(i).copied().unwrap_or(Lit::FALSE);
        let shifted = if i >= 1 { ma[i - 1] } else { Lit::FALSE };
        a.push(b.mux(lt, shifted, keep)?);
    }
    // 2. Reciprocal seed: y ~ 2^wy / v.
    let wy = p + RECIP_EXTRA_BITS;
    let frac = p - 1;
    // The seed's grid has `gy` guard bits below y's; its error target is one unit of y.
    let chosen =
        approx::choose_seed(-2, 1, frac, wy, 2.0, RECIP_GUARDS, wy + 1).ok_or_else(|| {
            GadgetError::Unsupported {
                op: OP,
                limit: format!("no reciprocal seed meets the error target at p = {p}"),
            }
        })?;
    let gy = chosen.guard;
    let ti = chosen.domain.ti as usize;
    let low = &mb[..frac as usize - ti];
    let index = &mb[frac as usize - ti..frac as usize];
    let s_y = approx::poly_form(b, OP, &chosen.seed.poly, index, low)?;
    let ybits = approx::form_bits(b, OP, &s_y, gy, gy + wy + 1)?;
    // |y 2^-wy - 1/v| <= 2^-wy (1 + bound 2^-gy).
    let y_err = (-(wy as f64)).exp2() * (1.0 + chosen.seed.bound / (gy as f64).exp2());
    // 3. c = floor(A y 2^-wy) on the grid 2^-g: the smallest g with delta < 1.45 (three checks).
    let a_max = ((p + 1) as f64).exp2();
    let mut chosen_g = None;
    for g in 2..=16u32 {
        let mut dropped = 0.0f64;
        for i in 0..=p {
            for j in 0..=wy {
                let e = i as i64 + j as i64 - wy as i64 + g as i64;
                if e < 0 {
                    dropped += (e as f64).exp2();
                }
            }
        }
        let delta = a_max * y_err + dropped / (g as f64).exp2();
        if delta < 1.45 {
            chosen_g = Some((g, delta));
            break;
        }
    }
    let (g, delta) = chosen_g.ok_or_else(|| GadgetError::Unsupported {
        op: OP,
        limit: format!("reciprocal seed too coarse at p = {p}"),
    })?;
    let mut q_terms: Vec<(Lit, i64)> = Vec::new();
    for (i, &ai) in a.iter().enumerate() {
        for (j, &yj) in ybits.iter().enumerate() {
            let e = i as i64 + j as i64 - wy as i64 + g as i64;
            if e >= 0 {
                let m = b.and2(ai, yj)?;
                q_terms.push((m, 1i64 << e));
            }
        }
    }
    let c = approx::form_bits(b, OP, &q_terms, g, g + p + 1)?;
    // 4. Exact checks R >= c + j for j in [1 - m, 1 + m].
    let mm = (delta + 0.5).floor() as i64;
    let mut prods: Vec<(Lit, i128)> = Vec::new();
    for (i, &ci) in c.iter().enumerate() {
        for (k, &bk) in mb.iter().enumerate() {
            let g2 = b.and2(ci, bk)?;
            prods.push((g2, -(1i128 << (i + k + 1))));
        }
    }
    let mut passes = Vec::new();
    for j in 1 - mm..=1 + mm {
        let mut t: Vec<(Lit, i128)> = a
            .iter()
            .enumerate()
            .map(|(i, &l)| (l, 1i128 << (p as usize + i)))
            .collect();
        t.extend_from_slice(&prods);
        let dj = 2 * j as i128 - 1;
        t.extend(mb.iter().enumerate().map(|(k, &l)| (l, -dj << k)));
        // F_j + [c + j even] >= 1.
        let theta = if j.rem_euclid(2) == 0 {
            t.push((c[0], -1));
            0
        } else {
            t.push((c[0], 1));
            1
        };
        passes.push(approx::ge_big_weights(b, OP, &t, theta)?);
    }
    // 5. Carry and packing.
    let mut ct: Vec<(Lit, i128)> = a
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, 1i128 << (p as usize + i)))
        .collect();
    let k2 = (1i128 << (p + 1)) - 1;
    ct.extend(mb.iter().enumerate().map(|(k, &l)| (l, -(k2 << k))));
    let carry = approx::ge_big_weights(b, OP, &ct, 0)?;
    let cexp = 1 - p as i64 - fmt.e_min() as i64;
    let mut w_terms = value_terms(x.exp());
    w_terms.extend(value_terms(y.exp()).into_iter().map(|(l, w)| (l, -w)));
    w_terms.push((lt, -1));
    w_terms.push((carry, 1));
    pack_quotient(b, OP, x, y, &w_terms, cexp, &mut |b, k, extra| {
        approx::offset_bit(b, &c, -mm, &passes, k, extra, 0)
    })
}
