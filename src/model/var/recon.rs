//! Phase 2 of the VAR pass: feature-map reconstruction (VAR's `VectorQuantizer2`
//! `get_next_autoregressive_input` and `PhiPartiallyShared`), written once, generic over
//! [`Arith`].
//!
//! After scale `si` has chosen its tokens:
//! - [`codebook_lookup`]: `h[c, y, x] = codebook[idx[y pn + x], c]` (row `idx` of the constant
//!   codebook selected by the token's one-hot choice, [`Arith::select_const`]: a depth-1 OR
//!   per bit in the circuit);
//! - [`next_autoregressive_input`]: unless this is the last scale,
//!   `f_hat += Phi_k(bicubic_up(h, to the last pn))` and the next input map is
//!   `area_down(f_hat, to the next pn)`; at the last scale `f_hat += Phi_k(h)`; `k` is
//!   [`phi_index`] (VAR's scale-to-Phi mapping).
//!
//! F(p, q) semantics (shared by the reference and the circuit, so they agree bit for bit):
//! - bicubic: [`bicubic_up`] of the paper blocks (PyTorch convention: `A = -0.75`,
//!   `align_corners = false`, clamped borders; one constant linear map whose merged 2-D
//!   coefficients are rounded once each, then one exact sum per output);
//! - Phi ([`phi`]): `Phi(h) = 0.5 h + 0.5 (conv3x3(h) + b)` evaluated as ONE exact sum rounded
//!   once: `round(round(0.5 h_o) + sum_k round((0.5 w_k) x_k) + 0.5 b_o)`, with the constants
//!   `0.5 w_k` and `0.5 b_o` rounded to the format (exact halvings unless they fall below the
//!   smallest positive value). It is linear with constant coefficients, so folding the
//!   residual mix into the convolution's single exact sum is one rounding instead of three and
//!   the depth of a single dot product (VAR: `h.mul(1 - 0.5) + conv(h).mul_(0.5)`);
//! - area downsampling ([`area_down`]): output `(i, j)` averages the window
//!   `[floor(i in/out), ceil((i+1) in/out))` in each axis (PyTorch `adaptive_avg_pool2d`,
//!   which `F.interpolate(mode='area')` calls): the exact sum of the window rounded once, then
//!   multiplied by the constant `round(1 / count)` (`round(round(sum) * round(1/count))`, so up
//!   to about 1.5 ulp from the true mean when `count` is not a power of two, exact division
//!   semantics when it is). A multiplication by a constant costs a small multiplier; a
//!   division gadget would cost O(2^p) gates per output. A window of one element is a copy;
//! - `f_hat += h`: elementwise `round(f_hat + h)`; the first scale passes no f_hat (all
//!   zeros), and `0 + h = h` exactly, so no adders are built there.

use crate::float::Float;

use super::super::arith::Arith;
use super::super::blocks::linear::affine_dot;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::config::{VarConfig, NUM_PHI};
use super::decoder::{
    add_tensors, loading_source, seeded_tensor, ConvWeights, TensorGetter, WeightKind, WeightSource,
};

pub use super::super::blocks::interp::bicubic_up;
pub use super::config::phi_index;

/// `(f_hat, next input map)` returned by [`next_autoregressive_input`].
pub type FhatAndNext<V> = (Tensor<V>, Tensor<V>);

/// VAR's `quant_resi` ratio: `Phi(h) = (1 - r) h + r conv(h)` with `r = 0.5`.
pub const QUANT_RESI: f64 = 0.5;

/// The weights of phase 2 (state_dict `quantize.embedding.weight` and
/// `quantize.quant_resi.qresi_ls.{k}.{weight,bias}`).
#[derive(Clone, Debug, PartialEq)]
pub struct ReconWeights {
    /// The codebook `[V, Cvae]`.
    pub codebook: Tensor<Float>,
    /// The [`NUM_PHI`] shared Phi convolutions, each `[Cvae, Cvae, 3, 3]` with a bias `[Cvae]`.
    pub phi: Vec<ConvWeights>,
}

