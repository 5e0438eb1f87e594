//! Constant-depth integer word gadgets (docs/float.md; docs/float.md).
//!
//! A *word* is a slice of literals, least significant bit first. Words are unsigned unless the
//! function name says `signed` (two's complement, the last literal is the sign bit). Every
//! gadget takes the [`Builder`] first and returns a [`Result`]; bad operands (width mismatch,
//! no operands, a construction outside its weight bound) are errors, never panics.
//!
//! **Depth.** Every doc comment states the depth of the gadget *above its deepest input*
//! (the largest level of an output minus the largest level of an input). The depth never
//! depends on the number of operands; it depends on the widths only through a fixed choice
//! between two constructions (direct, or one fixed two-level blocking), stated per gadget.
//! Constant folding may make an individual output shallower than stated, never deeper.
//!
//! **The core** is [`column_sum`]: the binary value of `sum_i 2^i * (number of true literals in
//! column i)`, modulo `2^out_width`. Everything additive (add, sub, neg, iterated sums,
//! popcount, multiplication) places literals into columns and calls it:
//! - *direct* ([`SumStrategy::Direct`], depth [`DEPTH_SUM_DIRECT`] = 2): bit `j` of the sum is
//!   a staircase on `S_j = sum_{i <= j} 2^i c_i` (docs/float.md item 2): one bank of
//!   thresholds `k * 2^j` on that form, then `[sum_k (-1)^(k+1) g_k >= 1]`. Needs the largest
//!   `S_j` (relative to the lowest non-empty column) within the weight budget `2^61`.
//! - *blocked* ([`SumStrategy::Blocked`], depth [`DEPTH_SUM_BLOCKED`] = 5; item 3): the
//!   columns are cut into blocks of `s` bits; each block's sum `T_B` is computed directly
//!   (depth 2, weights `<= n * 2^s`); `T_B` overlaps the next block by at most `s` bits, so the
//!   total is `X + Y` with `X` the low parts and `Y` the high parts shifted one block up. That
//!   two-operand sum uses block carry-lookahead: generate `G_B = [X_B + Y_B >= 2^s]` and
//!   propagate `P_B = [X_B + Y_B >= 2^s - 1]` (depth 3); the carry into block `B` is
//!   `c_B = [sum_{B' < B} 2^B' (G_B' + P_B') >= 2^B]`, and it is folded straight into the
//!   output staircase's bank: `[2^B V + sum_{B'<B} 2^B' (G_B' + P_B') >= 2^B t]` equals
//!   `[V + c_B >= t]` (depth 4), the staircase output is depth 5. The blocking is fixed (one
//!   level, never recursive); the block size `s` is the smallest `s >= max(8, bitlen n)` with
//!   `ceil(width / s) + s + 3 <= 61`.
//!
//! [`SumStrategy::Auto`] (what the plain functions use) takes the direct construction when its
//! weights fit and the blocked one otherwise; the choice depends only on the column counts
//! (so on n and the widths), and [`sum_strategy_for`] reports it.

use num_bigint::{BigInt, BigUint};
use num_traits::{One, Signed, Zero};

use super::error::{GadgetError, Result};
use crate::circuit::{Builder, Lit};

/// log2 of the weight budget of every form built here: `sum |w| <= 2^61`, half the builder's
/// [`crate::circuit::builder::MAX_WEIGHT_SUM`], leaving room for constants folded into the
/// threshold.
pub const WEIGHT_BUDGET_LOG2: u32 = 61;

/// Depth of a direct column sum (staircase per output bit).
pub const DEPTH_SUM_DIRECT: u32 = 2;
/// Depth of a blocked column sum (block sums, generate/propagate, carry-folded staircase).
pub const DEPTH_SUM_BLOCKED: u32 = 5;
/// Depth of a comparison of words of width <= [`CMP_DIRECT_MAX_WIDTH`] (one gate).
pub const DEPTH_CMP_DIRECT: u32 = 1;
/// Depth of a blocked comparison (wider words): block comparisons, then one weighted gate.
pub const DEPTH_CMP_BLOCKED: u32 = 2;
/// Widest words compared by a single gate (weights `+-2^j`, sum `< 2^61`).
pub const CMP_DIRECT_MAX_WIDTH: usize = 59;
/// Widest data-dependent shift amount (bits) supported by [`shr_sticky`].
pub const MAX_AMOUNT_WIDTH: usize = 58;

/// Which construction a column sum uses. See the module documentation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SumStrategy {
    /// Direct when the weights fit, blocked otherwise.
    Auto,
    /// One staircase per output bit: depth [`DEPTH_SUM_DIRECT`].
    Direct,
    /// Fixed two-level block carry-lookahead: depth [`DEPTH_SUM_BLOCKED`].
    Blocked,
}

/// The largest level among the literals of `word` (0 for inputs and constants): the depth of
/// the word when its inputs are circuit inputs.
pub fn depth_of(b: &Builder, word: &[Lit]) -> Result<u32> {
    Ok(b.max_level(word)?)
}

// ===================================================================== small helpers

fn bitlen_u128(x: u128) -> u32 {
    128 - x.leading_zeros()
}

fn unsupported(op: &'static str, limit: String) -> GadgetError {
    GadgetError::Unsupported { op, limit }
}

fn check_same_width(op: &'static str, x: &[Lit], y: &[Lit]) -> Result<()> {
    if x.len() != y.len() {
        return Err(GadgetError::WidthMismatch {
            op,
            left: x.len(),
            right: y.len(),
        });
    }
    Ok(())
}

fn check_words(op: &'static str, words: &[Vec<Lit>], min: usize) -> Result<usize> {
    if words.len() < min {
        return Err(GadgetError::TooFewOperands {
            op,
            min,
            got: words.len(),
        });
    }
    let w = words[0].len();
    for x in words {
        if x.len() != w {
            return Err(GadgetError::WidthMismatch {
                op,
                left: w,
                right: x.len(),
            });
        }
    }
    Ok(w)
}

/// `x` zero-extended (or truncated) to `width` bits.
fn resize(x: &[Lit], width: usize) -> Vec<Lit> {
    let mut v: Vec<Lit> = x.iter().copied().take(width).collect();
    v.resize(width, Lit::FALSE);
    v
}

