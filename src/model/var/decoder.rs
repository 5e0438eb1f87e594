//! The VQ-VAE decoder of VAR (phase 3 of the pass): f_hat `[Cvae, n, n]` to the image
//! `[3, n 2^(L-1), n 2^(L-1)]`, written once, generic over [`Arith`].
//!
//! Structure (FoundationVision/VAR `models/basic_vae.py`, `Decoder`; `models/vqvae.py`,
//! `fhat_to_img`): `post_quant_conv` (3x3) -> `conv_in` (3x3) -> middle (ResNet, Attn, ResNet)
//! -> levels from the lowest resolution up (level `L-1` first): `num_res_blocks + 1` ResNet
//! blocks each, an attention block after each of them at the lowest resolution (VAR's
//! `using_sa`), nearest x2 upsampling + 3x3 convolution between levels -> GroupNorm -> SiLU ->
//! `conv_out` (3x3) -> clamp to `[-1, 1]`.
//!
//! F(p, q) semantics of each operation (the reference and the circuit share this code, so they
//! agree bit for bit; the f32 model runs the same sequence in f32):
//! - convolution: [`conv2d`] (padding 1 for 3x3, 0 for 1x1): one exact sum per output,
//!   bias included, rounded once (Definition 4.10);
//! - GroupNorm ([`group_norm`], eps = [`GROUP_NORM_EPS`] as in VAR's `Normalize`), per group of
//!   `C/G` channels and all positions, `n = (C/G) H W` values:
//!   `mu = round(round(sum x) / round(n))`, `c = round(x - mu)`,
//!   `var = round(round(sum round(c c)) / round(n))` (two-pass variance),
//!   `var' = round(var + eps)` (skipped when eps rounds to 0: adding an exact 0 changes nothing),
//!   `r = rsqrt(var')` (correctly rounded), per channel `s = round(r gamma)` (PyTorch's
//!   `rstd * weight`), `y = round(round(c s) + beta)`. Multiplying by the reciprocal square
//!   root (PyTorch's order) instead of dividing by the square root keeps the per-element cost at
//!   one multiplication: a division gadget has O(2^p) gates;
//! - SiLU: [`Unary::Silu`] (a depth-2 lookup in the circuit);
//! - attention block ([`attn_block`]): `qkv` = 1x1 convolution of GroupNorm(x) (3C channels:
//!   q, k, v), scores `s_ij = round(round(q_i . k_j) * round(C^-1/2))` ([`Arith::dot`], then
//!   a constant multiplication, as PyTorch's `bmm(q, k).mul_(w_ratio)`), softmax over `j` with
//!   the row maximum subtracted ([`softmax_rows`]), `h_ci = round(sum_j round(v_cj P_ij))`,
//!   output `round(x + proj_out(h))`;
//! - ResNet block ([`resnet_block`]): `h = conv1(silu(norm1 x))`, `h = conv2(silu(norm2 h))`,
//!   `round(shortcut(x) + h)` with a 1x1 `nin_shortcut` when the channel count changes;
//! - nearest x2 upsampling: copies (no gates);
//! - clamp: `x < -1 ? -1 : (1 < x ? 1 : x)` (exact).
//!
//! Depth: every stage has a depth independent of the spatial size and of the channel counts
//! (iterated sums are single constant-depth gadgets up to
//! [`crate::gadgets::float::sum::MAX_TERMS`] operands; a GroupNorm of a larger group, or an
//! attention over more positions, is refused by the sum gadget with a clear error). The
//! decoder's total depth is a sum over its stages; `tests/var_decoder.rs` checks that it is the
//! same for two spatial sizes.

use crate::circuit::random::SplitMix64;
use crate::float::{Float, Format};

use super::super::arith::Unary;
use super::super::error::{ModelError, Result};
use super::super::ops::kernels::{BinOp, ClampUnit, Dot};
use super::super::ops::nn::{
    self, binary, co, conv2d, elementwise, softmax_rows, unary, upsample_nearest2,
};
use super::super::ops::{Map, PortSpec, TensorArith};
use super::super::tensor::Tensor;
use super::config::VarConfig;

