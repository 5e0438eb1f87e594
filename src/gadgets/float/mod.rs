//! F(p, q) float gadgets: circuits over the bit encoding of [`crate::float`], bit-exact with it.
//!
//! A [`FloatWord`] is `p + q + 1` literals, least significant first, in the encoding of
//! `Float::to_bits`: bits `[0, p)` the full significand m including its leading one (bit
//! `p - 1` is set exactly when the value is nonzero), bits `[p, p + q)` the biased exponent
//! `e - e_min`, bit `p + q` the sign. Zero is the all-zero word.

pub mod word;

pub use word::FloatWord;
pub mod add;
pub(crate) mod approx;
pub mod cmp;
pub mod div;
pub mod exp_poly;
pub mod fixed;
pub mod mul;
pub mod mul_const;
pub mod product;
pub mod root;
pub mod round;
pub mod sum;
pub mod table;
