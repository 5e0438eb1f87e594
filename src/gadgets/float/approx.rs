//! Building blocks of the arithmetic (non-table) constructions of exp, sqrt, rsqrt and div:
//! lookup tables on a few index bits, piecewise polynomials as one linear form, bits of a linear
//! form, comparisons of forms too wide for one gate, and the polynomial seeds of `x^a`.
//!
//! - [`table_bits`]: a table of integers indexed by a small word, every output bit a staircase
//!   on the index's value (docs/float.md item 1): depth 2, one bank shared by all bits.
//! - [`poly_form`]: the integer `S(h, l)` of a [`PiecewisePoly`] as one linear form: the table
//!   bits of degree 0 directly, and one AND gate per kept bit product (depth 3 above the index
//!   and low bits).
//! - [`form_bits`]: bits `[lo, hi)` of a form's value, each a staircase on the form with its
//!   weights reduced modulo `2^(j+1)` (docs/float.md item 2): depth 2.
//! - [`ge_big_weights`]: `[sum w_i l_i >= theta]` with weights beyond the builder's `2^62` bound, by
//!   splitting every weight at bit B (`w = 2^B hi + lo`): the low form's `floor` is a bank, and
//!   one gate on the high form plus that bank decides (depth 2 per split, recursively).
//! - [`power_seed`]: a piecewise polynomial approximating `v^alpha` (`alpha` = -1, 1/2, -1/2)
//!   on `[1, 2)` or `[1, 4)` with a rigorous error bound: the seeds of div, sqrt and rsqrt,
//!   whose results an exact check then corrects.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::circuit::{Builder, Lit};
use crate::float::poly::PiecewisePoly;
use crate::gadgets::error::{GadgetError, Result};

use super::mul::stair_toggles;

/// Largest index width of a seed table (`2^12` pieces per binade).
const MAX_SEED_INDEX_BITS: u32 = 12;

/// Budget of every single gate built here (`sum |w| + |theta|`), half the builder's bound.
const GATE_BUDGET: i128 = 1 << 61;

fn unsupported(op: &'static str, limit: String) -> GadgetError {
    GadgetError::Unsupported { op, limit }
}

/// `i128` weight to `i64`, or an `Unsupported` error naming `op`.
fn weight64(op: &'static str, w: i128) -> Result<i64> {
    i64::try_from(w).map_err(|_| unsupported(op, format!("weight {w} exceeds i64")))
}

/// The bits of a table `entry(h)` for `h` in `[0, 2^index.len())` (`index` least significant
/// first; `width` bits of each entry in two's complement): every bit a staircase on the index
/// value `sum 2^i index_i` (one bank shared by all bits; depth 2; constant bits fold away).
pub(crate) fn table_bits(
    b: &mut Builder,
    index: &[Lit],
    width: u32,
    entry: impl Fn(usize) -> i128,
) -> Result<Vec<Lit>> {
    let n = 1usize << index.len();
    let terms: Vec<(Lit, i64)> = index
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, 1i64 << i))
        .collect();
    let vals: Vec<i128> = (0..n).map(&entry).collect();
    let mut out = Vec::with_capacity(width as usize);
    for a in 0..width {
        let bit = |v: i128| (v >> a.min(127)) & 1 == 1;
        let f0 = bit(vals[0]);
        let mut toggles = Vec::new();
        let mut cur = f0;
        for (h, &v) in vals.iter().enumerate().skip(1) {
            if bit(v) != cur {
                toggles.push(h as i128);
                cur = !cur;
            }
        }
        out.push(stair_toggles(b, &terms, &toggles, f0, &[], 0)?);
    }
    Ok(out)
}

