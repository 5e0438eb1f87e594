//! The format descriptor F(p, q), its constants and its value enumeration.

use std::fmt;

use super::{Float, FloatError};

/// Smallest supported significand width p.
pub const MIN_P: u32 = 2;
/// Largest supported significand width p.
pub const MAX_P: u32 = 32;
/// Smallest supported exponent width q.
pub const MIN_Q: u32 = 2;
/// Largest supported exponent width q.
pub const MAX_Q: u32 = 16;

/// The float format F(p, q) of docs/float.md.
///
/// A value is zero or `(-1)^s * m * 2^e` with an integer significand `m` in
/// `[2^(p-1), 2^p)` and an integer exponent `e` in `[e_min, e_max] = [-2^(q-1), 2^(q-1) - 1]`.
///
/// Invariant: `2 <= p <= 32` and `2 <= q <= 16` (checked by [`Format::new`], the only
/// constructor), so every value is encoded in `p + q + 1 <= 49` bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Format {
    p: u8,
    q: u8,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F({},{})", self.p, self.q)
    }
}

impl Format {
    /// The format F(p, q); `Err(FloatError::InvalidFormat)` naming the violated bound unless
    /// `2 <= p <= 32` and `2 <= q <= 16`.
    pub fn new(p: u32, q: u32) -> Result<Format, FloatError> {
        let bad = |reason: String| FloatError::InvalidFormat { p, q, reason };
        if p < MIN_P {
            return Err(bad(format!(
                "p = {p} is below the minimum {MIN_P} (need {MIN_P} <= p <= {MAX_P})"
            )));
        }
        if p > MAX_P {
            return Err(bad(format!(
                "p = {p} is above the maximum {MAX_P} (need {MIN_P} <= p <= {MAX_P})"
            )));
        }
        if q < MIN_Q {
            return Err(bad(format!(
                "q = {q} is below the minimum {MIN_Q} (need {MIN_Q} <= q <= {MAX_Q})"
            )));
        }
        if q > MAX_Q {
            return Err(bad(format!(
                "q = {q} is above the maximum {MAX_Q} (need {MIN_Q} <= q <= {MAX_Q})"
            )));
        }
        Ok(Format {
            p: p as u8,
            q: q as u8,
        })
    }

    /// Significand width p (bits of the integer significand, leading one included).
    pub fn p(self) -> u32 {
        self.p as u32
    }

    /// Exponent width q (bits of the biased exponent).
    pub fn q(self) -> u32 {
        self.q as u32
    }

    /// Smallest exponent `e_min = -2^(q-1)` of the integer significand.
    pub fn e_min(self) -> i32 {
        -(1i32 << (self.q - 1))
    }

    /// Largest exponent `e_max = 2^(q-1) - 1` of the integer significand.
    pub fn e_max(self) -> i32 {
        (1i32 << (self.q - 1)) - 1
    }

    /// Encoded width in bits, `p + q + 1` (significand, biased exponent, sign).
    pub fn width(self) -> u32 {
        self.p() + self.q() + 1
    }

    /// Number of distinct values of the format: `2 * 2^(p-1) * 2^q + 1` (one zero).
    pub fn num_values(self) -> u64 {
        2 * self.values_per_sign() + 1
    }

    /// Number of positive values, `2^(p-1) * 2^q`.
    fn values_per_sign(self) -> u64 {
        1u64 << (self.p - 1 + self.q)
    }

    /// The smallest significand `2^(p-1)`.
    pub(crate) fn sig_min(self) -> u64 {
        1u64 << (self.p - 1)
    }

    /// The largest significand `2^p - 1`.
    pub(crate) fn sig_max(self) -> u64 {
        (1u64 << self.p) - 1
    }

    /// The (only) zero: all encoding bits clear.
    pub fn zero(self) -> Float {
        Float::zero_of(self)
    }

    /// The largest finite value of the given sign, `±(2^p - 1) * 2^e_max`: what overflow
    /// saturates to.
    pub fn max_finite(self, negative: bool) -> Float {
        Float::from_raw(self, negative, self.e_max(), self.sig_max())
    }

    /// The smallest positive value `2^(p-1) * 2^e_min`; anything that rounds below it flushes
    /// to zero.
    pub fn min_positive(self) -> Float {
        Float::from_raw(self, false, self.e_min(), self.sig_min())
    }

