//! The one rounding rule of docs/float.md, written once: round to nearest p-bit significand (ties
//! to even), then saturate above `e_max` and flush below `e_min`.

use num_bigint::BigUint;

use super::{Float, FloatError, Format};

impl Format {
    /// Apply `round()` to an exact value: `round(x)` is the p-bit significand nearest to `x`
    /// (ties to even), with the exponent unbounded; then a result exponent above `e_max`
    /// saturates to the largest finite value of that sign, and one below `e_min` gives zero.
    ///
    /// `x = (-1)^negative * mag * 2^exp2 + (sticky ? (-1)^negative * delta * 2^exp2 : 0)` with
    /// `0 < delta < 1`: `sticky` says that nonzero bits lie below `mag`'s last bit. When `sticky`
    /// is set, `mag` must be at least `2^(p+1)` so that the rounding position lies inside `mag`
    /// (all internal callers guarantee this).
    pub(crate) fn round_u128(self, negative: bool, mag: u128, exp2: i64, sticky: bool) -> Float {
        if mag == 0 {
            return self.zero();
        }
        let p = self.p() as i64;
        let b = 128 - mag.leading_zeros() as i64;
        let (mut sig, mut e) = if b <= p {
            // Exact (a sticky tail below a p-bit mag would be a caller error; it is ignored).
            ((mag << (p - b)) as u64, exp2.saturating_sub(p - b))
        } else {
            let sh = (b - p) as u32;
            let q = mag >> sh;
            let rem = mag & ((1u128 << sh) - 1);
            let half = 1u128 << (sh - 1);
            let up = rem > half || (rem == half && (sticky || q & 1 == 1));
            ((q + up as u128) as u64, exp2.saturating_add(sh as i64))
        };
        if sig >> p != 0 {
            // Rounding carried into a new binade: 2^p -> 2^(p-1), one exponent up.
            sig >>= 1;
            e = e.saturating_add(1);
        }
        self.finish(negative, sig, e)
    }

    /// Range step of `round()`: `sig` is already a p-bit significand.
    fn finish(self, negative: bool, sig: u64, e: i64) -> Float {
        if e > self.e_max() as i64 {
            self.max_finite(negative)
        } else if e < self.e_min() as i64 {
            self.zero()
        } else {
            Float::from_raw(self, negative, e as i32, sig)
        }
    }

    /// `round(magnitude * 2^exp2)` with the sign `negative`, per docs/float.md: round to nearest
    /// p-bit significand (ties to even), then saturate above `e_max`, flush to zero below
    /// `e_min`. A zero magnitude gives zero (never a negative zero).
    pub fn round_exact(self, negative: bool, magnitude: &BigUint, exp2: i64) -> Float {
        let bits = magnitude.bits();
        if bits <= 128 {
            let digits = magnitude.to_u64_digits();
            let lo = digits.first().copied().unwrap_or(0) as u128;
            let hi = digits.get(1).copied().unwrap_or(0) as u128;
            return self.round_u128(negative, lo | (hi << 64), exp2, false);
        }
        let shift = bits - 126;
        let top: BigUint = magnitude >> shift;
        let digits = top.to_u64_digits();
        let lo = digits.first().copied().unwrap_or(0) as u128;
        let hi = digits.get(1).copied().unwrap_or(0) as u128;
        let sticky = magnitude.trailing_zeros().is_some_and(|tz| tz < shift);
        let shift = i64::try_from(shift).unwrap_or(i64::MAX);
        self.round_u128(
            negative,
            lo | (hi << 64),
            exp2.saturating_add(shift),
            sticky,
        )
    }

    /// `round(x)` of an f64, per docs/float.md (correctly rounded, saturating, flushing); ±infinity
    /// saturates to the largest finite value of that sign, ±0.0 gives zero, NaN is
    /// `Err(FloatError::NotANumber)`.
    pub fn from_f64(self, x: f64) -> Result<Float, FloatError> {
        if x.is_nan() {
            return Err(FloatError::NotANumber { format: self });
        }
        let negative = x.is_sign_negative();
        if x.is_infinite() {
            return Ok(self.max_finite(negative));
        }
        let bits = x.to_bits();
        let field = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1u64 << 52) - 1);
        let (mag, exp2) = if field == 0 {
            (frac, -1074)
        } else {
            (frac | (1u64 << 52), field - 1075)
        };
        Ok(self.round_u128(negative, mag as u128, exp2, false))
    }

    /// `round(x)` of an f32 (exact conversion to f64, then [`Format::from_f64`]).
    pub fn from_f32(self, x: f32) -> Result<Float, FloatError> {
        self.from_f64(x as f64)
    }

    /// `round(n)` of an integer.
    pub fn from_i64(self, n: i64) -> Float {
        self.round_u128(n < 0, n.unsigned_abs() as u128, 0, false)
    }
}