/// The integer `S(h, l)` of `poly` as the terms of one linear form (see `float::poly`), with
/// `h` the value of `index` (least significant first; `2^index.len()` must equal the number of
/// pieces) and `l` the value of `low` (missing high bits of `low` read as zero).
///
/// Depth: table bits 2 above `index`; bit products one AND above the table bits and `low`.
/// Errors: `Unsupported` when the pieces do not match the index or a weight leaves `i64`.
pub(crate) fn poly_form(
    b: &mut Builder,
    op: &'static str,
    poly: &PiecewisePoly,
    index: &[Lit],
    low: &[Lit],
) -> Result<Vec<(Lit, i64)>> {
    if poly.pieces() != 1usize << index.len() {
        return Err(unsupported(
            op,
            format!(
                "polynomial of {} pieces on {} index bits",
                poly.pieces(),
                index.len()
            ),
        ));
    }
    let lbit = |i: u32| low.get(i as usize).copied().unwrap_or(Lit::FALSE);
    let mut terms: Vec<(Lit, i64)> = Vec::new();
    for k in 0..=poly.degree() {
        let tb = table_bits(b, index, poly.width(k), |h| poly.coeff(k, h))?;
        for (a, &t) in tb.iter().enumerate() {
            if t == Lit::FALSE {
                continue;
            }
            let sign = poly.bit_sign(k, a as u32);
            for (set, w) in poly.monomials(k, a as u32) {
                let mut lits: Vec<Lit> = set.iter().map(|&i| lbit(i)).collect();
                if lits.contains(&Lit::FALSE) {
                    continue;
                }
                lits.push(t);
                let g = b.and(&lits)?;
                terms.push((g, weight64(op, sign * w)?));
            }
        }
    }
    Ok(terms)
}

/// Bits `[lo, hi)` of the value of the form `terms` (two's complement when the value can be
/// negative): bit j is a staircase on the form with weights reduced modulo `2^(j+1)`, whose
/// value is congruent to the form's (docs/float.md item 2). Depth 2 above the terms.
pub(crate) fn form_bits(
    b: &mut Builder,
    op: &'static str,
    terms: &[(Lit, i64)],
    lo: u32,
    hi: u32,
) -> Result<Vec<Lit>> {
    let mut out = Vec::with_capacity(hi.saturating_sub(lo) as usize);
    for j in lo..hi {
        let modulus = 1i128 << (j + 1);
        let trunc: Vec<(Lit, i64)> = terms
            .iter()
            .filter_map(|&(l, w)| {
                let r = (w as i128).rem_euclid(modulus);
                (r != 0).then_some((l, r as i64))
            })
            .collect();
        let smax: i128 = trunc.iter().map(|&(_, w)| w as i128).sum();
        if smax > GATE_BUDGET {
            return Err(unsupported(
                op,
                format!("bit {j} of a form whose truncated weights sum to {smax} > 2^61"),
            ));
        }
        let unit = 1i128 << j;
        let toggles: Vec<i128> = (1..=smax / unit).map(|k| k * unit).collect();
        out.push(stair_toggles(b, &trunc, &toggles, false, &[], 0)?);
    }
    Ok(out)
}

