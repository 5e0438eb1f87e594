//! Bit-sliced batches: wire-major, instance-minor, 64 instances per `u64` word.
//!
//! The input and output layout shared by the evaluators (`crate::eval`) and the model's
//! packing of instances (`crate::model`); it depends on neither.

/// A batch whose shape does not fit what it is built from or unpacked into.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum BatchError {
    /// An instance's bit count differs from the batch's row count.
    #[error("input width mismatch: the circuit has {expected} inputs, the batch has {got} rows")]
    InputWidth {
        /// The row count expected.
        expected: usize,
        /// The bits given.
        got: usize,
    },
    /// Any other shape mismatch (words, fields, widths).
    #[error("bad batch shape: {0}")]
    Shape(String),
}

/// A batch of `instances` evaluations of `rows` bits each, bit-sliced.
///
/// Layout: row `r` occupies `words[r * words_per_row .. (r + 1) * words_per_row]`, and instance
/// `i` is bit `i % 64` of word `i / 64` of its row. `words_per_row = ceil(instances / 64)`.
/// Invariant: the bits of the last word past `instances` (the tail) are zero.
///
/// On a little-endian machine the same bytes read as `u32` words are the GPU layout: 32
/// instances per word, `2 * words_per_row` words per row, instance `i` in bit `i % 32` of word
/// `i / 32`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Batch {
    rows: u32,
    instances: usize,
    words_per_row: usize,
    words: Vec<u64>,
}

/// Mask of the valid bits in the last word of a row of `instances` instances.
pub fn tail_mask(instances: usize) -> u64 {
    match instances % 64 {
        0 => u64::MAX,
        r => (1u64 << r) - 1,
    }
}

impl Batch {
    /// An all-zero batch.
    pub fn zeros(rows: u32, instances: usize) -> Batch {
        let words_per_row = instances.div_ceil(64);
        Batch {
            rows,
            instances,
            words_per_row,
            words: vec![0; rows as usize * words_per_row],
        }
    }

    /// A batch from raw words in the layout above. The length must be
    /// `rows * ceil(instances / 64)`; tail bits are cleared.
    pub fn from_words(
        rows: u32,
        instances: usize,
        mut words: Vec<u64>,
    ) -> Result<Batch, BatchError> {
        let words_per_row = instances.div_ceil(64);
        let expected = rows as usize * words_per_row;
        if words.len() != expected {
            return Err(BatchError::Shape(format!(
                "{} words given for {rows} rows of {instances} instances, expected {expected}",
                words.len()
            )));
        }
        if words_per_row > 0 {
            let m = tail_mask(instances);
            for r in 0..rows as usize {
                words[r * words_per_row + words_per_row - 1] &= m;
            }
        }
        Ok(Batch {
            rows,
            instances,
            words_per_row,
            words,
        })
    }

    /// Pack per-instance bit vectors: `bits[i][r]` is row `r` of instance `i`; every instance
    /// must have exactly `rows` bits.
    pub fn from_instances(rows: u32, bits: &[Vec<bool>]) -> Result<Batch, BatchError> {
        let mut b = Batch::zeros(rows, bits.len());
        for (i, v) in bits.iter().enumerate() {
            if v.len() != rows as usize {
                return Err(BatchError::InputWidth {
                    expected: rows as usize,
                    got: v.len(),
                });
            }
            for (r, &x) in v.iter().enumerate() {
                if x {
                    b.set(r as u32, i, true);
                }
            }
        }
        Ok(b)
    }

    /// Unpack into per-instance bit vectors (`out[i][r]`).
    pub fn to_instances(&self) -> Vec<Vec<bool>> {
        (0..self.instances)
            .map(|i| (0..self.rows).map(|r| self.get(r, i)).collect())
            .collect()
    }

    /// Pack numeric fields: each instance is a list of values, value `k` of width `widths[k]`
    /// bits (least significant bit in the lowest row), fields in consecutive rows.
    /// A value wider than its field, or a wrong number of fields, is an error.
    pub fn pack_fields(widths: &[u32], values: &[Vec<u64>]) -> Result<Batch, BatchError> {
        let rows: u32 = widths.iter().sum();
        let mut b = Batch::zeros(rows, values.len());
        for (i, v) in values.iter().enumerate() {
            if v.len() != widths.len() {
                return Err(BatchError::Shape(format!(
                    "instance {i} has {} fields, expected {}",
                    v.len(),
                    widths.len()
                )));
            }
            let mut r = 0u32;
            for (k, (&x, &w)) in v.iter().zip(widths).enumerate() {
                if w < 64 && x >> w != 0 {
                    return Err(BatchError::Shape(format!(
                        "instance {i} field {k}: value {x:#x} does not fit in {w} bits"
                    )));
                }
                for j in 0..w.min(64) {
                    if (x >> j) & 1 == 1 {
                        b.set(r + j, i, true);
                    }
                }
                r += w;
            }
        }
        Ok(b)
    }

    /// Unpack numeric fields (the inverse of [`Batch::pack_fields`]); fields wider than 64 bits
    /// keep their low 64 bits. Errors when the widths do not add up to the row count.
    pub fn unpack_fields(&self, widths: &[u32]) -> Result<Vec<Vec<u64>>, BatchError> {
        let total: u64 = widths.iter().map(|&w| w as u64).sum();
        if total != self.rows as u64 {
            return Err(BatchError::Shape(format!(
                "field widths add up to {total}, the batch has {} rows",
                self.rows
            )));
        }
        Ok((0..self.instances)
            .map(|i| {
                let mut r = 0u32;
                widths
                    .iter()
                    .map(|&w| {
                        let mut x = 0u64;
                        for j in 0..w {
                            if j < 64 && self.get(r + j, i) {
                                x |= 1 << j;
                            }
                        }
                        r += w;
                        x
                    })
                    .collect()
            })
            .collect())
    }

    /// Number of rows (bits per instance).
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Number of instances.
    pub fn instances(&self) -> usize {
        self.instances
    }

    /// Words per row: `ceil(instances / 64)`.
    pub fn words_per_row(&self) -> usize {
        self.words_per_row
    }

    /// All words, row after row.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// All words, mutable. Callers must keep the tail bits zero.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Consume the batch, returning its words.
    pub fn into_words(self) -> Vec<u64> {
        self.words
    }

    /// The words of row `r`.
    pub fn row(&self, r: u32) -> &[u64] {
        let s = r as usize * self.words_per_row;
        &self.words[s..s + self.words_per_row]
    }

    /// Bit of row `r`, instance `i` (panics if out of range, like slice indexing).
    pub fn get(&self, r: u32, i: usize) -> bool {
        assert!(i < self.instances, "instance {i} out of range");
        (self.words[r as usize * self.words_per_row + i / 64] >> (i % 64)) & 1 == 1
    }

    /// Set bit of row `r`, instance `i` (panics if out of range, like slice indexing).
    pub fn set(&mut self, r: u32, i: usize, v: bool) {
        assert!(i < self.instances, "instance {i} out of range");
        let w = &mut self.words[r as usize * self.words_per_row + i / 64];
        if v {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
}