/// The epsilon of every GroupNorm of the decoder (VAR's `Normalize`: `eps=1e-6`), rounded to
/// the format (it rounds to 0 in small formats, and is then not added).
pub const GROUP_NORM_EPS: f64 = 1e-6;

/// What a weight tensor is; a seeded source chooses its distribution from it (see
/// [`seeded_tensor`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WeightKind {
    /// A convolution kernel `[c_out, c_in, kh, kw]`.
    ConvWeight,
    /// A convolution bias `[c_out]`.
    ConvBias,
    /// A GroupNorm scale `[c]` (PyTorch's `weight`, initialised to 1).
    NormWeight,
    /// A GroupNorm shift `[c]` (PyTorch's `bias`).
    NormBias,
    /// The codebook `[V, Cvae]`.
    Codebook,
}

/// A source of named weight tensors: called with the state_dict name, the expected shape and
/// the kind; returns the tensor (of exactly that shape) or an error naming the tensor.
pub type WeightSource<'s> = dyn FnMut(&str, &[usize], WeightKind) -> Result<Tensor<Float>> + 's;

/// A loader of named tensors: `get(name, expected_shape)` returns the tensor `name` (e.g.
/// read from a safetensors file and converted to the format) or an error naming it.
pub type TensorGetter<'g> = dyn FnMut(&str, &[usize]) -> Result<Tensor<Float>> + 'g;

/// FNV-1a 64 of a name (mixes the tensor name into its seed).
fn fnv1a(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The deterministic seeded tensor `name`: a function of `(fmt, seed, name, shape, kind)` only,
/// so adding a tensor never changes the others. Values are `round(center + (2u - 1) scale)`
/// with `u` uniform (53-bit SplitMix64 draws seeded by `seed ^ fnv1a(name)`):
/// - conv kernels: center 0, scale `sqrt(3 / fan_in)` (unit output variance for unit inputs);
/// - conv biases and GroupNorm shifts: center 0, scale 0.2;
/// - GroupNorm scales: center 1, scale 0.25;
/// - the codebook: center 0, scale 1.
pub fn seeded_tensor(
    fmt: Format,
    seed: u64,
    name: &str,
    shape: &[usize],
    kind: WeightKind,
) -> Result<Tensor<Float>> {
    let n: usize = shape.iter().product();
    let (center, scale) = match kind {
        WeightKind::ConvWeight => {
            let fan_in: usize = shape.iter().skip(1).product();
            (0.0, (3.0 / fan_in.max(1) as f64).sqrt())
        }
        WeightKind::ConvBias | WeightKind::NormBias => (0.0, 0.2),
        WeightKind::NormWeight => (1.0, 0.25),
        WeightKind::Codebook => (0.0, 1.0),
    };
    let mut rng = SplitMix64::new(seed ^ fnv1a(name));
    let xs: Vec<f64> = (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            center + (2.0 * u - 1.0) * scale
        })
        .collect();
    Tensor::from_f64(fmt, shape.to_vec(), &xs)
}

/// A [`WeightSource`] that loads tensors by name through `get(name, shape)` (for example from
/// a safetensors file) and checks the shape it returns: a tensor of another shape is a
/// [`ModelError::Weights`] naming it.
pub fn loading_source<'g>(
    get: &'g mut TensorGetter<'g>,
) -> impl FnMut(&str, &[usize], WeightKind) -> Result<Tensor<Float>> + 'g {
    move |name, shape, _kind| {
        let t = get(name, shape)?;
        if t.shape() != shape {
            return Err(ModelError::Weights {
                name: name.to_string(),
                reason: format!("shape {:?}, expected {shape:?}", t.shape()),
            });
        }
        Ok(t)
    }
}

/// A convolution: kernel `weight: [c_out, c_in, k, k]` and `bias: [c_out]` (state_dict
/// `{prefix}.weight`, `{prefix}.bias`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvWeights {
    /// The kernel, PyTorch layout `[c_out, c_in, kh, kw]`.
    pub weight: Tensor<Float>,
    /// The bias `[c_out]`.
    pub bias: Tensor<Float>,
}

