//! Exact iterated float sum (paper Lemma 3.5 part 3) and the paper's dot product.
//!
//! Construction (constructions.md item 11, with the alignment folded into single gates):
//! 1. every nonzero bit `m_j` of term `i` with biased exponent `k` lands on grid column
//!    `t = j + k` (weight `2^(t + e_min)`); one AND gate `[m_j AND E == k AND sign]` per
//!    (term, j, k, sign) makes the exact sum the signed linear form
//!    `S = sum_t 2^t * (sum of positive gates in column t - sum of negative ones)` (depth 1);
//! 2. the columns are split into a fixed number of blocks (it depends only on p and q: chosen
//!    so that the weights of any block form stay far below the builder's 2^62 bound for up to
//!    [`MAX_TERMS`] operands); the carry out of each block is a thermometer (a bank of
//!    thresholds) read by the next block's form; bit `t` of `S` and of `-S` is a staircase on
//!    the prefix form of its block (depth 2 per block, +1 per extra block);
//! 3. the sign is one threshold on the top block's form; `|S|` bit t is `bit_t(S) AND NOT
//!    sign` plus `bit_t(-S) AND sign`, the conditions folded into the staircases' output gates;
//! 4. [`super::round::round_pack`] normalises, rounds once (RNE), saturates and flushes
//!    (3 more layers).
//!
//! Depth: `4 + blocks` for the sum (6 for one block, i.e. p + 2^q <= about 45), independent of n.

use crate::circuit::{Builder, Lit};
use crate::float::Format;

use super::super::error::{GadgetError, Result};
use super::round::{bank, gate_if, round_pack, Cond};
use super::FloatWord;

/// Largest number of operands of [`sum`] and [`dot`]. The block split of the grid is sized for
/// this many operands, so that depth does not depend on n.
pub const MAX_TERMS: usize = 1 << 12;

/// Sum of |weights| allowed for one block form (the builder's bound is 2^62).
const BLOCK_WEIGHT_BUDGET: i128 = 1 << 60;

/// A signed term of the exact sum: `sign * lit` at a grid column.
type Entry = (Lit, i64);

/// `floor(a / d)` for d > 0.
fn fdiv(a: i128, d: i128) -> i128 {
    a.div_euclid(d)
}

/// The fixed-point grid of an exact sum.
struct Grid {
    /// `cols[t]`: signed unit entries of column t (value `sum w * lit`).
    cols: Vec<Vec<Entry>>,
    /// Number of operands (each contributes at most one unit per column, with one sign).
    n: i128,
    /// Block starts (ascending, first is 0); the last block extends to every higher bit.
    starts: Vec<usize>,
}

impl Grid {
    fn block_end(&self, k: usize) -> usize {
        self.starts.get(k + 1).copied().unwrap_or(self.cols.len())
    }

    /// The form of block k over columns [start, upto] (relative weights), optionally negated,
    /// and its true range `[-n (2^w - 1), n (2^w - 1)]` with `w = upto - start + 1`.
    fn block_form(&self, k: usize, upto: usize, negate: bool) -> (Vec<(Lit, i64)>, i128) {
        let s = self.starts[k];
        let upto = upto.min(self.cols.len() - 1);
        let mut f = Vec::new();
        for t in s..=upto {
            let w = 1i64 << (t - s);
            for &(l, sg) in &self.cols[t] {
                f.push((l, if negate { -sg * w } else { sg * w }));
            }
        }
        let r = self.n * ((1i128 << (upto + 1 - s)) - 1);
        (f, r)
    }

    /// Carry into each block of `S` (or `-S`): `(thermometer literals, constant)`, the carry
    /// being `constant + sum(lits)`, plus its range `[lo, hi]`.
    fn carries(&self, b: &mut Builder, negate: bool) -> Result<Vec<(Vec<Lit>, i128, i128)>> {
        let mut out = vec![(Vec::new(), 0i128, 0i128)];
        for k in 0..self.starts.len() - 1 {
            let (mut f, r) = self.block_form(k, self.block_end(k) - 1, negate);
            let (cl, clo, chi) = out[k].clone();
            f.extend(cl.iter().map(|&l| (l, 1)));
            let (lo, hi) = (-r + clo, r + chi);
            let w = 1i128 << (self.block_end(k) - self.starts[k]);
            // thresholds [f + clo >= m w] for the multiples m w in (lo, hi]
            let m0 = fdiv(lo, w) + 1;
            let m1 = fdiv(hi, w);
            let thetas: Vec<i128> = (m0..=m1).map(|m| m * w - clo).collect();
            let lits = bank(b, &f, &thetas)?;
            out.push((lits, fdiv(lo, w), fdiv(hi, w)));
        }
        Ok(out)
    }