/// `x` sign-extended to `width >= x.len()` bits (an empty word extends with zeros).
fn sign_extend(x: &[Lit], width: usize) -> Vec<Lit> {
    let s = x.last().copied().unwrap_or(Lit::FALSE);
    let mut v = x.to_vec();
    v.resize(width.max(x.len()), s);
    v
}

/// `x` with its most significant bit complemented: maps two's complement order to unsigned
/// order (free).
fn flip_msb(x: &[Lit]) -> Vec<Lit> {
    let mut v = x.to_vec();
    if let Some(l) = v.last_mut() {
        *l = !*l;
    }
    v
}

// ===================================================================== column sums

/// Largest value of `sum_i 2^(i - lo) * cols[i].len()` over `i < width`, where `lo` is the
/// lowest non-empty column; `None` when it does not fit in a `u128`.
fn relative_total(cols: &[Vec<Lit>], width: usize) -> Option<u128> {
    let lo = cols.iter().take(width).position(|c| !c.is_empty())?;
    let mut total: u128 = 0;
    for (i, c) in cols.iter().enumerate().take(width).skip(lo) {
        if c.is_empty() {
            continue;
        }
        let sh = (i - lo) as u32;
        if sh >= 100 {
            return None;
        }
        total = total.checked_add((c.len() as u128) << sh)?;
    }
    Some(total)
}

/// The strategy [`SumStrategy::Auto`] picks for these columns and output width: direct when
/// every form fits the weight budget `2^61`, blocked otherwise.
pub fn sum_strategy_for(cols: &[Vec<Lit>], out_width: usize) -> SumStrategy {
    if cols.iter().take(out_width).all(|c| c.is_empty()) {
        return SumStrategy::Direct; // nothing to build
    }
    match relative_total(cols, out_width) {
        Some(t) if t <= 1u128 << WEIGHT_BUDGET_LOG2 => SumStrategy::Direct,
        _ => SumStrategy::Blocked,
    }
}

/// The binary value of `(sum_i 2^i * #{true literals in cols[i]}) mod 2^out_width`,
/// `out_width` bits, least significant first. Constant literals are allowed (they fold into
/// thresholds and cost nothing), so constants are added by placing `Lit::TRUE` in columns.
///
/// Depth (above the deepest input): at most [`DEPTH_SUM_DIRECT`] = 2 with
/// [`SumStrategy::Direct`], at most [`DEPTH_SUM_BLOCKED`] = 5 with [`SumStrategy::Blocked`];
/// [`SumStrategy::Auto`] picks as [`sum_strategy_for`] says. Gates: about `2 * c` thresholds
/// per output bit, `c` the largest column count (docs/float.md items 2 and 3).
///
/// Errors: [`GadgetError::Unsupported`] when the direct construction is forced beyond the weight
/// budget, or when no block size satisfies the blocked construction's bounds (more than 2^30
/// literals in a column, or an output wider than about 800 bits).
pub fn column_sum(
    b: &mut Builder,
    cols: &[Vec<Lit>],
    out_width: usize,
    strategy: SumStrategy,
) -> Result<Vec<Lit>> {
    let strategy = match strategy {
        SumStrategy::Auto => sum_strategy_for(cols, out_width),
        s => s,
    };
    match strategy {
        SumStrategy::Blocked => column_sum_blocked(b, cols, out_width),
        _ => column_sum_direct(b, cols, out_width),
    }
}

/// Depth-2 staircase column sum. See [`column_sum`].
fn column_sum_direct(b: &mut Builder, cols: &[Vec<Lit>], out_width: usize) -> Result<Vec<Lit>> {
    let mut out = vec![Lit::FALSE; out_width];
    let Some(lo) = cols.iter().take(out_width).position(|c| !c.is_empty()) else {
        return Ok(out);
    };
    match relative_total(cols, out_width) {
        Some(t) if t <= 1u128 << WEIGHT_BUDGET_LOG2 => {}
        _ => {
            return Err(unsupported(
                "column_sum (direct)",
                format!(
                    "weight bound 2^{WEIGHT_BUDGET_LOG2} exceeded by the sum of 2^i * (column \
                     count) over {out_width} output bits; use the blocked strategy"
                ),
            ))
        }
    }
    let mut terms: Vec<(Lit, i64)> = Vec::new();
    let mut smax: u128 = 0;
    for (j, o) in out.iter_mut().enumerate().skip(lo) {
        if j < cols.len() && !cols[j].is_empty() {
            let w = 1i64 << (j - lo);
            terms.extend(cols[j].iter().map(|&l| (l, w)));
            smax += (cols[j].len() as u128) << (j - lo);
        }
        // Bit j is floor(S_j / 2^j) mod 2 with S_j over columns <= j (relative to lo).
        let unit = 1u128 << (j - lo).min(120);
        let kmax = smax / unit;
        if kmax == 0 {
            continue; // this bit and all higher ones are always 0
        }
        let thetas: Vec<i64> = (1..=kmax).map(|k| (k * unit) as i64).collect();
        let g = b.bank(&terms, &thetas)?;
        let stair: Vec<(Lit, i64)> = g
            .iter()
            .enumerate()
            .map(|(k, &l)| (l, if k % 2 == 0 { 1 } else { -1 }))
            .collect();
        *o = b.threshold(&stair, 1)?;
    }
    Ok(out)
}