impl ConvWeights {
    /// Read `{prefix}.weight` `[c_out, c_in, k, k]` and `{prefix}.bias` `[c_out]`.
    pub fn build(
        src: &mut WeightSource<'_>,
        prefix: &str,
        c_out: usize,
        c_in: usize,
        k: usize,
    ) -> Result<Self> {
        Ok(ConvWeights {
            weight: src(
                &format!("{prefix}.weight"),
                &[c_out, c_in, k, k],
                WeightKind::ConvWeight,
            )?,
            bias: src(&format!("{prefix}.bias"), &[c_out], WeightKind::ConvBias)?,
        })
    }

    fn named<'w>(&'w self, prefix: &str, out: &mut Vec<(String, &'w Tensor<Float>)>) {
        out.push((format!("{prefix}.weight"), &self.weight));
        out.push((format!("{prefix}.bias"), &self.bias));
    }
}

/// GroupNorm affine parameters (state_dict `{prefix}.weight`, `{prefix}.bias`, each `[c]`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupNormWeights {
    /// The scale gamma `[c]`.
    pub weight: Tensor<Float>,
    /// The shift beta `[c]`.
    pub bias: Tensor<Float>,
}

impl GroupNormWeights {
    /// Read `{prefix}.weight` and `{prefix}.bias`, each `[c]`.
    pub fn build(src: &mut WeightSource<'_>, prefix: &str, c: usize) -> Result<Self> {
        Ok(GroupNormWeights {
            weight: src(&format!("{prefix}.weight"), &[c], WeightKind::NormWeight)?,
            bias: src(&format!("{prefix}.bias"), &[c], WeightKind::NormBias)?,
        })
    }

    fn named<'w>(&'w self, prefix: &str, out: &mut Vec<(String, &'w Tensor<Float>)>) {
        out.push((format!("{prefix}.weight"), &self.weight));
        out.push((format!("{prefix}.bias"), &self.bias));
    }
}

/// A ResNet block (state_dict `{prefix}.{norm1,conv1,norm2,conv2,nin_shortcut}.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResnetWeights {
    /// GroupNorm of the input `[c_in]`.
    pub norm1: GroupNormWeights,
    /// 3x3 convolution `c_in -> c_out`.
    pub conv1: ConvWeights,
    /// GroupNorm `[c_out]`.
    pub norm2: GroupNormWeights,
    /// 3x3 convolution `c_out -> c_out`.
    pub conv2: ConvWeights,
    /// 1x1 convolution `c_in -> c_out`, present exactly when `c_in != c_out`.
    pub nin_shortcut: Option<ConvWeights>,
}

impl ResnetWeights {
    /// Read the block `c_in -> c_out` under `prefix`.
    pub fn build(
        src: &mut WeightSource<'_>,
        prefix: &str,
        c_in: usize,
        c_out: usize,
    ) -> Result<Self> {
        Ok(ResnetWeights {
            norm1: GroupNormWeights::build(src, &format!("{prefix}.norm1"), c_in)?,
            conv1: ConvWeights::build(src, &format!("{prefix}.conv1"), c_out, c_in, 3)?,
            norm2: GroupNormWeights::build(src, &format!("{prefix}.norm2"), c_out)?,
            conv2: ConvWeights::build(src, &format!("{prefix}.conv2"), c_out, c_out, 3)?,
            nin_shortcut: if c_in != c_out {
                Some(ConvWeights::build(
                    src,
                    &format!("{prefix}.nin_shortcut"),
                    c_out,
                    c_in,
                    1,
                )?)
            } else {
                None
            },
        })
    }

    fn named<'w>(&'w self, prefix: &str, out: &mut Vec<(String, &'w Tensor<Float>)>) {
        self.norm1.named(&format!("{prefix}.norm1"), out);
        self.conv1.named(&format!("{prefix}.conv1"), out);
        self.norm2.named(&format!("{prefix}.norm2"), out);
        self.conv2.named(&format!("{prefix}.conv2"), out);
        if let Some(s) = &self.nin_shortcut {
            s.named(&format!("{prefix}.nin_shortcut"), out);
        }
    }
}