/// An exact fixed-point accumulator for sums of values of one format: a two's-complement integer
/// of `64 * limbs.len()` bits counting units of `2^base`.
///
/// Invariant: `limbs` is wide enough that no partial sum overflows (sized from the number of
/// terms and the exponent span when created).
pub(crate) struct Accumulator {
    base: i64,
    limbs: Vec<u64>,
}

impl Accumulator {
    /// Accumulator for any number of terms (up to 2^64) whose exponents lie in `[e_lo, e_hi]`
    /// and whose significands have at most `p` bits.
    pub(crate) fn new(e_lo: i64, e_hi: i64, p: u32) -> Accumulator {
        // Span of one term, plus 64 bits of headroom for the count, plus the sign.
        let span = (e_hi - e_lo).max(0) as u64 + p as u64 + 64 + 2;
        let limbs = span.div_ceil(64) as usize + 1;
        Accumulator {
            base: e_lo,
            limbs: vec![0; limbs],
        }
    }

    /// Add `(-1)^negative * sig * 2^exp` exactly (`exp >= base`).
    pub(crate) fn add(&mut self, negative: bool, sig: u64, exp: i64) {
        if sig == 0 {
            return;
        }
        let off = (exp - self.base) as u64;
        let limb = (off / 64) as usize;
        let bit = (off % 64) as u32;
        let wide = (sig as u128) << bit;
        let parts = [wide as u64, (wide >> 64) as u64];
        if negative {
            let mut borrow = false;
            for i in limb..self.limbs.len() {
                let sub = if i - limb < 2 { parts[i - limb] } else { 0 };
                if sub == 0 && !borrow && i - limb >= 2 {
                    break;
                }
                let (d1, b1) = self.limbs[i].overflowing_sub(sub);
                let (d2, b2) = d1.overflowing_sub(borrow as u64);
                self.limbs[i] = d2;
                borrow = b1 || b2;
            }
        } else {
            let mut carry = false;
            for i in limb..self.limbs.len() {
                let add = if i - limb < 2 { parts[i - limb] } else { 0 };
                if add == 0 && !carry && i - limb >= 2 {
                    break;
                }
                let (s1, c1) = self.limbs[i].overflowing_add(add);
                let (s2, c2) = s1.overflowing_add(carry as u64);
                self.limbs[i] = s2;
                carry = c1 || c2;
            }
        }
    }

    /// `round()` of the accumulated exact sum.
    pub(crate) fn round(mut self, format: Format) -> Float {
        let negative = self.limbs.last().is_some_and(|&top| top >> 63 == 1);
        if negative {
            // Two's-complement negation: invert and add one.
            let mut carry = true;
            for l in self.limbs.iter_mut() {
                let (s, c) = (!*l).overflowing_add(carry as u64);
                *l = s;
                carry = c;
            }
        }
        let Some(top) = self.limbs.iter().rposition(|&l| l != 0) else {
            return format.zero();
        };
        // Take the top 128 bits (limbs top and top-1, plus the high part of top-2) and a sticky
        // bit for everything below.
        let lz = self.limbs[top].leading_zeros();
        let get = |i: usize| -> u128 { self.limbs[i] as u128 };
        if top < 2 {
            let mag = get(0) | if top == 1 { get(1) << 64 } else { 0 };
            return format.round_u128(negative, mag, self.base, false);
        }
        // Window of 128 bits whose top bit is the sum's leading one.
        let total_shift = (top as u64 - 1) * 64 - lz as u64; // bit index of the window's bottom
        let w_lo = total_shift / 64;
        let w_bit = (total_shift % 64) as u32;
        let mut mag: u128 = get(w_lo as usize) >> w_bit;
        mag |= get(w_lo as usize + 1) << (64 - w_bit);
        if w_bit > 0 && (w_lo as usize + 2) < self.limbs.len() {
            mag |= get(w_lo as usize + 2) << (128 - w_bit);
        }
        let below_mask = if w_bit == 0 { 0 } else { (1u64 << w_bit) - 1 };
        let sticky = self.limbs[w_lo as usize] & below_mask != 0
            || self.limbs[..w_lo as usize].iter().any(|&l| l != 0);
        format.round_u128(
            negative,
            mag,
            self.base.saturating_add(total_shift as i64),
            sticky,
        )
    }
}
