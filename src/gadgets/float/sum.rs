//! Exact iterated float sum (paper Lemma 3.5 part 3) and the paper's dot product.
//!
//! # Semantics
//!
//! `sum(xs) = round(sum_i x_i)`: the exact sum of every operand, rounded once (docs/float.md:
//! nearest, ties to even, saturation above `e_max`, flush below `e_min`, one zero).
//!
//! # Construction: the full grid, placed in two stages and summed by column counts
//!
//! Every value of F(p, q) is an integer multiple of `2^e_min`: operand `i` is
//! `X_i = (-1)^s_i m_i 2^E_i` on the grid of `p + 2^q - 1` columns (`E_i` the biased exponent).
//! The exact sum `S = sum_i X_i` is computed **exactly**, on the whole grid; nothing is
//! truncated, so no sticky or gap argument is needed and the rounding sees the true sum.
//!
//! *Why not a window below the largest exponent.* Aligning every operand to the largest
//! exponent `M` and folding whatever falls below a window of fixed width into one sticky bit is
//! not exact for n >= 5 operands, however wide the window: the discarded parts of several
//! operands can add up to a carry into the window. Example with the window cut between
//! `2^-40` and `2^-41`: `1 + 2^-p - 2^-40 + 3 * 2^-41` is above the tie `1 + 2^-p` and rounds
//! up, while the window holds `1 + 2^-p - 2^-40` (below the tie) plus a positive sticky, which
//! rounds down. An exact cut needs an exponent *gap* (docs/float.md, gap
//! compression), whose detection costs `O(n^2)` comparisons; the grid is cheaper for the
//! formats in use (`2^q <= 64`), so it is kept for every format.
//!
//! **Signs without doubling.** With `u_j = m_j XOR s` (one's complement of a negative
//! significand), `(-1)^s m = sum_(j<p) 2^j u_j + s - 2^p s`. So
//! `S = U + K - 2^p K` with `U = sum_i sum_j u_ij 2^(j + E_i)` (unsigned) and
//! `K = sum_i s_i 2^(E_i)`. Since `m_(p-1)` is the nonzero flag and `s` implies nonzero,
//! `u_(p-1) = [m_(p-1) AND NOT s]`.
//!
//! **Two-stage placement of U** (`E = b + B a`, `B = 2^lb`, `b` the low `lb` exponent bits):
//! 1. fine shift, per operand and significand bit `j` one bank on the form `b` with the
//!    conditions folded in ([`bank_if`]): `F_(j,b') = [u_j-case AND b >= b']` for
//!    `b' in [0, B)`, one bank for the case `m_j AND NOT s` and one for `NOT m_j AND s`.
//!    `[u_j AND b = b'] = F_(j,b') - F_(j,b'+1)`, so the fine-shifted bit
//!    `u'_t = u_(t - b)` is the signed sum `sum_(j + b' = t) (F_(j,b') - F_(j,b'+1))`, 0 or 1;
//! 2. coarse shift, per operand and `t in [0, p + B - 1)` one bank on the form `a` with the
//!    condition `u'_t = 1` folded in: `C_(t,a') = [u'_t AND a >= a']`. Bit `u'_t` lands on
//!    column `t + B a`, i.e. column `c` receives `C_(t,a') - C_(t,a'+1)` for `c = t + B a'`.
//!
//! Every column thus receives, per operand, a signed sum of gates whose value is the operand's
//! bit there (0 or 1). The **column count** `N_c = sum_i u-bit` (in `[0, n]`) is one bank per
//! column (thresholds `1..n`, one shared form) and its binary digits are staircases on that
//! bank (docs/float.md). `K` uses the thermometer identity
//! `2^E = 1 + sum_(k=1..E) 2^(k-1)`: with `T_k = [s AND E >= k]` (one bank per operand),
//! `K = sum_i s_i + sum_(k >= 1) 2^(k-1) sum_i T_(i,k)`, again one counted column per `k`.
//!
//! **The signed sum of the counts.** `S = sum_c 2^c N_c + (1 - 2^p) K` is a signed sum of
//! about `(p + 2^q) log2(n)` count bits, evaluated in two's complement on the
//! `W = p + 2^q + bitlen(n)` bits that hold every reachable `S` (entries at positions `>= W`
//! are dropped: they do not change `S mod 2^W`). The positions are split into blocks whose
//! forms stay below the weight budget for [`MAX_TERMS`] operands (so the split depends on p
//! and q only); bit `t` of `S` and of `-S` is a staircase on the prefix form of its block plus
//! the thermometer carry from the block below. The sign is bit `W - 1`: its staircase is folded
//! as a condition into the output gates, which yield `|S|` bit `t` as the exclusive pair
//! `[bit_t(S) AND NOT sign]`, `[bit_t(-S) AND sign]`. [`round_pack`] normalises, rounds
//! once (RNE), saturates and flushes.
//!
//! # Depth (threshold layers, independent of n)
//!
//! fine shift 1, coarse shift 2, column banks 3, count digits 4, then `1 + blocks` for the
//! signed sum (bank, carry chain, output) and 3 for rounding: `9` with one block (F(8,5)),
//! `10` with two (F(11,6)). The `K` part is one layer ahead and never on the critical path.
//!
//! # Work (terms), per operand
//!
//! about `(2p - 1)(lb + 2)` (fine banks) `+ (2p - 1)(2B - 1) + (p + B)(q - lb)` (coarse forms)
//! `+ (p + B)(2^(q+1)/B)` (column entries) `+ 2 (p + 2^q)` (count digits) `+ 3 * 2^q` (`K`),
//! with `lb` chosen to minimise it; e.g. about 550 terms at F(8,5) (`B = 4`), against
//! `O(p 2^q q)` when every bit was placed on every column by its own gate. The signed sum of
//! the count bits and the rounding add a part that does not grow with n (`O((p + 2^q)^2
//! log n)`).