/// VAR's decoder attention block (state_dict `{prefix}.norm.*`, `{prefix}.qkv.*` with
/// `[3C, C, 1, 1]`, `{prefix}.proj_out.*` with `[C, C, 1, 1]`).
#[derive(Clone, Debug, PartialEq)]
pub struct AttnWeights {
    /// GroupNorm `[C]`.
    pub norm: GroupNormWeights,
    /// 1x1 convolution `C -> 3C` (q, k, v in this order).
    pub qkv: ConvWeights,
    /// 1x1 output convolution `C -> C`.
    pub proj_out: ConvWeights,
}

impl AttnWeights {
    /// Read the block of `c` channels under `prefix`.
    pub fn build(src: &mut WeightSource<'_>, prefix: &str, c: usize) -> Result<Self> {
        Ok(AttnWeights {
            norm: GroupNormWeights::build(src, &format!("{prefix}.norm"), c)?,
            qkv: ConvWeights::build(src, &format!("{prefix}.qkv"), 3 * c, c, 1)?,
            proj_out: ConvWeights::build(src, &format!("{prefix}.proj_out"), c, c, 1)?,
        })
    }

    fn named<'w>(&'w self, prefix: &str, out: &mut Vec<(String, &'w Tensor<Float>)>) {
        self.norm.named(&format!("{prefix}.norm"), out);
        self.qkv.named(&format!("{prefix}.qkv"), out);
        self.proj_out.named(&format!("{prefix}.proj_out"), out);
    }
}

/// One resolution level of the decoder (state_dict `decoder.up.{level}.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct UpLevelWeights {
    /// `num_res_blocks + 1` ResNet blocks (`block.{j}`).
    pub block: Vec<ResnetWeights>,
    /// Attention blocks after each ResNet block (`attn.{j}`): `num_res_blocks + 1` of them at
    /// the lowest resolution when `vae_up_attn`, none otherwise.
    pub attn: Vec<AttnWeights>,
    /// The 3x3 convolution after the nearest x2 upsampling (`upsample.conv`); every level but
    /// level 0 (the full resolution) has one.
    pub upsample: Option<ConvWeights>,
}

/// Channel counts of the decoder derived from a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderChannels {
    /// Channels of the lowest-resolution level (`vae_ch * vae_ch_mult[L-1]`): conv_in's output
    /// and the middle's width.
    pub mid: usize,
    /// Output channels of level `i` (`vae_ch * vae_ch_mult[i]`).
    pub level: Vec<usize>,
}

impl DecoderChannels {
    /// The channel counts of `cfg`'s decoder (after validating `cfg`).
    pub fn of(cfg: &VarConfig) -> Result<Self> {
        cfg.validate()?;
        let level: Vec<usize> = cfg.vae_ch_mult.iter().map(|m| cfg.vae_ch * m).collect();
        Ok(DecoderChannels {
            mid: *level.last().unwrap_or(&cfg.vae_ch),
            level,
        })
    }
}

/// All weights of the decoder, including the VQ-VAE's `post_quant_conv` that precedes it.
/// Field names follow the state_dict: `post_quant_conv.*`, `decoder.conv_in.*`,
/// `decoder.mid.block_1.*`, `decoder.mid.attn_1.*`, `decoder.mid.block_2.*`,
/// `decoder.up.{level}.{block,attn}.{j}.*`, `decoder.up.{level}.upsample.conv.*`,
/// `decoder.norm_out.*`, `decoder.conv_out.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderWeights {
    /// 3x3 convolution `Cvae -> Cvae`.
    pub post_quant_conv: ConvWeights,
    /// 3x3 convolution `Cvae -> mid channels`.
    pub conv_in: ConvWeights,
    /// Middle ResNet block 1.
    pub mid_block_1: ResnetWeights,
    /// Middle attention block (when `vae_mid_attn`).
    pub mid_attn_1: Option<AttnWeights>,
    /// Middle ResNet block 2.
    pub mid_block_2: ResnetWeights,
    /// Levels indexed as in the state_dict: `up[0]` is the full resolution, `up[L-1]` the
    /// lowest (evaluated first).
    pub up: Vec<UpLevelWeights>,
    /// Final GroupNorm.
    pub norm_out: GroupNormWeights,
    /// 3x3 convolution to `vae_out_ch` channels.
    pub conv_out: ConvWeights,
}

