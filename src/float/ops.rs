//! Arithmetic: add, sub, mul, div, neg, abs, compare, max, min, floor, and the iterated sum,
//! product and dot product. Each result is the exact result passed once through `round()`.

use std::cmp::Ordering;

use num_bigint::BigUint;

use super::round::Accumulator;
use super::{Float, FloatError, Format};

/// Exponent gap beyond which the smaller addend only contributes a sticky bit.
const FAR_GAP: i64 = 90;

// add/sub/mul/div return `Result` (operands of two formats are an error) and neg is kept next to
// them for symmetry, so the std::ops traits do not fit these names.
#[allow(clippy::should_implement_trait)]
impl Float {
    fn same_format(self, o: Float) -> Result<Format, FloatError> {
        if self.format() == o.format() {
            Ok(self.format())
        } else {
            Err(FloatError::FormatMismatch {
                left: self.format(),
                right: o.format(),
            })
        }
    }

    /// `round(self + o)`; `Err(FormatMismatch)` for operands of different formats.
    /// `x + (-x)` is zero (never a negative zero).
    pub fn add(self, o: Float) -> Result<Float, FloatError> {
        let f = self.same_format(o)?;
        Ok(add_same(f, self, o))
    }

    /// `round(self - o)`; `Err(FormatMismatch)` for operands of different formats.
    pub fn sub(self, o: Float) -> Result<Float, FloatError> {
        let f = self.same_format(o)?;
        Ok(add_same(f, self, o.neg()))
    }

    /// `round(self * o)`; `Err(FormatMismatch)` for operands of different formats.
    pub fn mul(self, o: Float) -> Result<Float, FloatError> {
        let f = self.same_format(o)?;
        if self.is_zero() || o.is_zero() {
            return Ok(f.zero());
        }
        let m = self.sig() as u128 * o.sig() as u128;
        let e = self.exp() as i64 + o.exp() as i64;
        Ok(f.round_u128(self.is_negative() != o.is_negative(), m, e, false))
    }

    /// `round(self / o)`; `x / 0` is the largest finite value with the sign of `x`, `0 / 0` is
    /// zero; `Err(FormatMismatch)` for operands of different formats.
    pub fn div(self, o: Float) -> Result<Float, FloatError> {
        let f = self.same_format(o)?;
        if self.is_zero() {
            return Ok(f.zero());
        }
        if o.is_zero() {
            return Ok(f.max_finite(self.is_negative()));
        }
        // q = floor(ma * 2^s / mb) has at least p + 2 bits: ma * 2^(p+3) >= 2^(2p+2) > 2^(p+1) * mb.
        let s = f.p() + 3;
        let num = (self.sig() as u128) << s;
        let den = o.sig() as u128;
        let q = num / den;
        let sticky = num % den != 0;
        let e = self.exp() as i64 - o.exp() as i64 - s as i64;
        Ok(f.round_u128(self.is_negative() != o.is_negative(), q, e, sticky))
    }

    /// `-self` (exact; zero stays the one zero).
    pub fn neg(self) -> Float {
        Float::from_raw(self.format(), !self.is_negative(), self.exp(), self.sig())
    }

    /// `|self|` (exact).
    pub fn abs(self) -> Float {
        Float::from_raw(self.format(), false, self.exp(), self.sig())
    }

    /// The usual total order of the values; `Err(FormatMismatch)` for different formats.
    pub fn cmp_value(self, o: Float) -> Result<Ordering, FloatError> {
        self.same_format(o)?;
        Ok(cmp_same(self, o))
    }

    /// The larger of the two values; `Err(FormatMismatch)` for different formats.
    pub fn max(self, o: Float) -> Result<Float, FloatError> {
        Ok(if self.cmp_value(o)? == Ordering::Less {
            o
        } else {
            self
        })
    }

