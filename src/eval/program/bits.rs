//! Bit-sliced tensor values and the bit-range copies that gather and scatter them.
//!
//! A tensor value over a batch is stored bit-sliced like a [`crate::eval::Batch`]: bit `k` of
//! element `e` is *row* `e * width + k`, and a row holds one bit per batch instance, instance `b`
//! in bit `b % 64` of word `b / 64`. The rows of one element are contiguous, so an element is a
//! contiguous block of `width * words_per_row` words. Invariant: the bits past the batch in the
//! last word of every row are zero (the copies below rely on it: they OR whole words).

use super::super::EvalError;

/// Words per row of a batch of `batch` instances.
#[inline]
pub fn words_per_row(batch: usize) -> usize {
    batch.div_ceil(64)
}

/// OR the first `nbits` bits of `src` (whose bits past `nbits` are zero) into `dst` starting at
/// bit `at`. `dst` must hold bit `at + nbits - 1`.
#[inline]
pub fn or_bits(dst: &mut [u64], at: usize, src: &[u64], nbits: usize) {
    let sh = at % 64;
    let base = at / 64;
    let n = nbits.div_ceil(64);
    if sh == 0 {
        for (d, &s) in dst[base..base + n].iter_mut().zip(&src[..n]) {
            *d |= s;
        }
        return;
    }
    let last = (at + nbits - 1) / 64;
    for (i, &s) in src[..n].iter().enumerate() {
        if s == 0 {
            continue;
        }
        dst[base + i] |= s << sh;
        if base + i < last {
            dst[base + i + 1] |= s >> (64 - sh);
        }
    }
}

/// Set bits `at .. at + nbits` of `dst`.
#[inline]
pub fn set_bits(dst: &mut [u64], at: usize, nbits: usize) {
    let mut i = at;
    let end = at + nbits;
    while i < end {
        let w = i / 64;
        let lo = i % 64;
        let hi = (end - w * 64).min(64);
        let m = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        dst[w] |= m;
        i = w * 64 + hi;
    }
}

/// Copy bits `at .. at + nbits` of `src` into the zeroed `dst` (bit 0 onwards); the bits of
/// `dst` past `nbits` stay zero.
#[inline]
pub fn extract_bits(dst: &mut [u64], src: &[u64], at: usize, nbits: usize) {
    let sh = at % 64;
    let base = at / 64;
    let n = nbits.div_ceil(64);
    for (i, d) in dst[..n].iter_mut().enumerate() {
        let lo = src[base + i] >> sh;
        let hi = if sh != 0 && base + i + 1 < src.len() {
            src[base + i + 1] << (64 - sh)
        } else {
            0
        };
        *d = lo | hi;
    }
    let rem = nbits % 64;
    if rem != 0 {
        dst[n - 1] &= (1u64 << rem) - 1;
    }
}

/// The values of one tensor for every batch instance, bit-sliced (see the module docs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TensorData {
    width: u32,
    len: u64,
    batch: usize,
    words: Vec<u64>,
}

/// Allocate `n` zero words, refusing (instead of aborting) when the allocation fails.
pub(crate) fn zeroed_words(n: usize, what: &str) -> Result<Vec<u64>, EvalError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| EvalError::LimitExceeded {
            what: format!("{what} (bytes)"),
            needed: (n as u64).saturating_mul(8),
            limit: isize::MAX as u64,
        })?;
    v.resize(n, 0);
    Ok(v)
}

impl TensorData {
    /// All-zero values of `len` elements of `width` bits for `batch` instances.
    pub fn zeros(width: u32, len: u64, batch: usize) -> Result<TensorData, EvalError> {
        let rows = (len as u128) * width as u128;
        let n = rows * words_per_row(batch) as u128;
        if n > isize::MAX as u128 / 8 {
            return Err(EvalError::LimitExceeded {
                what: "tensor value (bytes)".into(),
                needed: u64::try_from(n * 8).unwrap_or(u64::MAX),
                limit: isize::MAX as u64,
            });
        }
        Ok(TensorData {
            width,
            len,
            batch,
            words: zeroed_words(n as usize, "tensor value")?,
        })
    }