impl DecoderWeights {
    /// Read every tensor of `cfg`'s decoder from `src`, in state_dict order.
    pub fn build(cfg: &VarConfig, src: &mut WeightSource<'_>) -> Result<Self> {
        let ch = DecoderChannels::of(cfg)?;
        let levels = ch.level.len();
        let post_quant_conv = ConvWeights::build(src, "post_quant_conv", cfg.cvae, cfg.cvae, 3)?;
        let conv_in = ConvWeights::build(src, "decoder.conv_in", ch.mid, cfg.cvae, 3)?;
        let mid_block_1 = ResnetWeights::build(src, "decoder.mid.block_1", ch.mid, ch.mid)?;
        let mid_attn_1 = if cfg.vae_mid_attn {
            Some(AttnWeights::build(src, "decoder.mid.attn_1", ch.mid)?)
        } else {
            None
        };
        let mid_block_2 = ResnetWeights::build(src, "decoder.mid.block_2", ch.mid, ch.mid)?;
        let mut up: Vec<Option<UpLevelWeights>> = vec![None; levels];
        let mut c_in = ch.mid;
        for lvl in (0..levels).rev() {
            let c_out = ch.level[lvl];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for j in 0..=cfg.vae_num_res_blocks {
                let p = format!("decoder.up.{lvl}.block.{j}");
                block.push(ResnetWeights::build(src, &p, c_in, c_out)?);
                c_in = c_out;
                if lvl == levels - 1 && cfg.vae_up_attn {
                    attn.push(AttnWeights::build(
                        src,
                        &format!("decoder.up.{lvl}.attn.{j}"),
                        c_out,
                    )?);
                }
            }
            let upsample = if lvl != 0 {
                let p = format!("decoder.up.{lvl}.upsample.conv");
                Some(ConvWeights::build(src, &p, c_out, c_out, 3)?)
            } else {
                None
            };
            up[lvl] = Some(UpLevelWeights {
                block,
                attn,
                upsample,
            });
        }
        let norm_out = GroupNormWeights::build(src, "decoder.norm_out", c_in)?;
        let conv_out = ConvWeights::build(src, "decoder.conv_out", cfg.vae_out_ch, c_in, 3)?;
        Ok(DecoderWeights {
            post_quant_conv,
            conv_in,
            mid_block_1,
            mid_attn_1,
            mid_block_2,
            up: up.into_iter().flatten().collect(),
            norm_out,
            conv_out,
        })
    }

    /// Deterministic weights from `seed` in `cfg.fmt` (see [`seeded_tensor`]).
    pub fn seeded(cfg: &VarConfig, seed: u64) -> Result<Self> {
        let fmt = cfg.fmt;
        let mut src = |name: &str, shape: &[usize], kind: WeightKind| {
            seeded_tensor(fmt, seed, name, shape, kind)
        };
        Self::build(cfg, &mut src)
    }

    /// Load by state_dict name through `get(name, expected_shape)` (e.g. from safetensors);
    /// a tensor of the wrong shape is an error naming it.
    pub fn load(cfg: &VarConfig, get: &mut TensorGetter<'_>) -> Result<Self> {
        let mut src = loading_source(get);
        Self::build(cfg, &mut src)
    }

    /// Every tensor with its state_dict name (the names [`DecoderWeights::build`] reads, in the
    /// same order).
    pub fn named_tensors(&self) -> Vec<(String, &Tensor<Float>)> {
        let mut out = Vec::new();
        self.post_quant_conv.named("post_quant_conv", &mut out);
        self.conv_in.named("decoder.conv_in", &mut out);
        self.mid_block_1.named("decoder.mid.block_1", &mut out);
        if let Some(at) = &self.mid_attn_1 {
            at.named("decoder.mid.attn_1", &mut out);
        }
        self.mid_block_2.named("decoder.mid.block_2", &mut out);
        for lvl in (0..self.up.len()).rev() {
            let u = &self.up[lvl];
            for (j, b) in u.block.iter().enumerate() {
                b.named(&format!("decoder.up.{lvl}.block.{j}"), &mut out);
                if let Some(at) = u.attn.get(j) {
                    at.named(&format!("decoder.up.{lvl}.attn.{j}"), &mut out);
                }
            }
            if let Some(c) = &u.upsample {
                c.named(&format!("decoder.up.{lvl}.upsample.conv"), &mut out);
            }
        }
        self.norm_out.named("decoder.norm_out", &mut out);
        self.conv_out.named("decoder.conv_out", &mut out);
        out
    }
}