use crate::circuit::{Builder, Lit};
use crate::float::Format;

use super::super::error::{GadgetError, Result};
use super::round::{bank, bank_if, gate_if, pack_window, round_pack, unit, Cond, MagBits, Window};
use super::FloatWord;

/// Largest number of operands of [`sum`] and [`dot`]. The block split of the signed sum of the
/// column counts is sized for this many operands, so that depth does not depend on n.
pub const MAX_TERMS: usize = 1 << 14;

/// Sum of |weights| allowed for one block form (the builder's bound is 2^62; the carry
/// thermometer of the block below is added on top).
const BLOCK_WEIGHT_BUDGET: i128 = 1 << 60;

/// `floor(a / d)` for d > 0.
fn fdiv(a: i128, d: i128) -> i128 {
    a.div_euclid(d)
}

/// Bit length of `x`.
fn bitlen(x: u128) -> usize {
    (128 - x.leading_zeros()) as usize
}

/// A count to be summed: the form of a column count (signed unit terms), its largest value
/// (its least is 0), and where its binary digits go: `(position of digit 0, sign)`.
struct Count {
    form: Vec<(Lit, i64)>,
    max: u128,
    places: Vec<(usize, i64)>,
}

/// The shape of the counts of n operands of (p, q): `(max, places)` per count, in the order
/// [`grid_counts`] produces them. Used with n = [`MAX_TERMS`] to size the block split.
fn count_shapes(p: usize, q: u32, n: usize) -> Vec<(u128, Vec<(usize, i64)>)> {
    let nexp = 1usize << q;
    let ncols = p + nexp - 1;
    let n = n as u128;
    let mut v: Vec<(u128, Vec<(usize, i64)>)> = (0..ncols).map(|c| (n, vec![(c, 1)])).collect();
    // K: column 0 holds s + T_1, column k - 1 holds T_k (k >= 2); K enters as K - 2^p K.
    for c in 0..nexp - 1 {
        let max = if c == 0 { 2 * n } else { n };
        v.push((max, vec![(c, 1), (c + p, -1)]));
    }
    v
}

