//! Float addition and subtraction of two operands: `round(x ± y)` (docs/float.md: exact result,
//! one rounding to nearest even, saturation above `e_max`, flush below `e_min`, one zero).
//!
//! `sub(x, y)` is `x + (-y)`: the negation only complements `y`'s sign literal, so it costs
//! nothing.
//!
//! # Construction (docs/float.md), depth 6
//!
//! The operands are aligned by their exponent difference instead of being placed on the full
//! `2^q`-column grid of the iterated sum (`super::sum`). With `a` the operand of larger
//! magnitude, `b` the other, `d = E_a - E_b >= 0` and `G = 2` guard bits, the exact sum is
//! replaced by the integer
//!
//! `R = A' ± B''`, `A' = m_a * 2^(G+1)`, `B'' = 2 floor(m_b 2^(G-d)) + st`,
//!
//! where the sticky bit `st` says that `m_b 2^(G-d)` is not an integer, and the value is
//! `R * 2^(e_a - G - 1)` (`+` when the signs agree, `-` otherwise). `R` is exact when `st = 0`;
//! when `st = 1` then `d >= G + 1`, `R` is odd and lies strictly between the same two even
//! integers as the exact value, and the result's rounding position is at bit 2 or above (its
//! leading one is at `p + G - 1` or above), so `R` rounds exactly like the exact value (the
//! classical guard/round/sticky argument). A difference `d >= p + G` leaves only `st`.
//!
//! 1. `c = [|x| >= |y|]` (one gate on the magnitude fields) and the thermometer
//!    `T_k = [E_x - E_y >= k]` for `|k| <= p + G` (one bank on a `2q`-term form).
//! 2. Single gates: the operand swap (`m_a`, `E_a`, the result sign: `c AND ...`,
//!    `NOT c AND ...`), the alignment `[m_b bit AND (E_x - E_y = ±k)]` for every column of
//!    `B''` and every shift `k < p + G` (the case `k` is `T_k AND NOT T_(k+1)`, folded into the
//!    gate), the sticky terms `[m_y bit r AND T_(G+1+r)]` (and the mirrored ones for `x`), and
//!    `sub_eff = sign_x XOR sign_y` (depth 2).
//! 3. ORs: the bits of `m_a`, `E_a`, `B''`.
//! 4. The prefix forms `F_j = sum_(i <= j) 2^i (A'_i ± B''_i)` (two variants: effective
//!    addition and subtraction, the latter with negative weights; `F_j = R mod 2^(j+1)`).
//!    On the full form, for every candidate result shift `s` (significand `round(R / 2^s)`),
//!    `t_s = [R >= 2^(s+p-1)]` and `u_s = [R >= 2^(s+p) - 2^(s-1)]` (rounding carries into the
//!    next binade), with the variant's `sub_eff` condition folded in. As in `super::mul`, bit k
//!    of the round-to-nearest-even quotient `V_s(R)` depends only on `R mod 2^(s+k+1)`: it is a
//!    staircase on `F_(s+k)` (a bank here).
//! 5. The staircase output gates, restricted to the inputs whose shift is s (`t_s AND NOT
//!    u_s`); the exponent `E_a + sum_s u_s - p sub_eff` and its overflow and underflow tests
//!    (banks on that form).
//! 6. Each output bit: an OR of the exclusive shift cases with saturation and flush folded in.
//!
//! The shifts: effective addition has its leading one at `p + G` or `p + G + 1` (shifts
//! `G + 1, G + 2`); effective subtraction at `p + G - 1` or `p + G` when `d >= 2`, and anywhere
//! down to `G` when `d <= 1` (cancellation), where `R` is a multiple of `2^G` and the result is
//! exact (shifts `G + 1 - p ..= G + 1`; the left shifts are plain bits of `R`).
//!
//! Size: about `p^2 + 2 p G` alignment gates (3 or 4 terms each), `2 (p + G)^2` terms of prefix
//! forms, and `p^2 / 2 + 5 p` staircase outputs of a few terms each: `O(p^2)` terms, with
//! nothing exponential in q (the thermometer spans only the `2 (p + G)` shifts that matter).
//! Depth 6, the same as the iterated sum's construction at small formats (which placed both
//! operands on the `p + 2^q`-column grid: `O(p 2^q)` gates and `O(2^(2q))` terms, depth growing
//! with its block count at large q).