fn shape_err(op: &'static str, detail: String) -> ModelError {
    ModelError::Shape { op, detail }
}

fn norm_eps(fmt: Format) -> Result<Option<Float>> {
    let e = fmt.from_f64(GROUP_NORM_EPS)?;
    Ok(if e.is_zero() { None } else { Some(e) })
}

/// The convolution `{prefix}.weight` `[c_out, c_in, k, k]` with bias `{prefix}.bias` on `x`.
pub fn conv<B: TensorArith>(
    b: &mut B,
    prefix: &str,
    x: &B::T,
    c_out: usize,
    k: usize,
    pad: usize,
) -> Result<B::T> {
    let c_in = b.shape(x).first().copied().unwrap_or(0);
    let w = b.weight(&format!("{prefix}.weight"), &[c_out, c_in, k, k])?;
    let bias = b.weight(&format!("{prefix}.bias"), &[c_out])?;
    conv2d(b, prefix, x, &w, &bias, pad)
}

/// GroupNorm `{prefix}` of `x: [c, h, w]` with `groups` groups (see the module docs).
pub fn group_norm<B: TensorArith>(
    b: &mut B,
    prefix: &str,
    x: &B::T,
    groups: usize,
) -> Result<B::T> {
    let c = b.shape(x).first().copied().unwrap_or(0);
    let g = b.weight(&format!("{prefix}.weight"), &[c])?;
    let be = b.weight(&format!("{prefix}.bias"), &[c])?;
    let eps = norm_eps(b.format())?;
    nn::group_norm(b, prefix, x, groups, &g, &be, eps)
}

/// VAR's `ResnetBlock` `{prefix}` on `x: [c_in, h, w]` to `c_out` channels.
pub fn resnet_block<B: TensorArith>(
    b: &mut B,
    prefix: &str,
    x: &B::T,
    c_out: usize,
    groups: usize,
) -> Result<B::T> {
    let c_in = b.shape(x).first().copied().unwrap_or(0);
    let h = group_norm(b, &format!("{prefix}.norm1"), x, groups)?;
    let h = unary(b, &format!("{prefix}.silu1"), Unary::Silu, &h)?;
    let h = conv(b, &format!("{prefix}.conv1"), &h, c_out, 3, 1)?;
    let h = group_norm(b, &format!("{prefix}.norm2"), &h, groups)?;
    let h = unary(b, &format!("{prefix}.silu2"), Unary::Silu, &h)?;
    let h = conv(b, &format!("{prefix}.conv2"), &h, c_out, 3, 1)?;
    let sc = if c_in != c_out {
        conv(b, &format!("{prefix}.nin_shortcut"), x, c_out, 1, 0)?
    } else {
        x.clone()
    };
    binary(b, &format!("{prefix}.add"), BinOp::Add, &sc, &h)
}

