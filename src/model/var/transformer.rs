//! Phase 1 of the VAR pass: the autoregressive transformer over scales, with AdaLN,
//! L2-normalised block-causal attention, the GELU MLP, the head, classifier-free guidance and
//! sampling. Written once at tensor granularity ([`TensorArith`]): the F(p, q) reference, the
//! f32 model, the explicit compiler and the uniform-program recorder all run this code.
//!
//! F(p, q) semantics (the kernels of [`crate::model::ops::kernels`]):
//! - linear layers: [`linear`] (one exact sum per output, the bias one more term, rounded once);
//! - LayerNorm (no affine, eps = `cfg.norm_eps` rounded; skipped when it rounds to 0):
//!   [`layer_norm`] (mean by a division, two-pass variance, division by the correctly rounded
//!   square root);
//! - AdaLN modulation: `round(round(LN(x)_j * round(1 + scale_j)) + shift_j)`; the residual
//!   update `round(x_j + round(gamma_j * y_j))`;
//! - attention (VAR `SelfAttention` with `attn_l2_norm`): `qkv` = linear with the bias
//!   `[q_bias, 0, v_bias]`, per head `q` and `k` L2-normalised as
//!   `x_i = round(x_i * rsqrt(max(round(x . x), round(1e-24))))` (one correctly rounded `rsqrt`
//!   instead of a square root and a division; the max is dropped when `1e-24` rounds to 0, and a
//!   zero vector stays zero because `0 * rsqrt(0) = 0`), `q` then multiplied by the per-head
//!   constant `round(exp(min(scale_mul_h, ln 100)))` (computed in f64 from the stored weight),
//!   scores `round(q . k)` without further scaling, softmax with the row maximum subtracted,
//!   `out = P V`, heads concatenated, then the output projection. Keys and values of every
//!   earlier scale are kept ([`KvCache`]): queries of scale `si` attend to all tokens of scales
//!   `0..=si` (the block-causal mask of training);
//! - FFN: `fc2(GELU_tanh(fc1(x)))`;
//! - head: `linear(round(round(LN(x) * round(1 + scale)) + shift))`;
//! - guidance: `logits = round(round((1+t) c) - round(t u))` with the constants `1 + t` and `t`
//!   rounded ([`VarConfig::cfg_t`]); the unconditional stream runs the same blocks on the null
//!   class `num_classes` and receives the same sampled tokens;
//! - sampling: [`sample`] (argmax, or top-k / top-p against a supplied uniform, see [`Sampling`]).
//!
//! Class-only values ([`class_vectors`]: the first tokens `sos + pos_start + lvl_pos`, the six
//! AdaLN vectors of every block, the head's two) are computed from the class choice like every
//! other value: the class embedding row is a lookup folded into its template, the rest is
//! `Linear(SiLU(cond))`. With shared AdaLN (`cfg.shared_aln`, VAR's `shared_aln`) the six
//! vectors of block `i` are `round(ada_gss_i + s)` with `s = shared_ada_lin(SiLU(cond))`
//! computed once (the head keeps its own `head_nm.ada_lin`).

use crate::float::Float;

use super::super::arith::Unary;
use super::super::error::{ModelError, Result};
use super::super::ops::kernels::{
    Argmax, BinOp, ConstOp, Dot, Guide, KeepIf, L2Scale, Less, MulAdd, MulMul, Reduce, ReduceK,
    TopKChoose, TopKKept, TopKWeight, TopPKept, WithConst,
};
use super::super::ops::nn::{
    binary, co, elementwise, layer_norm, linear, rows, select_table, slice_cols, softmax_rows,
    unary,
};
use super::super::ops::{Cond, Kind, Map, PortSpec, TensorArith};
use super::super::tensor::Tensor;
use super::config::{Sampling, VarConfig};

/// The AdaLN vectors of one block, each `[1, C]`, as VAR's `ada_lin` produces them.
#[derive(Clone, Debug)]
pub struct BlockMod<T> {
    /// Gain of the attention branch.
    pub gamma1: T,
    /// Gain of the FFN branch.
    pub gamma2: T,
    /// `round(1 + scale1)`.
    pub opl1: T,
    /// `round(1 + scale2)`.
    pub opl2: T,
    /// Shift before attention.
    pub shift1: T,
    /// Shift before the FFN.
    pub shift2: T,
}