impl ReconWeights {
    /// Read every tensor of `cfg`'s phase 2 from `src`.
    pub fn build(cfg: &VarConfig, src: &mut WeightSource<'_>) -> Result<Self> {
        cfg.validate()?;
        let codebook = src(
            "quantize.embedding.weight",
            &[cfg.vocab, cfg.cvae],
            WeightKind::Codebook,
        )?;
        let phi = (0..NUM_PHI)
            .map(|k| {
                let p = format!("quantize.quant_resi.qresi_ls.{k}");
                ConvWeights::build(src, &p, cfg.cvae, cfg.cvae, 3)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ReconWeights { codebook, phi })
    }

    /// Deterministic weights from `seed` in `cfg.fmt` (see [`seeded_tensor`]).
    pub fn seeded(cfg: &VarConfig, seed: u64) -> Result<Self> {
        let fmt = cfg.fmt;
        let mut src = |name: &str, shape: &[usize], kind: WeightKind| {
            seeded_tensor(fmt, seed, name, shape, kind)
        };
        Self::build(cfg, &mut src)
    }

    /// Load by state_dict name through `get(name, expected_shape)`; a tensor of the wrong
    /// shape is an error naming it.
    pub fn load(cfg: &VarConfig, get: &mut TensorGetter<'_>) -> Result<Self> {
        let mut src = loading_source(get);
        Self::build(cfg, &mut src)
    }

    /// Every tensor with its state_dict name, in the order [`ReconWeights::build`] reads them.
    pub fn named_tensors(&self) -> Vec<(String, &Tensor<Float>)> {
        let mut out = vec![("quantize.embedding.weight".to_string(), &self.codebook)];
        for (k, c) in self.phi.iter().enumerate() {
            let p = format!("quantize.quant_resi.qresi_ls.{k}");
            out.push((format!("{p}.weight"), &c.weight));
            out.push((format!("{p}.bias"), &c.bias));
        }
        out
    }

    /// The codebook rows as a constant table for [`Arith::select_const`].
    pub fn codebook_table(&self) -> Result<Vec<Vec<Float>>> {
        self.codebook.expect_rank("codebook", 2)?;
        (0..self.codebook.shape()[0])
            .map(|r| Ok(self.codebook.row(r)?.to_vec()))
            .collect()
    }
}

fn shape_err(op: &'static str, detail: String) -> ModelError {
    ModelError::Shape { op, detail }
}

/// The token map `h: [Cvae, pn, pn]` of one scale from its `pn * pn` token choices (row-major:
/// token `y pn + x`): `h[c, y, x] = codebook[choice, c]` (VAR: `embedding(idx).transpose(1,
/// 2).reshape(B, Cvae, pn, pn)`).
pub fn codebook_lookup<A: Arith>(
    a: &mut A,
    w: &ReconWeights,
    choices: &[A::Choice],
    pn: usize,
) -> Result<Tensor<A::V>> {
    if choices.len() != pn * pn {
        return Err(shape_err(
            "codebook_lookup",
            format!("{} choices for a {pn}x{pn} map", choices.len()),
        ));
    }
    let table = w.codebook_table()?;
    let cvae = w.codebook.shape()[1];
    let rows = choices
        .iter()
        .map(|ch| a.select_const(ch, &table))
        .collect::<Result<Vec<_>>>()?;
    Tensor::from_fn(vec![cvae, pn, pn], |ix| {
        Ok(rows[ix[1] * pn + ix[2]][ix[0]].clone())
    })
}

/// `Phi(h) = 0.5 h + 0.5 (conv3x3(h) + b)` on `h: [Cvae, n, n]` with one exact sum per output
/// (see the module docs). Errors when the kernel is not `[Cvae, Cvae, 3, 3]`.
pub fn phi<A: Arith>(a: &mut A, conv: &ConvWeights, h: &Tensor<A::V>) -> Result<Tensor<A::V>> {
    h.expect_rank("phi", 3)?;
    let (c, hh, ww) = (h.shape()[0], h.shape()[1], h.shape()[2]);
    let k = &conv.weight;
    if k.shape() != [c, c, 3, 3] || conv.bias.len() != c {
        return Err(shape_err(
            "phi",
            format!(
                "kernel {:?} and bias of {} for a map {:?}",
                k.shape(),
                conv.bias.len(),
                h.shape()
            ),
        ));
    }
    let fmt = a.format();
    let half = fmt.from_f64(1.0 - QUANT_RESI)?;
    let r = fmt.from_f64(QUANT_RESI)?;
    let hd = h.data();
    let mut data = Vec::with_capacity(h.len());
    for o in 0..c {
        let b = conv.bias.data()[o].mul(r)?;
        for i in 0..hh {
            for j in 0..ww {
                let mut vals = Vec::with_capacity(9 * c + 1);
                let mut coefs = Vec::with_capacity(9 * c + 1);
                vals.push(hd[(o * hh + i) * ww + j].clone());
                coefs.push(half);
                for q in 0..c {
                    for m in 0..3 {
                        let y = (i + m) as i64 - 1;
                        if y < 0 || y >= hh as i64 {
                            continue;
                        }
                        for n in 0..3 {
                            let x = (j + n) as i64 - 1;
                            if x < 0 || x >= ww as i64 {
                                continue;
                            }
                            vals.push(hd[(q * hh + y as usize) * ww + x as usize].clone());
                            coefs.push(k.data()[((o * c + q) * 3 + m) * 3 + n].mul(r)?);
                        }
                    }
                }
                data.push(affine_dot(a, &vals, &coefs, Some(b))?);
            }
        }
    }
    Tensor::new(h.shape().to_vec(), data)
}

/// The averaging windows of PyTorch's adaptive average pooling from `in_len` to `out_len`:
/// output `i` averages `[floor(i in / out), ceil((i + 1) in / out))`. Errors on a zero length.
pub fn area_windows(in_len: usize, out_len: usize) -> Result<Vec<(usize, usize)>> {
    if in_len == 0 || out_len == 0 {
        return Err(shape_err(
            "area_down",
            format!("lengths {in_len} -> {out_len}"),
        ));
    }
    Ok((0..out_len)
        .map(|i| {
            let s = i * in_len / out_len;
            let e = ((i + 1) * in_len).div_ceil(out_len);
            (s, e)
        })
        .collect())
}

/// Area downsampling (`F.interpolate(mode='area')`) of `x: [c, h, w]` to `[c, out_h, out_w]`
/// (see the module docs for the windows and the rounding).
pub fn area_down<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    out_h: usize,
    out_w: usize,
) -> Result<Tensor<A::V>> {
    x.expect_rank("area_down", 3)?;
    let (c, hh, ww) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let wy = area_windows(hh, out_h)?;
    let wx = area_windows(ww, out_w)?;
    let fmt = a.format();
    let xd = x.data();
    let mut data = Vec::with_capacity(c * out_h * out_w);
    for ch in 0..c {
        for &(y0, y1) in &wy {
            for &(x0, x1) in &wx {
                let mut vals = Vec::with_capacity((y1 - y0) * (x1 - x0));
                for y in y0..y1 {
                    for xx in x0..x1 {
                        vals.push(xd[(ch * hh + y) * ww + xx].clone());
                    }
                }
                if vals.len() == 1 {
                    data.push(
                        vals.pop()
                            .ok_or_else(|| shape_err("area_down", "empty".into()))?,
                    );
                    continue;
                }
                let s = a.sum(&vals)?;
                let inv = fmt.from_f64(1.0 / vals.len() as f64)?;
                data.push(a.mul_const(&s, inv)?);
            }
        }
    }
    Tensor::new(vec![c, out_h, out_w], data)
}

