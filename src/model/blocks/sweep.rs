//! The scaling sweep: every block and the Definition 4.9 transformer built over grids of n and d,
//! with the measured depth, size and evaluation cost, and the lemmas' depth formulas evaluated on
//! the measured gadget depths.
//!
//! Meaning of n and d per block ([`BlockSpec`]): n is the number of tokens (rows of `[n, d]`) or
//! of output pixels (a map `h x w` with `h` the largest divisor of n not above `sqrt(n)`), d the
//! width or the number of channels. `m` is the number of transformer layers (0 for the other
//! blocks).

use std::fmt::Write as _;

use crate::circuit::{Builder, Circuit};
use crate::float::{Float, Format};
use crate::gadgets::float as fg;

use super::super::arith::{Arith, CircuitArith, Unary};
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::attention::{attention, attention_matrix, AttnOptions};
use super::conv::conv2d;
use super::interp::bicubic_up;
use super::linear::{linear, mlp};
use super::norm::layer_norm;
use super::transformer::{scale_schedule, var_transformer, LayerWeights};
use super::{circuit_input, circuit_output};

/// Depths of the gadgets the lemmas are stated in, measured by building each gadget alone on
/// fresh inputs in one format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GadgetDepths {
    /// add.
    pub add: u32,
    /// sub.
    pub sub: u32,
    /// mul of two activations.
    pub mul: u32,
    /// mul by a constant (largest over a few constants).
    pub mul_const: u32,
    /// div.
    pub div: u32,
    /// compare (`<`).
    pub cmp: u32,
    /// max of k values (largest over k in 2..=64).
    pub max: u32,
    /// `d_⊕`: iterated sum (largest over k in 2..=64 terms).
    pub sum: u32,
    /// `d_exp`.
    pub exp: u32,
    /// `d_sqrt`.
    pub sqrt: u32,
}

fn depth_of(
    fmt: Format,
    k: usize,
    f: impl FnOnce(&mut CircuitArith, &[fg::FloatWord]) -> Result<fg::FloatWord>,
) -> Result<u32> {
    let mut b = Builder::new();
    let mut a = CircuitArith::new(&mut b, fmt);
    let xs = (0..k)
        .map(|i| a.input(&format!("x{i}")))
        .collect::<Result<Vec<_>>>()?;
    let y = f(&mut a, &xs)?;
    b.output_word("y", &y.bits)?;
    Ok(b.finish().depth())
}

impl GadgetDepths {
    /// Measure the gadget depths of format `fmt`.
    pub fn measure(fmt: Format) -> Result<Self> {
        let ks = [2usize, 3, 4, 8, 64];
        let mut sum = 0;
        let mut max = 0;
        for &k in &ks {
            sum = sum.max(depth_of(fmt, k, |a, x| a.sum(x))?);
            max = max.max(depth_of(fmt, k, |a, x| a.max_n(x))?);
        }
        let mut mul_const = 0;
        for c in [0.7, -1.3, 3.0, 0.1] {
            let c = fmt.from_f64(c)?;
            mul_const = mul_const.max(depth_of(fmt, 1, |a, x| a.mul_const(&x[0], c))?);
        }
        let cmp = {
            let mut b = Builder::new();
            let x = fg::FloatWord::input(&mut b, "x", fmt)?;
            let y = fg::FloatWord::input(&mut b, "y", fmt)?;
            let l = fg::cmp::lt(&mut b, &x, &y)?;
            b.output_word("lt", &[l])?;
            b.finish().depth()
        };
        Ok(GadgetDepths {
            add: depth_of(fmt, 2, |a, x| a.add(&x[0], &x[1]))?,
            sub: depth_of(fmt, 2, |a, x| a.sub(&x[0], &x[1]))?,
            mul: depth_of(fmt, 2, |a, x| a.mul(&x[0], &x[1]))?,
            mul_const,
            div: depth_of(fmt, 2, |a, x| a.div(&x[0], &x[1]))?,
            cmp,
            max,
            sum,
            exp: depth_of(fmt, 1, |a, x| a.unary(Unary::Exp, &x[0]))?,
            sqrt: depth_of(fmt, 1, |a, x| a.unary(Unary::Sqrt, &x[0]))?,
        })
    }