/// Everything the transformer needs that depends on the class label only.
#[derive(Clone, Debug)]
pub struct ClassVectors<T> {
    /// The first scale's input tokens `[first_l, C]`: `sos + pos_start + lvl_pos[..first_l]`.
    pub first_tokens: T,
    /// AdaLN vectors of every block.
    pub blocks: Vec<BlockMod<T>>,
    /// `round(1 + scale)` of the head's AdaLN, `[1, C]`.
    pub head_opl: T,
    /// Shift of the head's AdaLN, `[1, C]`.
    pub head_shift: T,
}

fn one_plus<B: TensorArith>(b: &mut B, name: &str, x: &B::T) -> Result<B::T> {
    let one = b.format().from_f64(1.0)?;
    elementwise(b, name, &WithConst(ConstOp::Add, one), &[x])
}

/// The level-and-position embedding of scale `si`: `[pn^2, C]` with row `t` =
/// `round(lvl_embed[si] + pos_1LC[begin(si) + t])`.
pub fn lvl_pos<B: TensorArith>(b: &mut B, cfg: &VarConfig, si: usize) -> Result<B::T> {
    let c = cfg.width;
    let lvl = b.weight("lvl_embed.weight", &[cfg.num_scales(), c])?;
    let pos = b.weight("pos_1LC", &[1, cfg.total_tokens(), c])?;
    let n = cfg.scale_tokens(si);
    let begin = cfg.scale_begin(si) as i64;
    let ports = [
        PortSpec {
            src: &lvl,
            map: Map::affine(
                vec![1],
                vec![co(si as i64, &[0, 0], &[0]), co(0, &[0, 1], &[0])],
            ),
        },
        PortSpec {
            src: &pos,
            map: Map::affine(
                vec![1],
                vec![
                    co(0, &[0, 0], &[0]),
                    co(begin, &[1, 0], &[0]),
                    co(0, &[0, 1], &[0]),
                ],
            ),
        },
    ];
    let mut v = b.apply(
        &format!("lvl_pos{si}"),
        &super::super::ops::kernels::Binary(BinOp::Add),
        &[n, c],
        &ports,
    )?;
    Ok(v.remove(0))
}

/// The class-only vectors of the class choice `class` (`[1]`, a choice among the first
/// `n` rows of the class embedding: `n = num_classes` for a label input, `num_classes + 1` for
/// the null class of guidance).
pub fn class_vectors<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    class: &B::T,
) -> Result<ClassVectors<B::T>> {
    let c = cfg.width;
    let n = match b.kind(class) {
        Kind::Choice(n) if n as usize <= cfg.num_classes + 1 => n as usize,
        k => {
            return Err(ModelError::Shape {
                op: "class_vectors",
                detail: format!("class of kind {k:?} for {} classes", cfg.num_classes),
            })
        }
    };
    let emb = b.weight_values("class_emb.weight", &[cfg.num_classes + 1, c])?;
    let table = (0..n)
        .map(|r| Ok(emb.row(r)?.to_vec()))
        .collect::<Result<Vec<Vec<Float>>>>()?;
    let cond = select_table(b, "class_emb", table, class)?;
    let cond = b.reshape(&cond, vec![1, c])?;
    // first tokens = sos + pos_start + lvl_pos[:first_l]
    let fl = cfg.scale_tokens(0);
    let ps = b.weight("pos_start", &[1, fl, c])?;
    let ps = b.reshape(&ps, vec![fl, c])?;
    let lp = lvl_pos(b, cfg, 0)?;
    let s = binary(b, "sos_pos", BinOp::Add, &cond, &ps)?;
    let first_tokens = binary(b, "first_tokens", BinOp::Add, &s, &lp)?;
    // AdaLN: Linear(SiLU(cond)).
    let sc = unary(b, "cond_silu", Unary::Silu, &cond)?;
    let mut blocks = Vec::with_capacity(cfg.depth);
    // Shared AdaLN: one Linear(SiLU(cond)) for every block.
    let shared = if cfg.shared_aln {
        let wt = b.weight("shared_ada_lin.1.weight", &[6 * c, c])?;
        let bs = b.weight("shared_ada_lin.1.bias", &[6 * c])?;
        Some(linear(b, "shared_ada_lin", &sc, false, &wt, Some(&bs))?)
    } else {
        None
    };
    for i in 0..cfg.depth {
        let m = match &shared {
            // round(ada_gss + shared), VAR's `ada_gss + cond_BD` of `AdaLNSelfAttn`.
            Some(sh) => {
                let g = b.weight(&format!("blocks.{i}.ada_gss"), &[1, 1, 6, c])?;
                let g = b.reshape(&g, vec![1, 6 * c])?;
                binary(b, &format!("blocks.{i}.ada_gss"), BinOp::Add, &g, sh)?
            }
            None => {
                let wt = b.weight(&format!("blocks.{i}.ada_lin.1.weight"), &[6 * c, c])?;
                let bs = b.weight(&format!("blocks.{i}.ada_lin.1.bias"), &[6 * c])?;
                linear(
                    b,
                    &format!("blocks.{i}.ada_lin"),
                    &sc,
                    false,
                    &wt,
                    Some(&bs),
                )?
            }
        };
        let part = |b: &mut B, k: usize, what: &str| {
            slice_cols(b, &format!("blocks.{i}.{what}"), &m, k * c, c)
        };
        let gamma1 = part(b, 0, "gamma1")?;
        let gamma2 = part(b, 1, "gamma2")?;
        let scale1 = part(b, 2, "scale1")?;
        let scale2 = part(b, 3, "scale2")?;
        let shift1 = part(b, 4, "shift1")?;
        let shift2 = part(b, 5, "shift2")?;
        blocks.push(BlockMod {
            gamma1,
            gamma2,
            opl1: one_plus(b, &format!("blocks.{i}.opl1"), &scale1)?,
            opl2: one_plus(b, &format!("blocks.{i}.opl2"), &scale2)?,
            shift1,
            shift2,
        });
    }
    let wt = b.weight("head_nm.ada_lin.1.weight", &[2 * c, c])?;
    let bs = b.weight("head_nm.ada_lin.1.bias", &[2 * c])?;
    let m = linear(b, "head_nm.ada_lin", &sc, false, &wt, Some(&bs))?;
    let sc0 = slice_cols(b, "head.scale", &m, 0, c)?;
    let head_opl = one_plus(b, "head.opl", &sc0)?;
    let head_shift = slice_cols(b, "head.shift", &m, c, c)?;
    Ok(ClassVectors {
        first_tokens,
        blocks,
        head_opl,
        head_shift,
    })
}

