//! A small row-major tensor type shared by the model blocks.
//!
//! `Tensor<V>` holds a shape and a flat, row-major (last axis fastest) data vector. The element
//! type is generic: `Tensor<Float>` holds constants (weights, reference activations),
//! `Tensor<FloatWord>` holds circuit activations, `Tensor<f32>` the f32 model's. Every
//! constructor checks `data.len() == product(shape)`; indexing is checked and returns
//! [`ModelError::Shape`] instead of panicking.

use crate::circuit::random::SplitMix64;
use crate::float::{Float, Format};

use super::error::{ModelError, Result};

/// A row-major tensor.
///
/// Invariant: `data.len() == shape.iter().product()` (an empty shape is a scalar of one element).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<V> {
    shape: Vec<usize>,
    data: Vec<V>,
}

fn numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &s| {
        acc.checked_mul(s).ok_or(ModelError::Shape {
            op,
            detail: format!("shape {shape:?} overflows"),
        })
    })
}

impl<V> Tensor<V> {
    /// A tensor of `shape` holding `data` row-major; errors when the lengths do not match.
    pub fn new(shape: Vec<usize>, data: Vec<V>) -> Result<Self> {
        let n = numel("Tensor::new", &shape)?;
        if n != data.len() {
            return Err(ModelError::Shape {
                op: "Tensor::new",
                detail: format!("shape {shape:?} needs {n} elements, got {}", data.len()),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor whose element at each multi-index is `f(index)` (row-major order of calls).
    pub fn from_fn(shape: Vec<usize>, mut f: impl FnMut(&[usize]) -> Result<V>) -> Result<Self> {
        let n = numel("Tensor::from_fn", &shape)?;
        let mut data = Vec::with_capacity(n);
        let mut idx = vec![0usize; shape.len()];
        for _ in 0..n {
            data.push(f(&idx)?);
            for ax in (0..shape.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        Ok(Tensor { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor has no element (some axis has length 0).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The flat row-major data.
    pub fn data(&self) -> &[V] {
        &self.data
    }

    /// The flat row-major data, consuming the tensor.
    pub fn into_data(self) -> Vec<V> {
        self.data
    }

    /// Check that the tensor has rank `rank`, for operation `op`.
    pub fn expect_rank(&self, op: &'static str, rank: usize) -> Result<()> {
        if self.shape.len() != rank {
            return Err(ModelError::Shape {
                op,
                detail: format!("expected rank {rank}, got shape {:?}", self.shape),
            });
        }
        Ok(())
    }

    /// The flat offset of a multi-index (checked).
    pub fn offset(&self, idx: &[usize]) -> Result<usize> {
        if idx.len() != self.shape.len() || idx.iter().zip(&self.shape).any(|(&i, &s)| i >= s) {
            return Err(ModelError::Shape {
                op: "Tensor::index",
                detail: format!("index {idx:?} out of shape {:?}", self.shape),
            });
        }
        Ok(idx
            .iter()
            .zip(&self.shape)
            .fold(0usize, |acc, (&i, &s)| acc * s + i))
    }

    /// The element at a multi-index (checked).
    pub fn get(&self, idx: &[usize]) -> Result<&V> {
        let o = self.offset(idx)?;
        Ok(&self.data[o])
    }

    /// Row `i` of a rank-2 tensor: the contiguous slice `[i, ..]`.
    pub fn row(&self, i: usize) -> Result<&[V]> {
        self.expect_rank("Tensor::row", 2)?;
        if i >= self.shape[0] {
            return Err(ModelError::Shape {
                op: "Tensor::row",
                detail: format!("row {i} of shape {:?}", self.shape),
            });
        }
        let w = self.shape[1];
        Ok(&self.data[i * w..(i + 1) * w])
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(self, shape: Vec<usize>) -> Result<Self> {
        Tensor::new(shape, self.data)
    }

    /// The transpose of a rank-2 tensor.
    pub fn transpose(&self) -> Result<Self>
    where
        V: Clone,
    {
        self.expect_rank("Tensor::transpose", 2)?;
        let (r, c) = (self.shape[0], self.shape[1]);
        Tensor::from_fn(vec![c, r], |ix| Ok(self.data[ix[1] * c + ix[0]].clone()))
    }

    /// Apply `f` to every element.
    pub fn try_map<U>(&self, f: impl FnMut(&V) -> Result<U>) -> Result<Tensor<U>> {
        Ok(Tensor {
            shape: self.shape.clone(),
            data: self.data.iter().map(f).collect::<Result<_>>()?,
        })
    }
}

impl Tensor<Float> {
    /// A tensor of zeros of format `fmt`.
    pub fn zeros(fmt: Format, shape: Vec<usize>) -> Result<Self> {
        let n = numel("Tensor::zeros", &shape)?;
        Tensor::new(shape, vec![fmt.zero(); n])
    }

    /// `round(x)` of f64 values (row-major) in format `fmt`; errors on a non-finite value.
    pub fn from_f64(fmt: Format, shape: Vec<usize>, xs: &[f64]) -> Result<Self> {
        let data = xs
            .iter()
            .map(|&x| Ok(fmt.from_f64(x)?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::new(shape, data)
    }

    /// Seeded random values: `round(u)` with `u` uniform in `[-scale, scale]` (53-bit draws of
    /// [`SplitMix64`], so the tensor is a deterministic function of `(fmt, shape, seed, scale)`).
    pub fn random(fmt: Format, shape: Vec<usize>, seed: u64, scale: f64) -> Result<Self> {
        if !scale.is_finite() {
            return Err(ModelError::Config {
                field: "scale".into(),
                reason: format!("{scale} is not finite"),
            });
        }
        let n = numel("Tensor::random", &shape)?;
        let mut rng = SplitMix64::new(seed);
        let xs: Vec<f64> = (0..n)
            .map(|_| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                (2.0 * u - 1.0) * scale
            })
            .collect();
        Tensor::from_f64(fmt, shape, &xs)
    }

    /// The encodings ([`Float::to_bits`]) of the elements, row-major.
    pub fn to_bits(&self) -> Vec<u64> {
        self.data.iter().map(|x| x.to_bits()).collect()
    }

    /// The values as f64, row-major.
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.iter().map(|x| x.to_f64()).collect()
    }
}
