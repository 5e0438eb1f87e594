//! Float multiplication: `round(x * y)` (docs/float.md), and the rounding core shared by every
//! product of significands (mul, mul by a constant, the iterated product of n).
//!
//! # Construction (docs/float.md)
//!
//! The exact significand product `P = m_x * m_y` is an integer linear form over the partial
//! products `a_i AND b_j` (depth 1, weight `2^(i+j)`). [`round_product`] then rounds any such
//! form `P` (an integer with `P = 0` or `P >= 2^lead_min`) to p bits in one pass:
//!
//! - *Shift.* With result shift `s` (significand `round(P / 2^s)`), `t_s = [P >= 2^(s+p-1)]`
//!   says the leading one is at or above `s + p - 1`, and `u_s = [P >= 2^(s+p) - 2^(s-1)]` says
//!   that P rounds at shift `s` up to `2^p`, i.e. really has shift `s + 1` with significand
//!   `2^(p-1)`. Both are single gates on the form P. The final shift is `s_lo + sum_s u_s`.
//! - *Significand bit k.* Round to nearest even at shift s is
//!   `V_s(P) = floor((P + 2^(s-1) - 1 + bit_s(P)) / 2^s)`, and bit k of `V_s(P)` depends only on
//!   `P mod 2^(s+k+1)`: it is a staircase (one bank plus one gate) on the *truncated* form whose
//!   weights are reduced modulo `2^(s+k+1)` (about `4 * (terms on the top diagonal)`
//!   breakpoints). The staircase's second gate also takes `t_s - u_s`, so it is already
//!   restricted to the inputs whose shift is s; one OR over the shifts gives the bit.
//! - *Exponent.* `E = sum of biased exponents + constant + s`: bit j is a staircase on the form
//!   of the exponent bits (reduced mod `2^(j+1)`) plus the `u_s`. Overflow (saturate to the
//!   largest finite value) and underflow (flush to zero) are one gate each on the same form, and
//!   are folded into the output gates together with the zero-operand tests.
//!
//! Depth: `mul` 4 (partial products 1, banks 2, shift-restricted staircases 3, outputs 4);
//! a form over input bits directly (multiplication by a constant) is one level less.

use crate::circuit::{Builder, Lit};
use crate::float::Format;
use crate::gadgets::error::{GadgetError, Result};

use super::word::FloatWord;

/// Largest number of bits of an exact significand product a single form may carry: every
/// form's sum of |weights| must stay below the builder's bound `2^62`.
pub const MAX_PRODUCT_BITS: u32 = 62;

/// Largest range (max - min) of a form whose staircase is found by enumerating its values.
const MAX_ENUM_RANGE: i128 = 1 << 22;

/// `(min, max)` of the form `sum w_i * l_i` over all 0/1 values of its literals.
pub(crate) fn form_range(terms: &[(Lit, i64)]) -> (i128, i128) {
    terms.iter().fold((0i128, 0i128), |(lo, hi), &(_, w)| {
        let w = w as i128;
        if w < 0 {
            (lo + w, hi)
        } else {
            (lo, hi + w)
        }
    })
}

/// A 0/1 staircase on the form `terms`: the function starts at `f0` at the form's minimum and
/// flips at every threshold in `toggles` (sorted, strictly increasing). Returns the gate
/// `[f + sum extra >= 1 + need]`, i.e. `f` when the `extra` terms sum to `need` (depth: one
/// bank plus one gate; docs/float.md item 1).
pub(crate) fn stair_toggles(
    b: &mut Builder,
    terms: &[(Lit, i64)],
    toggles: &[i128],
    f0: bool,
    extra: &[(Lit, i64)],
    need: i64,
) -> Result<Lit> {
    let gs = if toggles.is_empty() {
        Vec::new()
    } else {
        b.bank_i128(terms, toggles)?
    };
    let mut st: Vec<(Lit, i64)> = Vec::with_capacity(gs.len() + extra.len());
    let mut cur = f0;
    for g in gs {
        st.push((g, if cur { -1 } else { 1 }));
        cur = !cur;
    }
    st.extend_from_slice(extra);
    Ok(b.threshold(&st, 1 - f0 as i64 + need)?)
}

/// A 0/1 staircase of an arbitrary function `f` of the form's value, found by enumerating the
/// form's range (at most 2^22 values). See [`stair_toggles`] for `extra` and `need`.
pub(crate) fn stair_fn(
    b: &mut Builder,
    op: &'static str,
    terms: &[(Lit, i64)],
    f: impl Fn(i128) -> bool,
    extra: &[(Lit, i64)],
    need: i64,
) -> Result<Lit> {
    let (lo, hi) = form_range(terms);
    if hi - lo > MAX_ENUM_RANGE {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!("staircase over a form of range {} > 2^22", hi - lo),
        });
    }
    let mut toggles = Vec::new();
    let mut prev = f(lo);
    for v in lo + 1..=hi {
        let cur = f(v);
        if cur != prev {
            toggles.push(v);
            prev = cur;
        }
    }
    stair_toggles(b, terms, &toggles, f(lo), extra, need)
}

