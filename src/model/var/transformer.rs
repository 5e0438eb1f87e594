//! Phase 1 of the VAR pass: the autoregressive transformer over scales, with AdaLN,
//! L2-normalised block-causal attention, the GELU MLP, the head, classifier-free guidance and
//! sampling. Written once, generic over [`Arith`].
//!
//! F(p, q) semantics (shared by the reference and the circuit, so they agree bit for bit):
//! - linear layers: [`linear`] of the paper blocks (one exact sum per output, the bias as one
//!   more term, rounded once);
//! - LayerNorm (no affine, eps = `cfg.norm_eps` rounded; skipped when it rounds to 0):
//!   [`layer_norm`] of the paper blocks (mean by a division, two-pass variance, division by the
//!   correctly rounded square root);
//! - AdaLN modulation: `round(round(LN(x)_j * round(1 + scale_j)) + shift_j)`; the residual
//!   update `round(x_j + round(gamma_j * y_j))`;
//! - attention (VAR `SelfAttention` with `attn_l2_norm`): `qkv` = linear with the bias
//!   `[q_bias, 0, v_bias]`, per head `q` and `k` L2-normalised as
//!   `x_i = round(x_i * rsqrt(max(round(sum_i round(x_i^2)), round(1e-24))))` (the reciprocal
//!   square root times x, as `F.normalize`'s `x / max(||x||, 1e-12)`, with one correctly
//!   rounded `rsqrt` instead of a square root and a division: a division gadget costs O(2^p)
//!   gates per element; the max is dropped when `1e-24` rounds to 0, and a zero vector stays
//!   zero because `0 * rsqrt(0) = 0`), `q` then multiplied by the per-head constant
//!   `round(exp(min(scale_mul_h, ln 100)))` (computed in f64 from the stored weight: a
//!   function of the weights only), scores `round(q . k)` ([`Arith::dot`]) without further
//!   scaling, softmax with the row maximum subtracted ([`softmax_rows`]), `out = P V`
//!   ([`Arith::dot`] per entry), heads concatenated, then the output projection. Keys and
//!   values of every earlier scale are kept ([`KvCache`]): queries of scale `si` attend to all
//!   tokens of scales `0..=si` (the block-causal mask of training);
//! - FFN: `fc2(GELU_tanh(fc1(x)))` with [`Unary::GeluTanh`];
//! - head: `linear(round(round(LN(x) * round(1 + scale)) + shift))`;
//! - guidance: `logits = round(round((1+t) c) - round(t u))` with the constants `1 + t` and `t`
//!   rounded ([`VarConfig::cfg_t`]); the unconditional stream runs the same blocks on the null
//!   class `num_classes` and receives the same sampled tokens;
//! - sampling: [`sample_argmax`] or [`sample_top_k`] (see [`Sampling`]).
//!
//! Class-only values (the first tokens `sos + pos_start + lvl_pos`, the six AdaLN vectors of
//! every block, the head's two) are computed by [`class_vectors`]. The reference passes call
//! it with their own backend; the compiler evaluates it under [`super::super::RefArith`] for
//! every class and selects the row with the class one-hot ([`Arith::select_const`]): exact
//! constant folding, the same bits by construction.

use crate::float::Float;

use super::super::arith::{Arith, Unary};
use super::super::blocks::linear::linear;
use super::super::blocks::norm::layer_norm;
use super::super::blocks::softmax_rows;
use super::super::error::{ModelError, Result};
use super::super::tensor::Tensor;
use super::config::{Sampling, VarConfig};
use super::weights::VarWeights;

/// The AdaLN vectors of one block (each of length C), as VAR's `ada_lin` produces them.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockMod<V> {
    /// Gain of the attention branch.
    pub gamma1: Vec<V>,
    /// Gain of the FFN branch.
    pub gamma2: Vec<V>,
    /// `round(1 + scale1)`.
    pub opl1: Vec<V>,
    /// `round(1 + scale2)`.
    pub opl2: Vec<V>,
    /// Shift before attention.
    pub shift1: Vec<V>,
    /// Shift before the FFN.
    pub shift2: Vec<V>,
}

/// Everything the transformer needs that depends on the class label only.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassVectors<V> {
    /// The first scale's input tokens `[first_l, C]`: `sos + pos_start + lvl_pos[..first_l]`.
    pub first_tokens: Tensor<V>,
    /// AdaLN vectors of every block.
    pub blocks: Vec<BlockMod<V>>,
    /// `round(1 + scale)` of the head's AdaLN.
    pub head_opl: Vec<V>,
    /// Shift of the head's AdaLN.
    pub head_shift: Vec<V>,
}

