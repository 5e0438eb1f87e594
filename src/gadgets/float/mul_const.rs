//! Multiplication by a constant: `round(x * c)` for a fixed value `c` of the same format.
//!
//! With `c` fixed, the exact significand product `P = m_c * m_x = sum_i (m_c * 2^i) x_i` is a
//! linear form over the input bits themselves (no partial-product layer), and it is rounded by
//! the shared core [`super::mul::round_product`] (nearest even, saturation, flush). Depth 3,
//! one less than [`super::mul::mul`].

use crate::circuit::{Builder, Lit};
use crate::float::Float;
use crate::gadgets::error::{GadgetError, Result};

use super::mul::{round_product, value_terms, ExactProduct, MAX_PRODUCT_BITS};
use super::word::FloatWord;

/// `round(x * c)` (docs/float.md, bit-exact with `Float::mul`): nearest even, saturating to the
/// largest finite value of the product's sign above e_max, flushing to zero below e_min;
/// `c = 0` or `x = 0` gives zero.
///
/// Depth 3 (banks on the constant-weighted significand form, shift-restricted staircases,
/// outputs); `c = 0` is a constant word (depth 0).
///
/// Errors: `FormatMismatch` when `c` is not of `x`'s format; `Unsupported` when `2p > 62`.
pub fn mul_const(b: &mut Builder, x: &FloatWord, c: Float) -> Result<FloatWord> {
    const OP: &str = "float::mul_const";
    let fmt = x.fmt;
    if c.format() != fmt {
        return Err(GadgetError::FormatMismatch {
            op: OP,
            left: fmt.to_string(),
            right: c.format().to_string(),
        });
    }
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
    if c.is_zero() {
        return Ok(FloatWord::constant(fmt, 0));
    }
    let mc = c.sig() as i64;
    let sig_terms: Vec<(Lit, i64)> = x
        .sig()
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, mc << i))
        .collect();
    let exp_terms = value_terms(x.exp());
    let sign = if c.is_negative() { !x.sign() } else { x.sign() };
    let xp = ExactProduct {
        sig_terms: &sig_terms,
        lead_min: 2 * (p - 1),
        exp_terms: &exp_terms,
        exp_const: c.exp() as i64,
        nonzero: &[x.nonzero()],
        sign,
    };
    round_product(b, fmt, OP, &xp)
}
