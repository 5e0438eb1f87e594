//! # F(p, q): the reference float arithmetic
//!
//! The single source of truth for numerics (docs/float.md). Every circuit gadget is checked bit for
//! bit against this module; nothing here knows about circuits.
//!
//! ## Values
//!
//! A [`Format`] F(p, q) has `2 <= p <= 32` significand bits and `2 <= q <= 16` exponent bits. A
//! value is zero, or `(-1)^s * m * 2^e` with an integer significand `m` in `[2^(p-1), 2^p)` and
//! an integer exponent `e` in `[e_min, e_max] = [-2^(q-1), 2^(q-1) - 1]`. There is one zero (no
//! negative zero), no infinity, no NaN and no subnormal.
//!
//! ## Rounding
//!
//! `round(x)` of an exact real `x`: round to the nearest p-bit significand, ties to the even
//! significand, with an unbounded exponent; then an exponent above `e_max` saturates to the
//! largest finite value of that sign, and one below `e_min` gives zero. Every operation is the
//! exact result passed once through `round()`:
//! - add, sub, mul, div; `x/0` is the largest finite value with the sign of `x`, `0/0 = 0`;
//! - sqrt (of a negative value: 0); rsqrt `= round(1/sqrt(x))`, and for `x <= 0` the largest
//!   finite positive value (`1/sqrt(0)` under the `x/0` rule);
//! - exp: `round(e^x)`, correctly rounded, in formats with `p + q <= 20` (see [`transcendental`]);
//!   in wider formats the shared algorithm of [`exp_poly`] (faithful, almost always correctly
//!   rounded), which the exp circuit reproduces bit for bit;
//! - [`Format::sum`] and [`Format::product`]: the exact sum / product of n values, rounded once;
//!   [`Format::dot`] `= round(sum_i round(a_i * b_i))` (paper, Lemma 3.5);
//! - neg, abs, compare, max, min are exact; floor is the largest representable integer-valued
//!   value `<= x`.
//!
//! Operations on values of two different formats return [`FloatError::FormatMismatch`]; no
//! function of this module panics on any input.
//!
//! ## Bit encoding (used by the circuits)
//!
//! A value of F(p, q) is a word of `p + q + 1` bits, least significant first:
//!
//! | bits            | content                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | `[0, p)`        | the integer significand `m`, leading one included (bit `p-1`)  |
//! | `[p, p+q)`      | the biased exponent `e - e_min`, in `[0, 2^q)`                 |
//! | `p+q`           | the sign (1 = negative)                                        |
//!
//! Zero is the all-zero word, so bit `p-1` is set exactly for nonzero values. Any other word
//! (a nonzero word with bit `p-1` clear, or bits at or above `p+q+1`) is rejected by
//! [`Format::from_bits`]. See `docs/float.md` for the relation to the paper and to IEEE 754.

mod error;
pub mod exp_poly;
mod format;
mod ops;
pub mod poly;
mod round;
pub mod transcendental;
mod value;

pub use error::FloatError;
pub use format::{AllValues, Format, MAX_P, MAX_Q, MIN_P, MIN_Q};
pub use value::Float;