/// `[sum w_i l_i >= theta]` for weights of any size (`i128`).
///
/// When `sum |w| + |theta| <= 2^61` this is one gate. Otherwise every weight is split at a bit
/// `B` as `w = 2^B hi + lo` with `0 <= lo < 2^B` (and `theta = 2^B th + tl` likewise). With
/// `L = sum lo_i l_i` and `H = floor((L - tl) / 2^B)`, the condition is exactly
/// `sum hi_i l_i + H >= th` (both sides integers, `L - tl - 2^B H` in `[0, 2^B)`), and
/// `H = sum_a [L >= tl + a 2^B] - [tl > 0]` is one bank on `L`. The high form is split again
/// if it is still too wide. Depth 2 per split (banks, then the gate on the high form), 1 when no
/// split is needed. `B` is the smallest bit for which the high form fits one gate, so that only
/// the terms whose weights are not multiples of `2^B` enter `L`, and the bank has at most about
/// one gate per such term.
pub(crate) fn ge_big_weights(
    b: &mut Builder,
    op: &'static str,
    terms: &[(Lit, i128)],
    theta: i128,
) -> Result<Lit> {
    // Merge equal literals and fold constants.
    let mut t: Vec<(Lit, i128)> = Vec::with_capacity(terms.len());
    let mut theta = theta;
    for &(l, w) in terms {
        match l.const_value() {
            Some(true) => theta -= w,
            Some(false) => {}
            None => t.push((l, w)),
        }
    }
    t.sort_by_key(|&(l, _)| l);
    let mut merged: Vec<(Lit, i128)> = Vec::with_capacity(t.len());
    for (l, w) in t {
        match merged.last_mut() {
            Some(last) if last.0 == l => last.1 += w,
            _ => merged.push((l, w)),
        }
    }
    merged.retain(|&(_, w)| w != 0);
    let sum_abs: i128 = merged
        .iter()
        .fold(0i128, |a, &(_, w)| a.saturating_add(w.abs()));
    if sum_abs.saturating_add(theta.abs()) <= GATE_BUDGET {
        let t64: Vec<(Lit, i64)> = merged.iter().map(|&(l, w)| (l, w as i64)).collect();
        return Ok(b.bank_i128(&t64, &[theta])?[0]);
    }
    // Smallest B whose high form (plus at most one bank gate per term) fits the budget: the
    // fewer weights are cut, the fewer terms the low form and its bank carry.
    let high_sum = |bb: u32| -> i128 {
        merged
            .iter()
            .map(|&(_, w)| (w - w.rem_euclid(1i128 << bb)).abs() >> bb)
            .fold(0i128, |a, x| a.saturating_add(x))
            .saturating_add(theta.abs() >> bb)
            .saturating_add(merged.len() as i128 + 2)
    };
    let mut bb = 1u32;
    while high_sum(bb) > GATE_BUDGET / 2 {
        bb += 1;
        if bb > 120 {
            return Err(unsupported(
                op,
                format!("comparison of {} terms too wide to split", merged.len()),
            ));
        }
    }
    let unit = 1i128 << bb;
    let lo_terms: Vec<(Lit, i64)> = merged
        .iter()
        .filter_map(|&(l, w)| {
            let r = w.rem_euclid(unit);
            (r != 0).then_some((l, r as i64))
        })
        .collect();
    let lmax: i128 = lo_terms.iter().map(|&(_, w)| w as i128).sum();
    let tl = theta.rem_euclid(unit);
    let th = (theta - tl) / unit;
    let a0 = if tl > 0 { 0 } else { 1 };
    let amax = (lmax - tl).div_euclid(unit);
    let thetas: Vec<i128> = (a0..=amax).map(|a| tl + a * unit).collect();
    let bank = if thetas.is_empty() {
        Vec::new()
    } else {
        b.bank_i128(&lo_terms, &thetas)?
    };
    let mut hi_terms: Vec<(Lit, i128)> = merged
        .iter()
        .filter_map(|&(l, w)| {
            let h = (w - w.rem_euclid(unit)) / unit;
            (h != 0).then_some((l, h))
        })
        .collect();
    hi_terms.extend(bank.iter().map(|&g| (g, 1i128)));
    ge_big_weights(b, op, &hi_terms, th + (tl > 0) as i128)
}

/// The Taylor coefficient `binom(alpha, k) x^(alpha - k)` of `v^alpha` at `x > 0`, for
/// `alpha` in `{-1, 1/2, -1/2}` (given as `2 alpha`), computed with IEEE operations only
/// (`sqrt`, `*`, `/`), so that the result is the same on every platform.
fn taylor(alpha2: i32, k: u32, x: f64) -> f64 {
    let alpha = alpha2 as f64 / 2.0;
    let mut binom = 1.0;
    for j in 0..k {
        binom *= (alpha - j as f64) / (j + 1) as f64;
    }
    let mut pow = 1.0;
    for _ in 0..k {
        pow /= x;
    }
    let base = match alpha2 {
        -2 => 1.0 / x,
        1 => x.sqrt(),
        _ => 1.0 / x.sqrt(),
    };
    binom * base * pow
}

/// A polynomial seed of `v^alpha` and its error bound.
#[derive(Clone, Debug)]
pub(crate) struct Seed {
    /// The piecewise polynomial: `S` is about `v^alpha * 2^grid`.
    pub poly: PiecewisePoly,
    /// `|S - v^alpha 2^grid| <= bound` for every input (in units of the grid).
    pub bound: f64,
}

/// Where the seed's input lies: `v = x_h + scale_h * l * 2^-(l_unit)` on piece `h`, with
/// `x_h = (1 + h_low 2^-ti) 2^h_top` for `h = h_low + 2^ti h_top` (`h_top` in `[0, tops)`),
/// `scale_h = 2^h_top`, and `l` of `low_bits` bits below `2^-(l_unit - low_bits) = 2^-ti`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeedDomain {
    /// Index bits of the fraction below the leading one.
    pub ti: u32,
    /// Number of binades (1: `v` in `[1, 2)`; 2: `v` in `[1, 4)` with `h_top` the binade).
    pub tops: u32,
    /// Bits of `l`.
    pub low_bits: u32,
}