use crate::circuit::{Builder, Lit};

use super::super::error::{GadgetError, Result};
use super::mul::{form_range, stair_fn, stair_toggles};
use super::round::{bank_if, gate_if, Cond};
use super::FloatWord;

/// Guard bits kept between the larger operand's last bit and the sticky bit.
const GUARD: i64 = 2;

/// `round(x + y)` (docs/float.md; `Float::add`). Depth 6.
/// Errors when the operands have different formats.
pub fn add(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    x.check_same("float add", y)?;
    add_signed(b, "float add", x, y, false)
}

/// `round(x - y)` (docs/float.md; `Float::sub`). Depth 6, the same circuit as [`add`] with `y`'s
/// sign literal complemented.
/// Errors when the operands have different formats.
pub fn sub(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    x.check_same("float sub", y)?;
    add_signed(b, "float sub", x, y, true)
}

/// Round-to-nearest-even quotient `V_s(v) = floor((v + 2^(s-1) - 1 + bit_s(v)) / 2^s)`
/// (`s >= 1`). Monotone in v with steps of 0 or 1, and `V_s(v + m 2^(s+k+1)) = V_s(v) +
/// m 2^(k+1)`, so bit k of `V_s(v)` depends only on `v mod 2^(s+k+1)`; for `v >= 0` it is
/// `v / 2^s` rounded to nearest, ties to even.
fn rne_quotient(v: i128, s: u32) -> i128 {
    (v + (1i128 << (s - 1)) - 1 + ((v >> s) & 1)) >> s
}

/// The points in `(lo, hi]` where bit `k` of `f` changes, for `f` nondecreasing on `[lo, hi]`
/// with steps of 0 or 1: the least `v` with `f(v) >= m 2^k` for each multiple `m 2^k` in
/// `(f(lo), f(hi)]` (binary search).
fn bit_toggles(lo: i128, hi: i128, k: u32, f: impl Fn(i128) -> i128) -> Vec<i128> {
    let step = 1i128 << k;
    let (flo, fhi) = (f(lo), f(hi));
    let mut out = Vec::new();
    let mut m = flo.div_euclid(step) + 1;
    while m * step <= fhi {
        let target = m * step;
        let (mut a, mut z) = (lo, hi);
        while a < z {
            let mid = a + (z - a).div_euclid(2);
            if f(mid) >= target {
                z = mid;
            } else {
                a = mid + 1;
            }
        }
        out.push(a);
        m += 1;
    }
    out
}

/// The exponent-difference thermometer `T_k = [E_x - E_y >= k]` for `k` in `[k_lo, p + G]`,
/// `k_lo = 1 - (p + G)`: the only shifts that matter (docs/float.md).
struct Thermometer {
    lits: Vec<Lit>,
    k_lo: i64,
}

impl Thermometer {
    /// `T_k`; only thresholds in `[k_lo, p + G]` are ever read.
    fn at(&self, k: i64) -> Lit {
        self.lits[(k - self.k_lo) as usize]
    }

    /// The condition `E_x - E_y == k` (`T_k AND NOT T_(k+1)`, folded into a gate).
    fn diff_is(&self, k: i64) -> Cond {
        Cond {
            terms: vec![(self.at(k), 1), (self.at(k + 1), -1)],
            constant: -1,
        }
    }
}

/// Layer 1: `c = [|x| >= |y|]` (ties: x, one gate on the magnitude fields) and the
/// exponent-difference [`Thermometer`] (one bank on a `2q`-term form).
fn compare_and_thermometer(
    b: &mut Builder,
    x: &FloatWord,
    y: &FloatWord,
    p: i64,
    q: usize,
) -> Result<(Lit, Thermometer)> {
    let (ex, ey) = (x.exp(), y.exp());
    let w = (p as usize) + q;
    let mut mag: Vec<(Lit, i64)> = Vec::with_capacity(2 * w);
    for i in 0..w {
        mag.push((x.bits[i], 1i64 << i));
        mag.push((y.bits[i], -(1i64 << i)));
    }
    let c = b.threshold(&mag, 0)?; // x is the larger magnitude (ties: x)
    let delta: Vec<(Lit, i64)> = (0..q)
        .flat_map(|i| [(ex[i], 1i64 << i), (ey[i], -(1i64 << i))])
        .collect();
    let dmax = p + GUARD; // shifts >= dmax leave only the sticky bit
    let k_lo = -(dmax - 1);
    let thetas: Vec<i128> = (k_lo..=dmax).map(|k| k as i128).collect();
    let lits = b.bank_i128(&delta, &thetas)?;
    Ok((c, Thermometer { lits, k_lo }))
}