impl<V: Clone> ClassVectors<V> {
    /// All values in a fixed order (first tokens, then per block gamma1, gamma2, opl1, opl2,
    /// shift1, shift2, then the head's opl and shift).
    pub fn flatten(&self) -> Vec<V> {
        let mut v = self.first_tokens.data().to_vec();
        for b in &self.blocks {
            for part in [&b.gamma1, &b.gamma2, &b.opl1, &b.opl2, &b.shift1, &b.shift2] {
                v.extend_from_slice(part);
            }
        }
        v.extend_from_slice(&self.head_opl);
        v.extend_from_slice(&self.head_shift);
        v
    }

    /// The inverse of [`ClassVectors::flatten`] for `cfg`.
    pub fn unflatten(cfg: &VarConfig, v: Vec<V>) -> Result<Self> {
        let c = cfg.width;
        let fl = cfg.scale_tokens(0);
        let need = fl * c + cfg.depth * 6 * c + 2 * c;
        if v.len() != need {
            return Err(ModelError::Shape {
                op: "ClassVectors::unflatten",
                detail: format!("{} values, expected {need}", v.len()),
            });
        }
        let mut it = v.into_iter();
        let mut take = |n: usize| -> Vec<V> { it.by_ref().take(n).collect() };
        let first_tokens = Tensor::new(vec![fl, c], take(fl * c))?;
        let blocks = (0..cfg.depth)
            .map(|_| BlockMod {
                gamma1: take(c),
                gamma2: take(c),
                opl1: take(c),
                opl2: take(c),
                shift1: take(c),
                shift2: take(c),
            })
            .collect();
        let head_opl = take(c);
        let head_shift = take(c);
        Ok(ClassVectors {
            first_tokens,
            blocks,
            head_opl,
            head_shift,
        })
    }
}

fn one<A: Arith>(a: &mut A) -> Result<A::V> {
    let f = a.format();
    a.constant(f.from_f64(1.0)?)
}

/// `round(1 + x)` elementwise.
fn one_plus<A: Arith>(a: &mut A, xs: &[A::V]) -> Result<Vec<A::V>> {
    let o = one(a)?;
    xs.iter().map(|x| a.add(&o, x)).collect()
}

/// Constants of a weight tensor as backend values.
fn consts<A: Arith>(a: &mut A, xs: &[Float]) -> Result<Vec<A::V>> {
    xs.iter().map(|&c| a.constant(c)).collect()
}

/// `round(x + y)` elementwise over two equal-length slices.
fn add_vec<A: Arith>(a: &mut A, x: &[A::V], y: &[A::V]) -> Result<Vec<A::V>> {
    if x.len() != y.len() {
        return Err(ModelError::Shape {
            op: "add_vec",
            detail: format!("lengths {} and {}", x.len(), y.len()),
        });
    }
    x.iter().zip(y).map(|(u, v)| a.add(u, v)).collect()
}

/// The level-and-position embedding of scale `si`: `[pn^2, C]` with row `t` =
/// `round(lvl_embed[si] + pos_1LC[begin(si) + t])`.
pub fn lvl_pos<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    si: usize,
) -> Result<Tensor<A::V>> {
    let c = cfg.width;
    let lvl = w.get_shaped("lvl_embed.weight", &[cfg.num_scales(), c])?;
    let pos = w.get_shaped("pos_1LC", &[1, cfg.total_tokens(), c])?;
    let lv = consts(a, lvl.row(si)?)?;
    let n = cfg.scale_tokens(si);
    let b = cfg.scale_begin(si);
    let mut data = Vec::with_capacity(n * c);
    for t in 0..n {
        let p = consts(a, &pos.data()[(b + t) * c..(b + t + 1) * c])?;
        data.extend(add_vec(a, &lv, &p)?);
    }
    Tensor::new(vec![n, c], data)
}