/// The seed of `v^(alpha2 / 2)` of degree `d` on `domain`, on the grid `2^-grid`.
///
/// Term k of piece h is `c_k(x_h) (scale_h l 2^-lu)^k` with `lu = ti + low_bits` and
/// `c_k = binom(alpha, k) x^(alpha - k)`; its coefficient is stored as
/// `C_k[h] = round(c_k(x_h) scale_h^k 2^sigma_k)` with `sigma_0 = grid` and
/// `sigma_k = grid + 2 + k ti`, so that rounding it costs at most a quarter grid unit (half a
/// unit for degree 0), and the shift of degree k is `sigma_k + k lu - grid`.
/// Bound: Taylor remainder `|c_(d+1)(x_h)| width_h^(d+1)` (at the left end, where it is largest
/// for these powers), coefficient rounding, dropped bit products, the f64 evaluation's error
/// (its operations are correctly rounded IEEE operations, so the tables are the same on every
/// platform), and a 1% margin. `None` when a coefficient does not fit 100 bits.
pub(crate) fn power_seed(alpha2: i32, domain: SeedDomain, d: u32, grid: u32) -> Option<Seed> {
    const KAPPA: u32 = 2;
    let SeedDomain { ti, tops, low_bits } = domain;
    let pieces = (1usize << ti) * tops as usize;
    let lu = ti + low_bits; // l's unit is 2^-lu (before scale_h)
    let mut coeffs: Vec<Vec<i128>> = vec![Vec::with_capacity(pieces); d as usize + 1];
    let mut rem_max = 0.0f64;
    for h in 0..pieces {
        let (hl, top) = (h % (1 << ti), h >> ti);
        let scale = (top as f64).exp2();
        let x = (1.0 + hl as f64 / (ti as f64).exp2()) * scale;
        for (k, ck) in coeffs.iter_mut().enumerate() {
            let k = k as u32;
            let sigma = (grid + KAPPA + k * ti) as i32 - if k == 0 { KAPPA as i32 } else { 0 };
            let v = taylor(alpha2, k, x) * scale.powi(k as i32) * (sigma as f64).exp2();
            if !v.is_finite() || v.abs() > 2f64.powi(100) {
                return None;
            }
            ck.push(v.round() as i128);
        }
        let width = scale / (ti as f64).exp2();
        let r = taylor(alpha2, d + 1, x).abs() * width.powi(d as i32 + 1);
        rem_max = rem_max.max(r);
    }
    // shift_k = sigma_k + k lu - grid = KAPPA + k (ti + lu).
    let shifts: Vec<i32> = (0..=d)
        .map(|k| {
            if k == 0 {
                0
            } else {
                (KAPPA + k * ti + k * lu) as i32
            }
        })
        .collect();
    let poly = PiecewisePoly::new(low_bits, coeffs, shifts)?;
    let trunc = poly.truncation_bound();
    let coef = 0.5 + d as f64 * 0.5 * (-(KAPPA as f64)).exp2();
    // The f64 evaluation of each coefficient (a few IEEE operations, relative error below 2^-50)
    // shifts it by at most 2^-50 of its size; every term's contribution is below 2^(grid + 2).
    let fp = (d + 1) as f64 * ((grid as f64) + 2.0 - 50.0).exp2();
    let bound = (rem_max * (grid as f64).exp2() + coef + trunc + fp) * 1.01;
    Some(Seed { poly, bound })
}

