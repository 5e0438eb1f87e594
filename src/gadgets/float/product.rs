//! The iterated product of n floats: the exact product rounded once (paper Lemma 3.5 part 2,
//! bit-exact with `Format::product`).
//!
//! Two constructions; [`product`] picks by n alone, so that the depth is one constant for all
//! `n >= LOG_MIN_OPERANDS` (= 8) at a given format:
//!
//! - **Monomial form** (`2 <= n < 8` while `p^n <= MAX_MONOMIALS` and `n p <= 62`): the
//!   exact significand product `P = prod_i m_i` is ONE linear form over the `p^n` monomials
//!   `AND_i m_{i, j_i}` (depth 1) with weights `2^(j_1 + ... + j_n)`, rounded by the shared
//!   core `super::mul::round_product`. Depth 4.
//! - **Logarithmic form** (every other n up to [`MAX_OPERANDS`], for `p <= LOG_MAX_P`):
//!   depth 8 for every n, size polynomial (about `n 2^(p-1)` gates, `n^2` fan-in). Below.
//!
//! # The logarithmic construction
//!
//! Write `x_i = (-1)^(s_i) m_i 2^(e_i)` with `m_i` in `[2^(p-1), 2^p)`, and `M = prod_i m_i`
//! (so `M < 2^B` with `B = n p`, and `M >= 2^(n(p-1)) >= 2^p`). The result is
//! `round(M) * 2^(sum e_i)` with the sign the parity of the `s_i`, zero if any operand is zero.
//! With `J = floor(log2 M)` and `K = 2^(p-1)`, `round(M) = (K + cnt) 2^(J-p+1)` where `cnt` is
//! the number of *rounding boundaries* `D_k 2^(J-p)` (`D_k = 2^p + 2k - 1`, `k = 1..K`: the
//! midpoints between consecutive p-bit significands) that M passes; a tie passes exactly when
//! the significand below it is odd (`k` even), which is round-to-nearest-even; `cnt = K` is the
//! carry into the next binade. So the result is a function of the comparisons
//! `[M >= 2^J']` (binades) and `[M >= D_k 2^t]` / `[M > D_k 2^t]` (ties), i.e. of
//! `x = log2 M` against the boundaries `beta = J' + phi_k`, `phi_k = log2(D_k) - p`.
//!
//! **1. Factor the significands.** `log2 M = E_2 + sum_r E_r log2 r` over the odd primes
//! `r < 2^p`, with `E_r = sum_i nu_r(m_i)` (the exponent of r in M). The one-hot decode of
//! each significand (`2^(p-1)` minterms, depth 1) makes `E_r` a linear form over minterms
//! with weights `nu_r(v)`; its binary bits are staircases on that form (depth 3). `E_2` stays a
//! form over minterms (it only enters the exponent).
//!
//! **2. One wide fixed-point sum.** With `P` fractional bits, let `L_r >= log2(r) 2^P` be
//! integers with `L_r - log2(r) 2^P < 2` (computed with num-bigint from `ln 2 = 2 atanh(1/3)`,
//! `ln r = ln(r - 1) + 2 atanh(1/(2r - 1))`, every truncation error tracked and checked), and
//! `X = sum_r E_r L_r = sum_rows bit * (2^j L_r)` (one row per bit j of each `E_r`). Then
//! `0 <= X - x 2^P < Delta := 2 n omega + 1` (`omega` = most odd prime factors of one
//! significand): each odd prime factor of M adds an error in `[0, 2)`.
//!
//! **3. Separation.** For integers `M != N` with `min(M, N) < 2^B`, `|log2 M - log2 N| > 2^-B`
//! (`log2(1 + u) >= u` on `[0, 1]`), and every boundary is such an N or lies below `2^p <= M`
//! by a factor `> 1 + 2^-(p+1)`. Choose `P = B + ceil(log2(Delta + G + 1))` with
//! `G = 2(p + 1)`, so `2^(P-B) >= Delta + G + 1`. Then for any boundary `beta`:
//! - non-strict `[x >= beta] = [X >= C]` for every integer `C` in `[beta 2^P - G, beta 2^P]`:
//!   `x >= beta` gives `X >= x 2^P >= C`; `x < beta` gives `x <= beta - 2^-B` and
//!   `X < beta 2^P - (Delta + G + 1) + Delta <= C - 1`;
//! - strict `[x > beta] = [X >= C]` for every integer `C` in `[beta 2^P + Delta,
//!   beta 2^P + Delta + G]`: `x <= beta` gives `X < beta 2^P + Delta <= C`; `x > beta` gives
//!   `X >= beta 2^P + Delta + G + 1 > C`.
//!
//! The midpoint constants are `C_k = Lambda_k - 2 Omega(D_k)` (non-strict) or
//! `C_k = Lambda_k + Delta` (strict), with `Lambda_k = sum_r nu_r(D_k) L_r - p 2^P`, which
//! lies in `[phi_k 2^P, phi_k 2^P + 2 Omega(D_k))`, `2 Omega(D_k) <= G`. Binade boundaries use
//! the exact constant `J' 2^P` (`C = beta 2^P`). Hence `J = floor(X / 2^P)` and, writing
//! `W = X mod 2^P`, the boundary k is passed iff `W >= C_k` (all `0 < C_k < 2^P`).
//!
//! **4. Constant-depth evaluation of the wide sum (blocked, two levels).** Cut the P fraction
//! bits into `nb >= 2` blocks (offsets `o_B`, sizes `s_B <= ~50`); `T_B = sum_rows bit *
//! digit_B(row)` is a form with weights below `2^(s_B)`, `T_B <= hmax_B 2^(s_B) + ...`.
//! `H_B = floor(T_B / 2^(s_B)) = sum_a [T_B >= a 2^(s_B)]` (one bank, depth 4) and
//! `X_B = T_B - 2^(s_B) H_B` in `[0, 2^(s_B))`. So `X mod-free = 2^P (I + H_top) + Xs + Y`
//! with `I` the integer parts of the rows (a form), `Xs = sum X_B 2^(o_B)` a plain base-2^s
//! number, and `Y = sum_{B>=1} H_(B-1) 2^(o_B)` with small digits. Comparing `Xs + Y >= C`:
//! when every digit `c_(k,B)` of `C_k` is at least `hmax_(B-1)` (checked for the chosen
//! partition; the block size is lowered until it holds), `C_k - Y` has the digits
//! `c_(k,B) - H_(B-1)` in `[0, 2^(s_B))`, no borrows, so `Xs >= C_k - Y` is a lexicographic
//! comparison of digits, and `X_B > c - H_(B-1)` is `[Z_B >= c + 1]` on the form
//! `Z_B = X_B + H_(B-1)` (a bank per block, depth 5). `w_k = [Xs + Y >= C_k]` is then the sum
//! of the mutually exclusive ANDs `gt_B AND eq_(B') for all B' > B` and `AND_B eq_B` (depth
//! 6) - a *linear* expression, so it needs no OR level.
//!
//! **5. Carries cancel.** With `kappa = [Xs + Y >= 2^P]`: `J = I + H_top + kappa`, and the
//! true pass indicator is `f_k = w_k - kappa` (if `kappa = 1` then `Xs + Y >= 2^P > C_k`, so
//! `w_k = 1`, while `W = Xs + Y - 2^P < Y_max < C_1` gives `f_k = 0`; `Y_max < C_1` is
//! checked). Therefore:
//! - significand bit `j < p - 1` = bit j of `cnt = sum_k f_k`, and as the `f_k` form a
//!   thermometer code, bit j = `sum_(a odd) (f_(a 2^j) - f_((a+1) 2^j))` where kappa cancels:
//!   one gate over the `w` terms;
//! - biased exponent = `sum_i (e_i - e_min) + (n - 1) e_min + J + f_K - (p - 1)` with
//!   `J + f_K = I + H_top + w_K` (kappa cancels again): a form, whose bits are staircases
//!   restricted to the representable window, with overflow (saturate) and underflow (flush)
//!   single gates on the same form folded into the output gates together with the nonzero
//!   flags (depth 7 banks, depth 8 outputs). Sign: parity of the signs (depth 2).
//!
//! Depth: minterms 1, E bits 3, H banks 4, Z banks 5, lexicographic ANDs 6, exponent banks and
//! overflow/flush 7, outputs 8: **8 for every n >= 8** when `p >= 3` (the block partition is
//! chosen so that the H level exists). At p = 2 (significands 2 and 3 only) the one-bit
//! minterms and some block levels fold away: depth 6 or 7 depending on n, never more.
//! P is only bounded below: it starts at `max(B + ceil(log2(Delta + G + 1)),
//! 2 (p + bitlen(rows) + 3))` and is widened by 16 bits until a partition meets the conditions
//! of step 4 (all checked at build time; an error, never a wrong circuit, if none is found). Size: `n 2^(p-1)` minterms, about
//! `n sum_r nu_max(r)` staircase thresholds for the `E_r`, per block `hmax + 2K` thresholds and
//! `K` ANDs of fan-in `<= 2 nb`, with `nb ~ n p / 50`: gates grow like n, fan-in like `n^2`.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