/// Round-to-nearest-even quotient `V_s(S) = floor((S + 2^(s-1) - 1 + bit_s(S)) / 2^s)`
/// (`s >= 1`); monotone in S with unit steps.
fn rne_shift(s_val: i128, s: u32) -> i128 {
    (s_val + (1i128 << (s - 1)) - 1 + ((s_val >> s) & 1)) >> s
}

/// Smallest `S` in `[0, smax]` with `V_s(S) >= v`, if any.
fn first_at_least(smax: i128, s: u32, v: i128) -> Option<i128> {
    if rne_shift(smax, s) < v {
        return None;
    }
    let (mut lo, mut hi) = (0i128, smax);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if rne_shift(mid, s) >= v {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// The exact result of a product of significands, described for [`round_product`].
pub(crate) struct ExactProduct<'a> {
    /// The form of the exact significand product P (nonnegative weights).
    pub sig_terms: &'a [(Lit, i64)],
    /// Every nonzero P is at least `2^lead_min`; `lead_min >= p`.
    pub lead_min: u32,
    /// The form X of the exponent part: the biased result exponent is `X + exp_const + s`,
    /// where s is the shift (significand = round(P / 2^s)).
    pub exp_terms: &'a [(Lit, i64)],
    /// See `exp_terms`.
    pub exp_const: i64,
    /// Literals that must all be 1 for the product to be nonzero (P = 0 otherwise).
    pub nonzero: &'a [Lit],
    /// The sign of the product when it is nonzero.
    pub sign: Lit,
}

/// `round(P * 2^(X + exp_const + e_min))` in format `fmt` (docs/float.md: nearest even, then
/// saturation above e_max, flush below e_min), for the exact product described by `xp`.
///
/// Depth: 3 above the deepest literal of `xp.sig_terms` (banks, shift-restricted staircases,
/// outputs), and at most 3 above the exponent and nonzero literals.
pub(crate) fn round_product(
    b: &mut Builder,
    fmt: Format,
    op: &'static str,
    xp: &ExactProduct<'_>,
) -> Result<FloatWord> {
    let (_, pmax) = form_range(xp.sig_terms);
    round_product_bounded(b, fmt, op, xp, pmax)
}

/// [`round_product`] for a form known never to exceed `pmax` (a tighter bound than the sum of
/// its positive weights, e.g. for forms with negative weights or correlated literals): the
/// shifts considered are those of leading-one positions up to `bitlen(pmax) - 1`. The form's
/// truncated staircases remain exact for any weights, since bit k of the rounded quotient at
/// shift s depends only on `P mod 2^(s+k+1)`.
pub(crate) fn round_product_bounded(
    b: &mut Builder,
    fmt: Format,
    op: &'static str,
    xp: &ExactProduct<'_>,
    pmax: i128,
) -> Result<FloatWord> {
    let p = fmt.p();
    let q = fmt.q();
    if pmax <= 0 {
        return Ok(FloatWord::constant(fmt, 0));
    }
    let bits = 128 - (pmax as u128).leading_zeros();
    if bits > MAX_PRODUCT_BITS {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!(
                "exact significand product of {bits} bits exceeds the single-form weight bound \
                 of {MAX_PRODUCT_BITS} bits"
            ),
        });
    }
    if xp.lead_min < p {
        return Err(GadgetError::Unsupported {
            op,
            limit: format!(
                "product rounding needs lead_min >= p ({} < {p})",
                xp.lead_min
            ),
        });
    }
    let lead_max = bits - 1;
    let s_lo = xp.lead_min - (p - 1);
    let s_hi = lead_max.max(xp.lead_min) - (p - 1);
    // Shift tests on the full form.
    let mut thetas: Vec<i128> = Vec::new();
    for s in s_lo..=s_hi {
        thetas.push(1i128 << (s + p - 1));
        thetas.push((1i128 << (s + p)) - (1i128 << (s - 1)));
    }
    let tu = b.bank_i128(xp.sig_terms, &thetas)?;
    let t: Vec<Lit> = tu.iter().step_by(2).copied().collect();
    let u: Vec<Lit> = tu.iter().skip(1).step_by(2).copied().collect();

    // Exponent form and range tests.
    let mut xu: Vec<(Lit, i64)> = xp.exp_terms.to_vec();
    xu.extend(u.iter().map(|&l| (l, 1i64)));
    let c = xp.exp_const + s_lo as i64;
    let (xlo, xhi) = form_range(&xu);
    let top = 1i128 << q; // biased exponent must be < 2^q
    let nnz = xp.nonzero.len() as i64;
    let m = (xhi - xlo + (top - c as i128).abs() + xlo.abs() + 1) as i64;
    let mut ov_terms = xu.clone();
    ov_terms.extend(xp.nonzero.iter().map(|&l| (l, m)));
    let ov = b.threshold(&ov_terms, (top - c as i128) as i64 + m * nnz)?;
    let neg: Vec<(Lit, i64)> = xu.iter().map(|&(l, w)| (l, -w)).collect();
    let fl = b.threshold(&neg, c + 1)?;

    // Significand bits below the leading one.
    let mut word = vec![Lit::FALSE; fmt.width() as usize];
    for k in 0..p - 1 {
        let mut parts: Vec<(Lit, i64)> = Vec::new();
        for (idx, s) in (s_lo..=s_hi).enumerate() {
            let modulus = 1i128 << (s + k + 1);
            let trunc: Vec<(Lit, i64)> = xp
                .sig_terms
                .iter()
                .filter_map(|&(l, w)| {
                    let r = (w as i128).rem_euclid(modulus);
                    (r != 0).then_some((l, r as i64))
                })
                .collect();
            let (_, smax) = form_range(&trunc);
            let mut toggles = Vec::new();
            let mut j = 1i128;
            while let Some(x) = first_at_least(smax, s, j << k) {
                toggles.push(x);
                j += 1;
            }
            let a = stair_toggles(b, &trunc, &toggles, false, &[(t[idx], 1), (u[idx], -1)], 1)?;
            if a != Lit::FALSE {
                parts.push((a, 1));
            }
        }
        parts.push((ov, 2));
        parts.push((fl, -2));
        word[k as usize] = b.threshold(&parts, 1)?;
    }
    // Leading one: nonzero and not flushed.
    let mut lead: Vec<(Lit, i64)> = xp.nonzero.iter().map(|&l| (l, 1)).collect();
    lead.push((fl, -1));
    word[p as usize - 1] = b.threshold(&lead, nnz)?;
    // Exponent bits.
    let mut extra: Vec<(Lit, i64)> = vec![(ov, 2), (fl, -2)];
    extra.extend(xp.nonzero.iter().map(|&l| (l, 2)));
    for j in 0..q {
        let modulus = 1i128 << (j + 1);
        let trunc: Vec<(Lit, i64)> = xu
            .iter()
            .filter_map(|&(l, w)| {
                let r = (w as i128).rem_euclid(modulus);
                (r != 0).then_some((l, r as i64))
            })
            .collect();
        let f = |v: i128| ((v + c as i128).rem_euclid(modulus) >> j) & 1 == 1;
        word[(p + j) as usize] = stair_fn(b, op, &trunc, f, &extra, 2 * nnz)?;
    }
    // Sign.
    let mut sg: Vec<(Lit, i64)> = vec![(xp.sign, 1), (fl, -1)];
    sg.extend(xp.nonzero.iter().map(|&l| (l, 1)));
    word[(p + q) as usize] = b.threshold(&sg, 1 + nnz)?;
    FloatWord::new(fmt, word)
}

