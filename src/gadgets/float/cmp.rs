//! Float comparison (the usual total order of the values, DESIGN §2), max and argmax of n.
//!
//! The encoding is sign-magnitude with the magnitude ordered like the unsigned integer
//! `A = bits[0, p + q)` (exponent above significand; zero is `A = 0`). Every comparison is an
//! OR over the signs' cases of single gates `[case AND A - B >= k]` (weights `±2^j`), so:
//! `lt`, `le`, `eq`, `compare`: depth 2; `max_n`, `argmax_n`: depth 3 (constructions.md item
//! 10 with the "x_i is the maximum" AND split by x_i's sign and the selection folded in).

use crate::circuit::{Builder, Lit};

use super::super::error::{GadgetError, Result};
use super::round::{gate_if, Cond};
use super::FloatWord;

/// Terms of `A - B` over the magnitude fields (`bits[0, p + q)`) of `x` and `y`, scaled by
/// `sx` for `x` and `-sx` for `y`.
fn mag_diff(x: &FloatWord, y: &FloatWord, sx: i64) -> Vec<(Lit, i64)> {
    let w = (x.fmt.p() + x.fmt.q()) as usize;
    let mut t = Vec::with_capacity(2 * w);
    for i in 0..w {
        t.push((x.bits[i], sx << i));
        t.push((y.bits[i], -(sx << i)));
    }
    t
}

/// `[x < y]` in the total order of the values. Depth 2. Errors on different formats.
pub fn lt(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<Lit> {
    x.check_same("float lt", y)?;
    let (sx, sy) = (x.sign(), y.sign());
    // both >= 0: B - A >= 1; x < 0 <= y; both < 0: A - B >= 1.
    let g1 = gate_if(b, &mag_diff(x, y, -1), 1, &[&Cond::not(sx), &Cond::not(sy)])?;
    let g2 = b.and(&[sx, !sy])?;
    let g3 = gate_if(b, &mag_diff(x, y, 1), 1, &[&Cond::lit(sx), &Cond::lit(sy)])?;
    Ok(b.or(&[g1, g2, g3])?)
}

/// `[x <= y]`. Depth 2. Errors on different formats.
pub fn le(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<Lit> {
    Ok(!lt(b, y, x)?)
}

/// `[x == y]` (the encoding is canonical, so equal values have equal words). Depth 2.
pub fn eq(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<Lit> {
    x.check_same("float eq", y)?;
    let w = x.fmt.width() as usize;
    let mut d = Vec::with_capacity(2 * w);
    for i in 0..w {
        d.push((x.bits[i], 1i64 << i));
        d.push((y.bits[i], -(1i64 << i)));
    }
    let ge = b.threshold(&d, 0)?;
    let nd: Vec<(Lit, i64)> = d.iter().map(|&(l, c)| (l, -c)).collect();
    let le = b.threshold(&nd, 0)?;
    Ok(b.and(&[ge, le])?)
}

/// The result of [`compare`]: exactly one of the three literals is true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmpResult {
    /// `x < y`.
    pub lt: Lit,
    /// `x == y`.
    pub eq: Lit,
    /// `x > y`.
    pub gt: Lit,
}

/// Three-way comparison in the total order of the values (`Float::cmp_value`). Depth 2.
pub fn compare(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<CmpResult> {
    Ok(CmpResult {
        lt: lt(b, x, y)?,
        eq: eq(b, x, y)?,
        gt: lt(b, y, x)?,
    })
}

fn check_n(op: &'static str, xs: &[FloatWord]) -> Result<()> {
    let Some(first) = xs.first() else {
        return Err(GadgetError::TooFewOperands { op, min: 1, got: 0 });
    };
    for x in xs {
        first.check_same(op, x)?;
    }
    Ok(())
}

/// For each i the two lists of depth-1 gates whose AND says "x_i is the first maximum and
/// x_i >= 0" (first list, led by `NOT sign_i`) and "... x_i < 0" (second list, led by
/// `sign_i`). The two ANDs are exclusive; at most one i has one of them true.
fn winner_terms(b: &mut Builder, xs: &[FloatWord]) -> Result<Vec<[Vec<Lit>; 2]>> {
    let n = xs.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // x_i beats x_j: strictly for j < i (ties go to the lowest index), weakly for j > i.
        let mut pos = vec![!xs[i].sign()];
        let mut neg = vec![xs[i].sign()];
        let big = 1i64 << (xs[i].fmt.p() + xs[i].fmt.q() + 1);
        for j in 0..n {
            if j == i {
                continue;
            }
            let k = if j < i { 1 } else { 0 };
            let sj = xs[j].sign();
            // x_i >= 0: x_j < 0, or A_i - A_j >= k.
            let mut t = mag_diff(&xs[i], &xs[j], 1);
            t.push((sj, big));
            pos.push(b.threshold(&t, k)?);
            // x_i < 0: x_j < 0 and A_j - A_i >= k.
            neg.push(gate_if(
                b,
                &mag_diff(&xs[j], &xs[i], 1),
                k,
                &[&Cond::lit(sj)],
            )?);
        }
        out.push([pos, neg]);
    }
    Ok(out)
}

/// The maximum of `xs` (`Float::max` folded left; on ties the words are equal anyway).
/// Depth 3, O(n^2) gates. Errors: no operands, different formats.
pub fn max_n(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    check_n("float max_n", xs)?;
    if xs.len() == 1 {
        return Ok(xs[0].clone());
    }
    let fmt = xs[0].fmt;
    let w = winner_terms(b, xs)?;
    let mut bits = Vec::with_capacity(fmt.width() as usize);
    let mut scratch = Vec::new();
    for bit in 0..fmt.width() as usize {
        let mut lits = Vec::with_capacity(2 * xs.len());
        for (i, pn) in w.iter().enumerate() {
            for terms in pn {
                scratch.clear();
                scratch.extend_from_slice(terms);
                scratch.push(xs[i].bits[bit]);
                lits.push(b.and(&scratch)?);
            }
        }
        bits.push(b.or(&lits)?);
    }
    FloatWord::new(fmt, bits)
}

/// The one-hot argmax of `xs`: literal i is true exactly for the first index holding the
/// maximum value. Depth 3, O(n^2) gates. Errors: no operands, different formats.
pub fn argmax_n(b: &mut Builder, xs: &[FloatWord]) -> Result<Vec<Lit>> {
    check_n("float argmax_n", xs)?;
    if xs.len() == 1 {
        return Ok(vec![Lit::TRUE]);
    }
    let w = winner_terms(b, xs)?;
    let mut out = Vec::with_capacity(xs.len());
    for [pos, neg] in &w {
        let a = b.and(pos)?;
        let c = b.and(neg)?;
        out.push(b.or(&[a, c])?);
    }
    Ok(out)
}