use crate::circuit::{Builder, Lit};
use crate::float::Format;
use crate::gadgets::error::{GadgetError, Result};

use super::mul::{round_product, stair_toggles, value_terms, ExactProduct, MAX_PRODUCT_BITS};
use super::word::FloatWord;

/// Largest number of monomials `p^n` of the exact product form (monomial construction).
pub const MAX_MONOMIALS: u64 = 1 << 16;

/// From this many operands on, [`product`] always uses the logarithmic construction (so its
/// depth is the same for every `n >= LOG_MIN_OPERANDS`).
pub const LOG_MIN_OPERANDS: usize = 8;

/// Largest significand width of the logarithmic construction (it decodes `2^(p-1)` minterms
/// per operand and uses the primes below `2^(p+1)`).
pub const LOG_MAX_P: u32 = 12;

/// Largest operand count of the logarithmic construction (an API bound: the error analysis
/// needs `n * omega * 2^-20 < 1`; sizes grow as `n 2^(p-1)` gates and `n^2` fan-in).
pub const MAX_OPERANDS: usize = 1 << 16;

/// Depth of the logarithmic construction for `p >= 3`, whatever n (see the module docs; at
/// p = 2 it is 6 or 7).
pub const LOG_DEPTH: u32 = 8;

/// Guard bits of the natural-log tables beyond the P fraction bits.
const GUARD: u64 = 96;