/// Depth-5 blocked column sum (fixed two-level block carry-lookahead). See [`column_sum`].
fn column_sum_blocked(b: &mut Builder, cols: &[Vec<Lit>], out_width: usize) -> Result<Vec<Lit>> {
    let r = out_width;
    if r == 0 {
        return Ok(Vec::new());
    }
    let nmax = cols
        .iter()
        .take(r)
        .map(|c| c.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let l = bitlen_u128(nmax as u128) as usize;
    let budget = WEIGHT_BUDGET_LOG2 as usize;
    let mut s = l.max(8);
    loop {
        if s + l > budget {
            return Err(unsupported(
                "column_sum (blocked)",
                format!(
                    "weight bound 2^{budget}: no block size fits {nmax} literals per column \
                     and {r} output bits (needs ceil({r}/s) + s + 3 <= {budget} and \
                     s + bitlen(count) <= {budget})"
                ),
            ));
        }
        if r.div_ceil(s) + s + 3 <= budget {
            break;
        }
        s += 1;
    }
    let nb = r.div_ceil(s);
    let starts: Vec<usize> = (0..nb).map(|k| k * s).collect();
    let sizes: Vec<usize> = starts.iter().map(|&st| s.min(r - st)).collect();
    // Stage 1: each block's own sum T_B (depth 2), split into low (X_B) and high parts.
    let mut xs: Vec<Vec<Lit>> = Vec::with_capacity(nb);
    let mut his: Vec<Vec<Lit>> = Vec::with_capacity(nb);
    for k in 0..nb {
        let sub: Vec<Vec<Lit>> = (starts[k]..starts[k] + sizes[k])
            .map(|i| cols.get(i).cloned().unwrap_or_default())
            .collect();
        let tmax: u128 = sub
            .iter()
            .enumerate()
            .map(|(i, c)| (c.len() as u128) << i)
            .sum();
        let tw = (bitlen_u128(tmax) as usize).max(sizes[k]);
        let t = column_sum_direct(b, &sub, tw)?;
        xs.push(t[..sizes[k]].to_vec());
        his.push(t[sizes[k]..].to_vec());
    }
    // Y_B: the high part of block B-1, truncated to block B (bits past out_width drop).
    let ys: Vec<Vec<Lit>> = (0..nb)
        .map(|k| {
            if k == 0 {
                Vec::new()
            } else {
                his[k - 1].iter().copied().take(sizes[k]).collect()
            }
        })
        .collect();
    // Stage 2: generate / propagate per block (depth 3).
    let mut gp: Vec<(Lit, Lit)> = Vec::with_capacity(nb);
    for k in 0..nb {
        let mut terms: Vec<(Lit, i64)> = Vec::new();
        for (i, &x) in xs[k].iter().enumerate() {
            terms.push((x, 1i64 << i));
        }
        for (i, &y) in ys[k].iter().enumerate() {
            terms.push((y, 1i64 << i));
        }
        let full = 1i64 << sizes[k];
        let g = b.bank(&terms, &[full, full - 1])?;
        gp.push((g[0], g[1]));
    }
    // Stage 3: output bits; block 0 is X_0 itself. Others: staircase of V + c_B with the carry
    // folded into the bank (depth 4, 5).
    let mut out = Vec::with_capacity(r);
    out.extend_from_slice(&xs[0]);
    for k in 1..nb {
        let carry: Vec<(Lit, i64)> = (0..k)
            .flat_map(|kk| [(gp[kk].0, 1i64 << kk), (gp[kk].1, 1i64 << kk)])
            .collect();
        let scale = 1i64 << k;
        let mut terms = carry;
        for (j, &xj) in xs[k].iter().enumerate() {
            terms.push((xj, scale << j));
            if let Some(&y) = ys[k].get(j) {
                terms.push((y, scale << j));
            }
            let u = scale << j;
            let g = b.bank(&terms, &[u, 2 * u, 3 * u])?;
            out.push(b.threshold(&[(g[0], 1), (g[1], -1), (g[2], 1)], 1)?);
        }
    }
    Ok(out)
}

// ===================================================================== linear sums of words

/// An exact integer linear combination of words (unsigned or two's complement, each shifted
/// left by a constant) plus a constant, built as one [`column_sum`].
///
/// Invariant: `min <= value <= max` for every input, where `value` is the represented integer;
/// the columns hold literals with weight `2^i` and `constant` is added.
#[derive(Clone, Debug, Default)]
pub struct LinearSum {
    cols: Vec<Vec<Lit>>,
    constant: BigInt,
    min: BigInt,
    max: BigInt,
}

impl LinearSum {
    /// The empty sum (value 0).
    pub fn new() -> Self {
        Self::default()
    }

    fn put(&mut self, l: Lit, i: usize) {
        if self.cols.len() <= i {
            self.cols.resize(i + 1, Vec::new());
        }
        self.cols[i].push(l);
    }

    /// Add one bit with weight `2^shift`.
    pub fn add_bit(&mut self, l: Lit, shift: usize) {
        if l == Lit::FALSE {
            return;
        }
        self.put(l, shift);
        if l == Lit::TRUE {
            self.min += BigInt::one() << shift;
        }
        self.max += BigInt::one() << shift;
    }

    /// Add the unsigned word `x` times `2^shift`.
    pub fn add_unsigned(&mut self, x: &[Lit], shift: usize) {
        for (i, &l) in x.iter().enumerate() {
            self.add_bit(l, i + shift);
        }
    }

    /// Subtract the unsigned word `x` times `2^shift`
    /// (`-x = sum 2^i (1 - x_i) - (2^w - 1)`).
    pub fn sub_unsigned(&mut self, x: &[Lit], shift: usize) {
        for (i, &l) in x.iter().enumerate() {
            self.add_bit(!l, i + shift);
        }
        let m: BigInt = ((BigInt::one() << x.len()) - 1) << shift;
        self.add_constant(&-m);
    }

    /// Add the two's complement word `x` times `2^shift` (the sign bit weighs `-2^(w-1)`:
    /// `-2^(w-1) s = 2^(w-1) (1 - s) - 2^(w-1)`).
    pub fn add_signed(&mut self, x: &[Lit], shift: usize) {
        let Some((&s, rest)) = x.split_last() else {
            return;
        };
        self.add_unsigned(rest, shift);
        self.add_bit(!s, rest.len() + shift);
        self.add_constant(&-(BigInt::one() << (rest.len() + shift)));
    }

    /// Subtract the two's complement word `x` times `2^shift`.
    pub fn sub_signed(&mut self, x: &[Lit], shift: usize) {
        let Some((&s, rest)) = x.split_last() else {
            return;
        };
        self.sub_unsigned(rest, shift);
        self.add_bit(s, rest.len() + shift);
    }

    /// Add the unsigned word `x` times the integer constant `c` (one shifted copy of `x` per
    /// set bit of `|c|`, subtracted when `c < 0`).
    pub fn add_unsigned_times(&mut self, x: &[Lit], c: i64) {
        let m = c.unsigned_abs();
        for k in 0..64 {
            if (m >> k) & 1 == 1 {
                if c < 0 {
                    self.sub_unsigned(x, k);
                } else {
                    self.add_unsigned(x, k);
                }
            }
        }
    }

    /// Add an integer constant.
    pub fn add_constant(&mut self, c: &BigInt) {
        self.constant += c;
        self.min += c;
        self.max += c;
    }

    /// The smallest value the sum can take.
    pub fn min_value(&self) -> &BigInt {
        &self.min
    }

    /// The largest value the sum can take.
    pub fn max_value(&self) -> &BigInt {
        &self.max
    }

    /// Width and signedness of the exact result: unsigned `bitlen(max)` bits (at least 1) when
    /// the sum is never negative, otherwise the smallest two's complement width holding
    /// `[min, max]`.
    pub fn exact_width(&self) -> (usize, bool) {
        if !self.min.is_negative() {
            ((self.max.bits() as usize).max(1), false)
        } else {
            let neg = (-&self.min - 1u32).bits() as usize; // -2^(R-1) <= min
            let pos = if self.max.is_negative() {
                0
            } else {
                self.max.bits() as usize
            };
            (neg.max(pos) + 1, true)
        }
    }

    /// The columns (with the constant reduced modulo `2^width` as `Lit::TRUE` literals) whose
    /// column sum modulo `2^width` is the value modulo `2^width`.
    pub fn columns_mod(&self, width: usize) -> Vec<Vec<Lit>> {
        let mut cols: Vec<Vec<Lit>> = self.cols.iter().take(width).cloned().collect();
        cols.resize(width.max(cols.len()), Vec::new());
        let m = BigInt::one() << width;
        let c = ((&self.constant % &m) + &m) % &m;
        let (_, c) = c.into_parts();
        for (i, col) in cols.iter_mut().enumerate().take(width) {
            if c.bit(i as u64) {
                col.push(Lit::TRUE);
            }
        }
        cols
    }

    /// The value modulo `2^width` (`width` bits), depth as [`column_sum`] with `strategy`.
    pub fn build_mod(
        &self,
        b: &mut Builder,
        width: usize,
        strategy: SumStrategy,
    ) -> Result<Vec<Lit>> {
        let cols = self.columns_mod(width);
        column_sum(b, &cols, width, strategy)
    }

    /// The exact value in [`LinearSum::exact_width`] bits (two's complement when it can be
    /// negative); depth as [`column_sum`] with `strategy`.
    pub fn build(&self, b: &mut Builder, strategy: SumStrategy) -> Result<Vec<Lit>> {
        let (w, _) = self.exact_width();
        self.build_mod(b, w, strategy)
    }
}

// ===================================================================== add, sub, neg

/// `x + y`, unsigned, width `max(wx, wy) + 1`. Depth 2 when `max(wx, wy) <= 60`
/// (direct: `2 * (2^w - 1) <= 2^61`), else 5 (blocked), see [`column_sum`].
pub fn add(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len().max(y.len()) + 1;
    let mut s = LinearSum::new();
    s.add_unsigned(x, 0);
    s.add_unsigned(y, 0);
    s.build_mod(b, w, SumStrategy::Auto)
}

/// `x + y mod 2^w` for equal widths `w`, with the carry out. Depth as [`add`].
pub fn add_mod(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<(Vec<Lit>, Lit)> {
    check_same_width("add_mod", x, y)?;
    let mut s = add(b, x, y)?;
    let c = s.pop().unwrap_or(Lit::FALSE);
    Ok((s, c))
}

/// `(x - y mod 2^w, borrow)` for unsigned words of equal width `w`; `borrow = [x < y]`.
/// Depth 2 when `w <= 60`, else 5 (computed as `x + !y + 1`, the borrow is the complemented
/// carry out).
pub fn sub(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<(Vec<Lit>, Lit)> {
    check_same_width("sub", x, y)?;
    let w = x.len();
    let mut s = LinearSum::new();
    s.add_unsigned(x, 0);
    let ny: Vec<Lit> = y.iter().map(|&l| !l).collect();
    s.add_unsigned(&ny, 0);
    s.add_bit(Lit::TRUE, 0);
    let mut r = s.build_mod(b, w + 1, SumStrategy::Auto)?;
    let carry = r.pop().unwrap_or(Lit::TRUE);
    Ok((r, !carry))
}

/// Two's complement negation `-x mod 2^w` (width `w`). Depth 2 when `w <= 61`, else 5.
pub fn neg(b: &mut Builder, x: &[Lit]) -> Result<Vec<Lit>> {
    let mut s = LinearSum::new();
    let nx: Vec<Lit> = x.iter().map(|&l| !l).collect();
    s.add_unsigned(&nx, 0);
    s.add_bit(Lit::TRUE, 0);
    s.build_mod(b, x.len(), SumStrategy::Auto)
}

/// `x + y` for two's complement words (any widths), exact, width `max(wx, wy) + 1`.
/// Depth 2 when `max(wx, wy) <= 59`, else 5.
pub fn add_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len().max(y.len()) + 1;
    let mut s = LinearSum::new();
    s.add_signed(x, 0);
    s.add_signed(y, 0);
    s.build_mod(b, w, SumStrategy::Auto)
}

/// `x - y` for two's complement words (any widths), exact, width `max(wx, wy) + 1`.
/// Depth 2 when `max(wx, wy) <= 59`, else 5.
pub fn sub_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len().max(y.len()) + 1;
    let mut s = LinearSum::new();
    s.add_signed(x, 0);
    s.sub_signed(y, 0);
    s.build_mod(b, w, SumStrategy::Auto)
}

/// `x - y` for unsigned words (any widths), exact, as a two's complement word of width
/// `max(wx, wy) + 1`. Depth 2 when `max(wx, wy) <= 59`, else 5.
pub fn sub_to_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len().max(y.len()) + 1;
    let mut s = LinearSum::new();
    s.add_unsigned(x, 0);
    s.sub_unsigned(y, 0);
    s.build_mod(b, w, SumStrategy::Auto)
}