/// The class-only vectors of `label` (`label == num_classes` is the null class of guidance).
pub fn class_vectors<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    label: usize,
) -> Result<ClassVectors<A::V>> {
    let c = cfg.width;
    if label > cfg.num_classes {
        return Err(ModelError::Shape {
            op: "class_vectors",
            detail: format!("label {label} of {} classes (+1 null)", cfg.num_classes),
        });
    }
    let emb = w.get_shaped("class_emb.weight", &[cfg.num_classes + 1, c])?;
    let cond = consts(a, emb.row(label)?)?;
    // first tokens = sos + pos_start + lvl_pos[:first_l]
    let fl = cfg.scale_tokens(0);
    let ps = w.get_shaped("pos_start", &[1, fl, c])?;
    let lp = lvl_pos(a, cfg, w, 0)?;
    let mut first = Vec::with_capacity(fl * c);
    for t in 0..fl {
        for (j, cj) in cond.iter().enumerate() {
            let p = a.constant(ps.data()[t * c + j])?;
            let s = a.add(cj, &p)?;
            first.push(a.add(&s, &lp.data()[t * c + j])?);
        }
    }
    let first_tokens = Tensor::new(vec![fl, c], first)?;
    // AdaLN: Linear(SiLU(cond)).
    let sc = cond
        .iter()
        .map(|x| a.unary(Unary::Silu, x))
        .collect::<Result<Vec<_>>>()?;
    let sct = Tensor::new(vec![1, c], sc)?;
    let mut blocks = Vec::with_capacity(cfg.depth);
    for i in 0..cfg.depth {
        let wt = w.get_shaped(&format!("blocks.{i}.ada_lin.1.weight"), &[6 * c, c])?;
        let bs = w.get_shaped(&format!("blocks.{i}.ada_lin.1.bias"), &[6 * c])?;
        let m = linear(a, &sct, wt, Some(bs.data()))?.into_data();
        let part = |k: usize| m[k * c..(k + 1) * c].to_vec();
        blocks.push(BlockMod {
            gamma1: part(0),
            gamma2: part(1),
            opl1: one_plus(a, &part(2))?,
            opl2: one_plus(a, &part(3))?,
            shift1: part(4),
            shift2: part(5),
        });
    }
    let wt = w.get_shaped("head_nm.ada_lin.1.weight", &[2 * c, c])?;
    let bs = w.get_shaped("head_nm.ada_lin.1.bias", &[2 * c])?;
    let m = linear(a, &sct, wt, Some(bs.data()))?.into_data();
    let head_opl = one_plus(a, &m[..c])?;
    let head_shift = m[c..].to_vec();
    Ok(ClassVectors {
        first_tokens,
        blocks,
        head_opl,
        head_shift,
    })
}

/// Keys and values of every token seen so far, per block and head (L2-normalised keys).
#[derive(Clone, Debug)]
pub struct KvCache<V> {
    /// `keys[block][head]`: one row of `head_dim` values per token.
    pub keys: Vec<Vec<Vec<Vec<V>>>>,
    /// `values[block][head]`: one row of `head_dim` values per token.
    pub values: Vec<Vec<Vec<Vec<V>>>>,
}

impl<V> KvCache<V> {
    /// An empty cache for `cfg`.
    pub fn new(cfg: &VarConfig) -> Self {
        let mk = || {
            (0..cfg.depth)
                .map(|_| (0..cfg.heads).map(|_| Vec::new()).collect())
                .collect()
        };
        KvCache {
            keys: mk(),
            values: mk(),
        }
    }
}

/// LayerNorm then `round(round(y * opl) + shift)` on every row of `x: [n, C]`.
fn ada_ln<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    x: &Tensor<A::V>,
    opl: &[A::V],
    shift: &[A::V],
) -> Result<Tensor<A::V>> {
    let eps = a.format().from_f64(cfg.norm_eps)?;
    let eps = if eps.is_zero() { None } else { Some(eps) };
    let y = layer_norm(a, x, eps, None)?;
    let c = cfg.width;
    let mut data = Vec::with_capacity(y.len());
    for (k, v) in y.data().iter().enumerate() {
        let m = a.mul(v, &opl[k % c])?;
        data.push(a.add(&m, &shift[k % c])?);
    }
    Tensor::new(y.shape().to_vec(), data)
}

/// `round(x + round(gamma * y))` on every row.
fn gated_residual<A: Arith>(
    a: &mut A,
    x: &Tensor<A::V>,
    gamma: &[A::V],
    y: &Tensor<A::V>,
) -> Result<Tensor<A::V>> {
    let c = gamma.len();
    let mut data = Vec::with_capacity(x.len());
    for (k, (xv, yv)) in x.data().iter().zip(y.data()).enumerate() {
        let g = a.mul(yv, &gamma[k % c])?;
        data.push(a.add(xv, &g)?);
    }
    Tensor::new(x.shape().to_vec(), data)
}