/// Fine-shift width `lb` (`B = 2^lb`) that minimises the estimated terms (module docs).
fn fine_bits(p: usize, q: u32) -> u32 {
    let q = q as usize;
    let cost = |lb: usize| -> usize {
        let bb = 1usize << lb;
        let pp = (1usize << q) / bb;
        let l = p + bb - 1;
        (2 * p - 1) * (lb + 2) + (2 * p - 1) * (2 * bb - 1) + l * (q - lb) + l * (2 * pp - 1)
    };
    (1..q).min_by_key(|&lb| (cost(lb), lb)).unwrap_or(1) as u32
}

/// The column counts of the exact sum of `xs` (module docs): `S = sum over counts of
/// sum over places (sign * 2^position * count)`.
fn grid_counts(b: &mut Builder, xs: &[FloatWord]) -> Result<Vec<Count>> {
    let fmt = xs[0].fmt;
    let p = fmt.p() as usize;
    let q = fmt.q();
    let nexp = 1usize << q;
    let ncols = p + nexp - 1;
    let lb = fine_bits(p, q) as usize;
    let bb = 1usize << lb;
    let pp = nexp >> lb;
    let l = p + bb - 1;
    let mut ucols: Vec<Vec<(Lit, i64)>> = vec![Vec::new(); ncols];
    let mut kcols: Vec<Vec<(Lit, i64)>> = vec![Vec::new(); nexp - 1];
    let fine_thetas: Vec<i128> = (0..bb as i128).collect();
    let coarse_thetas: Vec<i128> = (0..pp as i128).collect();
    let exp_thetas: Vec<i128> = (1..nexp as i128).collect();
    b.region("align", |b| -> Result<()> {
        for x in xs {
            let s = x.sign();
            let m = x.sig();
            let e = x.exp();
            let bform: Vec<(Lit, i64)> = (0..lb).map(|i| (e[i], 1i64 << i)).collect();
            let aform: Vec<(Lit, i64)> =
                (lb..q as usize).map(|i| (e[i], 1i64 << (i - lb))).collect();
            // Stage 1: u'_t as signed sums of fine-shift gates.
            let mut fine: Vec<Vec<(Lit, i64)>> = vec![Vec::new(); l];
            for j in 0..p {
                let mut cases = vec![[Cond::lit(m[j]), Cond::not(s)]];
                if j + 1 < p {
                    cases.push([Cond::not(m[j]), Cond::lit(s)]);
                }
                for [c1, c2] in &cases {
                    let g = bank_if(b, &bform, &fine_thetas, &[c1, c2])?;
                    for (bp, &gl) in g.iter().enumerate() {
                        fine[j + bp].push((gl, 1));
                        if bp >= 1 {
                            fine[j + bp - 1].push((gl, -1));
                        }
                    }
                }
            }
            // Stage 2: coarse shift of each u'_t onto the columns.
            for (t, ft) in fine.iter().enumerate() {
                let cond = Cond {
                    terms: ft.clone(),
                    constant: -1,
                };
                let g = bank_if(b, &aform, &coarse_thetas, &[&cond])?;
                for (ap, &gl) in g.iter().enumerate() {
                    ucols[t + bb * ap].push((gl, 1));
                    if ap >= 1 {
                        ucols[t + bb * (ap - 1)].push((gl, -1));
                    }
                }
            }
            // K: T_k = [s AND E >= k].
            let eform: Vec<(Lit, i64)> =
                e.iter().enumerate().map(|(i, &l)| (l, 1i64 << i)).collect();
            let tk = bank_if(b, &eform, &exp_thetas, &[&Cond::lit(s)])?;
            kcols[0].push((s, 1));
            for (k1, &g) in tk.iter().enumerate() {
                // tk[k1] is T_(k1 + 1), weight 2^k1: column k1.
                kcols[k1].push((g, 1));
            }
        }
        Ok(())
    })?;
    let shapes = count_shapes(p, q, xs.len());
    let forms = ucols.into_iter().chain(kcols);
    Ok(forms
        .zip(shapes)
        .map(|(form, (max, places))| Count { form, max, places })
        .collect())
}