    /// Values from encodings: `values[b][e]` is element `e` of batch instance `b` (its low
    /// `width` bits; `width <= 64`). Every instance must have `len` elements, every value must
    /// fit in `width` bits.
    pub fn from_values(width: u32, len: u64, values: &[Vec<u64>]) -> Result<TensorData, EvalError> {
        if width == 0 || width > 64 {
            return Err(EvalError::BatchShape(format!(
                "element width {width}: values are given as u64 (1..=64 bits)"
            )));
        }
        let mut t = TensorData::zeros(width, len, values.len())?;
        let wpr = words_per_row(values.len());
        for (b, v) in values.iter().enumerate() {
            if v.len() as u64 != len {
                return Err(EvalError::BatchShape(format!(
                    "instance {b} has {} elements, expected {len}",
                    v.len()
                )));
            }
            for (e, &x) in v.iter().enumerate() {
                if width < 64 && x >> width != 0 {
                    return Err(EvalError::BatchShape(format!(
                        "instance {b}, element {e}: value {x:#x} does not fit in {width} bits"
                    )));
                }
                for k in 0..width as usize {
                    if x >> k & 1 == 1 {
                        let row = e * width as usize + k;
                        t.words[row * wpr + b / 64] |= 1u64 << (b % 64);
                    }
                }
            }
        }
        Ok(t)
    }

    /// The same encodings `values[e]` for every one of `batch` instances.
    pub fn broadcast(width: u32, values: &[u64], batch: usize) -> Result<TensorData, EvalError> {
        let mut t = TensorData::zeros(width, values.len() as u64, batch)?;
        let wpr = words_per_row(batch);
        for (e, &x) in values.iter().enumerate() {
            for k in 0..width.min(64) as usize {
                if x >> k & 1 == 1 {
                    let row = e * width as usize + k;
                    set_bits(&mut t.words[row * wpr..(row + 1) * wpr], 0, batch);
                }
            }
        }
        Ok(t)
    }

    /// Encodings `[b][e]` (elements wider than 64 bits keep their low 64 bits).
    pub fn to_values(&self) -> Vec<Vec<u64>> {
        (0..self.batch)
            .map(|b| (0..self.len).map(|e| self.value(e, b)).collect())
            .collect()
    }

    /// Element `e` of batch instance `b` (low 64 bits). Panics when out of range.
    pub fn value(&self, e: u64, b: usize) -> u64 {
        let wpr = words_per_row(self.batch);
        let mut x = 0u64;
        for k in 0..self.width.min(64) as usize {
            let row = e as usize * self.width as usize + k;
            x |= (self.words[row * wpr + b / 64] >> (b % 64) & 1) << k;
        }
        x
    }

    /// Bits per element.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of batch instances.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    /// The words, row after row.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    pub(crate) fn from_raw(width: u32, len: u64, batch: usize, words: Vec<u64>) -> TensorData {
        debug_assert_eq!(
            words.len(),
            len as usize * width as usize * words_per_row(batch)
        );
        TensorData {
            width,
            len,
            batch,
            words,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &[u64], i: usize) -> bool {
        v[i / 64] >> (i % 64) & 1 == 1
    }

    #[test]
    fn or_and_extract_round_trip_at_every_offset() {
        let mut s = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for nbits in [1usize, 5, 63, 64, 65, 127, 128, 200] {
            for at in [0usize, 1, 7, 63, 64, 65, 100, 191] {
                let mut src: Vec<u64> = (0..nbits.div_ceil(64)).map(|_| rnd()).collect();
                if nbits % 64 != 0 {
                    *src.last_mut().unwrap() &= (1u64 << (nbits % 64)) - 1;
                }
                let mut dst = vec![0u64; (at + nbits).div_ceil(64)];
                or_bits(&mut dst, at, &src, nbits);
                for i in 0..dst.len() * 64 {
                    let want = i >= at && i < at + nbits && get(&src, i - at);
                    assert_eq!(get(&dst, i), want, "or_bits nbits {nbits} at {at} bit {i}");
                }
                let mut back = vec![0u64; nbits.div_ceil(64)];
                extract_bits(&mut back, &dst, at, nbits);
                assert_eq!(back, src, "extract nbits {nbits} at {at}");
                let mut ones = vec![0u64; (at + nbits).div_ceil(64)];
                set_bits(&mut ones, at, nbits);
                for i in 0..ones.len() * 64 {
                    assert_eq!(get(&ones, i), i >= at && i < at + nbits);
                }
            }
        }
    }

    #[test]
    fn values_round_trip_and_bad_values_are_refused() {
        let vals: Vec<Vec<u64>> = (0..70u64).map(|b| vec![b % 8, (b * 5) % 8]).collect();
        let t = TensorData::from_values(3, 2, &vals).unwrap();
        assert_eq!(t.to_values(), vals);
        assert!(TensorData::from_values(3, 2, &[vec![8, 0]]).is_err());
        assert!(TensorData::from_values(3, 2, &[vec![1]]).is_err());
        assert!(TensorData::from_values(65, 1, &[vec![1]]).is_err());
        let b = TensorData::broadcast(4, &[5, 10], 67).unwrap();
        assert!(b.to_values().iter().all(|v| v == &vec![5, 10]));
    }
}