// ===================================================================== iterated addition

/// Iterated addition of n unsigned words (any widths): the exact sum, width
/// `bitlen(sum of the maxima)`. Depth 2 when `n * 2^w <= 2^61` (direct), else 5 (blocked);
/// the choice is [`sum_strategy_for`]'s. Gates: about `2n` per output bit.
///
/// Errors: [`GadgetError::TooFewOperands`] for n = 0; [`GadgetError::Unsupported`] beyond the
/// blocked construction's bounds.
pub fn sum(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    sum_with(b, words, SumStrategy::Auto)
}

/// [`sum`] with an explicit strategy ([`SumStrategy::Blocked`]: depth exactly 5 whatever n,
/// for callers that want one depth over all n).
pub fn sum_with(b: &mut Builder, words: &[Vec<Lit>], strategy: SumStrategy) -> Result<Vec<Lit>> {
    if words.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "sum",
            min: 1,
            got: 0,
        });
    }
    let mut s = LinearSum::new();
    for w in words {
        s.add_unsigned(w, 0);
    }
    s.build(b, strategy)
}

/// Iterated addition of unsigned words each shifted left by a constant:
/// `sum_i x_i * 2^(shift_i)`, exact. Depth as [`sum`].
pub fn sum_shifted(b: &mut Builder, terms: &[(Vec<Lit>, usize)]) -> Result<Vec<Lit>> {
    if terms.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "sum_shifted",
            min: 1,
            got: 0,
        });
    }
    let mut s = LinearSum::new();
    for (w, sh) in terms {
        s.add_unsigned(w, *sh);
    }
    s.build(b, SumStrategy::Auto)
}