/// The larger operand `a` selected by `c` (layers 2 and 3): the bits of `m_a`, `E_a` and the
/// two exclusive sign terms (`c AND sign_x`, `NOT c AND sign_y`) whose OR is the result sign.
struct Larger {
    ma: Vec<Lit>,
    ea: Vec<Lit>,
    sign_a: [Lit; 2],
}

/// Layers 2 and 3 of the swap: `m_a`, `E_a` as ORs of `c AND (x bit)` and `NOT c AND (y bit)`,
/// and the two sign terms of [`Larger`].
fn swap_larger(
    b: &mut Builder,
    c: Lit,
    x: &FloatWord,
    y: &FloatWord,
    (sx, sy): (Lit, Lit),
) -> Result<Larger> {
    let (cc, cn) = (Cond::lit(c), Cond::not(c));
    let mux = |b: &mut Builder, u: Lit, v: Lit| -> Result<Lit> {
        let g1 = gate_if(b, &[(u, 1)], 1, &[&cc])?;
        let g2 = gate_if(b, &[(v, 1)], 1, &[&cn])?;
        Ok(b.or(&[g1, g2])?)
    };
    let (mx, my) = (x.sig(), y.sig());
    let (ex, ey) = (x.exp(), y.exp());
    let mut ma = Vec::with_capacity(mx.len());
    for j in 0..mx.len() {
        ma.push(mux(b, mx[j], my[j])?);
    }
    let mut ea = Vec::with_capacity(ex.len());
    for j in 0..ex.len() {
        ea.push(mux(b, ex[j], ey[j])?);
    }
    let sign_a = [
        gate_if(b, &[(sx, 1)], 1, &[&cc])?,
        gate_if(b, &[(sy, 1)], 1, &[&cn])?,
    ];
    Ok(Larger { ma, ea, sign_a })
}

/// Layers 2 and 3 of the alignment: the bits of `B'' = 2 floor(m_b 2^(G-d)) + st` at positions
/// `0 ..= p + G`. Bit `i >= 1` holds `m_b` bit `i - 1 - G + d`, an OR over the shifts `d < p + G`
/// of `[m_b bit AND (E_x - E_y = ±d)]`; bit 0 is the sticky bit, the OR of
/// `[m_b bit r AND d >= G + 1 + r]`.
fn align_smaller(
    b: &mut Builder,
    c: Lit,
    t: &Thermometer,
    mx: &[Lit],
    my: &[Lit],
    p: i64,
) -> Result<Vec<Lit>> {
    let g = GUARD;
    let top = p + g;
    let dmax = p + g;
    let (cc, cn) = (Cond::lit(c), Cond::not(c));
    let mut bb: Vec<Lit> = vec![Lit::FALSE; (top + 1) as usize];
    for i in 1..=top {
        let mut cases = Vec::new();
        for k in 0..dmax {
            let j = i - 1 - g + k;
            if !(0..p).contains(&j) {
                continue;
            }
            let j = j as usize;
            if k == 0 {
                let d0 = t.diff_is(0);
                cases.push(gate_if(b, &[(my[j], 1)], 1, &[&d0, &cc])?);
                cases.push(gate_if(b, &[(mx[j], 1)], 1, &[&d0, &cn])?);
            } else {
                cases.push(gate_if(b, &[(my[j], 1)], 1, &[&t.diff_is(k)])?);
                cases.push(gate_if(b, &[(mx[j], 1)], 1, &[&t.diff_is(-k)])?);
            }
        }
        bb[i as usize] = b.or(&cases)?;
    }
    // Sticky: bit r of m_b drops below B'' when d >= G + 1 + r.
    let mut sticky = Vec::with_capacity(2 * p as usize);
    for r in 0..p {
        sticky.push(b.and(&[my[r as usize], t.at(g + 1 + r)])?);
        sticky.push(b.and(&[mx[r as usize], !t.at(-(g + r))])?);
    }
    bb[0] = b.or(&sticky)?;
    Ok(bb)
}