/// Weight budget of every form built here (half the builder's bound).
const BUDGET: u128 = 1 << 61;

/// The largest n of the monomial construction at significand width p.
fn monomial_max_operands(p: u32) -> usize {
    let mut n = 1usize;
    loop {
        let next = n + 1;
        let fits_bits = next as u64 * p as u64 <= MAX_PRODUCT_BITS as u64;
        let fits_terms = (p as u64)
            .checked_pow(next as u32)
            .is_some_and(|t| t <= MAX_MONOMIALS);
        if !(fits_bits && fits_terms) {
            return n;
        }
        n = next;
    }
}

/// The largest n for which [`product`] builds at significand width p: [`MAX_OPERANDS`] for
/// `p <= LOG_MAX_P` (logarithmic construction), else the monomial construction's bound
/// (`n p <= 62` and `p^n <= MAX_MONOMIALS`).
pub fn max_product_operands(p: u32) -> usize {
    if p <= LOG_MAX_P {
        MAX_OPERANDS
    } else {
        monomial_max_operands(p)
    }
}

/// Whether [`product`] uses the logarithmic construction (depth [`LOG_DEPTH`]) for n operands
/// of significand width p; otherwise the monomial one (depth 4). Depends on n only through
/// `n < LOG_MIN_OPERANDS`.
pub fn uses_log_construction(p: u32, n: usize) -> bool {
    n >= 2 && p <= LOG_MAX_P && (n >= LOG_MIN_OPERANDS || n > monomial_max_operands(p))
}

/// `round(x_1 * ... * x_n)`: the exact product rounded once (docs/float.md; nearest even,
/// saturating above e_max, flushing below e_min; any zero operand gives zero). `n = 1` returns
/// the operand itself (it is its own rounded product).
///
/// Depth: 4 for `2 <= n < 8` where the monomial form fits, [`LOG_DEPTH`] = 8 for every other n
/// (in particular for all `n >= 8`); 0 for n = 1. See the module docs for both constructions
/// and the exactness proof of the logarithmic one.
///
/// Errors: `TooFewOperands` for n = 0; `FormatMismatch` for operands of different formats;
/// `Unsupported` for `n > max_product_operands(p)` (the limit is named in the message).
pub fn product(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    const OP: &str = "float::product";
    let Some(first) = xs.first() else {
        return Err(GadgetError::TooFewOperands {
            op: OP,
            min: 1,
            got: 0,
        });
    };
    for x in xs {
        first.check_same(OP, x)?;
    }
    let fmt = first.fmt;
    let p = fmt.p();
    let n = xs.len();
    if n == 1 {
        return Ok(first.clone());
    }
    let limit = max_product_operands(p);
    if n > limit {
        let why = if p <= LOG_MAX_P {
            format!("n = {n} operands > {limit} (the logarithmic construction's bound)")
        } else {
            format!(
                "n = {n} operands > {limit} at p = {p}: above p = {LOG_MAX_P} only the monomial \
                 form exists, which needs n*p <= {MAX_PRODUCT_BITS} bits in one form and \
                 p^n <= {MAX_MONOMIALS} monomials"
            )
        };
        return Err(GadgetError::Unsupported { op: OP, limit: why });
    }
    if uses_log_construction(p, n) {
        product_log(b, fmt, xs)
    } else {
        product_monomial(b, fmt, xs)
    }
}

/// The logarithmic construction for any `n >= 2` (what [`product`] uses for `n >= 8`):
/// `round(x_1 * ... * x_n)` in depth [`LOG_DEPTH`] (for `p >= 3`), exposed so that it can be
/// checked exhaustively at small n. `n = 1` returns the operand.
///
/// Errors: as [`product`], plus `Unsupported` for `p > LOG_MAX_P` or `n > MAX_OPERANDS`.
pub fn product_logarithmic(b: &mut Builder, xs: &[FloatWord]) -> Result<FloatWord> {
    const OP: &str = "float::product_logarithmic";
    let Some(first) = xs.first() else {
        return Err(GadgetError::TooFewOperands {
            op: OP,
            min: 1,
            got: 0,
        });
    };
    for x in xs {
        first.check_same(OP, x)?;
    }
    let fmt = first.fmt;
    if xs.len() == 1 {
        return Ok(first.clone());
    }
    if fmt.p() > LOG_MAX_P || xs.len() > MAX_OPERANDS {
        return Err(GadgetError::Unsupported {
            op: OP,
            limit: format!(
                "needs p <= {LOG_MAX_P} and n <= {MAX_OPERANDS} (p = {}, n = {})",
                fmt.p(),
                xs.len()
            ),
        });
    }
    product_log(b, fmt, xs)
}