/// Iterated addition of n two's complement words (any widths), exact, as a two's complement
/// word of the smallest width holding every possible sum. Depth as [`sum`].
pub fn sum_signed(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    if words.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "sum_signed",
            min: 1,
            got: 0,
        });
    }
    let mut s = LinearSum::new();
    for w in words {
        s.add_signed(w, 0);
    }
    s.build(b, SumStrategy::Auto)
}

/// Iterated addition of unsigned words times signed integer constants,
/// `sum_i c_i * x_i`, exact, as a two's complement word of the smallest width holding every
/// possible value (unsigned when no value can be negative). Each term adds one shifted copy of
/// `x_i` per set bit of `|c_i|`. Depth as [`sum`] (2 when the direct weights fit, else 5).
/// Errors: [`GadgetError::TooFewOperands`] for no terms.
pub fn sum_weighted(b: &mut Builder, terms: &[(Vec<Lit>, i64)]) -> Result<Vec<Lit>> {
    if terms.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "sum_weighted",
            min: 1,
            got: 0,
        });
    }
    let mut s = LinearSum::new();
    for (x, c) in terms {
        s.add_unsigned_times(x, *c);
    }
    s.build(b, SumStrategy::Auto)
}

/// Number of true literals, width `bitlen(n)`. Depth 2 (direct: one staircase per bit over the
/// unit-weight count). Errors: [`GadgetError::TooFewOperands`] for no literals.
pub fn popcount(b: &mut Builder, lits: &[Lit]) -> Result<Vec<Lit>> {
    if lits.is_empty() {
        return Err(GadgetError::TooFewOperands {
            op: "popcount",
            min: 1,
            got: 0,
        });
    }
    let w = bitlen_u128(lits.len() as u128) as usize;
    column_sum(b, &[lits.to_vec()], w, SumStrategy::Auto)
}

// ===================================================================== multiplication

/// Full product `x * y` of unsigned words, width `wx + wy`: partial products `x_i AND y_j`
/// (depth 1) summed by [`column_sum`]. Depth 3 when `wx + wy <= 61` (direct), else 6.
pub fn mul(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len() + y.len();
    let mut cols: Vec<Vec<Lit>> = vec![Vec::new(); w];
    for (i, &xi) in x.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            let p = b.and2(xi, yj)?;
            if p != Lit::FALSE {
                cols[i + j].push(p);
            }
        }
    }
    column_sum(b, &cols, w, SumStrategy::Auto)
}

/// Full product `x * y` of two's complement words, exact, width `wx + wy` (two's complement).
/// Partial products `x_i AND y_j` (depth 1), the ones involving exactly one sign bit negated
/// (`-p = !p - 1`, Baugh-Wooley), summed by [`column_sum`]. Depth 3 when `wx + wy <= 60`, else
/// 6. An empty operand gives a zero word of width `wx + wy`.
pub fn mul_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Vec<Lit>> {
    let w = x.len() + y.len();
    if x.is_empty() || y.is_empty() {
        return Ok(vec![Lit::FALSE; w]);
    }
    let (sx, sy) = (x.len() - 1, y.len() - 1);
    let mut s = LinearSum::new();
    for (i, &xi) in x.iter().enumerate() {
        for (j, &yj) in y.iter().enumerate() {
            let p = b.and2(xi, yj)?;
            if (i == sx) != (j == sy) {
                s.add_bit(!p, i + j);
                s.add_constant(&-(BigInt::one() << (i + j)));
            } else {
                s.add_bit(p, i + j);
            }
        }
    }
    s.build_mod(b, w, SumStrategy::Auto)
}

/// `x * c` for a constant `c`, width `wx + bitlen(c)` (at least 1): shifted copies of `x`, one
/// per set bit of `c`, summed. Depth 2 when the direct weights fit
/// (`popcount(c) * 2^(wx + bitlen c) <= 2^61`, roughly), else 5; 0 when `c` is 0 or a power of two.
pub fn mul_const(b: &mut Builder, x: &[Lit], c: u64) -> Result<Vec<Lit>> {
    mul_const_big(b, x, &BigUint::from(c))
}

/// [`mul_const`] for a constant of any size.
pub fn mul_const_big(b: &mut Builder, x: &[Lit], c: &BigUint) -> Result<Vec<Lit>> {
    let w = (x.len() + c.bits() as usize).max(1);
    let mut s = LinearSum::new();
    for k in 0..c.bits() {
        if c.bit(k) {
            s.add_unsigned(x, k as usize);
        }
    }
    s.build_mod(b, w, SumStrategy::Auto)
}

// ===================================================================== comparison

