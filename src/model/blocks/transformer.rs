//! The VAR transformer composition of Definition 4.9 for m layers.
//!
//! `TF(X) = g_m ∘ Attn_m ∘ phi_up ∘ ... ∘ g_1 ∘ Attn_1 ∘ phi_up(X)`. Reading chosen (closest to
//! the real model, where each next-scale prediction starts from the previous token map
//! up-sampled bicubically to the next scale's size):
//! - the input is a token map `[d, h_0, w_0]` (Definition 4.9: `X in F^{1 x d}`, i.e.
//!   `h_0 = w_0 = 1`);
//! - layer `i` first up-samples the current map to the scale `(h_i, w_i)` of a given schedule
//!   (`phi_up`, [`super::interp::bicubic_up`]), reads it as `n_i = h_i w_i` tokens of width d
//!   (`[n_i, d]`, row-major over the map), applies `Attn_i` (Definition 4.5,
//!   [`super::attention::attention`]) and then `g_i = g^MLP ∘ g^LN` (layer norm, Definition 4.7,
//!   then the MLP layer, Definition 4.6: the real model's pre-norm feed-forward order), and
//!   reads the tokens back as the map `[d, h_i, w_i]`;
//! - the output is the last layer's tokens `[n_m, d]`.
//!
//! There are no residual connections, no heads and no AdaLN: those belong to the real VAR
//! model (built on these blocks elsewhere), not to Definition 4.9. Depth: the sum over layers of
//! Lemma 5.1 + the corrected attention-layer formula + Lemma 5.5 + Lemma 5.4, independent of the
//! sizes for a fixed m (Lemma 5.8).

use crate::float::{Float, Format};

use super::super::arith::Arith;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::attention::{attention, AttnOptions};
use super::interp::bicubic_up;
use super::linear::mlp;
use super::norm::layer_norm;

/// The weights of one layer of [`var_transformer`] (width d).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// `W_Q: [d, d]` (applied as `X W_Q`).
    pub wq: Tensor<Float>,
    /// `W_K: [d, d]`.
    pub wk: Tensor<Float>,
    /// `W_V: [d, d]`.
    pub wv: Tensor<Float>,
    /// The MLP's `W: [d, d]` (`[d_out, d_in]`, applied as `W x`).
    pub w_mlp: Tensor<Float>,
    /// The MLP's bias, length d.
    pub b_mlp: Vec<Float>,
    /// The layer norm's epsilon (`None`: Definition 4.7 exactly).
    pub ln_eps: Option<Float>,
}

impl LayerWeights {
    /// Seeded random weights of width `d`: entries uniform in `[-scale, scale]` rounded to `fmt`
    /// (each tensor from its own seed derived from `seed`).
    pub fn random(fmt: Format, d: usize, seed: u64, scale: f64) -> Result<Self> {
        let t = |k: u64| {
            Tensor::random(
                fmt,
                vec![d, d],
                seed.wrapping_mul(0x9E37).wrapping_add(k),
                scale,
            )
        };
        Ok(LayerWeights {
            wq: t(1)?,
            wk: t(2)?,
            wv: t(3)?,
            w_mlp: t(4)?,
            b_mlp: Tensor::random(
                fmt,
                vec![d],
                seed.wrapping_mul(0x9E37).wrapping_add(5),
                scale,
            )?
            .into_data(),
            ln_eps: None,
        })
    }
}

/// The scale schedule of an m-layer transformer ending at `(h, w)`: `m + 1` scales, entry `i`
/// (0-based) is `(ceil(h (i+1) / (m+1)), ceil(w (i+1) / (m+1)))`; entry 0 is the input map's
/// size, entry i the size layer i works at, the last is `(h, w)`. Errors for m = 0.
pub fn scale_schedule(h: usize, w: usize, m: usize) -> Result<Vec<(usize, usize)>> {
    if m == 0 {
        return Err(ModelError::Config {
            field: "m".into(),
            reason: "a transformer needs at least one layer".into(),
        });
    }
    Ok((1..=m + 1)
        .map(|i| ((h * i).div_ceil(m + 1), (w * i).div_ceil(m + 1)))
        .collect())
}

/// Definition 4.9: `x: [d, h_0, w_0]`, one [`LayerWeights`] and one scale `(h_i, w_i)` per layer
/// (e.g. entries `1..` of [`scale_schedule`]);
/// returns the last layer's tokens `[h_m w_m, d]` (see the module docs for the reading).
pub fn var_transformer<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    layers: &[LayerWeights],
    scales: &[(usize, usize)],
    opts: AttnOptions,
) -> Result<Tensor<A::V>> {
    x.expect_rank("var_transformer: x", 3)?;
    if layers.len() != scales.len() || layers.is_empty() {
        return Err(ModelError::Shape {
            op: "var_transformer",
            detail: format!("{} layers and {} scales", layers.len(), scales.len()),
        });
    }
    let d = x.shape()[0];
    let mut map = x.clone();
    let mut tokens = None;
    for (lw, &(h, w)) in layers.iter().zip(scales) {
        let up = bicubic_up(a, &map, h, w)?;
        let t = up.reshape(vec![d, h * w])?.transpose()?;
        let t = attention(a, &t, &lw.wq, &lw.wk, &lw.wv, opts)?;
        let t = layer_norm(a, &t, lw.ln_eps, None)?;
        let t = mlp(a, &t, &lw.w_mlp, &lw.b_mlp)?;
        map = t.transpose()?.reshape(vec![d, h, w])?;
        tokens = Some(t);
    }
    tokens.ok_or(ModelError::Shape {
        op: "var_transformer",
        detail: "no layer".into(),
    })
}