    /// The smaller of the two values; `Err(FormatMismatch)` for different formats.
    pub fn min(self, o: Float) -> Result<Float, FloatError> {
        Ok(if self.cmp_value(o)? == Ordering::Greater {
            o
        } else {
            self
        })
    }

    /// The largest representable integer-valued value `<= self` (docs/float.md). Values with
    /// `e >= 0` are integers and return themselves; zero is always a candidate, so in formats
    /// where small integers are not representable the result may be zero (or, for negative
    /// inputs, the nearest representable integer below).
    pub fn floor(self) -> Float {
        let f = self.format();
        if self.is_zero() || self.exp() >= 0 {
            return self;
        }
        let p = f.p() as i64;
        let sh = (-(self.exp() as i64)) as u32; // >= 1
        let int_part = if sh >= 64 { 0 } else { self.sig() >> sh };
        let frac_nonzero = sh >= 64 || self.sig() & ((1u64 << sh) - 1) != 0;
        if !self.is_negative() {
            // Largest representable integer <= N = int_part: round N down to p bits. Since
            // N < 2^p it is exact when representable; if its exponent is below e_min, so is
            // every smaller positive integer's, and the answer is zero.
            if int_part == 0 {
                return f.zero();
            }
            let b = 64 - int_part.leading_zeros() as i64;
            let e = b - p;
            if e < f.e_min() as i64 {
                return f.zero();
            }
            return Float::from_raw(f, false, e as i32, int_part << (p - b));
        }
        // Negative: smallest representable integer magnitude >= M = ceil(|x|). Here e <= -1,
        // so |x| < 2^(p-1) and M <= 2^(p-1) has at most p bits: M itself is the candidate.
        let m = int_part + frac_nonzero as u64;
        let b = 64 - m.leading_zeros() as i64;
        let e = b - p;
        if e < f.e_min() as i64 {
            // Unreachable for representable x (|x| >= min_positive forces M's exponent >= e_min);
            // kept total: the smallest positive value is the next candidate.
            return Float::from_raw(f, true, f.e_min(), f.sig_min());
        }
        Float::from_raw(f, true, e as i32, m << (p - b))
    }
}

fn cmp_same(a: Float, b: Float) -> Ordering {
    let key = |x: Float| -> (i8, i64, u64) {
        if x.is_zero() {
            (0, 0, 0)
        } else {
            (
                if x.is_negative() { -1 } else { 1 },
                x.exp() as i64,
                x.sig(),
            )
        }
    };
    let (sa, ea, ma) = key(a);
    let (sb, eb, mb) = key(b);
    match sa.cmp(&sb) {
        Ordering::Equal => {}
        o => return o,
    }
    let mag = (ea, ma).cmp(&(eb, mb));
    if sa < 0 {
        mag.reverse()
    } else {
        mag
    }
}

/// `round(a + b)` for operands of format `f`.
fn add_same(f: Format, a: Float, b: Float) -> Float {
    if a.is_zero() {
        return b;
    }
    if b.is_zero() {
        return a;
    }
    // Order by exponent: `hi` has the larger exponent.
    let (hi, lo) = if a.exp() >= b.exp() { (a, b) } else { (b, a) };
    let gap = hi.exp() as i64 - lo.exp() as i64;
    let same_sign = hi.is_negative() == lo.is_negative();
    if gap <= FAR_GAP {
        // Exact in u128: hi.sig << gap < 2^(32 + 90).
        let big = (hi.sig() as u128) << gap;
        let small = lo.sig() as u128;
        let (neg, mag) = if same_sign {
            (hi.is_negative(), big + small)
        } else if big >= small {
            (hi.is_negative(), big - small)
        } else {
            (lo.is_negative(), small - big)
        };
        return f.round_u128(neg, mag, lo.exp() as i64, false);
    }
    // |lo| < 2^(32 + lo.exp) <= 2^(hi.exp - 58): less than one unit of hi.sig * 2^40 at
    // exponent hi.exp - 40, so it only decides the sticky bit (and a borrow when subtracting).
    let big = (hi.sig() as u128) << 40;
    let mag = if same_sign { big } else { big - 1 };
    f.round_u128(hi.is_negative(), mag, hi.exp() as i64 - 40, true)
}