/// Estimated cost of a seed whose `S` is read through [`form_bits`] for `out_bits` bits above
/// bit `lo`: the table staircases (one term per toggle), plus per output bit the terms of its
/// truncated form and, weighted 1/32, the fan-in of its bank (toggles times terms).
pub(crate) fn seed_cost(poly: &PiecewisePoly, lo: u32, out_bits: u32) -> f64 {
    let mut cost = 0.0;
    let mut weights: Vec<i128> = Vec::new();
    for k in 0..=poly.degree() {
        for a in 0..poly.width(k) {
            let mut toggles = 0;
            for h in 1..poly.pieces() {
                if poly.table_bit(k, h, a) != poly.table_bit(k, h - 1, a) {
                    toggles += 1;
                }
            }
            if toggles == 0 && !poly.table_bit(k, 0, a) {
                continue;
            }
            cost += toggles as f64;
            let sign = poly.bit_sign(k, a);
            weights.extend(poly.monomials(k, a).into_iter().map(|(_, w)| sign * w));
        }
    }
    for j in lo..lo + out_bits {
        let modulus = 1i128 << (j + 1).min(126);
        let mut kept = 0.0;
        let mut smax = 0.0;
        for &w in &weights {
            let r = w.rem_euclid(modulus);
            if r != 0 {
                kept += 1.0;
                smax += r as f64;
            }
        }
        let toggles = smax / (j as f64).exp2();
        cost += kept + toggles * kept / 32.0;
    }
    cost
}

/// Bit `k` of `c + offset + sum passes` (`c` a word least significant first, each pass literal
/// weighing 1) with `extra` folded in: `[bit_k + sum extra >= 1 + need]`. A staircase on
/// `sum_{i <= k} 2^i c_i + sum passes + (offset mod 2^(k+1))`, which is congruent to the value
/// modulo `2^(k+1)` (docs/float.md item 2): depth 2 above `c` and the passes.
pub(crate) fn offset_bit(
    b: &mut Builder,
    c: &[Lit],
    offset: i64,
    passes: &[Lit],
    k: u32,
    extra: &[(Lit, i64)],
    need: i64,
) -> Result<Lit> {
    let modulus = 1i64 << (k + 1);
    let mut terms: Vec<(Lit, i64)> = c
        .iter()
        .take(k as usize + 1)
        .enumerate()
        .map(|(i, &l)| (l, 1i64 << i))
        .collect();
    terms.extend(passes.iter().map(|&l| (l, 1i64)));
    let off = offset.rem_euclid(modulus);
    if off != 0 {
        terms.push((Lit::TRUE, off));
    }
    let smax: i64 = terms.iter().map(|&(_, w)| w).sum();
    let unit = 1i64 << k;
    let toggles: Vec<i128> = (1..=smax / unit).map(|j| (j * unit) as i128).collect();
    stair_toggles(b, &terms, &toggles, false, extra, need)
}

/// A seed chosen for a target: the guard bits, the domain and the seed itself.
#[derive(Clone, Debug)]
pub(crate) struct ChosenSeed {
    /// Guard bits of the seed's grid below the unit of the value read from it.
    pub guard: u32,
    /// Where the polynomial's input lies.
    pub domain: SeedDomain,
    /// The polynomial and its bound.
    pub seed: Seed,
}

