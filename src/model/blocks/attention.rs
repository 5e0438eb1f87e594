//! The attention matrix (Definition 4.4) and the single attention layer (Definition 4.5).
//!
//! With `X: [n, d]` and constant `W_Q, W_K: [d, d_k]`, `W_V: [d, d_v]` (applied as `X W`, the
//! paper's orientation):
//! - scores `s_ij = round(sum_c round(q_ic k_jc))` with `Q = X W_Q`, `K = X W_K` (each a
//!   constant-weight product, [`super::linear::matmul_const`]), optionally multiplied by a
//!   constant `scale` (`round(s_ij * scale)`); `X_i W_Q W_K^T X_j^T` of Definition 4.4 is
//!   evaluated as `(X_i W_Q)(X_j W_K)^T`, the real model's order (the paper's proof first forms
//!   the constant `W_Q W_K^T`, a level that costs no depth for constant weights);
//! - `A_ij = exp(s_ij)` (Definition 4.4), or with [`AttnOptions::subtract_max`]
//!   `exp(round(s_ij - max_j s_ij))` (the usual stable softmax);
//! - [`softmax_rows`]: `r_i = round(sum_j A_ij)` (one exact sum) and `P_ij = round(A_ij / r_i)`;
//! - `Attn(X) = D^{-1} A X W_V` (Definition 4.5) is evaluated as `P V` with `V = X W_V`:
//!   entry `(i, c) = round(sum_j round(P_ij V_jc))`. The division by the row sum happens before
//!   the product with V, as in the real model's softmax.
//!
//! Depth (see `docs/blocks.md`): scores `d_mulc + d_⊕ + d_mul + d_⊕` (+ `d_mulc` with a scale),
//! exp `d_exp` (+ `d_max + d_sub` with the max subtracted), row sum `d_⊕`, division `d_div`,
//! `P V`: `d_mul + d_⊕`. Lemma 5.3 (`3(d_std + d_⊕) + d_exp`) covers the matrix A; the layer
//! needs `d_⊕ + d_div + d_mul + d_⊕` more, which the paper does not count.

use crate::float::Float;

use super::super::arith::{Arith, Unary};
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::linear::{matmul, matmul_const};

/// Options of the attention blocks.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct AttnOptions {
    /// Subtract the row maximum from the scores before `exp` (the usual stable softmax). The
    /// paper's Definition 4.4 does not.
    pub subtract_max: bool,
    /// Multiply the scores by this constant (e.g. `1/sqrt(d_k)`); the paper has none.
    pub scale: Option<Float>,
}

/// The score matrix `s_ij = (X_i W_Q) . (X_j W_K)` (optionally scaled), `[n, n]`.
pub fn scores<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    wq: &Tensor<Float>,
    wk: &Tensor<Float>,
    scale: Option<Float>,
) -> Result<Tensor<A::V>> {
    if wq.shape() != wk.shape() {
        return Err(ModelError::Shape {
            op: "attention scores",
            detail: format!("W_Q {:?} and W_K {:?}", wq.shape(), wk.shape()),
        });
    }
    let q = matmul_const(a, x, wq)?;
    let k = matmul_const(a, x, wk)?;
    let s = matmul(a, &q, &k.transpose()?)?;
    match scale {
        None => Ok(s),
        Some(c) => s.try_map(|v| a.mul_const(v, c)),
    }
}

/// Row-wise softmax of `s: [n, k]`: `P_ij = round(e_ij / round(sum_j e_ij))` with
/// `e_ij = exp(s_ij)` or, when `subtract_max`, `exp(round(s_ij - max_j s_ij))`.
pub fn softmax_rows<A: Arith>(
    a: &mut A,
    s: &Tensor<A::V>,
    subtract_max: bool,
) -> Result<Tensor<A::V>> {
    let e = exp_rows(a, s, subtract_max)?;
    let (n, k) = (e.shape()[0], e.shape()[1]);
    let mut data = Vec::with_capacity(n * k);
    for i in 0..n {
        let row = e.row(i)?;
        let r = a.sum(row)?;
        for v in row {
            data.push(a.div(v, &r)?);
        }
    }
    Tensor::new(vec![n, k], data)
}

/// `exp` of every score, optionally after subtracting the row maximum.
fn exp_rows<A: Arith>(a: &mut A, s: &Tensor<A::V>, subtract_max: bool) -> Result<Tensor<A::V>> {
    s.expect_rank("softmax", 2)?;
    let (n, k) = (s.shape()[0], s.shape()[1]);
    let mut data = Vec::with_capacity(n * k);
    for i in 0..n {
        let row = s.row(i)?;
        let m = if subtract_max && k > 0 {
            Some(a.max_n(row)?)
        } else {
            None
        };
        for v in row {
            let arg = match &m {
                Some(m) => a.sub(v, m)?,
                None => v.clone(),
            };
            data.push(a.unary(Unary::Exp, &arg)?);
        }
    }
    Tensor::new(vec![n, k], data)
}

/// The attention matrix of Definition 4.4: `A_ij = exp(X_i W_Q W_K^T X_j^T)` (with the options),
/// `[n, n]`.
pub fn attention_matrix<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    wq: &Tensor<Float>,
    wk: &Tensor<Float>,
    opts: AttnOptions,
) -> Result<Tensor<A::V>> {
    let s = scores(a, x, wq, wk, opts.scale)?;
    exp_rows(a, &s, opts.subtract_max)
}

/// The single attention layer of Definition 4.5: `Attn(X) = D^{-1} A X W_V`, `[n, d_v]`,
/// evaluated as `softmax_rows(scores) (X W_V)` (see the module docs).
pub fn attention<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    wq: &Tensor<Float>,
    wk: &Tensor<Float>,
    wv: &Tensor<Float>,
    opts: AttnOptions,
) -> Result<Tensor<A::V>> {
    let s = scores(a, x, wq, wk, opts.scale)?;
    let p = softmax_rows(a, &s, opts.subtract_max)?;
    let v = matmul_const(a, x, wv)?;
    matmul(a, &p, &v)
}