/// The prefix form `F_j = sum_(i <= j) 2^i (A'_i + sgn B''_i)`, equal to `R mod 2^(j+1)` for the
/// variant of sign `sgn` (`A'` has `m_a` at positions `G + 1 ..= G + p`).
fn prefix_form(ma: &[Lit], bb: &[Lit], p: i64, j: i64, sgn: i64) -> Vec<(Lit, i64)> {
    let (g, top) = (GUARD, p + GUARD);
    let mut f = Vec::with_capacity(2 * (j as usize + 1));
    for i in 0..=j.min(top) {
        let ja = i - g - 1;
        if (0..p).contains(&ja) {
            f.push((ma[ja as usize], 1i64 << i));
        }
        f.push((bb[i as usize], sgn << i));
    }
    f
}

/// Layers 4 and 5 for one variant (effective addition or subtraction, `cond` its `sub_eff`
/// condition): the bank of `t_s = [R >= 2^(s+p-1)]`, `u_s = [R >= 2^(s+p) - 2^(s-1)]` over the
/// variant's shifts `s`, and for every significand bit `k` the staircase of bit `k` of
/// `V_s(R)` restricted to shift `s` (`t_s AND NOT u_s`), pushed to `sig_parts[k]`. Pushes each
/// `u_s` to the exponent form `x_terms`; returns `t_(s_lo)`, which says the variant's `R` is
/// nonzero.
#[allow(clippy::too_many_arguments)]
fn variant_significand(
    b: &mut Builder,
    is_sub: bool,
    cond: &Cond,
    ma: &[Lit],
    bb: &[Lit],
    p: i64,
    sig_parts: &mut [Vec<(Lit, i64)>],
    x_terms: &mut Vec<(Lit, i64)>,
) -> Result<Lit> {
    let g = GUARD;
    let top = p + g;
    let sgn = if is_sub { -1 } else { 1 };
    let (s_lo, s_hi) = if is_sub {
        (g + 1 - p, g + 1)
    } else {
        (g + 1, g + 2)
    };
    let full = prefix_form(ma, bb, p, top, sgn);
    let mut tu_thetas = Vec::new();
    for s in s_lo..=s_hi {
        tu_thetas.push(1i128 << (s + p - 1));
        tu_thetas.push(if s >= 1 {
            (1i128 << (s + p)) - (1i128 << (s - 1))
        } else {
            1i128 << (s + p)
        });
    }
    let tu = bank_if(b, &full, &tu_thetas, &[cond])?;
    for (idx, s) in (s_lo..=s_hi).enumerate() {
        let (ts, us) = (tu[2 * idx], tu[2 * idx + 1]);
        x_terms.push((us, 1));
        let extra = [(ts, 1), (us, -1)];
        for k in 0..p - 1 {
            let j = s + k; // highest bit of R that bit k depends on
                           // Shifts below G are reached only by exact cancellations, where R is a
                           // multiple of 2^G: bits below G are zero.
            if j < 0 || (is_sub && s < g && j < g) {
                continue;
            }
            let form = prefix_form(ma, bb, p, j, sgn);
            let (lo, hi) = form_range(&form);
            let (toggles, f0) = if s >= 1 {
                let su = s as u32;
                let f = |v: i128| rne_quotient(v, su);
                let bit = (f(lo) >> k) & 1 == 1;
                (bit_toggles(lo, hi, k as u32, f), bit)
            } else {
                let bit = (lo >> j) & 1 == 1;
                (bit_toggles(lo, hi, j as u32, |v| v), bit)
            };
            let part = stair_toggles(b, &form, &toggles, f0, &extra, 1)?;
            if part != Lit::FALSE {
                sig_parts[k as usize].push((part, 1));
            }
        }
    }
    Ok(tu[0])
}