/// Keys and values of every token seen so far, per block: `[tokens, C]` each (L2-normalised
/// keys, heads side by side), or `None` before the first scale.
#[derive(Clone, Debug)]
pub struct KvCache<T> {
    /// `keys[block]`.
    pub keys: Vec<Option<T>>,
    /// `values[block]`.
    pub values: Vec<Option<T>>,
}

impl<T> KvCache<T> {
    /// An empty cache for `cfg`.
    pub fn new(cfg: &VarConfig) -> Self {
        KvCache {
            keys: (0..cfg.depth).map(|_| None).collect(),
            values: (0..cfg.depth).map(|_| None).collect(),
        }
    }
}

fn norm_eps(b: &impl TensorArith, eps: f64) -> Result<Option<Float>> {
    let e = b.format().from_f64(eps)?;
    Ok(if e.is_zero() { None } else { Some(e) })
}

/// LayerNorm then `round(round(y * opl) + shift)` on every row of `x: [n, C]`.
fn ada_ln<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    name: &str,
    x: &B::T,
    opl: &B::T,
    shift: &B::T,
) -> Result<B::T> {
    let eps = norm_eps(b, cfg.norm_eps)?;
    let y = layer_norm(b, &format!("{name}.ln"), x, eps)?;
    elementwise(b, &format!("{name}.mod"), &MulAdd, &[&y, opl, shift])
}

/// `round(x + round(gamma * y))` on every row.
fn gated_residual<B: TensorArith>(
    b: &mut B,
    name: &str,
    x: &B::T,
    gamma: &B::T,
    y: &B::T,
) -> Result<B::T> {
    elementwise(b, name, &MulAdd, &[y, gamma, x])
}

/// The per-head query multiplier `round(exp(min(scale_mul_h, ln 100)))` (f64 from the weight).
pub fn head_scales(cfg: &VarConfig, s: &Tensor<Float>) -> Result<Vec<Float>> {
    s.data()
        .iter()
        .map(|v| Ok(cfg.fmt.from_f64(v.to_f64().min(100f64.ln()).exp())?))
        .collect()
}