/// VAR's decoder `AttnBlock` `{prefix}` on `x: [C, h, w]`: single-head attention over the
/// `h w` positions (see the module docs).
pub fn attn_block<B: TensorArith>(
    b: &mut B,
    prefix: &str,
    x: &B::T,
    groups: usize,
) -> Result<B::T> {
    let s = b.shape(x).to_vec();
    if s.len() != 3 {
        return Err(shape_err("attn_block", format!("x of shape {s:?}")));
    }
    let (c, n) = (s[0], s[1] * s[2]);
    let hn = group_norm(b, &format!("{prefix}.norm"), x, groups)?;
    let qkv = conv(b, &format!("{prefix}.qkv"), &hn, 3 * c, 1, 0)?;
    let qkv = b.reshape(&qkv, vec![3 * c, n])?;
    let ratio = b.format().from_f64((c as f64).powf(-0.5))?;
    let ci = c as i64;
    let scores = b
        .apply(
            &format!("{prefix}.scores"),
            &Dot {
                groups: 1,
                bias: false,
                scale: Some(ratio),
            },
            &[n, n],
            &[
                PortSpec {
                    src: &qkv,
                    map: Map::affine(vec![c], vec![co(0, &[0, 0], &[1]), co(0, &[1, 0], &[0])]),
                },
                PortSpec {
                    src: &qkv,
                    map: Map::affine(vec![c], vec![co(ci, &[0, 0], &[1]), co(0, &[0, 1], &[0])]),
                },
            ],
        )?
        .remove(0);
    let p = softmax_rows(b, &format!("{prefix}.softmax"), &scores)?;
    let h = b
        .apply(
            &format!("{prefix}.pv"),
            &Dot {
                groups: 1,
                bias: false,
                scale: None,
            },
            &[c, n],
            &[
                PortSpec {
                    src: &qkv,
                    map: Map::affine(
                        vec![n],
                        vec![co(2 * ci, &[1, 0], &[0]), co(0, &[0, 0], &[1])],
                    ),
                },
                PortSpec {
                    src: &p,
                    map: Map::affine(vec![n], vec![co(0, &[0, 1], &[0]), co(0, &[0, 0], &[1])]),
                },
            ],
        )?
        .remove(0);
    let h = b.reshape(&h, s)?;
    let proj = conv(b, &format!("{prefix}.proj_out"), &h, c, 1, 0)?;
    binary(b, &format!("{prefix}.add"), BinOp::Add, x, &proj)
}

/// The decoder from `f_hat: [Cvae, n, n]` (the accumulated feature map) to the image
/// `[vae_out_ch, n 2^(L-1), n 2^(L-1)]` clamped to `[-1, 1]`: VAR's
/// `decoder(post_quant_conv(f_hat)).clamp(-1, 1)` (see the module docs).
pub fn decode<B: TensorArith>(b: &mut B, cfg: &VarConfig, f_hat: &B::T) -> Result<B::T> {
    let ch = DecoderChannels::of(cfg)?;
    let s = b.shape(f_hat).to_vec();
    if s.len() != 3 || s[0] != cfg.cvae {
        return Err(shape_err(
            "decode",
            format!("f_hat of shape {s:?}, Cvae = {}", cfg.cvae),
        ));
    }
    let g = cfg.vae_groups;
    let levels = ch.level.len();
    let h = conv(b, "post_quant_conv", f_hat, cfg.cvae, 3, 1)?;
    let h = conv(b, "decoder.conv_in", &h, ch.mid, 3, 1)?;
    let h = resnet_block(b, "decoder.mid.block_1", &h, ch.mid, g)?;
    let h = if cfg.vae_mid_attn {
        attn_block(b, "decoder.mid.attn_1", &h, g)?
    } else {
        h
    };
    let mut h = resnet_block(b, "decoder.mid.block_2", &h, ch.mid, g)?;
    for lvl in (0..levels).rev() {
        let c_out = ch.level[lvl];
        for j in 0..=cfg.vae_num_res_blocks {
            h = resnet_block(b, &format!("decoder.up.{lvl}.block.{j}"), &h, c_out, g)?;
            if lvl == levels - 1 && cfg.vae_up_attn {
                h = attn_block(b, &format!("decoder.up.{lvl}.attn.{j}"), &h, g)?;
            }
        }
        if lvl != 0 {
            let up = upsample_nearest2(b, &format!("decoder.up.{lvl}.upsample"), &h)?;
            h = conv(
                b,
                &format!("decoder.up.{lvl}.upsample.conv"),
                &up,
                c_out,
                3,
                1,
            )?;
        }
    }
    let h = group_norm(b, "decoder.norm_out", &h, g)?;
    let h = unary(b, "decoder.silu_out", Unary::Silu, &h)?;
    let h = conv(b, "decoder.conv_out", &h, cfg.vae_out_ch, 3, 1)?;
    let fmt = b.format();
    elementwise(b, "clamp", &ClampUnit(fmt), &[&h])
}