    /// The staircase of bit `t` of `S` (or `-S`) in two's complement, unbuilt: the form, its
    /// thresholds with the staircase weight of each, and the base, the bit being
    /// `base + sum weight * [form >= theta]`; plus the block index.
    #[allow(clippy::type_complexity)]
    fn stair_spec(
        &self,
        carries: &[(Vec<Lit>, i128, i128)],
        t: usize,
        negate: bool,
    ) -> (Vec<(Lit, i64)>, Vec<i128>, Vec<i64>, i64, usize) {
        let k: usize = self
            .starts
            .iter()
            .rposition(|&s| s <= t)
            .unwrap_or_default();
        let kb = t - self.starts[k];
        let (mut f, r) = self.block_form(k, t, negate);
        let (cl, clo, chi) = &carries[k];
        f.extend(cl.iter().map(|&l| (l, 1)));
        let (lo, hi) = (-r + clo, r + chi); // range of f + clo
        let half = 1i128 << kb;
        let bit = |v: i128| -> i64 { (v.rem_euclid(2 * half) >= half) as i64 };
        let base = bit(lo);
        let mut thetas = Vec::new();
        let mut signs = Vec::new();
        let mut v = (fdiv(lo, half) + 1) * half;
        while v <= hi {
            thetas.push(v - clo);
            signs.push(if bit(v) == 1 { 1 } else { -1 });
            v += half;
        }
        (f, thetas, signs, base, k)
    }

    /// The staircases of bit `t` of `S` and of `-S`: `[(gates with weights, base); 2]`. In
    /// the first block (no carry) both read the same form (`[-F >= th] = NOT [F >= 1 - th]`),
    /// so they are built as one bank.
    #[allow(clippy::type_complexity)]
    fn bit_stairs(
        &self,
        b: &mut Builder,
        cpos: &[(Vec<Lit>, i128, i128)],
        cneg: &[(Vec<Lit>, i128, i128)],
        t: usize,
    ) -> Result<[(Vec<(Lit, i64)>, i64); 2]> {
        let (f, th, sg, base, k) = self.stair_spec(cpos, t, false);
        let (nf, nth, nsg, nbase, _) = self.stair_spec(cneg, t, true);
        if k == 0 {
            let mut all = th.clone();
            all.extend(nth.iter().map(|&x| 1 - x));
            let g = bank(b, &f, &all)?;
            let (gp, gn) = g.split_at(th.len());
            let pos = gp.iter().copied().zip(sg).collect();
            let neg = gn.iter().map(|&l| !l).zip(nsg).collect();
            return Ok([(pos, base), (neg, nbase)]);
        }
        let gp = bank(b, &f, &th)?;
        let gn = bank(b, &nf, &nth)?;
        Ok([
            (gp.into_iter().zip(sg).collect(), base),
            (gn.into_iter().zip(nsg).collect(), nbase),
        ])
    }

    /// The sign of S: `[S <= -1]`, one threshold on the top block's form plus carry.
    fn sign(&self, b: &mut Builder, carries: &[(Vec<Lit>, i128, i128)]) -> Result<Lit> {
        let k = self.starts.len() - 1;
        let (mut f, _) = self.block_form(k, self.cols.len() - 1, false);
        let (cl, clo, _) = &carries[k];
        f.extend(cl.iter().map(|&l| (l, 1)));
        let neg: Vec<(Lit, i64)> = f.iter().map(|&(l, w)| (l, -w)).collect();
        Ok(b.bank_wide(&neg, &[1 + *clo])?[0])
    }
}

/// Block starts for a grid of `ncols` columns of format with significand width `p`, sized for
/// [`MAX_TERMS`] operands so that the split depends only on (p, q).
fn block_starts(ncols: usize, p: u32) -> Result<Vec<usize>> {
    // Loose bound of a block form of width w: MAX_TERMS * 2 signs * p * 2^w (plus carries).
    let per = 2 * MAX_TERMS as i128 * p as i128;
    let mut w = 1usize;
    while per << (w + 1) <= BLOCK_WEIGHT_BUDGET {
        w += 1;
    }
    let nblocks = ncols.div_ceil(w).max(1);
    let bw = ncols.div_ceil(nblocks);
    if bw >= 62 {
        return Err(GadgetError::Unsupported {
            op: "float sum",
            limit: format!("block width {bw} too large"),
        });
    }
    Ok((0..nblocks).map(|k| k * bw).collect())
}