/// Signed unit entries per position: `cols[t]` holds `(lit, sign)` of weight `sign * 2^t`.
type Columns = Vec<Vec<(Lit, i64)>>;

/// The binary digits of each count, placed: signed unit entries per position, and whether
/// every digit was placed (none at a position `>= width`).
fn count_digits(b: &mut Builder, counts: &[Count], width: usize) -> Result<(Columns, bool)> {
    let mut cols: Columns = vec![Vec::new(); width];
    let mut exact = true;
    for c in counts {
        if c.form.is_empty() || c.max == 0 {
            continue;
        }
        let thetas: Vec<i128> = (1..=c.max as i128).collect();
        let g = bank(b, &c.form, &thetas)?;
        for k in 0..bitlen(c.max) {
            let step = 1usize << k;
            // bit k of the count toggles at every multiple of 2^k.
            let stair: Vec<(Lit, i64)> = (1..)
                .map(|mm: usize| mm * step)
                .take_while(|&v| v <= c.max as usize)
                .enumerate()
                .map(|(i, v)| (g[v - 1], if i % 2 == 0 { 1 } else { -1 }))
                .collect();
            let d = b.threshold(&stair, 1)?;
            if d == Lit::FALSE {
                continue;
            }
            for &(pos, sg) in &c.places {
                if pos + k < width {
                    cols[pos + k].push((d, sg));
                } else {
                    exact = false;
                }
            }
        }
    }
    Ok((cols, exact))
}

/// Block starts for positions with at most `e[t]` unit entries each: greedy, each block's
/// form (relative weights `2^(t - start)`) within [`BLOCK_WEIGHT_BUDGET`].
fn block_starts(e: &[i128]) -> Result<Vec<usize>> {
    let mut starts = vec![0usize];
    let mut acc: i128 = 0;
    let mut s = 0usize;
    for (t, &et) in e.iter().enumerate() {
        let sh = t - s;
        let add = if sh >= 100 {
            i128::MAX
        } else {
            et.saturating_mul(1i128 << sh)
        };
        if acc.saturating_add(add) > BLOCK_WEIGHT_BUDGET {
            if t == s {
                return Err(GadgetError::Unsupported {
                    op: "float sum",
                    limit: format!("{et} entries at one position exceed the weight budget"),
                });
            }
            starts.push(t);
            s = t;
            acc = et;
        } else {
            acc += add;
        }
    }
    Ok(starts)
}

/// Entries per position of the placed count digits of the given shapes, `width` positions.
fn entries_per_position(shapes: &[(u128, Vec<(usize, i64)>)], width: usize) -> Vec<i128> {
    let mut e = vec![0i128; width];
    for (max, places) in shapes {
        for k in 0..bitlen(*max) {
            for &(pos, _) in places {
                if pos + k < width {
                    e[pos + k] += 1;
                }
            }
        }
    }
    e
}

/// Two's complement width that holds every exact sum of `n` operands of `fmt`.
fn sum_width(fmt: Format, n: usize) -> usize {
    fmt.p() as usize + (1usize << fmt.q()) - 1 + bitlen(n as u128) + 1
}

/// A signed sum of unit entries per position, evaluated modulo `2^W` (`W = cols.len()`) in
/// blocks: `cols[t]` holds `(lit, sign)` of weight `sign * 2^t`.
struct Grid {
    cols: Vec<Vec<(Lit, i64)>>,
    /// Block starts (ascending, first is 0); the last block ends at `W`.
    starts: Vec<usize>,
}