/// The fused query/key/value projection of block `bi`: `h W_qkv^T + (q_bias, 0, v_bias)`, an
/// `[n, 3C]` tensor whose columns `0..C`, `C..2C`, `2C..3C` are q, k, v (the key bias is zero).
fn qkv_projection<B: TensorArith>(b: &mut B, cfg: &VarConfig, bi: usize, h: &B::T) -> Result<B::T> {
    let c = cfg.width;
    let p = format!("blocks.{bi}.attn");
    let wqkv = b.weight(&format!("{p}.mat_qkv.weight"), &[3 * c, c])?;
    let fmt = b.format();
    let bias = b.constant(&format!("{p}.qkv_bias"), vec![3 * c], &mut |w| {
        let qb = w.tensor(&format!("{p}.q_bias"), &[c])?;
        let vb = w.tensor(&format!("{p}.v_bias"), &[c])?;
        let mut v = qb.data().to_vec();
        v.extend(std::iter::repeat_n(fmt.zero(), c));
        v.extend_from_slice(vb.data());
        Tensor::new(vec![3 * c], v)
    })?;
    let qkv = linear(b, &format!("{p}.qkv"), h, false, &wqkv, Some(&bias))?;
    Ok(qkv)
}

/// The normalised queries and keys of block `bi` from `qkv: [n, 3C]`, both `[n, C]`: each head's
/// q is divided by its L2 norm and multiplied by the head's scale ([`head_scales`]), each head's
/// k divided by its L2 norm.
fn normalized_qk<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    bi: usize,
    qkv: &B::T,
) -> Result<(B::T, B::T)> {
    let c = cfg.width;
    let (heads, hd) = (cfg.heads, cfg.head_dim());
    let n = b.shape(qkv)[0];
    let p = format!("blocks.{bi}.attn");
    let fmt = b.format();
    let scales = b.constant(&format!("{p}.head_scales"), vec![heads], &mut |w| {
        let s = w.tensor(&format!("{p}.scale_mul_1H11"), &[1, heads, 1, 1])?;
        Tensor::new(vec![heads], head_scales(cfg, &s)?)
    })?;
    let eps2 = fmt.from_f64(1e-24)?;
    let l2 = L2Scale {
        eps2: (!eps2.is_zero()).then_some(eps2),
    };
    let hd_i = hd as i64;
    let c_i = c as i64;
    // Reciprocal norms of q (base 0) and k (base C) per (token, head): [n, H].
    let rnorm = |b: &mut B, base: i64, what: &str| -> Result<B::T> {
        let port = PortSpec {
            src: qkv,
            map: Map::affine(
                vec![hd],
                vec![co(0, &[1, 0], &[0]), co(base, &[0, hd_i], &[1])],
            ),
        };
        Ok(
            b.apply(&format!("{p}.{what}_rnorm"), &l2, &[n, heads], &[port])?
                .remove(0),
        )
    };
    let rq = rnorm(b, 0, "q")?;
    let rk = rnorm(b, c_i, "k")?;
    let elem = |base: i64| {
        Map::affine(
            vec![1],
            vec![co(0, &[1, 0, 0], &[0]), co(base, &[0, hd_i, 1], &[0])],
        )
    };
    let per_head = || {
        Map::affine(
            vec![1],
            vec![co(0, &[1, 0, 0], &[0]), co(0, &[0, 1, 0], &[0])],
        )
    };
    let q = b
        .apply(
            &format!("{p}.q"),
            &MulMul,
            &[n, heads, hd],
            &[
                PortSpec {
                    src: qkv,
                    map: elem(0),
                },
                PortSpec {
                    src: &rq,
                    map: per_head(),
                },
                PortSpec {
                    src: &scales,
                    map: Map::affine(vec![1], vec![co(0, &[0, 1, 0], &[0])]),
                },
            ],
        )?
        .remove(0);
    let q = b.reshape(&q, vec![n, c])?;
    let k = b
        .apply(
            &format!("{p}.k"),
            &super::super::ops::kernels::Binary(BinOp::Mul),
            &[n, heads, hd],
            &[
                PortSpec {
                    src: qkv,
                    map: elem(c_i),
                },
                PortSpec {
                    src: &rk,
                    map: per_head(),
                },
            ],
        )?
        .remove(0);
    let k = b.reshape(&k, vec![n, c])?;
    Ok((q, k))
}