    /// `d_std`: the largest depth of add, sub, mul, mul by a constant, div and compare.
    pub fn std(&self) -> u32 {
        [
            self.add,
            self.sub,
            self.mul,
            self.mul_const,
            self.div,
            self.cmp,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Lemma 5.1 (up-interpolation): `2 d_std + d_⊕`.
    pub fn lemma_5_1(&self) -> u32 {
        2 * self.std() + self.sum
    }
    /// Lemma 5.2 (matrix product): `d_std + d_⊕`.
    pub fn lemma_5_2(&self) -> u32 {
        self.std() + self.sum
    }
    /// Lemma 5.3 (attention matrix): `3 (d_std + d_⊕) + d_exp`.
    pub fn lemma_5_3(&self) -> u32 {
        3 * (self.std() + self.sum) + self.exp
    }
    /// The attention matrix with the row maximum subtracted (not in the paper):
    /// Lemma 5.3 `+ d_max + d_std`.
    pub fn attn_matrix_max(&self) -> u32 {
        self.lemma_5_3() + self.max + self.std()
    }
    /// The attention layer of Definition 4.5, corrected: Lemma 5.3 plus the row sum (`d_⊕`), the
    /// division by it (`d_std`) and the product with `X W_V` (`d_std + d_⊕`; `X W_V` itself runs
    /// in parallel with the scores): `5 d_std + 5 d_⊕ + d_exp`.
    pub fn attention_layer(&self) -> u32 {
        self.lemma_5_3() + self.sum + self.std() + self.std() + self.sum
    }
    /// [`GadgetDepths::attention_layer`] with the row maximum subtracted: `+ d_max + d_std`.
    pub fn attention_layer_max(&self) -> u32 {
        self.attention_layer() + self.max + self.std()
    }
    /// Lemma 5.4 (MLP layer): `2 d_std + d_⊕`.
    pub fn lemma_5_4(&self) -> u32 {
        2 * self.std() + self.sum
    }
    /// Lemma 5.5 (layer norm): `5 d_std + 2 d_⊕ + d_sqrt`.
    pub fn lemma_5_5(&self) -> u32 {
        5 * self.std() + 2 * self.sum + self.sqrt
    }
    /// Layer norm with eps and affine (not in the paper): Lemma 5.5 `+ d_std` (eps) `+ 2 d_std`
    /// (affine).
    pub fn layer_norm_eps_affine(&self) -> u32 {
        self.lemma_5_5() + 3 * self.std()
    }
    /// Convolution (Lemma 5.6 / Proposition 5.7 state only O(1)): products, one exact sum with
    /// the bias, as Lemma 5.4: `2 d_std + d_⊕`.
    pub fn conv(&self) -> u32 {
        self.lemma_5_4()
    }
    /// The Definition 4.9 transformer with m layers (Lemma 5.8 states only O(1)): per layer
    /// Lemma 5.1 + the corrected attention layer + Lemma 5.5 + Lemma 5.4.
    pub fn transformer(&self, m: usize) -> u32 {
        m as u32 * (self.lemma_5_1() + self.attention_layer() + self.lemma_5_5() + self.lemma_5_4())
    }
}

/// A block of the sweep.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// Bicubic up-interpolation `[d, ceil(h/2), ceil(w/2)] -> [d, h, w]` (Lemma 5.1).
    Interp,
    /// `X W^T` with `W: [d, d]` (Lemma 5.2).
    Linear,
    /// MLP layer `W x + b` (Definition 4.6, Lemma 5.4).
    Mlp,
    /// Attention matrix (Definition 4.4, Lemma 5.3).
    AttnMatrix,
    /// Attention layer (Definition 4.5; corrected formula).
    Attention,
    /// Attention layer with the row maximum subtracted before exp.
    AttentionMax,
    /// Layer norm (Definition 4.7, Lemma 5.5).
    LayerNorm,
    /// Layer norm with eps and affine parameters.
    LayerNormAffine,
    /// 3x3 convolution, padding 1, d kernels of d channels, bias (Definition 4.10, Prop. 5.7).
    Conv3x3,
    /// The Definition 4.9 transformer (m layers, Lemma 5.8).
    Transformer,
}

impl Block {
    /// Every block except the transformer.
    pub const SINGLE: [Block; 9] = [
        Block::Interp,
        Block::Linear,
        Block::Mlp,
        Block::AttnMatrix,
        Block::Attention,
        Block::AttentionMax,
        Block::LayerNorm,
        Block::LayerNormAffine,
        Block::Conv3x3,
    ];

    /// The block's name in the CSV.
    pub fn name(self) -> &'static str {
        match self {
            Block::Interp => "interp",
            Block::Linear => "linear",
            Block::Mlp => "mlp",
            Block::AttnMatrix => "attn_matrix",
            Block::Attention => "attention",
            Block::AttentionMax => "attention_max",
            Block::LayerNorm => "layer_norm",
            Block::LayerNormAffine => "layer_norm_affine",
            Block::Conv3x3 => "conv3x3",
            Block::Transformer => "transformer",
        }
    }