/// A carry into a block: `constant + sum(lits)`, within `[lo, hi]`.
type Carry = (Vec<Lit>, i128, i128);

impl Grid {
    fn block_end(&self, k: usize) -> usize {
        self.starts.get(k + 1).copied().unwrap_or(self.cols.len())
    }

    /// The form of block k over positions `[start, upto]` (relative weights), optionally
    /// negated, and its range `[lo, hi]`.
    fn block_form(&self, k: usize, upto: usize, negate: bool) -> (Vec<(Lit, i64)>, i128, i128) {
        let s = self.starts[k];
        let mut f = Vec::new();
        let (mut lo, mut hi) = (0i128, 0i128);
        for t in s..=upto.min(self.cols.len() - 1) {
            let w = 1i64 << (t - s);
            for &(l, sg) in &self.cols[t] {
                let ww = if negate { -sg * w } else { sg * w };
                f.push((l, ww));
                if ww < 0 {
                    lo += ww as i128;
                } else {
                    hi += ww as i128;
                }
            }
        }
        (f, lo, hi)
    }

    /// Carry into each block of `S` (or `-S`).
    fn carries(&self, b: &mut Builder, negate: bool) -> Result<Vec<Carry>> {
        let mut out: Vec<Carry> = vec![(Vec::new(), 0, 0)];
        for k in 0..self.starts.len() - 1 {
            let (mut f, flo, fhi) = self.block_form(k, self.block_end(k) - 1, negate);
            let (cl, clo, chi) = out[k].clone();
            f.extend(cl.iter().map(|&l| (l, 1)));
            let (lo, hi) = (flo + clo, fhi + chi);
            let w = 1i128 << (self.block_end(k) - self.starts[k]);
            let m0 = fdiv(lo, w) + 1;
            let m1 = fdiv(hi, w);
            let thetas: Vec<i128> = (m0..=m1).map(|m| m * w - clo).collect();
            let lits = bank(b, &f, &thetas)?;
            out.push((lits, fdiv(lo, w), fdiv(hi, w)));
        }
        Ok(out)
    }

