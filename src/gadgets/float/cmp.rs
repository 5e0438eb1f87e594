//! Float comparison (the usual total order of the values, docs/float.md), max and argmax of n.
//!
//! The encoding is sign-magnitude with the magnitude ordered like the unsigned integer
//! `A = bits[0, p + q)` (exponent above significand; zero is `A = 0`). Every comparison is an
//! OR over the signs' cases of single gates `[case AND A - B >= k]` (weights `±2^j`), so:
//! `lt`, `le`, `eq`, `compare`: depth 2.
//!
//! # Max and argmax of n: two-level blocking (docs/float.md, blocked)
//!
//! All pairs (item 10 as written) costs `n^2` comparators of about `2(p + q)` terms each.
//! Instead the operands are cut into `k` blocks of `s = n / k` (sizes differ by at most one):
//!
//! 1. within each block, for every pair `i < j` two gates [`pair_gates`]:
//!    `P_ij = [x_i >= 0 AND (x_j < 0 OR A_i >= A_j)]` and `N_ij = [x_i < 0 AND x_j < 0 AND
//!    A_j >= A_i]`; `x_i >= x_j` is `P_ij + N_ij` and `x_j > x_i` is `1 - P_ij - N_ij`, so ties
//!    go to the lower index and one comparison serves both orders;
//! 2. "i wins its block" is the condition `sum_j beats(i, j) = s - 1`, folded into one gate per
//!    bit: `v_i,b = [i wins AND bit b of x_i]`; the block maximum's bit b is then the exclusive
//!    sum `sum_i v_i,b`, and its magnitude a form over these gates;
//! 3. for every pair of blocks one form on the two block maxima with a bank of three
//!    thresholds ([`pair_bank`]: the sign cases in disjoint ranges of one form), ties to the
//!    lower block, so the winner of the winning block is the first maximum overall;
//! 4. max: per block and bit, `[bit b of the block maximum AND the block beats all others]`;
//!    argmax: per operand, `[i wins its block AND its block beats all others]` (the output);
//! 5. max: the OR over the blocks.
//!
//! Work, with `w = p + q + 1`: about `2 n s w` terms in 1, `2 n s w` in 2 and `n k w` in 3,
//! i.e. `n w (4 s + n / s)`, least near `s = sqrt(n) / 2`: about `4 n^1.5 w` terms, against
//! `4 n^2 w` for all pairs ([`block_count`] picks k from this estimate; it depends only on n
//! and w). Depth: `max_n` 5 and `argmax_n` 4, two and one more than all pairs (the second
//! level's comparison and selection), for every `n >= 2` (two operands get a third, the
//! format's least value, which never wins, so that they too have two blocks).

use crate::circuit::{Builder, Lit};

use super::super::error::{GadgetError, Result};
use super::round::{bank, gate_if, Cond};
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

/// An operand of a maximum: the form of its magnitude `A` (weights `2^b` over literals or
/// exclusive sums of literals) and the literals whose (exclusive) sum is its sign.
struct Cand {
    mag: Vec<(Lit, i64)>,
    sign: Vec<Lit>,
}

impl Cand {
    fn of(x: &FloatWord) -> Cand {
        let w = (x.fmt.p() + x.fmt.q()) as usize;
        Cand {
            mag: (0..w).map(|i| (x.bits[i], 1i64 << i)).collect(),
            sign: vec![x.sign()],
        }
    }
}

/// The gates `P = [x_i >= 0 AND (x_j < 0 OR A_i >= A_j)]` and `N = [x_i < 0 AND x_j < 0 AND
/// A_j >= A_i]` for `i` before `j` (`x_i >= x_j` is `P + N`); `big = 2^(p+q)` exceeds every
/// magnitude. Depth 1 above the candidates' literals.
fn pair_gates(b: &mut Builder, ci: &Cand, cj: &Cand, big: i64) -> Result<[Lit; 2]> {
    let mut pt: Vec<(Lit, i64)> = ci.mag.clone();
    pt.extend(cj.mag.iter().map(|&(l, w)| (l, -w)));
    pt.extend(cj.sign.iter().map(|&l| (l, big)));
    let pg = gate_if(b, &pt, 0, &[&Cond::none_of(&ci.sign)])?;
    let mut nt: Vec<(Lit, i64)> = cj.mag.clone();
    nt.extend(ci.mag.iter().map(|&(l, w)| (l, -w)));
    let ng = gate_if(
        b,
        &nt,
        0,
        &[&Cond::one_of(&ci.sign), &Cond::one_of(&cj.sign)],
    )?;
    Ok([pg, ng])
}