/// `x * rsqrt(max(x . x, eps^2))` (see the module docs).
fn l2_normalize<A: Arith>(a: &mut A, x: &[A::V]) -> Result<Vec<A::V>> {
    let ss = a.dot(x, x)?;
    let eps2 = a.format().from_f64(1e-24)?;
    let ss = if eps2.is_zero() {
        ss
    } else {
        let e = a.constant(eps2)?;
        a.max_n(&[ss, e])?
    };
    let r = a.unary(Unary::Rsqrt, &ss)?;
    x.iter().map(|v| a.mul(v, &r)).collect()
}

/// The per-head query multiplier `round(exp(min(scale_mul_h, ln 100)))` (f64 from the weight).
pub fn head_scales(cfg: &VarConfig, w: &VarWeights, block: usize) -> Result<Vec<Float>> {
    let s = w.get_shaped(
        &format!("blocks.{block}.attn.scale_mul_1H11"),
        &[1, cfg.heads, 1, 1],
    )?;
    s.data()
        .iter()
        .map(|v| Ok(cfg.fmt.from_f64(v.to_f64().min(100f64.ln()).exp())?))
        .collect()
}

/// Block-causal self-attention of block `bi` for the current scale's tokens `h: [n, C]`
/// (already modulated), appending their keys and values to `cache`.
fn attention<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    bi: usize,
    h: &Tensor<A::V>,
    cache: &mut KvCache<A::V>,
) -> Result<Tensor<A::V>> {
    let c = cfg.width;
    let hd = cfg.head_dim();
    let n = h.shape()[0];
    let p = format!("blocks.{bi}.attn");
    let wqkv = w.get_shaped(&format!("{p}.mat_qkv.weight"), &[3 * c, c])?;
    let qb = w.get_shaped(&format!("{p}.q_bias"), &[c])?;
    let vb = w.get_shaped(&format!("{p}.v_bias"), &[c])?;
    let mut bias = qb.data().to_vec();
    bias.extend(std::iter::repeat_n(cfg.fmt.zero(), c));
    bias.extend_from_slice(vb.data());
    let qkv = linear(a, h, wqkv, Some(&bias))?;
    let scales = head_scales(cfg, w, bi)?;
    let mut out: Vec<Vec<A::V>> = (0..n).map(|_| Vec::with_capacity(c)).collect();
    for hh in 0..cfg.heads {
        let col = |s: usize, i: usize| -> Result<Vec<A::V>> {
            let r = qkv.row(i)?;
            Ok(r[s * c + hh * hd..s * c + (hh + 1) * hd].to_vec())
        };
        let mut qs = Vec::with_capacity(n);
        for i in 0..n {
            let q = l2_normalize(a, &col(0, i)?)?;
            let q = q
                .iter()
                .map(|v| a.mul_const(v, scales[hh]))
                .collect::<Result<Vec<_>>>()?;
            qs.push(q);
            let k = l2_normalize(a, &col(1, i)?)?;
            cache.keys[bi][hh].push(k);
            cache.values[bi][hh].push(col(2, i)?);
        }
        let keys = &cache.keys[bi][hh];
        let vals = &cache.values[bi][hh];
        let m = keys.len();
        let mut s = Vec::with_capacity(n * m);
        for q in &qs {
            for k in keys {
                s.push(a.dot(q, k)?);
            }
        }
        let pr = softmax_rows(a, &Tensor::new(vec![n, m], s)?, true)?;
        for (i, o) in out.iter_mut().enumerate() {
            let prow = pr.row(i)?;
            for d in 0..hd {
                let vcol: Vec<A::V> = vals.iter().map(|v| v[d].clone()).collect();
                o.push(a.dot(prow, &vcol)?);
            }
        }
    }
    let o = Tensor::new(vec![n, c], out.into_iter().flatten().collect())?;
    let pw = w.get_shaped(&format!("{p}.proj.weight"), &[c, c])?;
    let pb = w.get_shaped(&format!("{p}.proj.bias"), &[c])?;
    linear(a, &o, pw, Some(pb.data()))
}

/// The FFN of block `bi`: `fc2(GELU_tanh(fc1(h)))`.
fn ffn<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    bi: usize,
    h: &Tensor<A::V>,
) -> Result<Tensor<A::V>> {
    let (c, f) = (cfg.width, cfg.hidden());
    let p = format!("blocks.{bi}.ffn");
    let w1 = w.get_shaped(&format!("{p}.fc1.weight"), &[f, c])?;
    let b1 = w.get_shaped(&format!("{p}.fc1.bias"), &[f])?;
    let w2 = w.get_shaped(&format!("{p}.fc2.weight"), &[c, f])?;
    let b2 = w.get_shaped(&format!("{p}.fc2.bias"), &[c])?;
    let u = linear(a, h, w1, Some(b1.data()))?;
    let g = u.try_map(|v| a.unary(Unary::GeluTanh, v))?;
    linear(a, &g, w2, Some(b2.data()))
}