/// VAR's `get_next_autoregressive_input(si, SN, f_hat, h)` with `SN = patch_nums.len()`:
/// - `si < SN - 1`: `f_hat' = f_hat + Phi_k(bicubic_up(h, last pn))`,
///   `next = area_down(f_hat', patch_nums[si + 1])`;
/// - `si = SN - 1`: `f_hat' = f_hat + Phi_k(h)`, `next = f_hat'` (as the reference returns
///   `f_hat, f_hat`);
///
/// with `k = phi_index(si, SN)`. `f_hat` is `[Cvae, last pn, last pn]`, or `None` for the
/// all-zero map before the first scale (then `f_hat' = Phi_k(...)` exactly, without adders);
/// `h` is the scale's token map `[Cvae, pn, pn]` ([`codebook_lookup`]). Returns
/// `(f_hat', next)`.
pub fn next_autoregressive_input<A: Arith>(
    a: &mut A,
    patch_nums: &[usize],
    w: &ReconWeights,
    si: usize,
    f_hat: Option<&Tensor<A::V>>,
    h: &Tensor<A::V>,
) -> Result<FhatAndNext<A::V>> {
    let sn = patch_nums.len();
    if si >= sn {
        return Err(shape_err(
            "next_autoregressive_input",
            format!("scale {si} of {sn}"),
        ));
    }
    let last = patch_nums[sn - 1];
    let pn = patch_nums[si];
    h.expect_rank("next_autoregressive_input: h", 3)?;
    if h.shape()[1] != pn || h.shape()[2] != pn {
        return Err(shape_err(
            "next_autoregressive_input",
            format!("h of shape {:?} at scale {si} (pn = {pn})", h.shape()),
        ));
    }
    let cvae = h.shape()[0];
    if let Some(f) = f_hat {
        if f.shape() != [cvae, last, last] {
            return Err(shape_err(
                "next_autoregressive_input",
                format!(
                    "f_hat of shape {:?}, expected {:?}",
                    f.shape(),
                    [cvae, last, last]
                ),
            ));
        }
    }
    let k = phi_index(si, sn);
    let conv = w.phi.get(k).ok_or_else(|| {
        shape_err(
            "next_autoregressive_input",
            format!("Phi {k} of {}", w.phi.len()),
        )
    })?;
    let up = if si + 1 < sn {
        bicubic_up(a, h, last, last)?
    } else {
        h.clone()
    };
    let ph = phi(a, conv, &up)?;
    let f_new = match f_hat {
        Some(f) => add_tensors(a, f, &ph)?,
        None => ph,
    };
    if si + 1 < sn {
        let nxt = patch_nums[si + 1];
        let next = area_down(a, &f_new, nxt, nxt)?;
        Ok((f_new, next))
    } else {
        let next = f_new.clone();
        Ok((f_new, next))
    }
}