/// One form for candidates `i` before `j` whose bank of three thresholds says `x_i >= x_j`:
/// with `M = 2^(p+q)` and `D = A_i - A_j` (`|D| < M`), the form `F = D + 2M s_j - 6M s_i`
/// puts the four sign cases in disjoint ranges, `(s_i, s_j) = (0,0)` around 0, `(0,1)` around
/// `2M` (always true), `(1,0)` around `-6M` (always false) and `(1,1)` around `-4M` (true when
/// `D <= 0`), so `x_i >= x_j` is `g1 - g2 + g3` with `g1 = [F >= 1 - 5M]`,
/// `g2 = [F >= 1 - 4M]`, `g3 = [F >= 0]`. Depth 1 above the candidates' literals. Half the
/// terms of [`pair_gates`], one more literal in every condition that reads it.
fn pair_bank(b: &mut Builder, ci: &Cand, cj: &Cand, big: i64) -> Result<[Lit; 3]> {
    let mut f: Vec<(Lit, i64)> = ci.mag.clone();
    f.extend(cj.mag.iter().map(|&(l, w)| (l, -w)));
    f.extend(cj.sign.iter().map(|&l| (l, 2 * big)));
    f.extend(ci.sign.iter().map(|&l| (l, -6 * big)));
    let big = big as i128;
    let g = bank(b, &f, &[1 - 5 * big, 1 - 4 * big, 0])?;
    Ok([g[0], g[1], g[2]])
}

/// For each candidate, the condition "it beats every other candidate of the group" (the first
/// maximum: ties go to the lower index), from the comparisons of every pair: [`pair_bank`]
/// when `one_form` (fewer terms in the pair forms, more in the conditions: used where the pair
/// forms are large), else [`pair_gates`]. Depth of the conditions' literals: 1 above the
/// candidates'.
fn winner_conds(b: &mut Builder, cands: &[Cand], big: i64, one_form: bool) -> Result<Vec<Cond>> {
    let k = cands.len();
    let mut conds: Vec<Cond> = (0..k)
        .map(|_| Cond {
            terms: Vec::new(),
            constant: -(k as i64 - 1),
        })
        .collect();
    for i in 0..k {
        for j in i + 1..k {
            // i beats j: the (0/1-valued) sum of `ge`; j beats i: 1 minus it.
            let ge: Vec<(Lit, i64)> = if one_form {
                let [g1, g2, g3] = pair_bank(b, &cands[i], &cands[j], big)?;
                vec![(g1, 1), (g2, -1), (g3, 1)]
            } else {
                let [pg, ng] = pair_gates(b, &cands[i], &cands[j], big)?;
                vec![(pg, 1), (ng, 1)]
            };
            conds[i].terms.extend_from_slice(&ge);
            conds[j].terms.extend(ge.iter().map(|&(l, w)| (l, -w)));
            conds[j].constant += 1;
        }
    }
    Ok(conds)
}

/// Number of blocks for `n >= 3` operands of magnitude width `w`: the `k` in
/// `[2, max(2, n / 2)]` that minimises the estimated terms of the blocked construction (see
/// the module docs). Depends only on `n` and `w`.
fn block_count(n: usize, w: usize) -> usize {
    let w = w as u128;
    let cost = |k: usize| -> u128 {
        let nn = n as u128;
        let kk = k as u128;
        let s = n.div_ceil(k) as u128; // largest block
        let within = nn * (s - 1) / 2 * 2 * (2 * w + 2);
        let select = nn * (w + 1) * (2 * s);
        let across = kk * (kk - 1) / 2 * (2 * s * (w + 1));
        let out = kk * (w + 1) * (s + 3 * kk);
        within + select + across + out
    };
    (2..=(n / 2).max(2))
        .min_by_key(|&k| (cost(k), k))
        .unwrap_or(2)
}

