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

use super::super::error::{ModelError, Result};
use super::super::ops::kernels::{BinOp, Dot};
use super::super::ops::nn::{area_down, bicubic_up, binary, co, select_table};
use super::super::ops::{Map, PortSpec, TensorArith};
use super::super::tensor::Tensor;
use super::config::{VarConfig, NUM_PHI};
use super::decoder::{
    loading_source, seeded_tensor, ConvWeights, TensorGetter, WeightKind, WeightSource,
};

pub use super::config::phi_index;

/// `(f_hat, next input map)` returned by [`next_autoregressive_input`].
pub type FhatAndNext<T> = (T, T);

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

/// The token map `h: [Cvae, pn, pn]` of one scale from its `pn * pn` token choices
/// (`[pn^2]`, row-major: token `y pn + x`): `h[c, y, x] = codebook[choice, c]` (VAR:
/// `embedding(idx).transpose(1, 2).reshape(B, Cvae, pn, pn)`); the codebook is folded into the
/// lookup's template.
pub fn codebook_lookup<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    choices: &B::T,
    pn: usize,
) -> Result<B::T> {
    if b.shape(choices).iter().product::<usize>() != pn * pn {
        return Err(shape_err(
            "codebook_lookup",
            format!("{:?} choices for a {pn}x{pn} map", b.shape(choices)),
        ));
    }
    let cb = b.weight_values("quantize.embedding.weight", &[cfg.vocab, cfg.cvae])?;
    let table = (0..cfg.vocab)
        .map(|r| Ok(cb.row(r)?.to_vec()))
        .collect::<Result<Vec<Vec<Float>>>>()?;
    let h = select_table(b, "codebook", table, choices)?;
    b.reshape(&h, vec![cfg.cvae, pn, pn])
}

/// `Phi_k(h) = 0.5 h + 0.5 (conv3x3(h) + b)` on `h: [Cvae, n, n]` with one exact sum per
/// output (see the module docs): a [`Dot`] of two groups (the centre value times `0.5`, the
/// 3x3 taps times the halved kernel) plus the halved bias.
pub fn phi<B: TensorArith>(b: &mut B, cfg: &VarConfig, k: usize, h: &B::T) -> Result<B::T> {
    let s = b.shape(h).to_vec();
    let c = cfg.cvae;
    if s.len() != 3 || s[0] != c {
        return Err(shape_err("phi", format!("a map {s:?} for Cvae = {c}")));
    }
    let fmt = b.format();
    let p = format!("quantize.quant_resi.qresi_ls.{k}");
    let half = b.constant(&format!("{p}.half"), vec![1], &mut |_| {
        Tensor::new(vec![1], vec![fmt.from_f64(1.0 - QUANT_RESI)?])
    })?;
    let wk = b.constant(&format!("{p}.weight_r"), vec![c, c, 3, 3], &mut |w| {
        let r = fmt.from_f64(QUANT_RESI)?;
        let t = w.tensor(&format!("{p}.weight"), &[c, c, 3, 3])?;
        t.try_map(|v| Ok(v.mul(r)?))
    })?;
    let bk = b.constant(&format!("{p}.bias_r"), vec![c], &mut |w| {
        let r = fmt.from_f64(QUANT_RESI)?;
        let t = w.tensor(&format!("{p}.bias"), &[c])?;
        t.try_map(|v| Ok(v.mul(r)?))
    })?;
    let ports = [
        PortSpec {
            src: h,
            map: Map::affine(
                vec![1],
                vec![
                    co(0, &[1, 0, 0], &[0]),
                    co(0, &[0, 1, 0], &[0]),
                    co(0, &[0, 0, 1], &[0]),
                ],
            ),
        },
        PortSpec {
            src: &half,
            map: Map::affine(vec![1], vec![co(0, &[0, 0, 0], &[0])]),
        },
        PortSpec {
            src: h,
            map: Map::Affine {
                words: vec![c, 3, 3],
                coords: vec![
                    co(0, &[0, 0, 0], &[1, 0, 0]),
                    co(-1, &[0, 1, 0], &[0, 1, 0]),
                    co(-1, &[0, 0, 1], &[0, 0, 1]),
                ],
                pad: true,
                conds: Vec::new(),
            },
        },
        PortSpec {
            src: &wk,
            map: Map::affine(
                vec![c, 3, 3],
                vec![
                    co(0, &[1, 0, 0], &[0, 0, 0]),
                    co(0, &[0, 0, 0], &[1, 0, 0]),
                    co(0, &[0, 0, 0], &[0, 1, 0]),
                    co(0, &[0, 0, 0], &[0, 0, 1]),
                ],
            ),
        },
        PortSpec {
            src: &bk,
            map: Map::affine(vec![1], vec![co(0, &[1, 0, 0], &[0])]),
        },
    ];
    let dot = Dot {
        groups: 2,
        bias: true,
        scale: None,
    };
    Ok(b.apply(&format!("phi{k}"), &dot, &s, &ports)?.remove(0))
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
pub fn next_autoregressive_input<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    si: usize,
    f_hat: Option<&B::T>,
    h: &B::T,
) -> Result<FhatAndNext<B::T>> {
    let patch_nums = &cfg.patch_nums;
    let sn = patch_nums.len();
    if si >= sn {
        return Err(shape_err(
            "next_autoregressive_input",
            format!("scale {si} of {sn}"),
        ));
    }
    let last = patch_nums[sn - 1];
    let pn = patch_nums[si];
    let cvae = cfg.cvae;
    if b.shape(h) != [cvae, pn, pn] {
        return Err(shape_err(
            "next_autoregressive_input",
            format!("h of shape {:?} at scale {si} (pn = {pn})", b.shape(h)),
        ));
    }
    if let Some(f) = f_hat {
        if b.shape(f) != [cvae, last, last] {
            return Err(shape_err(
                "next_autoregressive_input",
                format!(
                    "f_hat of shape {:?}, expected {:?}",
                    b.shape(f),
                    [cvae, last, last]
                ),
            ));
        }
    }
    let k = phi_index(si, sn);
    let up = if si + 1 < sn {
        bicubic_up(b, "bicubic", h, last, last)?
    } else {
        h.clone()
    };
    let ph = phi(b, cfg, k, &up)?;
    let f_new = match f_hat {
        Some(f) => binary(b, "f_hat", BinOp::Add, f, &ph)?,
        None => ph,
    };
    if si + 1 < sn {
        let nxt = patch_nums[si + 1];
        let next = area_down(b, "area", &f_new, nxt, nxt)?;
        Ok((f_new, next))
    } else {
        let next = f_new.clone();
        Ok((f_new, next))
    }
}