/// The monomial construction (depth 4), see the module docs.
fn product_monomial(b: &mut Builder, fmt: Format, xs: &[FloatWord]) -> Result<FloatWord> {
    const OP: &str = "float::product";
    let p = fmt.p();
    let n = xs.len();
    // Monomials: every choice of one significand bit per operand.
    let mut terms: Vec<(Lit, i64)> = Vec::with_capacity((p as usize).pow(n as u32));
    let mut idx = vec![0usize; n];
    loop {
        let lits: Vec<Lit> = idx.iter().zip(xs).map(|(&j, x)| x.sig()[j]).collect();
        let g = b.and(&lits)?;
        let shift: usize = idx.iter().sum();
        terms.push((g, 1i64 << shift));
        // Next tuple (odometer).
        let mut k = 0;
        loop {
            if k == n {
                break;
            }
            idx[k] += 1;
            if idx[k] < p as usize {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
        if k == n {
            break;
        }
    }
    let mut exp_terms = Vec::new();
    for x in xs {
        exp_terms.extend(value_terms(x.exp()));
    }
    let signs: Vec<Lit> = xs.iter().map(|x| x.sign()).collect();
    let sign = b.xor(&signs)?;
    let nonzero: Vec<Lit> = xs.iter().map(|x| x.nonzero()).collect();
    let xp = ExactProduct {
        sig_terms: &terms,
        lead_min: n as u32 * (p - 1),
        exp_terms: &exp_terms,
        exp_const: (n as i64 - 1) * fmt.e_min() as i64,
        nonzero: &nonzero,
        sign,
    };
    round_product(b, fmt, OP, &xp)
}

// ============================================================================ number theory

/// All primes below `limit` (sieve).
fn primes_below(limit: u32) -> Vec<u32> {
    let mut is = vec![true; limit as usize];
    let mut out = Vec::new();
    for i in 2..limit as usize {
        if is[i] {
            out.push(i as u32);
            let mut j = i * i;
            while j < limit as usize {
                is[j] = false;
                j += i;
            }
        }
    }
    out
}

/// The exponent of prime r in v (v > 0).
fn nu(mut v: u64, r: u64) -> u32 {
    let mut e = 0;
    while v % r == 0 {
        v /= r;
        e += 1;
    }
    e
}

/// `(floor(atanh(1/y) 2^w)` from below, error bound in units of `2^-w`): the result `A`
/// satisfies `A <= atanh(1/y) 2^w < A + err`. Terms `u_k / (2k+1)` with
/// `u_k = floor(u_(k-1) / y^2)`, `u_0 = floor(2^w / y)`: each u_k is below its true value by
/// less than 1.125 (y >= 3), each term by less than 2.125, and the tail after the first zero
/// u_K is below 1.3; so `err = 3 (K + 1) + 2` bounds the total.
fn atanh_inv(y: u64, w: u64) -> (BigUint, u128) {
    let y2 = y * y;
    let mut u = (BigUint::one() << w) / y;
    let mut sum = BigUint::zero();
    let mut k: u64 = 0;
    let mut iters: u128 = 0;
    loop {
        iters += 1;
        if u.is_zero() {
            break;
        }
        sum += &u / (2 * k + 1);
        u /= y2;
        k += 1;
    }
    (sum, 3 * iters + 2)
}

/// Fixed-point `log2` of the primes below `2^(p+1)` with `frac` fraction bits: for each prime
/// r, an integer `L_r` with `log2(r) 2^frac <= L_r < log2(r) 2^frac + 2`.
fn log2_table(primes: &[u32], frac: u64) -> Result<Vec<BigUint>> {
    let w = frac + GUARD;
    let mut ln: Vec<BigUint> = Vec::with_capacity(primes.len());
    let mut err: Vec<u128> = Vec::with_capacity(primes.len());
    for (idx, &r) in primes.iter().enumerate() {
        if r == 2 {
            let (a, e) = atanh_inv(3, w);
            ln.push(a << 1u32);
            err.push(2 * e);
            continue;
        }
        // ln r = ln(r - 1) + 2 atanh(1 / (2r - 1)); r - 1 factors over smaller primes.
        let mut v = (r - 1) as u64;
        let mut acc = BigUint::zero();
        let mut acc_err: u128 = 0;
        for (qi, &q) in primes[..idx].iter().enumerate() {
            while v % q as u64 == 0 {
                v /= q as u64;
                acc += &ln[qi];
                acc_err += err[qi];
            }
            if v == 1 {
                break;
            }
        }
        let (a, e) = atanh_inv(2 * r as u64 - 1, w);
        acc += a << 1u32;
        acc_err += 2 * e;
        ln.push(acc);
        err.push(acc_err);
    }
    // log2 r = ln r / ln 2, rounded up from an upper bound of ln r: L >= true, and
    // L - true < 1 + 2^frac (e_r + 13 e_2) / A_2 <= 2 when (e_r + 13 e_2) 2^frac <= A_2.
    let a2 = &ln[0];
    let e2 = err[0];
    let mut out = Vec::with_capacity(primes.len());
    for (i, a) in ln.iter().enumerate() {
        let slack = BigUint::from(err[i] + 13 * e2);
        if (&slack << frac) > *a2 {
            return Err(GadgetError::Unsupported {
                op: "float::product",
                limit: "log table error bound exceeded (internal precision check)".into(),
            });
        }
        let num = (a + BigUint::from(err[i])) << frac;
        let q = &num / a2;
        let q = if &q * a2 == num { q } else { q + 1u32 };
        out.push(q);
    }
    Ok(out)
}

/// Bits `[off, off + len)` of a number given as little-endian u64 limbs (`len <= 63`).
fn bits_at(limbs: &[u64], off: usize, len: usize) -> u64 {
    debug_assert!(len <= 63);
    let mut v: u128 = 0;
    let w = off / 64;
    let sh = off % 64;
    let lo = limbs.get(w).copied().unwrap_or(0) as u128;
    let hi = limbs.get(w + 1).copied().unwrap_or(0) as u128;
    v |= (lo | (hi << 64)) >> sh;
    (v as u64) & ((1u64 << len) - 1)
}

// ============================================================================ construction

/// One row of the wide sum: a bit of some `E_r` times the constant `2^j L_r`.
struct Row {
    lit: Lit,
    /// `floor(2^j L_r / 2^P)`.
    int: i64,
    /// `(2^j L_r) mod 2^P` as u64 limbs.
    frac: Vec<u64>,
}

/// The block partition of the P fraction bits.
struct Blocks {
    off: Vec<usize>,
    size: Vec<usize>,
    /// Largest value of `floor(T_B / 2^(s_B))`.
    hmax: Vec<u64>,
}

/// Find a partition (block size lowered from the weight-budget maximum) satisfying the
/// conditions of the module docs: form weights within budget, every digit of every constant
/// at least the largest carry from below, and the largest `Y` below the smallest constant.
fn choose_blocks(
    rows: &[Row],
    consts: &[Vec<u64>],
    c_min: &BigUint,
    pbits: usize,
) -> Option<Blocks> {
    // Passes: every block able to overflow (hmax >= 1, so the H level exists everywhere and the
    // depth is exactly LOG_DEPTH), then some block, then any valid partition.
    choose_blocks_pass(rows, consts, c_min, pbits, 2)
        .or_else(|| choose_blocks_pass(rows, consts, c_min, pbits, 1))
        .or_else(|| choose_blocks_pass(rows, consts, c_min, pbits, 0))
}

fn choose_blocks_pass(
    rows: &[Row],
    consts: &[Vec<u64>],
    c_min: &BigUint,
    pbits: usize,
    need_overflow: u8,
) -> Option<Blocks> {
    let nrows = rows.len().max(1) as u128;
    let s_max = (61 - (128 - (2 * nrows + 2).leading_zeros()) as usize).min(50);
    for s in (1..=s_max).rev() {
        let nb = pbits.div_ceil(s).max(2);
        if nb > pbits {
            continue;
        }
        let base = pbits / nb;
        let extra = pbits % nb;
        // Larger blocks on top.
        let size: Vec<usize> = (0..nb)
            .map(|k| base + usize::from(k >= nb - extra))
            .collect();
        let mut off = Vec::with_capacity(nb);
        let mut o = 0;
        for &sz in &size {
            off.push(o);
            o += sz;
        }
        let mut hmax = Vec::with_capacity(nb);
        let mut ok = true;
        for k in 0..nb {
            let tmax: u128 = rows
                .iter()
                .map(|r| bits_at(&r.frac, off[k], size[k]) as u128)
                .sum();
            let h = (tmax >> size[k]) as u64;
            if need_overflow == 2 && h == 0 {
                ok = false;
                break;
            }
            let prev = if k == 0 { 0 } else { hmax[k - 1] as u128 };
            if tmax + ((h as u128) << size[k]) + prev > BUDGET {
                ok = false;
                break;
            }
            hmax.push(h);
        }
        if !ok || (need_overflow == 1 && hmax.iter().all(|&h| h == 0)) {
            continue;
        }
        // Digit condition.
        'outer: for c in consts {
            for k in 1..nb {
                if bits_at(c, off[k], size[k]) < hmax[k - 1] {
                    ok = false;
                    break 'outer;
                }
            }
        }
        if !ok {
            continue;
        }
        // Y_max < min C.
        let mut ymax = BigUint::zero();
        for k in 1..nb {
            ymax += BigUint::from(hmax[k - 1]) << off[k];
        }
        if ymax >= *c_min {
            continue;
        }
        return Some(Blocks { off, size, hmax });
    }
    None
}

/// The midpoint constants `C_k` (k = 1..K, index k - 1) of the module docs at P = `pbits`
/// fraction bits: strict (`Lambda_k + Delta`) for odd k, non-strict (`Lambda_k - 2 Omega`) for
/// even k; checked to lie in `(0, 2^P)` and to increase.
fn boundary_constants(
    primes: &[u32],
    logs: &[BigUint],
    p: u32,
    pbits: usize,
    delta: u128,
) -> Result<Vec<BigUint>> {
    let unsupported = |why: String| GadgetError::Unsupported {
        op: "float::product",
        limit: why,
    };
    let kk = 1usize << (p - 1);
    let vhi = 1u64 << p;
    let one_p = BigUint::one() << pbits;
    // Boundary constants C_k (k = 1..K; index k-1), strict for odd k.
    let mut consts: Vec<BigUint> = Vec::with_capacity(kk);
    for k in 1..=kk as u64 {
        let d = vhi + 2 * k - 1;
        let mut lam = BigUint::zero();
        let mut big_omega: u64 = 0;
        let mut v = d;
        for (i, &r) in primes.iter().enumerate().skip(1) {
            let e = nu(v, r as u64);
            if e > 0 {
                v /= (r as u64).pow(e);
                lam += &logs[i] * e;
                big_omega += e as u64;
            }
            if v == 1 {
                break;
            }
        }
        let base = BigUint::from(p) << pbits;
        // lam - p 2^P is in [phi_k 2^P, phi_k 2^P + 2 Omega); phi_k > 0.
        if lam <= &base + BigUint::from(2 * big_omega) {
            return Err(unsupported("boundary constant below p 2^P".into()));
        }
        let lam = lam - base;
        let c = if k % 2 == 1 {
            lam + BigUint::from(delta)
        } else {
            lam - BigUint::from(2 * big_omega)
        };
        if c.is_zero() || c >= one_p {
            return Err(unsupported("boundary constant outside (0, 2^P)".into()));
        }
        consts.push(c);
    }
    // The pass indicators form a thermometer code only if the constants increase.
    if consts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(unsupported("boundary constants not increasing".into()));
    }

    Ok(consts)
}

