//! The iterated product of n floats: the exact product rounded once (paper Lemma 3.5 part 2,
//! bit-exact with `Format::product`).
//!
//! # Construction and its limit
//!
//! The exact product of the significands, `P = prod_i m_i`, is written as ONE linear form over
//! the `p^n` monomials `AND_i m_{i, j_i}` (depth 1) with weights `2^(j_1 + ... + j_n)`, and
//! rounded by the shared core [`super::mul::round_product`]: shift tests and truncated-form
//! staircases (depth 2 and 3), outputs with saturation and flush folded in (depth 4). The
//! exponent is the sum of the n exponents (a form), the sign the parity of the n signs (depth
//! 2). So the depth is **4 for every n** in the supported range, and does not grow with n.
//!
//! The price is size: `p^n` monomials, and an exact product of `n p` bits in one form. The
//! construction is therefore limited to `n * p <= 62` (the builder's weight bound) and
//! `p^n <= MAX_MONOMIALS`; beyond that [`product`] returns `GadgetError::Unsupported`
//! naming the limit (p = 4: n <= 8; p = 8: n <= 5; p = 11: n <= 4). A constant-depth exact
//! iterated product for unbounded n exists (Beame-Cook-Hoover / Hesse-Allender-Barrington:
//! Chinese remaindering with discrete-log tables and an exact CRT reconstruction), but it is
//! not built here.

use crate::circuit::{Builder, Lit};
use crate::gadgets::error::{GadgetError, Result};

use super::mul::{round_product, value_terms, ExactProduct, MAX_PRODUCT_BITS};
use super::word::FloatWord;

/// Largest number of monomials `p^n` of the exact product form.
pub const MAX_MONOMIALS: u64 = 1 << 16;

/// The largest n for which [`product`] builds at significand width p (see the module docs).
pub fn max_product_operands(p: u32) -> usize {
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

/// `round(x_1 * ... * x_n)`: the exact product rounded once (DESIGN §2; nearest even,
/// saturating above e_max, flushing below e_min; any zero operand gives zero). `n = 1` returns
/// the operand itself (it is its own rounded product).
///
/// Depth 4 for every `2 <= n <= max_product_operands(p)` (0 for n = 1).
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
        return Err(GadgetError::Unsupported {
            op: OP,
            limit: format!(
                "n = {n} operands > {limit} at p = {p}: the exact product needs n*p <= \
                 {MAX_PRODUCT_BITS} bits in one form and p^n <= {MAX_MONOMIALS} monomials"
            ),
        });
    }
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
