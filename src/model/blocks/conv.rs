//! Convolution with zero padding and stride 1, several kernels (Definition 4.10,
//! Lemma 5.6, Proposition 5.7).
//!
//! `x: [c_in, h, w]`, kernels `k: [c_out, c_in, kh, kw]` (PyTorch layout), optional bias of
//! length `c_out`, `padding` zeros on every side; output `[c_out, h + 2 pad - kh + 1,
//! w + 2 pad - kw + 1]` with
//! `Y_{o,i,j} = round(sum_{m,n,q} round(X_{q, i+m-pad, j+n-pad} K_{o,q,m,n}) + b_o)`:
//! one exact sum per output (taps in the zero padding contribute an exact zero and are dropped,
//! as are zero weights), the bias one more term (Definition 4.10 writes `... + b` inside the
//! expression). Depth `d_mulc + d_⊕`, independent of the sizes and of the number of kernels.

use crate::float::Float;

use super::super::arith::Arith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::linear::affine_dot;

/// 2-D convolution (see the module docs).
pub fn conv2d<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    k: &Tensor<Float>,
    bias: Option<&[Float]>,
    padding: usize,
) -> Result<Tensor<A::V>> {
    x.expect_rank("conv2d: x", 3)?;
    k.expect_rank("conv2d: kernel", 4)?;
    let (ci, h, w) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let (co, kci, kh, kw) = (k.shape()[0], k.shape()[1], k.shape()[2], k.shape()[3]);
    if kci != ci {
        return Err(ModelError::Shape {
            op: "conv2d",
            detail: format!("x {:?} and kernel {:?}", x.shape(), k.shape()),
        });
    }
    if let Some(b) = bias {
        if b.len() != co {
            return Err(ModelError::Shape {
                op: "conv2d",
                detail: format!("bias of length {} for {co} kernels", b.len()),
            });
        }
    }
    let (hp, wp) = (h + 2 * padding, w + 2 * padding);
    if kh == 0 || kw == 0 || kh > hp || kw > wp {
        return Err(ModelError::Shape {
            op: "conv2d",
            detail: format!("kernel {kh}x{kw} on a padded {hp}x{wp} map"),
        });
    }
    let (oh, ow) = (hp - kh + 1, wp - kw + 1);
    let mut data = Vec::with_capacity(co * oh * ow);
    for o in 0..co {
        for i in 0..oh {
            for j in 0..ow {
                let mut vals = Vec::with_capacity(ci * kh * kw);
                let mut coefs = Vec::with_capacity(ci * kh * kw);
                for q in 0..ci {
                    for m in 0..kh {
                        let y = (i + m) as i64 - padding as i64;
                        if y < 0 || y >= h as i64 {
                            continue;
                        }
                        for n in 0..kw {
                            let xx = (j + n) as i64 - padding as i64;
                            if xx < 0 || xx >= w as i64 {
                                continue;
                            }
                            vals.push(x.get(&[q, y as usize, xx as usize])?.clone());
                            coefs.push(*k.get(&[o, q, m, n])?);
                        }
                    }
                }
                data.push(affine_dot(a, &vals, &coefs, bias.map(|b| b[o]))?);
            }
        }
    }
    Tensor::new(vec![co, oh, ow], data)
}