/// The attention scores of block `bi`, `[H, n, m]`: entry `(h, i, j)` is the dot product of
/// query row `i` with key row `j` over head `h`'s columns (`q: [n, C]`, `keys: [m, C]`).
fn attention_scores<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    bi: usize,
    q: &B::T,
    keys: &B::T,
) -> Result<B::T> {
    let (heads, hd) = (cfg.heads, cfg.head_dim());
    let (n, m) = (b.shape(q)[0], b.shape(keys)[0]);
    let p = format!("blocks.{bi}.attn");
    let hd_i = hd as i64;
    // Scores [H, n, m]: q row i of head h against key j.
    let s = b
        .apply(
            &format!("{p}.scores"),
            &Dot {
                groups: 1,
                bias: false,
                scale: None,
            },
            &[heads, n, m],
            &[
                PortSpec {
                    src: q,
                    map: Map::affine(
                        vec![hd],
                        vec![co(0, &[0, 1, 0], &[0]), co(0, &[hd_i, 0, 0], &[1])],
                    ),
                },
                PortSpec {
                    src: keys,
                    map: Map::affine(
                        vec![hd],
                        vec![co(0, &[0, 0, 1], &[0]), co(0, &[hd_i, 0, 0], &[1])],
                    ),
                },
            ],
        )?
        .remove(0);
    Ok(s)
}

/// The attention output of block `bi`, `[n, H, hd]`: the probabilities `pr: [H, n, m]` against
/// the values `vals: [m, C]`, entry `(i, h, d)` the dot product of `pr` row `(h, i)` with value
/// column `h hd + d`.
fn attention_values<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    bi: usize,
    pr: &B::T,
    vals: &B::T,
) -> Result<B::T> {
    let (heads, hd) = (cfg.heads, cfg.head_dim());
    let (n, m) = (b.shape(pr)[1], b.shape(vals)[0]);
    let p = format!("blocks.{bi}.attn");
    let hd_i = hd as i64;
    // out [n, H, hd]: P row (h, i) against the values' column h hd + d.
    let o = b
        .apply(
            &format!("{p}.pv"),
            &Dot {
                groups: 1,
                bias: false,
                scale: None,
            },
            &[n, heads, hd],
            &[
                PortSpec {
                    src: pr,
                    map: Map::affine(
                        vec![m],
                        vec![
                            co(0, &[0, 1, 0], &[0]),
                            co(0, &[1, 0, 0], &[0]),
                            co(0, &[0, 0, 0], &[1]),
                        ],
                    ),
                },
                PortSpec {
                    src: vals,
                    map: Map::affine(
                        vec![m],
                        vec![co(0, &[0, 0, 0], &[1]), co(0, &[0, hd_i, 1], &[0])],
                    ),
                },
            ],
        )?
        .remove(0);
    Ok(o)
}

/// Block-causal self-attention of block `bi` for the current scale's tokens `h: [n, C]`
/// (already modulated), appending their keys and values to `cache`.
fn attention<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    bi: usize,
    h: &B::T,
    cache: &mut KvCache<B::T>,
) -> Result<B::T> {
    let c = cfg.width;
    let n = b.shape(h)[0];
    let p = format!("blocks.{bi}.attn");
    let qkv = qkv_projection(b, cfg, bi, h)?;
    let (q, k) = normalized_qk(b, cfg, bi, &qkv)?;
    let v = slice_cols(b, &format!("{p}.v"), &qkv, 2 * c, c)?;
    let keys = match cache.keys[bi].take() {
        Some(prev) => b.concat(&format!("{p}.keys"), &[&prev, &k])?,
        None => k,
    };
    let vals = match cache.values[bi].take() {
        Some(prev) => b.concat(&format!("{p}.values"), &[&prev, &v])?,
        None => v,
    };
    let s = attention_scores(b, cfg, bi, &q, &keys)?;
    let pr = softmax_rows(b, &format!("{p}.softmax"), &s)?;
    let o = attention_values(b, cfg, bi, &pr, &vals)?;
    cache.keys[bi] = Some(keys);
    cache.values[bi] = Some(vals);
    let o = b.reshape(&o, vec![n, c])?;
    let pw = b.weight(&format!("{p}.proj.weight"), &[c, c])?;
    let pb = b.weight(&format!("{p}.proj.bias"), &[c])?;
    linear(b, &format!("{p}.proj"), &o, false, &pw, Some(&pb))
}

/// The FFN of block `bi`: `fc2(GELU_tanh(fc1(h)))`.
fn ffn<B: TensorArith>(b: &mut B, cfg: &VarConfig, bi: usize, h: &B::T) -> Result<B::T> {
    let (c, f) = (cfg.width, cfg.hidden());
    let p = format!("blocks.{bi}.ffn");
    let w1 = b.weight(&format!("{p}.fc1.weight"), &[f, c])?;
    let b1 = b.weight(&format!("{p}.fc1.bias"), &[f])?;
    let w2 = b.weight(&format!("{p}.fc2.weight"), &[c, f])?;
    let b2 = b.weight(&format!("{p}.fc2.bias"), &[c])?;
    let u = linear(b, &format!("{p}.fc1"), h, false, &w1, Some(&b1))?;
    let g = unary(b, &format!("{p}.gelu"), Unary::GeluTanh, &u)?;
    linear(b, &format!("{p}.fc2"), &g, false, &w2, Some(&b2))
}