/// `([x > y], [x >= y])` for unsigned words of equal width.
fn compare(b: &mut Builder, op: &'static str, x: &[Lit], y: &[Lit]) -> Result<(Lit, Lit)> {
    check_same_width(op, x, y)?;
    let w = x.len();
    if w <= CMP_DIRECT_MAX_WIDTH {
        let mut terms = Vec::with_capacity(2 * w);
        for j in 0..w {
            terms.push((x[j], 1i64 << j));
            terms.push((y[j], -(1i64 << j)));
        }
        let g = b.bank(&terms, &[1, 0])?;
        return Ok((g[0], g[1]));
    }
    // Blocked: per block gt_B, ge_B (one bank), then
    // [x > y] = [sum 2^B (gt_B + ge_B) >= 2^nb], [x >= y] = [... >= 2^nb - 1].
    let mut s = 0;
    let budget = WEIGHT_BUDGET_LOG2 as usize - 2;
    for cand in 8..=budget {
        if w.div_ceil(cand) <= budget {
            s = cand;
            break;
        }
    }
    if s == 0 {
        return Err(unsupported(
            op,
            format!("weight bound 2^{WEIGHT_BUDGET_LOG2}: words of {w} bits are too wide to compare in depth 2"),
        ));
    }
    let nb = w.div_ceil(s);
    let mut top: Vec<(Lit, i64)> = Vec::with_capacity(2 * nb);
    for k in 0..nb {
        let lo = k * s;
        let hi = (lo + s).min(w);
        let mut terms = Vec::with_capacity(2 * (hi - lo));
        for j in lo..hi {
            terms.push((x[j], 1i64 << (j - lo)));
            terms.push((y[j], -(1i64 << (j - lo))));
        }
        let g = b.bank(&terms, &[1, 0])?;
        top.push((g[0], 1i64 << k));
        top.push((g[1], 1i64 << k));
    }
    let full = 1i64 << nb;
    let g = b.bank(&top, &[full, full - 1])?;
    Ok((g[0], g[1]))
}

/// The depth of a comparison of `width`-bit words: 1 up to [`CMP_DIRECT_MAX_WIDTH`] bits, else 2.
pub fn cmp_depth(width: usize) -> u32 {
    if width <= CMP_DIRECT_MAX_WIDTH {
        DEPTH_CMP_DIRECT
    } else {
        DEPTH_CMP_BLOCKED
    }
}

/// `[x < y]`, unsigned, equal widths. Depth [`cmp_depth`]`(w)`: 1 (one gate
/// `[sum 2^j (y_j - x_j) >= 1]`) up to 59 bits, else 2 (blocked).
pub fn lt(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    Ok(!compare(b, "lt", x, y)?.1)
}

/// `[x <= y]`, unsigned, equal widths. Depth [`cmp_depth`]`(w)`.
pub fn le(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    Ok(!compare(b, "le", x, y)?.0)
}

/// `[x > y]`, unsigned, equal widths. Depth [`cmp_depth`]`(w)`.
pub fn gt(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    Ok(compare(b, "gt", x, y)?.0)
}

/// `[x >= y]`, unsigned, equal widths. Depth [`cmp_depth`]`(w)`.
pub fn ge(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    Ok(compare(b, "ge", x, y)?.1)
}

/// `[x == y]`, equal widths. Depth 2 (`[x >= y] AND NOT [x > y]`, or with blocks the AND of
/// block equalities); true for width 0.
pub fn eq(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    check_same_width("eq", x, y)?;
    let w = x.len();
    if w <= CMP_DIRECT_MAX_WIDTH {
        let (g, e) = compare(b, "eq", x, y)?;
        return b.and2(e, !g).map_err(Into::into);
    }
    let mut parts = Vec::new();
    for (xc, yc) in x
        .chunks(CMP_DIRECT_MAX_WIDTH)
        .zip(y.chunks(CMP_DIRECT_MAX_WIDTH))
    {
        let (g, e) = compare(b, "eq", xc, yc)?;
        parts.push(e);
        parts.push(!g);
    }
    b.and(&parts).map_err(Into::into)
}

/// `[x != y]`, equal widths. Depth 2.
pub fn ne(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    Ok(!eq(b, x, y)?)
}

/// `[x < y]` for two's complement words of equal width (the unsigned comparison of the words
/// with their sign bits complemented). Depth [`cmp_depth`]`(w)`.
pub fn lt_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    check_same_width("lt_signed", x, y)?;
    lt(b, &flip_msb(x), &flip_msb(y))
}

/// `[x <= y]` for two's complement words of equal width. Depth [`cmp_depth`]`(w)`.
pub fn le_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    check_same_width("le_signed", x, y)?;
    le(b, &flip_msb(x), &flip_msb(y))
}

/// `[x > y]` for two's complement words of equal width. Depth [`cmp_depth`]`(w)`.
pub fn gt_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    check_same_width("gt_signed", x, y)?;
    gt(b, &flip_msb(x), &flip_msb(y))
}

/// `[x >= y]` for two's complement words of equal width. Depth [`cmp_depth`]`(w)`.
pub fn ge_signed(b: &mut Builder, x: &[Lit], y: &[Lit]) -> Result<Lit> {
    check_same_width("ge_signed", x, y)?;
    ge(b, &flip_msb(x), &flip_msb(y))
}

/// `[x == 0]`: one gate `[sum x_j <= 0]`, depth 1 (true for width 0).
pub fn is_zero(b: &mut Builder, x: &[Lit]) -> Result<Lit> {
    Ok(!b.or(x)?)
}

// ===================================================================== max, min, argmax

/// One-hot winner of all-pairs comparisons. `want_max`: winner is the largest, else smallest;
/// ties go to the lowest index. `keys` are the words compared (unsigned order).
fn winners(
    b: &mut Builder,
    op: &'static str,
    keys: &[Vec<Lit>],
    want_max: bool,
) -> Result<Vec<Vec<Lit>>> {
    let n = keys.len();
    // beats[i][j] for i != j: i is preferred to j.
    let mut beats = vec![Vec::with_capacity(n.saturating_sub(1)); n];
    for i in 0..n {
        for j in (i + 1)..n {
            // i < j: i wins on ties. c = [x_i >= x_j] (max) or [x_i <= x_j] (min).
            let (gt_ij, ge_ij) = compare(b, op, &keys[i], &keys[j])?;
            let c = if want_max { ge_ij } else { !gt_ij };
            beats[i].push(c);
            beats[j].push(!c);
        }
    }
    Ok(beats)
}