/// Build the exact signed sum of `terms` (each `(word, negate)`: the term's sign is
/// complemented when `negate`) rounded once: the shared body of [`sum`], add and sub.
pub(crate) fn sum_signed(
    b: &mut Builder,
    op: &'static str,
    terms: &[(&FloatWord, bool)],
) -> Result<FloatWord> {
    let Some(first) = terms.first() else {
        return Err(GadgetError::TooFewOperands { op, min: 1, got: 0 });
    };
    let fmt: Format = first.0.fmt;
    for t in terms {
        first.0.check_same(op, t.0)?;
    }
    if terms.len() > MAX_TERMS {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!(
                "{} operands exceed the supported maximum {MAX_TERMS} (the grid's block split is sized for it)",
                terms.len()
            ),
        });
    }
    let p = fmt.p() as usize;
    let q = fmt.q();
    let nexp = 1usize << q;
    let ncols = p + nexp - 1;
    let mut cols: Vec<Vec<Entry>> = vec![Vec::new(); ncols];
    b.region("align", |b| -> Result<()> {
        for &(x, negate) in terms {
            let s = if negate { !x.sign() } else { x.sign() };
            let e = x.exp();
            for k in 0..nexp {
                let mut lits: Vec<Lit> = e
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| if (k >> i) & 1 == 1 { l } else { !l })
                    .collect();
                for (j, &m) in x.sig().iter().enumerate() {
                    lits.push(m);
                    lits.push(!s);
                    let pos = b.and(&lits)?;
                    lits.pop();
                    lits.push(s);
                    let neg = b.and(&lits)?;
                    lits.pop();
                    lits.pop();
                    cols[j + k].push((pos, 1));
                    cols[j + k].push((neg, -1));
                }
            }
        }
        Ok(())
    })?;
    let starts = block_starts(ncols, fmt.p())?;
    let grid = Grid {
        cols,
        n: terms.len() as i128,
        starts,
    };
    let nbits = ncols + (usize::BITS - terms.len().leading_zeros()) as usize;
    let (mag, sigma) = b.region("exact", |b| -> Result<(Vec<Vec<Lit>>, Lit)> {
        let cpos = grid.carries(b, false)?;
        let cneg = grid.carries(b, true)?;
        let sigma = grid.sign(b, &cpos)?;
        let mut mag = Vec::with_capacity(nbits);
        for t in 0..nbits {
            let mut lits = Vec::new();
            let stairs = grid.bit_stairs(b, &cpos, &cneg, t)?;
            for ((stair, base), cond) in stairs.iter().zip([Cond::not(sigma), Cond::lit(sigma)]) {
                let (stair, base) = (stair.clone(), *base);
                let g = gate_if(b, &stair, 1 - base, &[&cond])?;
                if g != Lit::FALSE {
                    lits.push(g);
                }
            }
            mag.push(lits);
        }
        Ok((mag, sigma))
    })?;
    b.region("round", |b| {
        round_pack(b, fmt, &mag, sigma, &[(Lit::TRUE, 0)])
    })
}

/// The exact sum of `xs`, rounded once (paper Lemma 3.5 part 3; `Format::sum`).
///
/// Errors: no operands, operands of different formats, more than [`MAX_TERMS`] operands.
/// Depth `4 + blocks` (6 when `p + 2^q - 1 <= ~44`), identical for every n.
pub fn sum(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    let terms: Vec<(&FloatWord, bool)> = xs.iter().map(|x| (x, false)).collect();
    sum_signed(b, "float sum", &terms)
}

/// The paper's dot product `round(sum_i round(a_i * b_i))` (DESIGN §2; `Format::dot`): each
/// product by the float `mul` gadget (rounded), then one exact [`sum`] rounded once.
///
/// Errors: vectors of different lengths, empty vectors, different formats, more than
/// [`MAX_TERMS`] terms. Depth: depth of `mul` plus depth of [`sum`], identical for every n.
pub fn dot(b: &mut Builder, xs: &[FloatWord], ys: &[FloatWord]) -> Result<FloatWord> {
    if xs.len() != ys.len() {
        return Err(GadgetError::WidthMismatch {
            op: "float dot",
            left: xs.len(),
            right: ys.len(),
        });
    }
    let prods = b.region("products", |b| -> Result<Vec<FloatWord>> {
        xs.iter()
            .zip(ys)
            .map(|(x, y)| super::mul::mul(b, x, y))
            .collect()
    })?;
    sum_signed(
        b,
        "float dot",
        &prods.iter().map(|x| (x, false)).collect::<Vec<_>>(),
    )
}