/// One AdaLN self-attention block (VAR `AdaLNSelfAttn`):
/// `x += gamma1 * attn(ada_ln1(x))`, `x += gamma2 * ffn(ada_ln2(x))`.
pub fn block<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    bi: usize,
    m: &BlockMod<B::T>,
    x: &B::T,
    cache: &mut KvCache<B::T>,
) -> Result<B::T> {
    let h = ada_ln(b, cfg, &format!("blocks.{bi}.ln1"), x, &m.opl1, &m.shift1)?;
    let at = attention(b, cfg, bi, &h, cache)?;
    let x = gated_residual(b, &format!("blocks.{bi}.res1"), x, &m.gamma1, &at)?;
    let h = ada_ln(b, cfg, &format!("blocks.{bi}.ln2"), &x, &m.opl2, &m.shift2)?;
    let f = ffn(b, cfg, bi, &h)?;
    gated_residual(b, &format!("blocks.{bi}.res2"), &x, &m.gamma2, &f)
}

/// The head: `linear(ada_ln(x))` to `[n, V]` logits.
pub fn head<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    cls: &ClassVectors<B::T>,
    x: &B::T,
) -> Result<B::T> {
    let h = ada_ln(b, cfg, "head.ln", x, &cls.head_opl, &cls.head_shift)?;
    let hw = b.weight("head.weight", &[cfg.vocab, cfg.width])?;
    let hb = b.weight("head.bias", &[cfg.vocab])?;
    linear(b, "head", &h, false, &hw, Some(&hb))
}

/// The logits of one scale for the input tokens `x: [pn^2, C]` of one stream: every block
/// (regions `block{b}`), then the head (region `head`).
pub fn scale_logits<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    cls: &ClassVectors<B::T>,
    cache: &mut KvCache<B::T>,
    x: &B::T,
    mut tick: impl FnMut(),
) -> Result<B::T> {
    let mut x = x.clone();
    for (bi, m) in cls.blocks.iter().enumerate() {
        b.push_region(&format!("block{bi}"))?;
        x = block(b, cfg, bi, m, &x, cache)?;
        b.pop_region()?;
        tick();
    }
    b.push_region("head")?;
    let l = head(b, cfg, cls, &x)?;
    b.pop_region()?;
    Ok(l)
}

/// Classifier-free guidance of scale `si`: `round(round((1+t) c) - round(t u))`.
pub fn guide<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    si: usize,
    cond: &B::T,
    uncond: &B::T,
) -> Result<B::T> {
    let t = cfg.cfg_t(si);
    let k = Guide {
        s: cfg.fmt.from_f64(1.0 + t)?,
        t: cfg.fmt.from_f64(t)?,
    };
    elementwise(b, "guide", &k, &[cond, uncond])
}

/// Sample every token of a scale from `logits: [n, V]`: the choices `[n]`. Argmax: the largest
/// logit (ties to the lowest index). Top-k and top-p with the uniforms `us[begin..begin + n]`
/// (`us: [L]`): the weights `p_i` of the kept logits ([`top_k_weights`], [`top_p_weights`];
/// 0 for the others), then [`choose_by_uniform`].
pub fn sample<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    logits: &B::T,
    uniforms: Option<(&B::T, usize)>,
) -> Result<B::T> {
    let s = b.shape(logits).to_vec();
    let (n, v) = (s[0], s[1]);
    let vk = u32::try_from(v).map_err(|_| ModelError::Shape {
        op: "sample",
        detail: format!("{v} logits"),
    })?;
    let (p, kept) = match cfg.sampling {
        Sampling::Argmax => return rows(b, "argmax", &Argmax(vk), logits),
        Sampling::TopK { k } => top_k_weights(b, logits, k)?,
        Sampling::TopP { p } => {
            let pf = cfg.fmt.from_f64(p)?;
            let (w, kept) = top_p_weights(b, logits, pf)?;
            (w, Some(kept))
        }
    };
    let (us, begin) = uniforms.ok_or_else(|| ModelError::Shape {
        op: "sample",
        detail: format!("{} sampling needs the uniforms", cfg.sampling),
    })?;
    choose_by_uniform(b, &p, kept.as_ref(), us, begin, (n, vk))
}