/// One AdaLN self-attention block (VAR `AdaLNSelfAttn`):
/// `x += gamma1 * attn(ada_ln1(x))`, `x += gamma2 * ffn(ada_ln2(x))`.
pub fn block<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    bi: usize,
    m: &BlockMod<A::V>,
    x: &Tensor<A::V>,
    cache: &mut KvCache<A::V>,
) -> Result<Tensor<A::V>> {
    let h = ada_ln(a, cfg, x, &m.opl1, &m.shift1)?;
    let at = attention(a, cfg, w, bi, &h, cache)?;
    let x = gated_residual(a, x, &m.gamma1, &at)?;
    let h = ada_ln(a, cfg, &x, &m.opl2, &m.shift2)?;
    let f = ffn(a, cfg, w, bi, &h)?;
    gated_residual(a, &x, &m.gamma2, &f)
}

/// The head: `linear(ada_ln(x))` to `[n, V]` logits.
pub fn head<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    cls: &ClassVectors<A::V>,
    x: &Tensor<A::V>,
) -> Result<Tensor<A::V>> {
    let h = ada_ln(a, cfg, x, &cls.head_opl, &cls.head_shift)?;
    let hw = w.get_shaped("head.weight", &[cfg.vocab, cfg.width])?;
    let hb = w.get_shaped("head.bias", &[cfg.vocab])?;
    linear(a, &h, hw, Some(hb.data()))
}

/// The logits of scale `si` for the input tokens `x: [pn^2, C]` of one stream: every block
/// (regions `block{b}`), then the head (region `head`).
pub fn scale_logits<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    cls: &ClassVectors<A::V>,
    cache: &mut KvCache<A::V>,
    x: &Tensor<A::V>,
    mut tick: impl FnMut(),
) -> Result<Tensor<A::V>> {
    let mut x = x.clone();
    for (bi, m) in cls.blocks.iter().enumerate() {
        a.push_region(&format!("block{bi}"))?;
        x = block(a, cfg, w, bi, m, &x, cache)?;
        a.pop_region()?;
        tick();
    }
    a.push_region("head")?;
    let l = head(a, cfg, w, cls, &x)?;
    a.pop_region()?;
    Ok(l)
}

/// Classifier-free guidance of scale `si`: `round(round((1+t) c) - round(t u))`.
pub fn guide<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    si: usize,
    cond: &Tensor<A::V>,
    uncond: &Tensor<A::V>,
) -> Result<Tensor<A::V>> {
    let t = cfg.cfg_t(si);
    let opt = cfg.fmt.from_f64(1.0 + t)?;
    let tt = cfg.fmt.from_f64(t)?;
    let mut data = Vec::with_capacity(cond.len());
    for (c, u) in cond.data().iter().zip(uncond.data()) {
        let x = a.mul_const(c, opt)?;
        let y = a.mul_const(u, tt)?;
        data.push(a.sub(&x, &y)?);
    }
    Tensor::new(cond.shape().to_vec(), data)
}

/// The position of the largest logit, ties to the lowest index.
pub fn sample_argmax<A: Arith>(a: &mut A, logits: &[A::V]) -> Result<A::Choice> {
    a.argmax(logits)
}

fn or2<A: Arith>(a: &mut A, x: &A::Bit, y: &A::Bit) -> Result<A::Bit> {
    let nx = a.not(x);
    let ny = a.not(y);
    let both = a.and(&[nx, ny])?;
    Ok(a.not(&both))
}

