//! Matrix products with constant weights (Lemma 5.2) and the MLP layer (Definition 4.6).
//!
//! Semantics: entry `y_ij = round(sum_k round(x_ik w_jk) [+ b_j])`: the paper's dot product
//! ([`Arith::dot_const`], Lemma 3.5) with the bias as one more term of the single exact sum.
//! Depth: `d_mulc + d_sum` where `d_mulc` is the constant-multiplier gadget's depth
//! (`<= d_std`) and `d_sum` the iterated sum's, independent of n and d (Lemma 5.2:
//! `d_std + d_⊕`; Lemma 5.4: `2 d_std + d_⊕` is an upper bound because the bias is fused).

use crate::float::Float;

use super::super::arith::Arith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;

/// `round(sum_k round(x_k c_k) + bias)` (bias as one more exact term; zero weights dropped).
pub fn affine_dot<A: Arith>(
    a: &mut A,
    x: &[A::V],
    c: &[Float],
    bias: Option<Float>,
) -> Result<A::V> {
    if x.len() != c.len() {
        return Err(ModelError::Shape {
            op: "affine_dot",
            detail: format!("lengths {} and {}", x.len(), c.len()),
        });
    }
    let mut terms = Vec::with_capacity(x.len() + 1);
    for (xv, &k) in x.iter().zip(c) {
        // round(x * 0) = 0 adds nothing; round(x * 1) = x and round(x * -1) = -x exactly.
        let kf = k.to_f64();
        if kf == 0.0 {
            continue;
        } else if kf == 1.0 {
            terms.push(xv.clone());
        } else if kf == -1.0 {
            terms.push(a.neg(xv)?);
        } else {
            terms.push(a.mul_const(xv, k)?);
        }
    }
    if let Some(b) = bias {
        if !b.is_zero() {
            terms.push(a.constant(b)?);
        }
    }
    a.sum(&terms)
}

/// `Y = X W^T + b` with `x: [n, d_in]`, constant `w: [d_out, d_in]` (PyTorch `nn.Linear`
/// layout) and optional `bias` of length `d_out`; returns `[n, d_out]`.
/// Each entry is [`affine_dot`] (one rounding of the exact sum, bias included).
pub fn linear<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    w: &Tensor<Float>,
    bias: Option<&[Float]>,
) -> Result<Tensor<A::V>> {
    x.expect_rank("linear: x", 2)?;
    w.expect_rank("linear: w", 2)?;
    let (n, din) = (x.shape()[0], x.shape()[1]);
    let dout = w.shape()[0];
    if w.shape()[1] != din {
        return Err(ModelError::Shape {
            op: "linear",
            detail: format!("x {:?} and w {:?}", x.shape(), w.shape()),
        });
    }
    if let Some(b) = bias {
        if b.len() != dout {
            return Err(ModelError::Shape {
                op: "linear",
                detail: format!("bias of length {} for {dout} outputs", b.len()),
            });
        }
    }
    let mut data = Vec::with_capacity(n * dout);
    for i in 0..n {
        let xi = x.row(i)?;
        for j in 0..dout {
            data.push(affine_dot(a, xi, w.row(j)?, bias.map(|b| b[j]))?);
        }
    }
    Tensor::new(vec![n, dout], data)
}

/// The MLP layer of Definition 4.6: `g(X)_i = W X_i + b` (= [`linear`] with a bias).
/// Lemma 5.4 bounds its depth by `2 d_std + d_⊕`; this construction has depth
/// `d_mulc + d_⊕` because the bias is one more term of the exact sum.
pub fn mlp<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    w: &Tensor<Float>,
    b: &[Float],
) -> Result<Tensor<A::V>> {
    linear(a, x, w, Some(b))
}

/// `X W` for a constant `w: [k, m]` (the paper's orientation, Lemma 5.2); `x: [n, k]`.
pub fn matmul_const<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    w: &Tensor<Float>,
) -> Result<Tensor<A::V>> {
    w.expect_rank("matmul_const: w", 2)?;
    linear(a, x, &w.transpose()?, None)
}

/// `X Y` of two activation matrices `x: [n, k]`, `y: [k, m]`: entry `(i, j)` is
/// [`Arith::dot`] of row i of X and column j of Y (depth `d_mul + d_⊕`, Lemma 5.2).
pub fn matmul<A: Arith>(a: &mut A, x: &Tensor<A::V>, y: &Tensor<A::V>) -> Result<Tensor<A::V>> {
    x.expect_rank("matmul: x", 2)?;
    y.expect_rank("matmul: y", 2)?;
    let (n, k) = (x.shape()[0], x.shape()[1]);
    let m = y.shape()[1];
    if y.shape()[0] != k {
        return Err(ModelError::Shape {
            op: "matmul",
            detail: format!("x {:?} and y {:?}", x.shape(), y.shape()),
        });
    }
    let yt = y.transpose()?;
    let mut data = Vec::with_capacity(n * m);
    for i in 0..n {
        for j in 0..m {
            data.push(a.dot(x.row(i)?, yt.row(j)?)?);
        }
    }
    Tensor::new(vec![n, m], data)
}
