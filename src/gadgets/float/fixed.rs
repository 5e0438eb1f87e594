//! Exact fixed-point partial sums of floats, and their sum rounded once: an iterated sum of
//! any number of operands in two constant-depth stages.
//!
//! Every value of F(p, q) is an integer multiple of `2^e_min` (the weight of bit 0 of the
//! smallest exponent's significand), of magnitude below `2^(p + 2^q - 1)`: a float `x` is the
//! integer `X = (-1)^s m 2^E` on that grid, `E = e - e_min` its biased exponent. The exact sum
//! of `k` floats is therefore an integer of [`exact_width`] bits (two's complement), and the
//! paper's iterated sum (Lemma 3.5 part 3: the exact sum rounded once) of `n = k1 + k2 + ...`
//! operands is `round(2^e_min * (S_1 + S_2 + ...))` with `S_i` the exact partial sums: stage
//! one ([`exact_sum`]) places each chunk's operands on the grid and adds them exactly; stage
//! two ([`round_sum`]) adds the partial sums exactly and rounds once (RNE, saturation, flush,
//! as docs/float.md). The value equals [`super::sum::sum`] of all operands bit for bit; only the
//! circuit differs: its size is linear in n and no single template holds all operands, which
//! is what lets a uniform program evaluate sums of 10^5 values (a GroupNorm over a 256x256
//! map) with templates of bounded size.
//!
//! Depth: stage one `4 + d_int`, stage two `d_int + 2 + 3` where `d_int <= 5` is the integer
//! column sum's depth ([`int::column_sum`]), independent of `k` and of the number of chunks.

use crate::circuit::{Builder, Lit};
use crate::float::Format;

use super::super::error::{GadgetError, Result};
use super::super::int::{self, LinearSum, SumStrategy};
use super::round::round_pack;
use super::FloatWord;

/// Number of grid columns of `fmt`: `p + 2^q - 1`.
pub fn grid_columns(fmt: Format) -> usize {
    fmt.p() as usize + (1usize << fmt.q()) - 1
}

/// Width of the two's complement exact sum of `n` operands of `fmt`: the grid columns, the
/// carry bits of `n` addends and a sign bit.
pub fn exact_width(fmt: Format, n: usize) -> usize {
    grid_columns(fmt) + (usize::BITS - n.leading_zeros()) as usize + 1
}

/// The exact sum of `xs` as a two's complement integer on the grid of their format
/// ([`exact_width`]`(fmt, xs.len())` bits): `sum_i (-1)^s_i m_i 2^(E_i)`.
///
/// The operands are placed on the grid and counted per column as in [`super::sum`] (two-stage
/// placement, signs as one's complement plus `(1 - 2^p) sum_i s_i 2^E_i`, column counts in
/// binary: depth 4); the signed sum of the count digits is one [`int::column_sum`] modulo
/// `2^width` (digits at positions `>= width` do not change it).
///
/// Errors: no operands, operands of different formats.
pub fn exact_sum(b: &mut Builder, xs: &[FloatWord]) -> Result<Vec<Lit>> {
    let first = xs.first().ok_or(GadgetError::TooFewOperands {
        op: "exact_sum",
        min: 1,
        got: 0,
    })?;
    let fmt = first.fmt;
    for x in xs {
        first.check_same("exact_sum", x)?;
    }
    let w = exact_width(fmt, xs.len());
    let cols = super::sum::grid_digits(b, xs, w)?;
    let mut s = LinearSum::new();
    for (t, col) in cols.iter().enumerate() {
        for &(l, sg) in col {
            if sg > 0 {
                s.add_bit(l, t);
            } else {
                s.sub_unsigned(&[l], t);
            }
        }
    }
    s.build_mod(b, w, SumStrategy::Auto)
}

/// `round(2^e_min * sum_i parts_i)` in `fmt`: the exact sum of the two's complement partial
/// sums `parts` (of any widths, e.g. from [`exact_sum`]) rounded once.
///
/// Errors: no parts, an empty part.
pub fn round_sum(b: &mut Builder, fmt: Format, parts: &[Vec<Lit>]) -> Result<FloatWord> {
    if parts.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(GadgetError::TooFewOperands {
            op: "round_sum",
            min: 1,
            got: 0,
        });
    }
    let mut s = LinearSum::new();
    for p in parts {
        s.add_signed(p, 0);
    }
    let total = s.build(b, SumStrategy::Auto)?;
    let (w, signed) = s.exact_width();
    let sign = if signed { total[w - 1] } else { Lit::FALSE };
    let neg = int::neg(b, &total)?;
    let mut mag = Vec::with_capacity(w);
    for t in 0..w {
        let mut lits = Vec::with_capacity(2);
        let pos = b.and2(total[t], !sign)?;
        if pos != Lit::FALSE {
            lits.push(pos);
        }
        let ng = b.and2(neg[t], sign)?;
        if ng != Lit::FALSE {
            lits.push(ng);
        }
        mag.push(lits);
    }
    round_pack(b, fmt, &mag, sign, &[(Lit::TRUE, 0)])
}
