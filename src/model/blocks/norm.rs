//! Layer normalisation (Definition 4.7), with an optional epsilon and affine parameters.
//!
//! For each row `x` (the last axis, length d) of a tensor of any rank >= 1:
//! - `mu = round(round(sum_j x_j) / round(d))` (one exact sum, then a division: the paper's
//!   `sum_j X_ij / d`);
//! - `c_j = round(x_j - mu)`;
//! - `var = round(round(sum_j round(c_j c_j)) / round(d))` (the paper's dot product of `c` with
//!   itself, then the division by d);
//! - with `eps`: `var' = round(var + eps)`, else `var' = var`;
//! - `y_j = round(c_j / sqrt(var'))` with `sqrt` correctly rounded (Definition 4.7 divides by
//!   `sqrt(sigma^2)`); a zero variance gives `0 / 0 = 0` under the division rule;
//! - with `affine = (gamma, beta)`: `y_j = round(round(y_j gamma_j) + beta_j)`.
//!
//! Depth: `d_⊕ + d_div` (mean) `+ d_sub + d_mul + d_⊕ + d_div` (variance) `+ d_sqrt + d_div`
//! (+ `d_add` with eps, + `d_mulc + d_add` with affine): Lemma 5.5's `5 d_std + 2 d_⊕ + d_sqrt`
//! exactly, independent of n and d.

use crate::float::Float;

use super::super::arith::{Arith, Unary};
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;

/// Layer normalisation over the last axis of `x` (see the module docs for the exact semantics).
/// `affine` is `(gamma, beta)`, each of the last axis' length.
pub fn layer_norm<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    eps: Option<Float>,
    affine: Option<(&[Float], &[Float])>,
) -> Result<Tensor<A::V>> {
    let d = *x.shape().last().ok_or(ModelError::Shape {
        op: "layer_norm",
        detail: "a scalar has no axis to normalise".into(),
    })?;
    if let Some((g, b)) = affine {
        if g.len() != d || b.len() != d {
            return Err(ModelError::Shape {
                op: "layer_norm",
                detail: format!("affine of lengths {}, {} for rows of {d}", g.len(), b.len()),
            });
        }
    }
    if d == 0 {
        return Ok(x.clone());
    }
    let fmt = a.format();
    let dc = a.constant(fmt.from_i64(d as i64))?;
    let eps_v = match eps {
        Some(e) => Some(a.constant(e)?),
        None => None,
    };
    let mut out = Vec::with_capacity(x.len());
    for row in x.data().chunks(d) {
        let s = a.sum(row)?;
        let mu = a.div(&s, &dc)?;
        let c = row
            .iter()
            .map(|v| a.sub(v, &mu))
            .collect::<Result<Vec<_>>>()?;
        let ss = a.dot(&c, &c)?;
        let mut var = a.div(&ss, &dc)?;
        if let Some(e) = &eps_v {
            var = a.add(&var, e)?;
        }
        let sd = a.unary(Unary::Sqrt, &var)?;
        for (j, cj) in c.iter().enumerate() {
            let mut y = a.div(cj, &sd)?;
            if let Some((g, b)) = affine {
                let yg = a.mul_const(&y, g[j])?;
                let bv = a.constant(b[j])?;
                y = a.add(&yg, &bv)?;
            }
            out.push(y);
        }
    }
    Tensor::new(x.shape().to_vec(), out)
}