/// The form of a word's unsigned value, `sum 2^j * bits[j]`.
pub(crate) fn value_terms(bits: &[Lit]) -> Vec<(Lit, i64)> {
    bits.iter()
        .enumerate()
        .map(|(j, &l)| (l, 1i64 << j))
        .collect()
}

/// `round(x * y)` (docs/float.md): the exact product rounded once to nearest even, saturating to
/// the largest finite value of the product's sign above e_max and flushing to zero below
/// e_min; a zero operand gives zero.
///
/// Depth 4: partial products `a_i AND b_j` (1), shift tests and truncated-form banks (2),
/// staircases restricted to their shift (3), output gates with saturation/flush folded in (4).
/// Gates: `p^2` partial products plus about `8 p^2` thresholds.
///
/// Errors: `FormatMismatch` for operands of different formats; `Unsupported` when
/// `2p > 62` (the exact product no longer fits one form's weight bound).
pub fn mul(b: &mut Builder, x: &FloatWord, y: &FloatWord) -> Result<FloatWord> {
    const OP: &str = "float::mul";
    x.check_same(OP, y)?;
    let fmt = x.fmt;
    let p = fmt.p();
    if 2 * p > MAX_PRODUCT_BITS {
        return Err(GadgetError::Unsupported {
            op: OP,
            limit: format!(
                "2p = {} > {MAX_PRODUCT_BITS} (single-form weight bound)",
                2 * p
            ),
        });
    }
    let (mx, my) = (x.sig(), y.sig());
    let mut pp: Vec<(Lit, i64)> = Vec::with_capacity((p * p) as usize);
    for (i, &a) in mx.iter().enumerate() {
        for (j, &c) in my.iter().enumerate() {
            let g = b.and2(a, c)?;
            pp.push((g, 1i64 << (i + j)));
        }
    }
    let mut exp_terms = value_terms(x.exp());
    exp_terms.extend(value_terms(y.exp()));
    let sign = b.xor2(x.sign(), y.sign())?;
    let xp = ExactProduct {
        sig_terms: &pp,
        lead_min: 2 * (p - 1),
        exp_terms: &exp_terms,
        exp_const: fmt.e_min() as i64,
        nonzero: &[x.nonzero(), y.nonzero()],
        sign,
    };
    round_product(b, fmt, OP, &xp)
}