    /// The staircase of bit `t` of `S` (or `-S`), unbuilt: the form, its thresholds with the
    /// staircase weight of each, the base (the bit is `base + sum weight * [form >= theta]`),
    /// and the block index.
    #[allow(clippy::type_complexity)]
    fn stair_spec(
        &self,
        carries: &[Carry],
        t: usize,
        negate: bool,
    ) -> (Vec<(Lit, i64)>, Vec<i128>, Vec<i64>, i64, usize) {
        let k = self
            .starts
            .iter()
            .rposition(|&s| s <= t)
            .unwrap_or_default();
        let kb = t - self.starts[k];
        let (mut f, flo, fhi) = self.block_form(k, t, negate);
        let (cl, clo, chi) = &carries[k];
        f.extend(cl.iter().map(|&l| (l, 1)));
        let (lo, hi) = (flo + clo, fhi + chi); // range of f + clo
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
        cpos: &[Carry],
        cneg: &[Carry],
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

    /// The magnitude `|S|` (bits as exclusive pairs of literals, `W - 1` of them), the sign
    /// literal of `S`, and, with one block, the leading-one conditions of `|S|` (see
    /// [`Leads`]). `|S| < 2^(W-1)` must hold for every input.
    ///
    /// With one block the full form is `S` itself (`exact` says no entry was dropped): the sign
    /// `[S <= -1]` and the thermometer `A_L = [S >= 2^L] + [S <= -2^L]` (`|S| >= 2^L`) are
    /// thresholds of one bank on it. Otherwise the sign is bit `W - 1`, whose staircase is
    /// folded into the output gates as a condition.
    fn magnitude(
        &self,
        b: &mut Builder,
        exact: bool,
    ) -> Result<(Vec<Vec<Lit>>, Lit, Option<Leads>)> {
        let w = self.cols.len();
        let cpos = self.carries(b, false)?;
        let cneg = self.carries(b, true)?;
        let (is_neg, is_pos, sign, leads) = if self.starts.len() == 1 && exact {
            let (f, _, _) = self.block_form(0, w - 1, false);
            let mut thetas = vec![0i128];
            for l in 0..w - 1 {
                thetas.push(1i128 << l);
                thetas.push(1 - (1i128 << l));
            }
            let g = bank(b, &f, &thetas)?;
            let sign = !g[0];
            let therm: Vec<[Lit; 2]> = (0..w - 1).map(|l| [g[1 + 2 * l], !g[2 + 2 * l]]).collect();
            (
                Cond::lit(sign),
                Cond::not(sign),
                sign,
                Some(Leads { therm }),
            )
        } else {
            let (f, th, sg, base, _) = self.stair_spec(&cpos, w - 1, false);
            let g = bank(b, &f, &th)?;
            let stair: Vec<(Lit, i64)> = g.iter().copied().zip(sg).collect();
            let is_neg = Cond {
                terms: stair.clone(),
                constant: base - 1,
            };
            let is_pos = Cond {
                terms: stair.iter().map(|&(l, x)| (l, -x)).collect(),
                constant: -base,
            };
            let sign = gate_if(b, &stair, 1 - base, &[])?;
            (is_neg, is_pos, sign, None)
        };
        let mut mag = Vec::with_capacity(w - 1);
        for t in 0..w - 1 {
            let mut lits = Vec::new();
            let stairs = self.bit_stairs(b, &cpos, &cneg, t)?;
            for ((stair, base), cond) in stairs.iter().zip([&is_pos, &is_neg]) {
                let g = gate_if(b, stair, 1 - base, &[cond])?;
                if g != Lit::FALSE {
                    lits.push(g);
                }
            }
            mag.push(lits);
        }
        Ok((mag, sign, leads))
    }
}

/// The leading-one thermometer of a magnitude `X`: `therm[L]` is a pair of exclusive literals
/// whose sum is `[X >= 2^L]`.
struct Leads {
    therm: Vec<[Lit; 2]>,
}

impl Leads {
    /// `[X >= 2^L]` as a 0/1 sum of literals (empty above the top).
    fn at_least(&self, l: usize) -> Vec<(Lit, i64)> {
        self.therm
            .get(l)
            .map(|p| vec![(p[0], 1), (p[1], 1)])
            .unwrap_or_default()
    }

    /// The leading one of `X` is at `L`: `A_L - A_(L+1) = 1` (A is monotone, so `<= 0`
    /// after subtracting 1).
    fn lead(&self, l: usize) -> Cond {
        let mut terms = self.at_least(l);
        terms.extend(self.at_least(l + 1).iter().map(|&(x, w)| (x, -w)));
        Cond {
            terms,
            constant: -1,
        }
    }
}

/// [`round_pack`] for a grid whose bit 0 weighs `2^e_min`, with the leading one of the
/// magnitude given as conditions ([`Leads`]) instead of being derived from "no bit above":
/// the same three layers and the same rounding (nearest, ties to even, saturation, flush),
/// but every layer-1 gate reads a condition of four terms instead of all bits above its
/// leading position.
fn round_pack_lead(
    b: &mut Builder,
    fmt: Format,
    mag: &[Vec<Lit>],
    sign: Lit,
    leads: &Leads,
) -> Result<FloatWord> {
    let p = fmt.p() as i64;
    let emax_biased = (1i64 << fmt.q()) - 1;
    let cols = MagBits { mag };
    // Layer 1.
    let mut w = Window::new(fmt);
    for l in 0..cols.len() {
        if cols.at(l).is_empty() {
            continue;
        }
        let lead = leads.lead(l as usize);
        w.add_significand(b, &cols, l, p, &lead)?;
        let ones = cols.range(l - p, l - 1); // all one (with the leading one): a carry out
        let can_carry = l - p >= 0;
        for carry in [false, true] {
            if carry && !can_carry {
                continue;
            }
            let e = l - p + 1 + carry as i64;
            if e < 0 {
                continue; // flushes to zero: contributes nothing
            }
            let g = if carry {
                gate_if(b, &unit(&ones), p, &[&lead])?
            } else if can_carry {
                let neg_ones: Vec<(Lit, i64)> = ones.iter().map(|&o| (o, -1)).collect();
                gate_if(b, &neg_ones, -(p - 1), &[&lead])?
            } else {
                gate_if(b, &[], 0, &[&lead])?
            };
            w.add_exponent(g, e, emax_biased);
        }
    }
    // Layers 2 and 3, as in round_pack.
    pack_window(b, fmt, sign, w)
}

/// Check the operands: at least one, one format, at most [`MAX_TERMS`].
fn check_operands(op: &'static str, xs: &[FloatWord]) -> Result<Format> {
    let Some(first) = xs.first() else {
        return Err(GadgetError::TooFewOperands { op, min: 1, got: 0 });
    };
    for x in xs {
        first.check_same(op, x)?;
    }
    if xs.len() > MAX_TERMS {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!(
                "{} operands exceed the supported maximum {MAX_TERMS} (the block split of the \
                 signed sum is sized for it)",
                xs.len()
            ),
        });
    }
    Ok(first.fmt)
}