fn argext(
    b: &mut Builder,
    op: &'static str,
    words: &[Vec<Lit>],
    want_max: bool,
    signed: bool,
) -> Result<Vec<Lit>> {
    check_words(op, words, 1)?;
    let keys: Vec<Vec<Lit>> = if signed {
        words.iter().map(|w| flip_msb(w)).collect()
    } else {
        words.to_vec()
    };
    let beats = winners(b, op, &keys, want_max)?;
    beats.iter().map(|c| b.and(c).map_err(Into::into)).collect()
}

fn ext(
    b: &mut Builder,
    op: &'static str,
    words: &[Vec<Lit>],
    want_max: bool,
    signed: bool,
) -> Result<Vec<Lit>> {
    let w = check_words(op, words, 1)?;
    let keys: Vec<Vec<Lit>> = if signed {
        words.iter().map(|w| flip_msb(w)).collect()
    } else {
        words.to_vec()
    };
    let beats = winners(b, op, &keys, want_max)?;
    // bit k = OR_i (AND(beats_i) AND x_ik): the AND absorbs the bit, so depth cmp + 2.
    let mut out = Vec::with_capacity(w);
    let mut scratch = Vec::new();
    for k in 0..w {
        let mut ors = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            scratch.clear();
            scratch.extend_from_slice(&beats[i]);
            scratch.push(word[k]);
            ors.push(b.and(&scratch)?);
        }
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

/// The largest of n unsigned words of equal width (all-pairs comparison, docs/float.md
/// item 10). Depth [`cmp_depth`]`(w) + 2` (3 up to 59 bits): comparisons, then per output bit
/// `OR_i (AND_j [x_i beats x_j] AND x_ik)`. O(n^2) comparators.
/// Errors: [`GadgetError::TooFewOperands`] for n = 0, [`GadgetError::WidthMismatch`].
pub fn max_n(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    ext(b, "max_n", words, true, false)
}

/// The smallest of n unsigned words. Depth as [`max_n`].
pub fn min_n(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    ext(b, "min_n", words, false, false)
}

/// The largest of n two's complement words. Depth as [`max_n`].
pub fn max_n_signed(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    ext(b, "max_n_signed", words, true, true)
}

/// The smallest of n two's complement words. Depth as [`max_n`].
pub fn min_n_signed(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    ext(b, "min_n_signed", words, false, true)
}

/// One-hot position of the largest of n unsigned words, ties to the lowest index:
/// `is_max_i = AND_{j<i} [x_i > x_j] AND AND_{j>i} [x_i >= x_j]`. Depth
/// [`cmp_depth`]`(w) + 1` (2 up to 59 bits). Errors as [`max_n`].
pub fn argmax(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    argext(b, "argmax", words, true, false)
}

/// One-hot position of the smallest of n unsigned words, ties to the lowest index. Depth as
/// [`argmax`].
pub fn argmin(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    argext(b, "argmin", words, false, false)
}

/// [`argmax`] of two's complement words.
pub fn argmax_signed(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    argext(b, "argmax_signed", words, true, true)
}

/// [`argmin`] of two's complement words.
pub fn argmin_signed(b: &mut Builder, words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    argext(b, "argmin_signed", words, false, true)
}

// ===================================================================== selection

/// `if sel { if_true } else { if_false }` bitwise, equal widths. Depth 2.
pub fn mux_word(b: &mut Builder, sel: Lit, if_true: &[Lit], if_false: &[Lit]) -> Result<Vec<Lit>> {
    check_same_width("mux_word", if_true, if_false)?;
    if_true
        .iter()
        .zip(if_false)
        .map(|(&t, &f)| b.mux(sel, t, f).map_err(Into::into))
        .collect()
}

/// `OR_i (onehot_i AND words_i)` bitwise: the word selected by a one-hot vector (all zero when
/// no bit is set). Depth 2. Errors: [`GadgetError::TooFewOperands`] for no words,
/// [`GadgetError::WidthMismatch`] for unequal widths or `onehot.len() != words.len()`.
pub fn select_onehot(b: &mut Builder, onehot: &[Lit], words: &[Vec<Lit>]) -> Result<Vec<Lit>> {
    let w = check_words("select_onehot", words, 1)?;
    if onehot.len() != words.len() {
        return Err(GadgetError::WidthMismatch {
            op: "select_onehot",
            left: words.len(),
            right: onehot.len(),
        });
    }
    let mut out = Vec::with_capacity(w);
    for k in 0..w {
        let mut ors = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            ors.push(b.and2(onehot[i], word[k])?);
        }
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

// ===================================================================== shifts

/// `x << k` (free rewiring), width `w + k`.
pub fn shl_const(_b: &mut Builder, x: &[Lit], k: usize) -> Result<Vec<Lit>> {
    let mut v = vec![Lit::FALSE; k];
    v.extend_from_slice(x);
    Ok(v)
}

/// `x >> k` (free rewiring), width `w - k` (0 when `k >= w`).
pub fn shr_const(_b: &mut Builder, x: &[Lit], k: usize) -> Result<Vec<Lit>> {
    Ok(x.iter().copied().skip(k).collect())
}

/// Zero-extend or truncate `x` to `width` bits (free).
pub fn resize_word(_b: &mut Builder, x: &[Lit], width: usize) -> Result<Vec<Lit>> {
    Ok(resize(x, width))
}

/// Sign-extend `x` to `width >= w` bits (free); truncates when `width < w`.
pub fn sign_extend_word(_b: &mut Builder, x: &[Lit], width: usize) -> Result<Vec<Lit>> {
    Ok(if width < x.len() {
        x[..width].to_vec()
    } else {
        sign_extend(x, width)
    })
}

/// The literals of `[amount == k]` as an AND (all true iff equal); `None` when `k` does not fit.
fn eq_const_lits(amount: &[Lit], k: usize) -> Option<Vec<Lit>> {
    if amount.len() < usize::BITS as usize && k >> amount.len() != 0 {
        return None;
    }
    Some(
        amount
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                if i < usize::BITS as usize && (k >> i) & 1 == 1 {
                    a
                } else {
                    !a
                }
            })
            .collect(),
    )
}

