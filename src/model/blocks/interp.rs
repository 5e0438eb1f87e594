//! Bicubic up-interpolation (Definitions 4.2/4.3) with the PyTorch convention.
//!
//! Kernel (Definition 4.2, Keys' cubic convolution as in PyTorch `upsample_bicubic2d`) with
//! `A = -0.75`: `W(x) = ((A+2)|x| - (A+3)) x^2 + 1` for `|x| <= 1`,
//! `W(x) = ((A|x| - 5A)|x| + 8A)|x| - 4A` for `1 < |x| < 2`, 0 otherwise. (It takes values in
//! about `[-0.1, 1]`, not the `[0, 1]` Definition 4.2 states: negative lobes are what makes it
//! bicubic; the paper's constraint would exclude the real model's kernel.)
//!
//! Geometry (`align_corners = false`): output index `o` reads the source coordinate
//! `s = (o + 0.5) * in/out - 0.5` (not clamped), `i0 = floor(s)`, `t = s - i0`, taps
//! `i0 - 1 .. i0 + 2` with weights `W(t+1), W(t), W(1-t), W(2-t)`, each tap index clamped to
//! `[0, in - 1]` (border replication). Definition 4.3's `X_{ih/h'+s, jw/w'+t}` is this with the
//! half-pixel offset.
//!
//! Numerics (our convention, since F(p, q) cannot follow PyTorch's f32 evaluation order): the
//! interpolation is a constant linear map (the paper's remark after Definition 4.7: `phi_up` is
//! an `h'w' x hw` matrix). Its coefficients are computed in f64 as `W_y(s) * W_x(t)`, taps that
//! the border clamp sends to the same source pixel are merged by adding their f64 coefficients,
//! and each coefficient is rounded once to the format; coefficients that round to zero are
//! dropped. Each output is then the paper's dot product `round(sum_k round(c_k x_k))`, so the
//! depth is `d_mulc + d_⊕ <= 2 d_std + d_⊕` (Lemma 5.1), independent of the sizes.

use crate::float::Float;

use super::super::arith::Arith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::linear::affine_dot;

/// The bicubic coefficient `A` of PyTorch (and of the VAR reference implementation).
pub const BICUBIC_A: f64 = -0.75;

/// The cubic convolution kernel `W(x)` with coefficient `A = -0.75` (see the module docs).
pub fn cubic_kernel(x: f64) -> f64 {
    let a = BICUBIC_A;
    let x = x.abs();
    if x <= 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    } else {
        0.0
    }
}

/// For each output index of a 1-D resampling from `in_len` to `out_len`, the source indices and
/// f64 weights (taps merged after border clamping, in ascending source index).
/// Errors when a length is zero.
pub fn bicubic_weights_1d(in_len: usize, out_len: usize) -> Result<Vec<Vec<(usize, f64)>>> {
    if in_len == 0 || out_len == 0 {
        return Err(ModelError::Shape {
            op: "bicubic",
            detail: format!("lengths {in_len} -> {out_len}"),
        });
    }
    let scale = in_len as f64 / out_len as f64;
    let mut rows = Vec::with_capacity(out_len);
    for o in 0..out_len {
        let s = (o as f64 + 0.5) * scale - 0.5;
        let i0 = s.floor();
        let t = s - i0;
        let ws = [
            cubic_kernel(t + 1.0),
            cubic_kernel(t),
            cubic_kernel(1.0 - t),
            cubic_kernel(2.0 - t),
        ];
        let mut row: Vec<(usize, f64)> = Vec::with_capacity(4);
        for (k, &w) in ws.iter().enumerate() {
            let idx = (i0 as i64 - 1 + k as i64).clamp(0, in_len as i64 - 1) as usize;
            match row.iter_mut().find(|(i, _)| *i == idx) {
                Some(e) => e.1 += w,
                None => row.push((idx, w)),
            }
        }
        row.sort_by_key(|e| e.0);
        rows.push(row);
    }
    Ok(rows)
}

/// Bicubic resampling of a feature map `x: [c, h, w]` to `[c, out_h, out_w]` (Definition 4.3
/// with the PyTorch convention; see the module docs for the numerics).
pub fn bicubic_up<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    out_h: usize,
    out_w: usize,
) -> Result<Tensor<A::V>> {
    x.expect_rank("bicubic_up", 3)?;
    let (c, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let fmt = a.format();
    let wy = bicubic_weights_1d(h, out_h)?;
    let wx = bicubic_weights_1d(w, out_w)?;
    let mut data = Vec::with_capacity(c * out_h * out_w);
    for ch in 0..c {
        for ry in &wy {
            for rx in &wx {
                let mut vals = Vec::with_capacity(16);
                let mut coefs: Vec<Float> = Vec::with_capacity(16);
                for &(iy, cy) in ry {
                    for &(ix, cx) in rx {
                        let k = fmt.from_f64(cy * cx)?;
                        if k.is_zero() {
                            continue;
                        }
                        vals.push(x.get(&[ch, iy, ix])?.clone());
                        coefs.push(k);
                    }
                }
                data.push(affine_dot(a, &vals, &coefs, None)?);
            }
        }
    }
    Tensor::new(vec![c, out_h, out_w], data)
}