/// Per row of `logits: [n, V]`, logit `i` against every logit `j` of its row (port maps of
/// the ranking kernels): `l_i`, the row, and the constant bit "`j < i`".
fn rank_ports<'a, B: TensorArith>(
    logits: &'a B::T,
    one: &'a B::T,
    v: usize,
) -> [PortSpec<'a, B::T>; 3] {
    let vi = v as i64;
    // j < i  <=>  0 <= i - j - 1 < V
    let before = Map::Affine {
        words: vec![v],
        coords: vec![co(0, &[0, 0], &[0])],
        pad: false,
        conds: vec![Cond {
            expr: co(-1, &[0, 1], &[-1]),
            bound: vi,
        }],
    };
    [
        PortSpec {
            src: logits,
            map: Map::affine(vec![1], vec![co(0, &[1, 0], &[0]), co(0, &[0, 1], &[0])]),
        },
        PortSpec {
            src: logits,
            map: Map::affine(vec![v], vec![co(0, &[1, 0], &[0]), co(0, &[0, 0], &[1])]),
        },
        PortSpec {
            src: one,
            map: before,
        },
    ]
}

/// The row maxima `[n]` of `logits: [n, V]` and the weights `exp(round(l_i - max))` (times
/// the kept bit when `kept` is given) `[n, V]`.
fn exp_weights<B: TensorArith>(b: &mut B, logits: &B::T, kept: Option<&B::T>) -> Result<B::T> {
    let s = b.shape(logits).to_vec();
    let (n, v) = (s[0], s[1]);
    let m = rows(
        b,
        "topk.max",
        &ReduceK {
            op: Reduce::Max,
            div: None,
        },
        logits,
    )?;
    let at = Map::affine(vec![1], vec![co(0, &[1, 0], &[0]), co(0, &[0, 1], &[0])]);
    let mut ports = vec![
        PortSpec {
            src: logits,
            map: at.clone(),
        },
        PortSpec {
            src: &m,
            map: Map::affine(vec![1], vec![co(0, &[1, 0], &[0])]),
        },
    ];
    if let Some(kp) = kept {
        ports.push(PortSpec { src: kp, map: at });
    }
    let masked = kept.is_some();
    Ok(
        b.apply("topk.weight", &TopKWeight { masked }, &[n, v], &ports)?
            .remove(0),
    )
}

/// Top-k weights of `logits: [n, V]`: `kept_i = [rank_i < k]` (ties to the lowest index),
/// `p_i = exp(round(l_i - max))` if kept, else 0. `kept` is `None` when `k = V` (all kept).
fn top_k_weights<B: TensorArith>(
    b: &mut B,
    logits: &B::T,
    k: usize,
) -> Result<(B::T, Option<B::T>)> {
    let s = b.shape(logits).to_vec();
    let (n, v) = (s[0], s[1]);
    if k == 0 || k > v {
        return Err(ModelError::Shape {
            op: "sample",
            detail: format!("k = {k} for {v} logits"),
        });
    }
    let kept = if k < v {
        let one = b.constant_bits("one", vec![1], &[true])?;
        let ports = rank_ports::<B>(logits, &one, v);
        Some(
            b.apply("topk.kept", &TopKKept(k), &[n, v], &ports)?
                .remove(0),
        )
    } else {
        None
    };
    let p = exp_weights(b, logits, kept.as_ref())?;
    Ok((p, kept))
}

/// Top-p weights of `logits: [n, V]` for the mass `pf` (in the format; [`Sampling::TopP`]):
/// `w_i = exp(round(l_i - max))`, the target `round(pf * round(sum_i w_i))`, the kept bits of
/// [`TopPKept`], and the weights `kept_i ? w_i : 0`.
fn top_p_weights<B: TensorArith>(b: &mut B, logits: &B::T, pf: Float) -> Result<(B::T, B::T)> {
    let s = b.shape(logits).to_vec();
    let (n, v) = (s[0], s[1]);
    let w = exp_weights(b, logits, None)?;
    let total = rows(
        b,
        "topp.total",
        &ReduceK {
            op: Reduce::Sum,
            div: None,
        },
        &w,
    )?;
    let target = elementwise(b, "topp.target", &WithConst(ConstOp::Mul, pf), &[&total])?;
    let one = b.constant_bits("one", vec![1], &[true])?;
    let [li, row, before] = rank_ports::<B>(logits, &one, v);
    let ports = [
        li,
        row,
        before,
        PortSpec {
            src: &w,
            map: Map::affine(vec![v], vec![co(0, &[1, 0], &[0]), co(0, &[0, 0], &[1])]),
        },
        PortSpec {
            src: &target,
            map: Map::affine(vec![1], vec![co(0, &[1, 0], &[0])]),
        },
    ];
    let kept = b.apply("topp.kept", &TopPKept, &[n, v], &ports)?.remove(0);
    let p = elementwise(b, "topp.keep", &KeepIf, &[&w, &kept])?;
    Ok((p, kept))
}