/// `(x << amount) mod 2^out_width` for a data-dependent unsigned `amount`. Depth 2: output bit
/// `t` is `OR_k AND([amount == k] literals, x_(t-k))` (the decode of `amount` is absorbed into
/// the AND, docs/float.md item 6). Gates about `out_width * min(w, out_width)`.
pub fn shl(b: &mut Builder, x: &[Lit], amount: &[Lit], out_width: usize) -> Result<Vec<Lit>> {
    let mut out = Vec::with_capacity(out_width);
    for t in 0..out_width {
        let mut ors = Vec::new();
        for k in 0..=t {
            let Some(i) = t.checked_sub(k) else { continue };
            if i >= x.len() {
                continue;
            }
            let Some(mut lits) = eq_const_lits(amount, k) else {
                break;
            };
            lits.push(x[i]);
            ors.push(b.and(&lits)?);
        }
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

/// `x >> amount` (logical) truncated or zero-extended to `out_width` bits, for a data-dependent
/// unsigned `amount`. Depth 2 (as [`shl`]).
pub fn shr(b: &mut Builder, x: &[Lit], amount: &[Lit], out_width: usize) -> Result<Vec<Lit>> {
    let mut out = Vec::with_capacity(out_width);
    for t in 0..out_width {
        let mut ors = Vec::new();
        for k in 0..x.len().saturating_sub(t) {
            let Some(mut lits) = eq_const_lits(amount, k) else {
                break;
            };
            lits.push(x[t + k]);
            ors.push(b.and(&lits)?);
        }
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

/// [`shr`] plus the *sticky* bit: the OR of the bits shifted out (`x mod 2^amount != 0`).
/// Depth 2: the sticky bit is `OR_i [amount + 2^a x_i >= i + 1 + 2^a]` (one gate per bit,
/// `a` the amount's width). Errors: [`GadgetError::Unsupported`] when the amount is wider than
/// [`MAX_AMOUNT_WIDTH`] bits.
pub fn shr_sticky(
    b: &mut Builder,
    x: &[Lit],
    amount: &[Lit],
    out_width: usize,
) -> Result<(Vec<Lit>, Lit)> {
    if amount.len() > MAX_AMOUNT_WIDTH {
        return Err(unsupported(
            "shr_sticky",
            format!(
                "weight bound: shift amount of {} bits exceeds {MAX_AMOUNT_WIDTH} bits",
                amount.len()
            ),
        ));
    }
    let out = shr(b, x, amount, out_width)?;
    let big = 1i64 << amount.len();
    let mut ors = Vec::with_capacity(x.len());
    for (i, &xi) in x.iter().enumerate() {
        let mut terms: Vec<(Lit, i64)> = amount
            .iter()
            .enumerate()
            .map(|(j, &a)| (a, 1i64 << j))
            .collect();
        terms.push((xi, big));
        ors.push(b.threshold(&terms, i as i64 + 1 + big)?);
    }
    let sticky = b.or(&ors)?;
    Ok((out, sticky))
}

// ===================================================================== leading one

/// One-hot vector of the most significant set bit of `x` (all zero when `x == 0`), width `w`:
/// `lead_k = AND(x_k, NOT x_j for j > k)`, one gate each (docs/float.md item 5). Depth 1.
pub fn leading_one(b: &mut Builder, x: &[Lit]) -> Result<Vec<Lit>> {
    let mut out = Vec::with_capacity(x.len());
    for k in 0..x.len() {
        let mut lits: Vec<Lit> = x[k + 1..].iter().map(|&l| !l).collect();
        lits.push(x[k]);
        out.push(b.and(&lits)?);
    }
    Ok(out)
}

/// Binary index of the most significant set bit of `x` (0 when `x == 0`; combine with
/// [`is_zero`]), width `max(1, bitlen(w - 1))`. Depth 2: bit r is the OR of the
/// [`leading_one`] gates whose index has bit r set.
pub fn leading_one_index(b: &mut Builder, x: &[Lit]) -> Result<Vec<Lit>> {
    let lead = leading_one(b, x)?;
    let w = (bitlen_u128(x.len().saturating_sub(1) as u128) as usize).max(1);
    let mut out = Vec::with_capacity(w);
    for r in 0..w {
        let ors: Vec<Lit> = lead
            .iter()
            .enumerate()
            .filter(|(k, _)| (k >> r) & 1 == 1)
            .map(|(_, &l)| l)
            .collect();
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

/// Number of leading zeros of `x` (from the top bit), `w` when `x == 0`; width `bitlen(w)`.
/// Depth 2: bit r is the OR of the [`leading_one`] gates at positions `k` with bit r of
/// `w - 1 - k` set, plus the all-zero case (an AND of the complements).
pub fn leading_zeros(b: &mut Builder, x: &[Lit]) -> Result<Vec<Lit>> {
    let lead = leading_one(b, x)?;
    let w = x.len();
    let zero = is_zero(b, x)?;
    let ow = (bitlen_u128(w as u128) as usize).max(1);
    let mut out = Vec::with_capacity(ow);
    for r in 0..ow {
        let mut ors: Vec<Lit> = lead
            .iter()
            .enumerate()
            .filter(|(k, _)| ((w - 1 - k) >> r) & 1 == 1)
            .map(|(_, &l)| l)
            .collect();
        if (w >> r) & 1 == 1 {
            ors.push(zero);
        }
        out.push(b.or(&ors)?);
    }
    Ok(out)
}

/// Convert a small unsigned constant to a constant word of `width` bits (free).
pub fn const_word(value: &BigUint, width: usize) -> Vec<Lit> {
    (0..width)
        .map(|i| Lit::constant(value.bit(i as u64)))
        .collect()
}

/// The value of a constant word, if every literal is constant.
pub fn word_const_value(x: &[Lit]) -> Option<BigUint> {
    let mut v = BigUint::zero();
    for (i, l) in x.iter().enumerate() {
        if l.const_value()? {
            v.set_bit(i as u64, true);
        }
    }
    Some(v)
}