    /// The depth bound of the paper's lemma (or the corrected formula, see `docs/blocks.md`).
    pub fn depth_bound(self, g: &GadgetDepths, m: usize) -> u32 {
        match self {
            Block::Interp => g.lemma_5_1(),
            Block::Linear => g.lemma_5_2(),
            Block::Mlp => g.lemma_5_4(),
            Block::AttnMatrix => g.lemma_5_3(),
            Block::Attention => g.attention_layer(),
            Block::AttentionMax => g.attention_layer_max(),
            Block::LayerNorm => g.lemma_5_5(),
            Block::LayerNormAffine => g.layer_norm_eps_affine(),
            Block::Conv3x3 => g.conv(),
            Block::Transformer => g.transformer(m),
        }
    }
}

/// `(h, w)` of a map of n pixels: h the largest divisor of n with `h * h <= n`.
pub fn map_shape(n: usize) -> (usize, usize) {
    let mut h = 1;
    let mut k = 1;
    while k * k <= n {
        if n % k == 0 {
            h = k;
        }
        k += 1;
    }
    (h, n / h.max(1))
}

/// One block instance: which block, n, d, m, and the seed of its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSpec {
    /// The block.
    pub block: Block,
    /// Tokens or output pixels.
    pub n: usize,
    /// Width or channels.
    pub d: usize,
    /// Transformer layers (ignored by the other blocks).
    pub m: usize,
    /// Seed of the weights.
    pub seed: u64,
}

/// The constant weights of a [`BlockSpec`], seeded.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockWeights {
    /// One per transformer layer; single blocks use the first (attention, MLP, linear).
    pub layers: Vec<LayerWeights>,
    /// Convolution kernels `[d, d, 3, 3]`.
    pub conv_k: Tensor<Float>,
    /// Convolution bias, length d.
    pub conv_b: Vec<Float>,
    /// Layer-norm eps, gamma and beta (for [`Block::LayerNormAffine`]).
    pub ln: (Float, Vec<Float>, Vec<Float>),
}

/// Weight scale of the random weights: entries uniform in `[-0.5, 0.5]`; inputs in `[-2, 2]`.
pub const WEIGHT_SCALE: f64 = 0.5;

impl BlockSpec {
    /// The shape of the block's activation input.
    pub fn input_shape(&self) -> Vec<usize> {
        let (h, w) = map_shape(self.n);
        match self.block {
            Block::Interp => vec![self.d, h.div_ceil(2), w.div_ceil(2)],
            Block::Conv3x3 => vec![self.d, h, w],
            Block::Transformer => {
                let (h0, w0) = scale_schedule(h, w, self.m.max(1))
                    .ok()
                    .and_then(|s| s.first().copied())
                    .unwrap_or((1, 1));
                vec![self.d, h0, w0]
            }
            _ => vec![self.n, self.d],
        }
    }

    /// Seeded weights in format `fmt`.
    pub fn weights(&self, fmt: Format) -> Result<BlockWeights> {
        let d = self.d;
        let layers = (0..self.m.max(1))
            .map(|i| {
                LayerWeights::random(fmt, d, self.seed.wrapping_add(100 * i as u64), WEIGHT_SCALE)
            })
            .collect::<Result<Vec<_>>>()?;
        let s = self.seed ^ 0x5151;
        Ok(BlockWeights {
            layers,
            conv_k: Tensor::random(fmt, vec![d, d, 3, 3], s, WEIGHT_SCALE)?,
            conv_b: Tensor::random(fmt, vec![d], s + 1, WEIGHT_SCALE)?.into_data(),
            ln: (
                fmt.from_f64(1e-2)?,
                Tensor::random(fmt, vec![d], s + 2, 2.0)?.into_data(),
                Tensor::random(fmt, vec![d], s + 3, 1.0)?.into_data(),
            ),
        })
    }

    /// Apply the block to `x` (of [`BlockSpec::input_shape`]) with backend `a`.
    pub fn apply<A: Arith>(
        &self,
        a: &mut A,
        x: &Tensor<A::V>,
        w: &BlockWeights,
    ) -> Result<Tensor<A::V>> {
        let l0 = &w.layers[0];
        let (h, wd) = map_shape(self.n);
        match self.block {
            Block::Interp => bicubic_up(a, x, h, wd),
            Block::Linear => linear(a, x, &l0.w_mlp, None),
            Block::Mlp => mlp(a, x, &l0.w_mlp, &l0.b_mlp),
            Block::AttnMatrix => attention_matrix(a, x, &l0.wq, &l0.wk, AttnOptions::default()),
            Block::Attention => attention(a, x, &l0.wq, &l0.wk, &l0.wv, AttnOptions::default()),
            Block::AttentionMax => attention(
                a,
                x,
                &l0.wq,
                &l0.wk,
                &l0.wv,
                AttnOptions {
                    subtract_max: true,
                    scale: None,
                },
            ),
            Block::LayerNorm => layer_norm(a, x, None, None),
            Block::LayerNormAffine => layer_norm(a, x, Some(w.ln.0), Some((&w.ln.1, &w.ln.2))),
            Block::Conv3x3 => conv2d(a, x, &w.conv_k, Some(&w.conv_b), 1),
            Block::Transformer => {
                let scales = scale_schedule(h, wd, self.m)?;
                var_transformer(a, x, &w.layers, &scales[1..], AttnOptions::default())
            }
        }
    }