/// The logarithmic construction (depth 8), see the module docs.
fn product_log(b: &mut Builder, fmt: Format, xs: &[FloatWord]) -> Result<FloatWord> {
    let p = fmt.p();
    let n = xs.len();
    let kk = 1usize << (p - 1); // number of midpoint boundaries K
    let vlo = 1u64 << (p - 1);
    let vhi = 1u64 << p;

    // Number theory over the significands [2^(p-1), 2^p) and the boundaries (2^p, 2^(p+1)).
    let primes = primes_below(1 << (p + 1));
    let odd_sig: Vec<usize> = (0..primes.len())
        .filter(|&i| primes[i] > 2 && (primes[i] as u64) < vhi)
        .collect();
    let omega: u64 = (vlo..vhi)
        .map(|v| {
            odd_sig
                .iter()
                .map(|&i| nu(v, primes[i] as u64) as u64)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0);
    let delta: u128 = 2 * n as u128 * omega as u128 + 1;
    let g: u128 = 2 * (p as u128 + 1);
    let need = delta + g + 1;
    let extra_bits = 128 - (need - 1).leading_zeros() as usize; // 2^extra >= need
    let low = (p - 1) as usize;
    let onehot = significand_minterms(b, xs, low, kk)?;
    let row_lits = prime_exponent_bits(b, &onehot, &primes, &odd_sig, vlo)?;
    let (rows, const_limbs, blocks) = fraction_rows(&primes, &row_lits, p, n, extra_bits, delta)?;
    let nb = blocks.off.len();
    let (hs, ge, gt) = block_banks(b, &rows, &const_limbs, &blocks, kk)?;
    let w_terms = lexicographic_terms(b, &ge, &gt, kk, nb)?;
    let s = Staged {
        onehot,
        rows,
        hs,
        w_terms,
    };
    log_output_word(b, fmt, xs, &s)
}

/// What the first six layers of [`product_log`] leave for the output word.
struct Staged {
    onehot: Vec<Vec<Lit>>,
    rows: Vec<Row>,
    hs: Vec<Vec<Lit>>,
    w_terms: Vec<Vec<(Lit, i64)>>,
}

/// Minterms of each significand (depth 1): `onehot[i][u] = [m_i = 2^(p-1) + u]`.
fn significand_minterms(
    b: &mut Builder,
    xs: &[FloatWord],
    low: usize,
    kk: usize,
) -> Result<Vec<Vec<Lit>>> {
    let mut onehot: Vec<Vec<Lit>> = Vec::with_capacity(xs.len());
    for x in xs {
        let bits = &x.sig()[..low];
        let mut row = Vec::with_capacity(kk);
        for u in 0..kk {
            let lits: Vec<Lit> = (0..low)
                .map(|t| if (u >> t) & 1 == 1 { bits[t] } else { !bits[t] })
                .collect();
            row.push(b.and(&lits)?);
        }
        onehot.push(row);
    }

    Ok(onehot)
}

/// `E_r` in binary (depth 3) for the odd primes below `2^p`: (prime index, bit, literal).
fn prime_exponent_bits(
    b: &mut Builder,
    onehot: &[Vec<Lit>],
    primes: &[u32],
    odd_sig: &[usize],
    vlo: u64,
) -> Result<Vec<(usize, usize, Lit)>> {
    let n = onehot.len();
    let kk = onehot.first().map_or(0, |r| r.len());
    let mut row_lits: Vec<(usize, usize, Lit)> = Vec::new();
    for &pi in odd_sig {
        let r = primes[pi] as u64;
        let nus: Vec<(usize, u32)> = (0..kk)
            .map(|u| (u, nu(vlo + u as u64, r)))
            .filter(|&(_, e)| e > 0)
            .collect();
        let numax = nus.iter().map(|&(_, e)| e).max().unwrap_or(0) as u64;
        if numax == 0 {
            continue;
        }
        let fmax = n as u64 * numax;
        let mut terms: Vec<(Lit, i64)> = Vec::with_capacity(n * nus.len());
        for oh in onehot {
            for &(u, e) in &nus {
                terms.push((oh[u], e as i64));
            }
        }
        let thetas: Vec<i64> = (1..=fmax as i64).collect();
        let gs = b.bank(&terms, &thetas)?;
        let nbits = 64 - fmax.leading_zeros() as usize;
        for j in 0..nbits {
            let step = 1usize << j;
            let st: Vec<(Lit, i64)> = (1..=fmax as usize / step)
                .map(|a| (gs[a * step - 1], if a % 2 == 1 { 1 } else { -1 }))
                .collect();
            let bit = b.threshold(&st, 1)?;
            row_lits.push((pi, j, bit));
        }
    }

    Ok(row_lits)
}

/// The rows of the logarithm sum with their fraction limbs, the boundary constants' limbs and
/// the block partition of the fraction.
#[allow(clippy::type_complexity)]
fn fraction_rows(
    primes: &[u32],
    row_lits: &[(usize, usize, Lit)],
    p: u32,
    n: usize,
    extra_bits: usize,
    delta: u128,
) -> Result<(Vec<Row>, Vec<Vec<u64>>, Blocks)> {
    let unsupported = |why: String| GadgetError::Unsupported {
        op: "float::product",
        limit: why,
    };
    // The fraction width: at least the separation bound, and wide enough that the top block
    // can exceed the carries from below; widened (any larger P is as exact) until a block
    // partition satisfies every condition.
    let nrows_bits = 64 - (row_lits.len() as u64 + 1).leading_zeros() as usize;
    let p_first = (n * p as usize + extra_bits).max(2 * (p as usize + nrows_bits + 3));
    let mut pbits = p_first;
    let found = loop {
        let logs = log2_table(primes, pbits as u64)?;
        let consts = boundary_constants(primes, &logs, p, pbits, delta)?;
        let one_p = BigUint::one() << pbits;
        let mut rows: Vec<Row> = Vec::with_capacity(row_lits.len());
        for &(pi, j, lit) in row_lits {
            let k_row: BigUint = &logs[pi] << j;
            let int = (&k_row >> pbits)
                .to_i64()
                .ok_or_else(|| unsupported("integer part of a row constant".into()))?;
            let frac = (&k_row % &one_p).to_u64_digits();
            rows.push(Row { lit, int, frac });
        }
        let const_limbs: Vec<Vec<u64>> = consts.iter().map(|c| c.to_u64_digits()).collect();
        if let Some(bl) = choose_blocks(&rows, &const_limbs, &consts[0], pbits) {
            break (rows, const_limbs, bl);
        }
        if pbits >= p_first + 256 {
            return Err(unsupported(format!(
                "no block partition of a {p_first}..{pbits}-bit fraction satisfies the weight \
                 and digit conditions"
            )));
        }
        pbits += 16;
    };

    Ok(found)
}

/// H banks (depth 4) and Z banks (depth 5): per block, the carries `hs` and the comparisons
/// `ge`, `gt` of the block digits with every boundary constant.
#[allow(clippy::type_complexity)]
fn block_banks(
    b: &mut Builder,
    rows: &[Row],
    const_limbs: &[Vec<u64>],
    blocks: &Blocks,
    kk: usize,
) -> Result<(Vec<Vec<Lit>>, Vec<Vec<Lit>>, Vec<Vec<Lit>>)> {
    let nb = blocks.off.len();
    let mut hs: Vec<Vec<Lit>> = Vec::with_capacity(nb);
    let mut ge: Vec<Vec<Lit>> = vec![Vec::with_capacity(nb); kk];
    let mut gt: Vec<Vec<Lit>> = vec![Vec::with_capacity(nb); kk];
    for k in 0..nb {
        let (o, s) = (blocks.off[k], blocks.size[k]);
        let t_terms: Vec<(Lit, i64)> = rows
            .iter()
            .filter_map(|r| {
                let d = bits_at(&r.frac, o, s);
                (d != 0).then_some((r.lit, d as i64))
            })
            .collect();
        let thetas: Vec<i64> = (1..=blocks.hmax[k] as i64).map(|a| a << s).collect();
        let h = b.bank(&t_terms, &thetas)?;
        let mut z_terms = t_terms;
        z_terms.extend(h.iter().map(|&l| (l, -(1i64 << s))));
        if k > 0 {
            z_terms.extend(hs[k - 1].iter().map(|&l| (l, 1i64)));
        }
        hs.push(h);
        let mut zt: Vec<i64> = Vec::with_capacity(2 * kk);
        for c in const_limbs {
            let d = bits_at(c, o, s) as i64;
            zt.push(d);
            zt.push(d + 1);
        }
        let z = b.bank(&z_terms, &zt)?;
        for i in 0..kk {
            ge[i].push(z[2 * i]);
            gt[i].push(z[2 * i + 1]);
        }
    }

    Ok((hs, ge, gt))
}

/// Lexicographic ANDs (depth 6): `w_k` is the sum of row `k`'s terms.
fn lexicographic_terms(
    b: &mut Builder,
    ge: &[Vec<Lit>],
    gt: &[Vec<Lit>],
    kk: usize,
    nb: usize,
) -> Result<Vec<Vec<(Lit, i64)>>> {
    let mut w_terms: Vec<Vec<(Lit, i64)>> = Vec::with_capacity(kk);
    for i in 0..kk {
        let mut terms = Vec::with_capacity(nb + 1);
        for k in 0..nb {
            let mut lits = vec![gt[i][k]];
            for kp in k + 1..nb {
                lits.push(ge[i][kp]);
                lits.push(!gt[i][kp]);
            }
            terms.push((b.and(&lits)?, 1i64));
        }
        let mut lits = Vec::with_capacity(2 * nb);
        for kp in 0..nb {
            lits.push(ge[i][kp]);
            lits.push(!gt[i][kp]);
        }
        terms.push((b.and(&lits)?, 1i64));
        w_terms.push(terms);
    }

    Ok(w_terms)
}

/// The output word (depths 7 and 8): exponent form, overflow and flush, significand bits from
/// the thermometer `w`, exponent staircases, sign.
fn log_output_word(
    b: &mut Builder,
    fmt: Format,
    xs: &[FloatWord],
    s: &Staged,
) -> Result<FloatWord> {
    let (p, q, n) = (fmt.p(), fmt.q(), xs.len());
    let kk = 1usize << (p - 1);
    let vlo = 1u64 << (p - 1);
    let low = (p - 1) as usize;
    let nb = s.hs.len();
    let (onehot, rows, hs, w_terms) = (&s.onehot, &s.rows, &s.hs, &s.w_terms);
    // Exponent form: sum of biased exponents + E_2 + integer parts + H_top + w_K.
    let mut xe: Vec<(Lit, i64)> = Vec::new();
    for x in xs {
        xe.extend(value_terms(x.exp()));
    }
    for oh in onehot {
        for (u, &l) in oh.iter().enumerate() {
            let e = nu(vlo + u as u64, 2);
            if e > 0 {
                xe.push((l, e as i64));
            }
        }
    }
    for r in rows {
        if r.int != 0 {
            xe.push((r.lit, r.int));
        }
    }
    xe.extend(hs[nb - 1].iter().map(|&l| (l, 1i64)));
    xe.extend_from_slice(&w_terms[kk - 1]);
    let c_e: i128 = (n as i128 - 1) * fmt.e_min() as i128 - (p as i128 - 1);
    let top = 1i128 << q;
    let ov = b.bank_i128(&xe, &[top - c_e])?[0];
    let neg: Vec<(Lit, i64)> = xe.iter().map(|&(l, w)| (l, -w)).collect();
    let fl = b.bank_i128(&neg, &[c_e + 1])?[0];

    let nonzero: Vec<Lit> = xs.iter().map(|x| x.nonzero()).collect();
    let mut word = vec![Lit::FALSE; fmt.width() as usize];

    // Significand bits below the leading one: bit j of cnt from the thermometer w.
    let a_w = kk as i64 + 1;
    let w_nz = 2 * kk as i64 + 2;
    for (j, out) in word.iter_mut().enumerate().take(low) {
        let step = 1usize << j;
        let mut terms: Vec<(Lit, i64)> = Vec::new();
        let mut a = 1usize;
        while (a + 1) * step <= kk {
            terms.extend_from_slice(&w_terms[a * step - 1]);
            terms.extend(w_terms[(a + 1) * step - 1].iter().map(|&(l, w)| (l, -w)));
            a += 2;
        }
        terms.push((ov, a_w));
        terms.push((fl, -a_w));
        terms.extend(nonzero.iter().map(|&l| (l, w_nz)));
        *out = b.threshold(&terms, 1 + w_nz * n as i64)?;
    }
    // Leading one: all nonzero and not flushed.
    let mut lead: Vec<(Lit, i64)> = nonzero.iter().map(|&l| (l, 4)).collect();
    lead.push((fl, -2));
    word[low] = b.threshold(&lead, 4 * n as i64)?;
    // Exponent bits: staircases (window or truncated form, whichever has fewer steps).
    let mut extra: Vec<(Lit, i64)> = vec![(ov, 2), (fl, -2)];
    extra.extend(nonzero.iter().map(|&l| (l, 4)));
    let need_nz = 4 * n as i64;
    for j in 0..q {
        let bit = |v: i128| ((v + c_e).rem_euclid(1i128 << (j + 1)) >> j) & 1 == 1;
        // Window: biased values u in (0, 2^q - 1] where bit j changes.
        let window: Vec<i128> = (1..top)
            .filter(|u| u % (1i128 << j) == 0)
            .map(|u| u - c_e)
            .collect();
        // Truncated form modulo 2^(j+1).
        let modulus = 1i128 << (j + 1);
        let trunc: Vec<(Lit, i64)> = xe
            .iter()
            .filter_map(|&(l, w)| {
                let r = (w as i128).rem_euclid(modulus);
                (r != 0).then_some((l, r as i64))
            })
            .collect();
        let tmax: i128 = trunc.iter().map(|&(_, w)| w as i128).sum();
        let trunc_steps = (tmax >> j) + 1;
        let out = if (window.len() as i128) <= trunc_steps {
            stair_toggles(b, &xe, &window, bit(-c_e), &extra, need_nz)?
        } else {
            let mut toggles = Vec::new();
            let mut prev = bit(0);
            for v in 1..=tmax {
                let cur = bit(v);
                if cur != prev {
                    toggles.push(v);
                    prev = cur;
                }
            }
            stair_toggles(b, &trunc, &toggles, bit(0), &extra, need_nz)?
        };
        word[p as usize + j as usize] = out;
    }
    // Sign.
    let signs: Vec<Lit> = xs.iter().map(|x| x.sign()).collect();
    let sgn = b.xor(&signs)?;
    let mut sg: Vec<(Lit, i64)> = vec![(sgn, 1), (fl, -2)];
    sg.extend(nonzero.iter().map(|&l| (l, 4)));
    word[(p + q) as usize] = b.threshold(&sg, 1 + 4 * n as i64)?;
    FloatWord::new(fmt, word)
}