impl Format {
    fn check_all(self, xs: &[Float]) -> Result<(), FloatError> {
        match xs.iter().find(|x| x.format() != self) {
            Some(x) => Err(FloatError::FormatMismatch {
                left: self,
                right: x.format(),
            }),
            None => Ok(()),
        }
    }

    /// The exact sum of `xs`, rounded once (paper Lemma 3.5 part 3); zero for an empty slice.
    /// `Err(FormatMismatch)` if any element has another format.
    pub fn sum(self, xs: &[Float]) -> Result<Float, FloatError> {
        self.check_all(xs)?;
        Ok(self.sum_unchecked(xs))
    }

    fn sum_unchecked(self, xs: &[Float]) -> Float {
        let mut nonzero = xs.iter().filter(|x| !x.is_zero()).peekable();
        if nonzero.peek().is_none() {
            return self.zero();
        }
        let (lo, hi) = nonzero.fold((i64::MAX, i64::MIN), |(lo, hi), x| {
            (lo.min(x.exp() as i64), hi.max(x.exp() as i64))
        });
        // Fast path: everything fits a 126-bit signed fixed-point word.
        let n_bits = 64 - (xs.len() as u64).leading_zeros() as i64;
        if hi - lo + self.p() as i64 + n_bits <= 125 {
            let mut acc: i128 = 0;
            for x in xs.iter().filter(|x| !x.is_zero()) {
                let v = (x.sig() as i128) << (x.exp() as i64 - lo);
                acc += if x.is_negative() { -v } else { v };
            }
            return self.round_u128(acc < 0, acc.unsigned_abs(), lo, false);
        }
        let mut acc = Accumulator::new(lo, hi, self.p());
        for x in xs {
            acc.add(x.is_negative(), x.sig(), x.exp() as i64);
        }
        acc.round(self)
    }

    /// The exact product of `xs`, rounded once (paper Lemma 3.5 part 2). The empty product is 1,
    /// or `Err(NotRepresentable)` in a format without 1. `Err(FormatMismatch)` if any element has
    /// another format.
    pub fn product(self, xs: &[Float]) -> Result<Float, FloatError> {
        self.check_all(xs)?;
        if xs.is_empty() {
            return self.one();
        }
        if xs.iter().any(|x| x.is_zero()) {
            return Ok(self.zero());
        }
        let negative = xs.iter().filter(|x| x.is_negative()).count() % 2 == 1;
        let exp: i64 = xs.iter().map(|x| x.exp() as i64).sum();
        // Multiply significands in u128 while they fit, spilling into a BigUint.
        let mut big = BigUint::from(1u32);
        let mut word: u128 = 1;
        for x in xs {
            match word.checked_mul(x.sig() as u128) {
                Some(w) if w >> 96 == 0 => word = w,
                _ => {
                    big *= word;
                    word = x.sig() as u128;
                }
            }
        }
        big *= word;
        Ok(self.round_exact(negative, &big, exp))
    }

    /// The paper's dot product `round(sum_i round(a_i * b_i))`: each product rounded, then one
    /// exact sum rounded once; zero for empty vectors. `Err(LengthMismatch)` for vectors of
    /// different lengths, `Err(FormatMismatch)` if any element has another format.
    pub fn dot(self, a: &[Float], b: &[Float]) -> Result<Float, FloatError> {
        if a.len() != b.len() {
            return Err(FloatError::LengthMismatch {
                left: a.len(),
                right: b.len(),
            });
        }
        self.check_all(a)?;
        self.check_all(b)?;
        let products: Vec<Float> = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| x.mul(y).unwrap_or_else(|_| self.zero()))
            .collect();
        Ok(self.sum_unchecked(&products))
    }
}