    /// Compile the block into a circuit: input words `x.k`, output words `y.k` (row-major).
    /// Returns the circuit and the output shape.
    pub fn build(&self, fmt: Format, w: &BlockWeights) -> Result<(Circuit, Vec<usize>)> {
        let mut b = Builder::new();
        let y = {
            let mut a = CircuitArith::new(&mut b, fmt);
            let x = circuit_input(&mut a, "x", self.input_shape())?;
            self.apply(&mut a, &x, w)?
        };
        circuit_output(&mut b, "y", &y)?;
        Ok((b.finish(), y.shape().to_vec()))
    }
}

/// One row of the sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepRow {
    /// Block name ([`Block::name`]).
    pub block: &'static str,
    /// Tokens or output pixels.
    pub n: usize,
    /// Width or channels.
    pub d: usize,
    /// Transformer layers (0 for the other blocks).
    pub m: usize,
    /// Measured depth.
    pub depth: u32,
    /// The lemma's (or corrected) depth formula on the measured gadget depths.
    pub bound: u32,
    /// Threshold gates.
    pub gates: u64,
    /// Wires: the sum of every gate's fan-in.
    pub fan_in: u64,
    /// Distinct linear forms.
    pub forms: u64,
    /// Terms of those forms.
    pub form_terms: u64,
}

/// Build every block of [`Block::SINGLE`] for each `(n, d)` of the grid and the transformer for
/// each `(n, d, m)`, in format `fmt`, and record their statistics. Weights are seeded by the
/// grid point (deterministic). Errors: a block that cannot be built (e.g. more than the iterated
/// sum's maximum of terms), an empty `ms` is allowed (no transformer rows).
pub fn sweep(fmt: Format, ns: &[usize], ds: &[usize], ms: &[usize]) -> Result<Vec<SweepRow>> {
    sweep_blocks(fmt, &Block::SINGLE, ns, ds, ms)
}

/// [`sweep`] restricted to the single blocks `blocks` (the transformer rows for `ms` as in
/// [`sweep`]).
pub fn sweep_blocks(
    fmt: Format,
    blocks: &[Block],
    ns: &[usize],
    ds: &[usize],
    ms: &[usize],
) -> Result<Vec<SweepRow>> {
    let g = GadgetDepths::measure(fmt)?;
    let mut rows = Vec::new();
    let mut specs = Vec::new();
    for &block in blocks {
        for &n in ns {
            for &d in ds {
                specs.push(BlockSpec {
                    block,
                    n,
                    d,
                    m: 0,
                    seed: 0,
                });
            }
        }
    }
    for &m in ms {
        for &n in ns {
            for &d in ds {
                specs.push(BlockSpec {
                    block: Block::Transformer,
                    n,
                    d,
                    m,
                    seed: 0,
                });
            }
        }
    }
    for mut spec in specs {
        if spec.n == 0 || spec.d == 0 {
            return Err(ModelError::Config {
                field: "sweep grid".into(),
                reason: "n and d must be positive".into(),
            });
        }
        spec.seed = (spec.n as u64) << 32 | (spec.d as u64) << 8 | spec.m as u64;
        let w = spec.weights(fmt)?;
        let (c, _) = spec.build(fmt, &w)?;
        let s = c.stats();
        rows.push(SweepRow {
            block: spec.block.name(),
            n: spec.n,
            d: spec.d,
            m: spec.m,
            depth: s.depth,
            bound: spec.block.depth_bound(&g, spec.m),
            gates: s.gates,
            fan_in: s.fan_in,
            forms: s.forms,
            form_terms: s.form_terms,
        });
    }
    Ok(rows)
}

/// The rows as CSV with a header line.
pub fn to_csv(rows: &[SweepRow]) -> String {
    let mut s = String::from("block,n,d,m,depth,bound,gates,fan_in,forms,form_terms\n");
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            r.block, r.n, r.d, r.m, r.depth, r.bound, r.gates, r.fan_in, r.forms, r.form_terms
        );
    }
    s
}

/// Least-squares slope of `ln y` against `ln x` over the points with `x, y > 0`; `None` with
/// fewer than two distinct x.
pub fn loglog_slope(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let k = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}