/// Layers 5 and 6: the overflow `ov` and underflow `fl` tests on the exponent form `x_terms`
/// (`E_a + sum_s u_s - p sub_eff`), then every output bit as an OR of the exclusive shift cases
/// with saturation and flush folded in: significand bits from `sig_parts`, the hidden-bit
/// position from `nonzero`, the exponent bits as staircases on `x_terms` mod `2^(j+1)`, and
/// the sign from `sign_a`.
fn assemble_outputs(
    b: &mut Builder,
    op: &'static str,
    fmt: crate::float::Format,
    mut sig_parts: Vec<Vec<(Lit, i64)>>,
    x_terms: &[(Lit, i64)],
    nonzero: &[Lit],
    sign_a: [Lit; 2],
) -> Result<FloatWord> {
    let q = fmt.q() as usize;
    // Layer 5: the exponent E_a + sum u_s - p sub_eff, overflow and underflow.
    let nz = Cond::one_of(nonzero);
    let emax = 1i64 << q; // biased exponents must stay below 2^q
    let ov = gate_if(b, x_terms, emax, &[&nz])?;
    let neg_x: Vec<(Lit, i64)> = x_terms.iter().map(|&(l, w)| (l, -w)).collect();
    let fl = b.threshold(&neg_x, 1)?;

    // Layer 6: outputs.
    let mut bits = Vec::with_capacity(fmt.width() as usize);
    for parts in &mut sig_parts {
        parts.push((ov, 2));
        parts.push((fl, -2));
        bits.push(b.threshold(parts, 1)?);
    }
    bits.push(b.threshold(&[(nonzero[0], 1), (nonzero[1], 1), (fl, -1)], 1)?);
    let extra = [(ov, 2), (fl, -2), (nonzero[0], 2), (nonzero[1], 2)];
    for j in 0..q as u32 {
        let modulus = 1i64 << (j + 1);
        let trunc: Vec<(Lit, i64)> = x_terms
            .iter()
            .filter_map(|&(l, w)| {
                let r = w.rem_euclid(modulus);
                (r != 0).then_some((l, r))
            })
            .collect();
        let f = |v: i128| (v >> j) & 1 == 1;
        bits.push(stair_fn(b, op, &trunc, f, &extra, 2)?);
    }
    bits.push(b.threshold(
        &[
            (sign_a[0], 1),
            (sign_a[1], 1),
            (nonzero[0], 1),
            (nonzero[1], 1),
            (fl, -1),
        ],
        2,
    )?);
    FloatWord::new(fmt, bits)
}

/// The shared body of [`add`] and [`sub`]: `round(x + (-1)^negate_y y)`.
fn add_signed(
    b: &mut Builder,
    op: &'static str,
    x: &FloatWord,
    y: &FloatWord,
    negate_y: bool,
) -> Result<FloatWord> {
    let fmt = x.fmt;
    let p = fmt.p() as i64;
    // Positions of R: A' occupies [G + 1, G + p], B'' occupies [0, G + p]; R < 2^(p + G + 2).
    let top = p + GUARD; // highest position of A' and B''
    if top + 3 >= 62 {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!("p = {p}: the aligned sum needs weights up to 2^{}", top + 3),
        });
    }
    let (sx, sy) = (x.sign(), if negate_y { !y.sign() } else { y.sign() });

    // Layer 1: magnitude comparison and the exponent-difference thermometer.
    let (c, therm) = compare_and_thermometer(b, x, y, p, fmt.q() as usize)?;

    // Layers 2 and 3: effective operation, swap, alignment, sticky terms.
    let sub_eff = b.xor2(sx, sy)?;
    let larger = swap_larger(b, c, x, y, (sx, sy))?;
    let bb = align_smaller(b, c, &therm, x.sig(), y.sig(), p)?;

    // Layer 4 on: per variant (effective addition, effective subtraction).
    let mut sig_parts: Vec<Vec<(Lit, i64)>> = vec![Vec::new(); p as usize - 1];
    let mut x_terms: Vec<(Lit, i64)> = (larger.ea.iter().enumerate())
        .map(|(j, &l)| (l, 1i64 << j))
        .collect();
    x_terms.push((sub_eff, -p));
    let mut nonzero = Vec::with_capacity(2);
    for is_sub in [false, true] {
        let cond = if is_sub {
            Cond::lit(sub_eff)
        } else {
            Cond::not(sub_eff)
        };
        nonzero.push(variant_significand(
            b,
            is_sub,
            &cond,
            &larger.ma,
            bb.as_slice(),
            p,
            &mut sig_parts,
            &mut x_terms,
        )?);
    }
    assemble_outputs(b, op, fmt, sig_parts, &x_terms, &nonzero, larger.sign_a)
}