/// The exact sum of `xs` rounded once: the shared body of [`sum`] and [`dot`].
fn sum_words(b: &mut Builder, op: &'static str, xs: &[FloatWord]) -> Result<FloatWord> {
    let fmt = check_operands(op, xs)?;
    let p = fmt.p() as usize;
    let q = fmt.q();
    let counts = grid_counts(b, xs)?;
    let width = sum_width(fmt, xs.len());
    // The block split, sized for MAX_TERMS operands (depends on p and q only).
    let wmax = sum_width(fmt, MAX_TERMS);
    let e = entries_per_position(&count_shapes(p, q, MAX_TERMS), wmax);
    let starts: Vec<usize> = block_starts(&e)?
        .into_iter()
        .filter(|&s| s < width)
        .collect();
    let (mag, sign, leads) = b.region("exact", |b| {
        let (cols, exact) = count_digits(b, &counts, width)?;
        Grid { cols, starts }.magnitude(b, exact)
    })?;
    b.region("round", |b| match &leads {
        Some(leads) => round_pack_lead(b, fmt, &mag, sign, leads),
        None => round_pack(b, fmt, &mag, sign, &[(Lit::TRUE, 0)]),
    })
}

/// The placed column-count digits of the exact sum of `xs` on the grid of their format:
/// `sum_t 2^t sum (sign * lit)` over `cols[t]` equals `sum_i x_i / 2^e_min`, for
/// [`super::fixed`]. Positions past `width` are dropped (the value is then exact modulo
/// `2^width`).
pub(crate) fn grid_digits(
    b: &mut Builder,
    xs: &[FloatWord],
    width: usize,
) -> Result<Vec<Vec<(Lit, i64)>>> {
    let counts = grid_counts(b, xs)?;
    Ok(count_digits(b, &counts, width)?.0)
}

/// The exact sum of `xs`, rounded once (paper Lemma 3.5 part 3; `Format::sum`).
///
/// Errors: no operands, operands of different formats, more than [`MAX_TERMS`] operands.
/// Depth `7 + blocks` (9 at F(8,5), 10 at F(11,6)), identical for every n (module docs).
pub fn sum(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    sum_words(b, "float sum", xs)
}

/// The paper's dot product `round(sum_i round(a_i * b_i))` (docs/float.md; `Format::dot`): each
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
    check_operands("float dot", xs)?;
    let prods = b.region("products", |b| -> Result<Vec<FloatWord>> {
        xs.iter()
            .zip(ys)
            .map(|(x, y)| super::mul::mul(b, x, y))
            .collect()
    })?;
    sum_words(b, "float dot", &prods)
}