/// The block structure shared by [`max_n`] and [`argmax_n`]: per operand its block-winner
/// condition, per block its maximum as a candidate together with the selection gates
/// `v_i,b` (bits `0..p+q` of the magnitude, then the sign), and per block the condition
/// "this block beats every other block".
struct Blocks {
    ranges: Vec<std::ops::Range<usize>>,
    win: Vec<Cond>,
    sel: Vec<Vec<Lit>>,
    block_wins: Vec<Cond>,
}

///
/// Two operands get a third, the format's least value (it never wins: ties go to the lower
/// index), so that every `n >= 2` has two blocks, one of at least two operands, and the same
/// depth.
fn blocks(b: &mut Builder, xs: &[FloatWord]) -> Result<Blocks> {
    let fmt = xs[0].fmt;
    let padded;
    let xs = if xs.len() == 2 {
        let least = FloatWord::constant(fmt, fmt.max_finite(true).to_bits());
        padded = [xs[0].clone(), xs[1].clone(), least];
        &padded[..]
    } else {
        xs
    };
    let n = xs.len();
    let w = (fmt.p() + fmt.q()) as usize;
    let big = 1i64 << w;
    let k = block_count(n, w);
    let ranges: Vec<std::ops::Range<usize>> = (0..k).map(|i| i * n / k..(i + 1) * n / k).collect();
    let mut win = Vec::with_capacity(n);
    let mut sel = Vec::with_capacity(n);
    let mut maxima = Vec::with_capacity(k);
    for r in &ranges {
        let cands: Vec<Cand> = xs[r.clone()].iter().map(Cand::of).collect();
        let conds = winner_conds(b, &cands, big, false)?;
        let mut m = Cand {
            mag: Vec::new(),
            sign: Vec::new(),
        };
        for (x, c) in xs[r.clone()].iter().zip(&conds) {
            let mut v = Vec::with_capacity(w + 1);
            for bit in 0..=w {
                let l = gate_if(b, &[(x.bits[bit], 1)], 1, &[c])?;
                if bit < w {
                    m.mag.push((l, 1i64 << bit));
                } else {
                    m.sign.push(l);
                }
                v.push(l);
            }
            sel.push(v);
        }
        win.extend(conds);
        maxima.push(m);
    }
    let block_wins = winner_conds(b, &maxima, big, true)?;
    Ok(Blocks {
        ranges,
        win,
        sel,
        block_wins,
    })
}

/// The maximum of `xs` (`Float::max` folded left; on ties the words are equal anyway).
/// Depth 5 for every `n >= 2`, `O(n^1.5 (p + q))` terms (module docs).
/// Errors: no operands, different formats.
pub fn max_n(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    check_n("float max_n", xs)?;
    if xs.len() == 1 {
        return Ok(xs[0].clone());
    }
    let fmt = xs[0].fmt;
    let bl = blocks(b, xs)?;
    let width = fmt.width() as usize;
    let mut per_bit: Vec<Vec<Lit>> = vec![Vec::new(); width];
    for (r, bw) in bl.ranges.iter().zip(&bl.block_wins) {
        for (bit, lits) in per_bit.iter_mut().enumerate() {
            let v: Vec<Lit> = bl.sel[r.clone()].iter().map(|s| s[bit]).collect();
            lits.push(gate_if(b, &[], 0, &[&Cond::one_of(&v), bw])?);
        }
    }
    let mut bits = Vec::with_capacity(width);
    for lits in &per_bit {
        bits.push(b.or(lits)?);
    }
    FloatWord::new(fmt, bits)
}

/// The one-hot argmax of `xs`: literal i is true exactly for the first index holding the
/// maximum value. Depth 4 for every `n >= 2`, `O(n^1.5 (p + q))` terms (module docs).
/// Errors: no operands, different formats.
pub fn argmax_n(b: &mut Builder, xs: &[FloatWord]) -> Result<Vec<Lit>> {
    check_n("float argmax_n", xs)?;
    if xs.len() == 1 {
        return Ok(vec![Lit::TRUE]);
    }
    let bl = blocks(b, xs)?;
    let mut out = Vec::with_capacity(xs.len());
    for (r, bw) in bl.ranges.iter().zip(&bl.block_wins) {
        for i in r.clone().take_while(|&i| i < xs.len()) {
            out.push(gate_if(b, &[], 0, &[&bl.win[i], bw])?);
        }
    }
    Ok(out)
}