    /// The value 1 if it is exactly representable (it is unless `e_min > 1 - p`, or
    /// `e_max < 1 - p`), else `Err(FloatError::NotRepresentable)`.
    pub fn one(self) -> Result<Float, FloatError> {
        let e = 1 - self.p() as i32;
        if e < self.e_min() || e > self.e_max() {
            return Err(FloatError::NotRepresentable {
                format: self,
                what: "1",
            });
        }
        Ok(Float::from_raw(self, false, e, self.sig_min()))
    }

    /// The value `(-1)^negative * sig * 2^exp`, exactly; `sig == 0` gives zero (whatever the
    /// sign and exponent). Otherwise `Err(FloatError::InvalidParts)` unless
    /// `sig` is in `[2^(p-1), 2^p)` and `exp` is in `[e_min, e_max]`.
    pub fn from_parts(self, negative: bool, exp: i32, sig: u64) -> Result<Float, FloatError> {
        if sig == 0 {
            return Ok(self.zero());
        }
        let bad = |reason| FloatError::InvalidParts {
            format: self,
            negative,
            exp,
            sig,
            reason,
        };
        if sig < self.sig_min() || sig > self.sig_max() {
            return Err(bad("significand outside [2^(p-1), 2^p)"));
        }
        if exp < self.e_min() || exp > self.e_max() {
            return Err(bad("exponent outside [e_min, e_max]"));
        }
        Ok(Float::from_raw(self, negative, exp, sig))
    }

    /// Decode a word of the bit encoding (see the module docs): bits `[0, p)` the significand
    /// with its leading one, bits `[p, p+q)` the biased exponent `e - e_min`, bit `p+q` the sign;
    /// zero is the all-zero word. Rejects (with `FloatError::InvalidBits`) set bits at or above
    /// `width()`, a nonzero word whose significand's top bit (bit `p-1`) is clear, and therefore
    /// any "negative zero" or zero with a nonzero exponent field.
    pub fn from_bits(self, bits: u64) -> Result<Float, FloatError> {
        let bad = |reason| FloatError::InvalidBits {
            format: self,
            bits,
            reason,
        };
        if bits >> self.width() != 0 {
            return Err(bad("bits set above the encoded width p + q + 1"));
        }
        if bits == 0 {
            return Ok(self.zero());
        }
        let sig = bits & self.sig_max();
        if sig & self.sig_min() == 0 {
            return Err(bad(
                "nonzero word whose significand lacks its leading one (bit p-1)",
            ));
        }
        let biased = (bits >> self.p) & ((1u64 << self.q) - 1);
        let negative = (bits >> (self.p + self.q)) & 1 == 1;
        Ok(Float::from_raw(
            self,
            negative,
            self.e_min() + biased as i32,
            sig,
        ))
    }

    /// Every value of the format exactly once, in increasing numeric order (most negative first,
    /// then zero, then the positives). `num_values()` items; meant for exhaustive tests.
    pub fn all_values(self) -> AllValues {
        AllValues {
            format: self,
            front: 0,
            back: self.num_values(),
        }
    }
}

/// Iterator over every value of a format in increasing order; see [`Format::all_values`].
///
/// Invariant: yields the values with ranks in `[front, back)`, where rank `k` is the `k`-th
/// smallest value of the format.
#[derive(Clone, Debug)]
pub struct AllValues {
    format: Format,
    front: u64,
    back: u64,
}

impl AllValues {
    fn value_at(&self, rank: u64) -> Float {
        let f = self.format;
        let per_sign = f.values_per_sign();
        let (negative, j) = match rank.cmp(&per_sign) {
            std::cmp::Ordering::Equal => return f.zero(),
            std::cmp::Ordering::Less => (true, per_sign - 1 - rank),
            std::cmp::Ordering::Greater => (false, rank - per_sign - 1),
        };
        let half = f.sig_min();
        let e = f.e_min() + (j / half) as i32;
        let m = half + j % half;
        Float::from_raw(f, negative, e, m)
    }
}

impl Iterator for AllValues {
    type Item = Float;
    fn next(&mut self) -> Option<Float> {
        if self.front >= self.back {
            return None;
        }
        let v = self.value_at(self.front);
        self.front += 1;
        Some(v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        match usize::try_from(n) {
            Ok(n) => (n, Some(n)),
            Err(_) => (usize::MAX, None),
        }
    }
    fn nth(&mut self, n: usize) -> Option<Float> {
        self.front = self.front.saturating_add(n as u64).min(self.back);
        self.next()
    }
}

impl DoubleEndedIterator for AllValues {
    fn next_back(&mut self) -> Option<Float> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        Some(self.value_at(self.back))
    }
}

impl std::iter::FusedIterator for AllValues {}