/// Top-k sampling of one token from `logits` with the uniform `u` (see [`Sampling::TopK`]):
/// kept_i = [rank_i < k]; `p_i = exp(round(l_i - max))` if kept, else 0; `c_j` = exact sum of
/// `p_0..p_j` rounded once; threshold `round(u * c_{V-1})`; the choice is the first `j` with
/// `c_j > threshold`, or the last kept index when there is none. The `c_j` are non-decreasing
/// (exact sums of non-negative values, rounding is monotone), so exactly one bit is set.
pub fn sample_top_k<A: Arith>(a: &mut A, logits: &[A::V], k: usize, u: &A::V) -> Result<A::Choice> {
    let v = logits.len();
    if k == 0 || k > v {
        return Err(ModelError::Shape {
            op: "sample_top_k",
            detail: format!("k = {k} for {v} logits"),
        });
    }
    // kept_i = [number of j ranked before i <= k - 1]; None = every logit kept.
    let kept: Option<Vec<A::Bit>> = if k == v {
        None
    } else {
        let mut kept = Vec::with_capacity(v);
        for i in 0..v {
            let mut before = Vec::with_capacity(v - 1);
            for j in 0..v {
                if j < i {
                    // l_j >= l_i
                    let lt = a.lt(&logits[j], &logits[i])?;
                    before.push(a.not(&lt));
                } else if j > i {
                    before.push(a.lt(&logits[i], &logits[j])?);
                }
            }
            kept.push(a.at_most(&before, k - 1)?);
        }
        Some(kept)
    };
    let m = a.max_n(logits)?;
    let zero = a.constant(a.format().zero())?;
    let mut p = Vec::with_capacity(v);
    for i in 0..v {
        let d = a.sub(&logits[i], &m)?;
        let e = a.unary(Unary::Exp, &d)?;
        p.push(match &kept {
            Some(kp) => a.select(&kp[i], &e, &zero)?,
            None => e,
        });
    }
    let cum = (0..v)
        .map(|j| a.sum(&p[..=j]))
        .collect::<Result<Vec<_>>>()?;
    let thr = a.mul(u, &cum[v - 1])?;
    let gt = cum
        .iter()
        .map(|cj| a.lt(&thr, cj))
        .collect::<Result<Vec<_>>>()?;
    let none = a.not(&gt[v - 1]);
    let mut bits = Vec::with_capacity(v);
    for j in 0..v {
        let first = if j == 0 {
            gt[0].clone()
        } else {
            let prev = a.not(&gt[j - 1]);
            a.and(&[gt[j].clone(), prev])?
        };
        let last_kept = match &kept {
            None => {
                if j == v - 1 {
                    none.clone()
                } else {
                    a.lt(&zero, &zero)?
                }
            }
            Some(kp) => {
                let mut terms = vec![none.clone(), kp[j].clone()];
                for kk in kp.iter().skip(j + 1) {
                    terms.push(a.not(kk));
                }
                a.and(&terms)?
            }
        };
        bits.push(or2(a, &first, &last_kept)?);
    }
    a.choice_from_bits(&bits)
}

/// Sample every token of a scale: `logits: [n, V]`, `uniforms` one per token (TopK only).
pub fn sample<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    logits: &Tensor<A::V>,
    uniforms: &[A::V],
) -> Result<Vec<A::Choice>> {
    let n = logits.shape()[0];
    (0..n)
        .map(|i| {
            let row = logits.row(i)?;
            match cfg.sampling {
                Sampling::Argmax => sample_argmax(a, row),
                Sampling::TopK { k } => {
                    let u = uniforms.get(i).ok_or_else(|| ModelError::Shape {
                        op: "sample",
                        detail: format!("{} uniforms for {n} tokens", uniforms.len()),
                    })?;
                    sample_top_k(a, row, k, u)
                }
            }
        })
        .collect()
}

/// The next scale's input tokens from the next map `[Cvae, pn, pn]`:
/// `word_embed(map^T) + lvl_pos(si)` as `[pn^2, C]` (row `y pn + x`).
pub fn embed_next<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &VarWeights,
    si: usize,
    next: &Tensor<A::V>,
) -> Result<Tensor<A::V>> {
    next.expect_rank("embed_next", 3)?;
    let (cv, ph, pw) = (next.shape()[0], next.shape()[1], next.shape()[2]);
    let t = Tensor::from_fn(vec![ph * pw, cv], |ix| {
        Ok(next.get(&[ix[1], ix[0] / pw, ix[0] % pw])?.clone())
    })?;
    let ww = w.get_shaped("word_embed.weight", &[cfg.width, cfg.cvae])?;
    let wb = w.get_shaped("word_embed.bias", &[cfg.width])?;
    let e = linear(a, &t, ww, Some(wb.data()))?;
    let lp = lvl_pos(a, cfg, w, si)?;
    if lp.shape() != e.shape() {
        return Err(ModelError::Shape {
            op: "embed_next",
            detail: format!("map {:?} at scale {si}", next.shape()),
        });
    }
    let data = add_vec(a, e.data(), lp.data())?;
    Tensor::new(e.shape().to_vec(), data)
}