/// The cheapest seed of `v^(alpha2/2)` on `tops` binades with `frac_bits` bits below the
/// leading one, read as `floor(S / 2^g)` on `out_bits` bits with `S` on the grid
/// `2^-(base + g)`, whose bound is at most `target 2^g` grid units (that is, `target` units of
/// the value read). Guard widths `g` in `guards`, degrees 1 to 3 and, per degree and guard, the
/// two smallest index widths that meet the target are compared by [`seed_cost`] (ties: the
/// first found). Deterministic; cached per argument list.
pub(crate) fn choose_seed(
    alpha2: i32,
    tops: u32,
    frac_bits: u32,
    base: u32,
    target: f64,
    guards: std::ops::RangeInclusive<u32>,
    out_bits: u32,
) -> Option<ChosenSeed> {
    type Key = (i32, u32, u32, u32, u64, u32, u32, u32);
    static CACHE: OnceLock<Mutex<HashMap<Key, Option<ChosenSeed>>>> = OnceLock::new();
    let key: Key = (
        alpha2,
        tops,
        frac_bits,
        base,
        target.to_bits(),
        *guards.start(),
        *guards.end(),
        out_bits,
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return hit;
    }
    let mut best: Option<(f64, ChosenSeed)> = None;
    for guard in guards {
        let grid = base + guard;
        let tgt = target * (guard as f64).exp2();
        for d in 1..=3u32 {
            let mut found = 0;
            for ti in 0..=frac_bits.min(MAX_SEED_INDEX_BITS) {
                let domain = SeedDomain {
                    ti,
                    tops,
                    low_bits: frac_bits - ti,
                };
                // Quick reject on the remainder alone (at the left end of the domain).
                let rem = taylor(alpha2, d + 1, 1.0).abs() * (-((ti * (d + 1)) as f64)).exp2();
                if rem * (grid as f64).exp2() > tgt {
                    continue;
                }
                let Some(seed) = power_seed(alpha2, domain, d, grid) else {
                    continue;
                };
                if seed.bound > tgt {
                    continue;
                }
                let cost = seed_cost(&seed.poly, guard, out_bits);
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((
                        cost,
                        ChosenSeed {
                            guard,
                            domain,
                            seed,
                        },
                    ));
                }
                found += 1;
                if found == 2 {
                    break;
                }
            }
        }
    }
    let out = best.map(|(_, s)| s);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, out.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::cpu::CpuEvaluator;
    use crate::eval::{Batch, Evaluator};

    /// `ge_big_weights` with weights far beyond one gate's bound (mixed signs, up to 2^100, thresholds
    /// on both sides and at exact ties) equals the comparison computed with i128, on every
    /// assignment of 10 inputs.
    #[test]
    fn ge_big_weights_matches_exact_comparison() {
        let n = 10usize;
        let mut b = Builder::new();
        let x = b.input_word("x", n as u32).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases: Vec<(Vec<(Lit, i128)>, i128)> = Vec::new();
        for c in 0..12 {
            let terms: Vec<(Lit, i128)> = x
                .iter()
                .map(|&l| {
                    let sh = (next() % 100) as u32;
                    let w = ((next() >> 1) as i128) << sh.saturating_sub(60);
                    (l, if next() % 3 == 0 { -w } else { w })
                })
                .collect();
            // Thresholds: random, and the value of one assignment (a tie).
            let theta = if c % 2 == 0 {
                terms.iter().take(c % n + 1).map(|&(_, w)| w).sum()
            } else {
                ((next() >> 1) as i128) << 30
            };
            cases.push((terms, theta));
        }
        let outs: Vec<Lit> = cases
            .iter()
            .map(|(t, th)| ge_big_weights(&mut b, "test", t, *th).unwrap())
            .collect();
        b.output_word("y", &outs).unwrap();
        let c = b.finish();
        let lv = c.levelize();
        let mut ev = CpuEvaluator::new(&lv).unwrap();
        let inputs: Vec<Vec<u64>> = (0..1u64 << n).map(|v| vec![v]).collect();
        let batch = Batch::pack_fields(&[n as u32], &inputs).unwrap();
        let got = ev
            .evaluate(&batch)
            .unwrap()
            .unpack_fields(&[outs.len() as u32])
            .unwrap();
        for (v, g) in got.iter().enumerate() {
            for (k, (t, th)) in cases.iter().enumerate() {
                let sum: i128 = t
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (v >> i) & 1 == 1)
                    .map(|(_, &(_, w))| w)
                    .sum();
                assert_eq!((g[0] >> k) & 1 == 1, sum >= *th, "case {k}, input {v:#x}");
            }
        }
    }

    #[test]
    fn seeds_are_within_their_bounds() {
        // v^alpha on [1, 4) with 2 binades, 4 index bits, 6 low bits: compare S with f64.
        for alpha2 in [-2, 1, -1] {
            let tops = if alpha2 == -2 { 1 } else { 2 };
            let dom = SeedDomain {
                ti: 4,
                tops,
                low_bits: 6,
            };
            for d in 1..=3 {
                let grid = 20;
                let s = power_seed(alpha2, dom, d, grid).unwrap();
                for h in 0..s.poly.pieces() {
                    for l in 0..64u64 {
                        let (hl, top) = (h % 16, h >> 4);
                        let scale = (top as f64).exp2();
                        let v = (1.0 + hl as f64 / 16.0) * scale + scale * l as f64 / 1024.0;
                        let want = v.powf(alpha2 as f64 / 2.0) * (grid as f64).exp2();
                        let got = s.poly.eval(h, l) as f64;
                        assert!(
                            (got - want).abs() <= s.bound,
                            "alpha2={alpha2} d={d} h={h} l={l}: {got} vs {want} (bound {})",
                            s.bound
                        );
                    }
                }
            }
        }
    }
}
