//! The value type [`Float`]: accessors, the bit encoding, conversion to IEEE binary formats.

use std::fmt;

use super::Format;

/// A value of a format F(p, q).
///
/// Invariant: either zero (`sig == 0`, `neg == false`, `exp == 0`: there is one zero and no
/// negative zero), or `sig` in `[2^(p-1), 2^p)` and `exp` in `[e_min, e_max]` of `format`; the
/// value is then `(-1)^neg * sig * 2^exp`. Because the representation is canonical, the derived
/// `Eq`/`Hash` are equality of values (within one format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Float {
    format: Format,
    neg: bool,
    exp: i32,
    sig: u64,
}

impl Float {
    /// Zero of `format`.
    pub(crate) fn zero_of(format: Format) -> Float {
        Float {
            format,
            neg: false,
            exp: 0,
            sig: 0,
        }
    }

    /// Build from parts the caller has already validated (`sig` in range, `exp` in range).
    pub(crate) fn from_raw(format: Format, neg: bool, exp: i32, sig: u64) -> Float {
        if sig == 0 {
            return Float::zero_of(format);
        }
        Float {
            format,
            neg,
            exp,
            sig,
        }
    }

    /// The format this value belongs to.
    pub fn format(self) -> Format {
        self.format
    }

    /// True for the (only) zero.
    pub fn is_zero(self) -> bool {
        self.sig == 0
    }

    /// True for values `< 0` (never for zero).
    pub fn is_negative(self) -> bool {
        self.neg
    }

    /// The exponent `e` of the integer significand (value `= ±sig * 2^e`), in `[e_min, e_max]`;
    /// meaningless for zero, where it is 0.
    pub fn exp(self) -> i32 {
        self.exp
    }

    /// The integer significand `m` in `[2^(p-1), 2^p)`, leading one included; 0 for zero.
    pub fn sig(self) -> u64 {
        self.sig
    }

    /// The canonical `p + q + 1`-bit encoding: bits `[0, p)` the significand `m` with its leading
    /// one, bits `[p, p+q)` the biased exponent `e - e_min`, bit `p+q` the sign; zero is `0`.
    /// Inverse of [`Format::from_bits`].
    pub fn to_bits(self) -> u64 {
        if self.sig == 0 {
            return 0;
        }
        let f = self.format;
        let biased = (self.exp - f.e_min()) as u64;
        self.sig | (biased << f.p()) | ((self.neg as u64) << (f.p() + f.q()))
    }

    /// The nearest f64 (round to nearest, ties to even). Exact whenever the value lies in the
    /// f64 range (always for `q <= 10`); values beyond it give ±infinity, values below it an f64
    /// subnormal or ±0.0 as IEEE rounding dictates.
    pub fn to_f64(self) -> f64 {
        if self.sig == 0 {
            return 0.0;
        }
        let mag = to_ieee(self.sig, self.exp as i64, 53, -1074, 971);
        f64::from_bits(mag | ((self.neg as u64) << 63))
    }

    /// The nearest f32 (round to nearest, ties to even), with IEEE overflow to ±infinity and
    /// gradual underflow. Exact for every value of F(24, q) in the f32 normal range.
    pub fn to_f32(self) -> f32 {
        if self.sig == 0 {
            return 0.0;
        }
        let mag = to_ieee(self.sig, self.exp as i64, 24, -149, 104);
        f32::from_bits((mag as u32) | ((self.neg as u32) << 31))
    }
}

/// Encode `sig * 2^e` (sig > 0, at most 64 bits) as the magnitude bits of an IEEE binary format
/// with `mant` significand bits (hidden bit included), whose integer significand's exponent
/// ranges over `[e_lo, e_hi]` (subnormals at `e_lo`), correctly rounded (RNE), overflowing to
/// infinity.
fn to_ieee(sig: u64, e: i64, mant: u32, e_lo: i64, e_hi: i64) -> u64 {
    let b = 64 - sig.leading_zeros() as i64;
    let mut big_e = (e + b - mant as i64).max(e_lo);
    let mut m: u128 = if big_e <= e {
        // Exact: shift left (e - big_e <= mant bits).
        (sig as u128) << (e - big_e)
    } else {
        let s = big_e - e;
        if s > 100 {
            0
        } else {
            let v = sig as u128;
            let q = v >> s;
            let rem = v & ((1u128 << s) - 1);
            let half = 1u128 << (s - 1);
            if rem > half || (rem == half && q & 1 == 1) {
                q + 1
            } else {
                q
            }
        }
    };
    let hidden = 1u128 << (mant - 1);
    if m >= hidden << 1 {
        m >>= 1;
        big_e += 1;
    }
    let exp_bits_max = (e_hi - e_lo + 2) as u64; // all-ones exponent field: infinity
    if big_e > e_hi {
        return exp_bits_max << (mant - 1);
    }
    if m < hidden {
        // Subnormal (or zero): exponent field 0.
        return m as u64;
    }
    let biased = (big_e - e_lo + 1) as u64;
    (biased << (mant - 1)) | ((m - hidden) as u64)
}

impl fmt::Display for Float {
    /// Decimal approximation followed by the exact parts, e.g. `1.5 (+12*2^-3 in F(4,4))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sig == 0 {
            return write!(f, "0 (zero in {})", self.format);
        }
        let v = self.to_f64();
        let sign = if self.neg { "-" } else { "+" };
        if v.is_finite() && v != 0.0 && v.abs() >= f64::MIN_POSITIVE {
            let a = v.abs();
            if (1e-6..1e9).contains(&a) {
                write!(f, "{v}")?;
            } else {
                write!(f, "{v:e}")?;
            }
        } else {
            let log2 = self.exp as f64 + (self.sig as f64).log2();
            write!(f, "{sign}~2^{log2:.3}")?;
        }
        write!(f, " ({sign}{}*2^{} in {})", self.sig, self.exp, self.format)
    }
}