/// The choice `[n]` from the weights `p: [n, V]` (0 for logits not kept) and the uniforms
/// `us[begin..begin + n]`: `c_j` = the exact sum of `p_0..p_j` rounded once; threshold
/// `round(u * c_{V-1})`; the first `j` with `c_j > threshold`, or the last kept index when
/// there is none (exactly one, since the `c_j` are non-decreasing). `kept` is `None` when
/// every logit is kept.
fn choose_by_uniform<B: TensorArith>(
    b: &mut B,
    p: &B::T,
    kept: Option<&B::T>,
    us: &B::T,
    begin: usize,
    (n, vk): (usize, u32),
) -> Result<B::T> {
    let v = vk as usize;
    let vi = v as i64;
    let at =
        |r: [i64; 2], c: [i64; 2]| Map::affine(vec![1], vec![co(0, &r, &[0]), co(0, &c, &[0])]);
    // c_j = exact sum of p_0..p_j: the row with the words j' > j read as zero.
    let prefix = Map::Affine {
        words: vec![v],
        coords: vec![co(0, &[1, 0], &[0]), co(0, &[0, 0], &[1])],
        pad: false,
        conds: vec![Cond {
            expr: co(0, &[0, 1], &[-1]),
            bound: vi,
        }],
    };
    let cum = b
        .apply(
            "topk.cum",
            &ReduceK {
                op: Reduce::Sum,
                div: None,
            },
            &[n, v],
            &[PortSpec {
                src: p,
                map: prefix,
            }],
        )?
        .remove(0);
    let thr = b
        .apply(
            "topk.threshold",
            &super::super::ops::kernels::Binary(BinOp::Mul),
            &[n],
            &[
                PortSpec {
                    src: us,
                    map: Map::affine(vec![1], vec![co(begin as i64, &[1], &[0])]),
                },
                PortSpec {
                    src: &cum,
                    map: Map::affine(vec![1], vec![co(0, &[1], &[0]), co(vi - 1, &[0], &[0])]),
                },
            ],
        )?
        .remove(0);
    let gt = b
        .apply(
            "topk.gt",
            &Less,
            &[n, v],
            &[
                PortSpec {
                    src: &thr,
                    map: Map::affine(vec![1], vec![co(0, &[1, 0], &[0])]),
                },
                PortSpec {
                    src: &cum,
                    map: at([1, 0], [0, 1]),
                },
            ],
        )?
        .remove(0);
    let row = || Map::affine(vec![v], vec![co(0, &[1], &[0]), co(0, &[0], &[1])]);
    let mut ports = vec![PortSpec {
        src: &gt,
        map: row(),
    }];
    if let Some(kp) = kept {
        ports.push(PortSpec {
            src: kp,
            map: row(),
        });
    }
    let masked = kept.is_some();
    Ok(
        b.apply("topk.choose", &TopKChoose { v: vk, masked }, &[n], &ports)?
            .remove(0),
    )
}

/// The next scale's input tokens from the next map `[Cvae, pn, pn]`:
/// `word_embed(map^T) + lvl_pos(si)` as `[pn^2, C]` (row `y pn + x`).
pub fn embed_next<B: TensorArith>(
    b: &mut B,
    cfg: &VarConfig,
    si: usize,
    next: &B::T,
) -> Result<B::T> {
    let s = b.shape(next).to_vec();
    if s.len() != 3 || s[0] != cfg.cvae || s[1] != s[2] || s[1] * s[2] != cfg.scale_tokens(si) {
        return Err(ModelError::Shape {
            op: "embed_next",
            detail: format!("map {s:?} at scale {si}"),
        });
    }
    let t = b.reshape(next, vec![s[0], s[1] * s[2]])?;
    let ww = b.weight("word_embed.weight", &[cfg.width, cfg.cvae])?;
    let wb = b.weight("word_embed.bias", &[cfg.width])?;
    let e = linear(b, "word_embed", &t, true, &ww, Some(&wb))?;
    let lp = lvl_pos(b, cfg, si)?;
    binary(b, "embed", BinOp::Add, &e, &lp)
}
