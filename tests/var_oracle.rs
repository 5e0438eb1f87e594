//! An independent f64 oracle of the VAR transformer phase (class and start embeddings, AdaLN
//! blocks with L2-normalised block-causal attention, the GELU-tanh FFN, the head, classifier-free
//! guidance, argmax / top-k sampling and the multi-scale feature-map update that feeds the next
//! scale), written from the formulas of the reference implementation (FoundationVision/VAR
//! `models/var.py`, `basic_var.py`, `quant.py`, `helpers.py`) and not from the crate's model
//! code, compared with the F(24, 9) reference pass on seeded weights: token maps equal, logits
//! within a stated tolerance (see [`logit_tolerance`]).
//!
//! The oracle recomputes every scale the way VAR trains: the whole prefix of tokens at once with
//! the block-causal mask (a token attends to every token of its own and earlier scales), instead
//! of the reference's KV cache, so it also checks that the cache is equivalent to the mask.
//!
//! The reference's logits are read at the sampler's input by a pass-through backend ([`Tap`])
//! around the F(p, q) reference backend, running the same `var_forward` as
//! `var_reference_until` (whose tokens are checked to be the same).

use tcvar::float::{Float, Format};
use tcvar::model::error::Result;
use tcvar::model::ops::scalar::{STensor, Scalar};
use tcvar::model::ops::{Kernel, Kind, PortSpec, TensorArith, WeightProvider};
use tcvar::model::tensor::Tensor;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{var_forward, var_reference_until, PassInputs, Until, VarInput};
use tcvar::model::var::weights::VarWeights;
use tcvar::model::RefArith;

// ---------------------------------------------------------------------------------------------
// The reference pass, with the logits each scale samples from.

/// The F(p, q) reference backend, passing every call through, that keeps the logits handed to
/// the sampler of each scale: the float `[n, V]` source of the first application inside the
/// region `sample` (argmax and the top-k filter both read the logits first).
struct Tap<'w> {
    inner: Scalar<'w, RefArith>,
    want: bool,
    logits: Vec<Tensor<Float>>,
}

impl TensorArith for Tap<'_> {
    type T = STensor<RefArith>;

    fn format(&self) -> Format {
        self.inner.format()
    }
    fn shape<'a>(&self, t: &'a Self::T) -> &'a [usize] {
        self.inner.shape(t)
    }
    fn kind(&self, t: &Self::T) -> Kind {
        self.inner.kind(t)
    }
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<Self::T> {
        self.inner.weight(name, shape)
    }
    fn weight_values(&self, name: &str, shape: &[usize]) -> Result<Tensor<Float>> {
        self.inner.weight_values(name, shape)
    }
    fn constant(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        values: &mut dyn FnMut(&dyn WeightProvider) -> Result<Tensor<Float>>,
    ) -> Result<Self::T> {
        self.inner.constant(name, shape, values)
    }
    fn constant_bits(&mut self, name: &str, shape: Vec<usize>, bits: &[bool]) -> Result<Self::T> {
        self.inner.constant_bits(name, shape, bits)
    }
    fn constant_choices(
        &mut self,
        name: &str,
        n: u32,
        shape: Vec<usize>,
        idx: &[u32],
    ) -> Result<Self::T> {
        self.inner.constant_choices(name, n, shape, idx)
    }
    fn apply<K: Kernel>(
        &mut self,
        name: &str,
        k: &K,
        inst: &[usize],
        ports: &[PortSpec<'_, Self::T>],
    ) -> Result<Vec<Self::T>> {
        if self.want {
            let src = ports[0].src;
            assert!(
                src.kind() == Kind::Float && src.shape().len() == 2,
                "the sampler's first application {name} does not read the logits"
            );
            self.logits.push(src.to_floats()?);
            self.want = false;
        }
        self.inner.apply(name, k, inst, ports)
    }
    fn concat(&mut self, name: &str, parts: &[&Self::T]) -> Result<Self::T> {
        self.inner.concat(name, parts)
    }
    fn reshape(&mut self, t: &Self::T, shape: Vec<usize>) -> Result<Self::T> {
        self.inner.reshape(t, shape)
    }
    fn push_region(&mut self, name: &str) -> Result<()> {
        if name == "sample" {
            self.want = true;
        }
        self.inner.push_region(name)
    }
    fn pop_region(&mut self) -> Result<()> {
        self.inner.pop_region()
    }
}

/// Tokens and logits (per scale, `[pn^2 * V]` row-major, as f64) of one reference pass.
struct Trace {
    tokens: Vec<Vec<u32>>,
    logits: Vec<Vec<f64>>,
}

/// The F(p, q) reference pass up to the tokens, with the logits of every scale; with
/// `check_official`, its tokens are checked against [`var_reference_until`] (a second pass).
fn reference_trace(
    cfg: &VarConfig,
    w: &VarWeights,
    input: &VarInput,
    check_official: bool,
) -> Trace {
    let mut b = Tap {
        inner: Scalar::new(RefArith::new(cfg.fmt), w),
        want: false,
        logits: Vec::new(),
    };
    let class = b
        .constant_choices(
            "class",
            cfg.num_classes as u32,
            vec![1],
            &[input.class as u32],
        )
        .unwrap();
    let uniforms = match cfg.sampling {
        Sampling::Argmax => None,
        Sampling::TopK { .. } | Sampling::TopP { .. } => {
            let n = input.uniforms.len();
            let us: Vec<Float> = input
                .uniforms
                .iter()
                .map(|&u| cfg.fmt.from_f64(u).unwrap())
                .collect();
            Some(
                b.constant("u", vec![n], &mut |_| Tensor::new(vec![n], us.clone()))
                    .unwrap(),
            )
        }
    };
    let inp = PassInputs {
        class,
        uniforms,
        forced_tokens: None,
    };
    let out = var_forward(&mut b, cfg, &inp, Until::Tokens, None).unwrap();
    let tokens: Vec<Vec<u32>> = out
        .tokens
        .iter()
        .map(|t| t.to_choices().unwrap().iter().map(|&c| c as u32).collect())
        .collect();
    if check_official {
        let official = var_reference_until(cfg, w, input, Until::Tokens).unwrap();
        assert_eq!(
            tokens, official.tokens,
            "the tapped pass is not the reference"
        );
    }
    assert_eq!(b.logits.len(), cfg.num_scales());
    let logits = b
        .logits
        .iter()
        .map(|t| t.data().iter().map(|v| v.to_f64()).collect())
        .collect();
    Trace { tokens, logits }
}

// ---------------------------------------------------------------------------------------------
// The f64 oracle.

/// How the oracle picks the uniform number of a top-k token.
#[derive(Clone, Copy)]
enum Uniforms<'a> {
    /// These numbers (one per token, scale after scale).
    Given(&'a [f64]),
    /// Seeded draws of 24-bit numbers (exact in F(24, 9)); a draw closer than `margin` (as a
    /// fraction of the total probability) to a boundary of the cumulative distribution of its
    /// position is drawn again.
    AwayFromBoundaries { seed: u64, margin: f64 },
}

/// What one oracle run produces.
struct OracleRun {
    /// Token indices per scale.
    tokens: Vec<Vec<u32>>,
    /// Guided logits per scale, `[pn^2 * V]` row-major.
    logits: Vec<Vec<f64>>,
    /// Per scale, the largest guidance amplification `1 + 2 t` (1 without guidance).
    amplification: Vec<f64>,
    /// The smallest decision margin over every token: argmax, the gap between the two largest
    /// logits; top-k, the gap between the k-th and (k+1)-th largest (unless k = V).
    logit_margin: f64,
    /// Top-k: the smallest distance between `u` and a boundary of the cumulative distribution
    /// of its position, as a fraction of the total (1 for argmax).
    u_margin: f64,
    /// The uniforms used (top-k).
    uniforms: Vec<f64>,
}

/// An independent f64 VAR transformer reading the weights by their state_dict names.
struct Oracle<'a> {
    cfg: &'a VarConfig,
    w: &'a VarWeights,
    /// `(tensor, element, delta)` added to one weight (to show that the comparison can fail).
    perturb: Option<(&'static str, usize, f64)>,
}

/// `y[i] = x[i] W^T + b` for `x: [n, din]`, `W: [dout, din]`.
fn linear_f64(x: &[f64], din: usize, wt: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let dout = wt.len() / din;
    let n = x.len() / din;
    let mut y = vec![0.0; n * dout];
    for i in 0..n {
        let xi = &x[i * din..(i + 1) * din];
        for o in 0..dout {
            let wo = &wt[o * din..(o + 1) * din];
            let s: f64 = xi.iter().zip(wo).map(|(a, b)| a * b).sum();
            y[i * dout + o] = s + b.map_or(0.0, |b| b[o]);
        }
    }
    y
}

/// `nn.LayerNorm(C, elementwise_affine=False, eps)` on every row: `(x - mean) / sqrt(var + eps)`
/// with the biased variance.
fn layer_norm_f64(x: &[f64], c: usize, eps: f64) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        let mean = row.iter().sum::<f64>() / c as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
        let r = 1.0 / (var + eps).sqrt();
        y.extend(row.iter().map(|v| (v - mean) * r));
    }
    y
}

/// `LN(x) * (1 + scale) + shift` on every row.
fn modulate(x: &[f64], c: usize, eps: f64, scale: &[f64], shift: &[f64]) -> Vec<f64> {
    let mut y = layer_norm_f64(x, c, eps);
    for row in y.chunks_mut(c) {
        for j in 0..c {
            row[j] = row[j] * (1.0 + scale[j]) + shift[j];
        }
    }
    y
}

/// `nn.GELU(approximate='tanh')`.
fn gelu_tanh(x: f64) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
}

/// `F.normalize(v, dim=-1)`: `v / max(|v|, 1e-12)`.
fn normalize(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    for x in v {
        *x /= n;
    }
}

/// PyTorch's bicubic convolution weights (`A = -0.75`) of the four taps around fraction `t`.
fn cubic_weights(t: f64) -> [f64; 4] {
    let a = -0.75;
    let near = |x: f64| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// `F.interpolate(x, size=(out, out), mode='bicubic')` (align_corners = false) of
/// `x: [c, n, n]`: source coordinate `(d + 0.5) n / out - 0.5`, taps `floor - 1 ..= floor + 2`
/// clamped to the border, along x then along y.
fn bicubic_f64(x: &[f64], c: usize, n: usize, out: usize) -> Vec<f64> {
    let taps = |d: usize| -> ([usize; 4], [f64; 4]) {
        let s = (d as f64 + 0.5) * n as f64 / out as f64 - 0.5;
        let f = s.floor();
        let idx = [-1i64, 0, 1, 2].map(|o| (f as i64 + o).clamp(0, n as i64 - 1) as usize);
        (idx, cubic_weights(s - f))
    };
    let mut y = vec![0.0; c * out * out];
    for ch in 0..c {
        let m = &x[ch * n * n..(ch + 1) * n * n];
        for oy in 0..out {
            let (iy, wy) = taps(oy);
            for ox in 0..out {
                let (ix, wx) = taps(ox);
                let mut v = 0.0;
                for a in 0..4 {
                    let row: f64 = (0..4).map(|b| wx[b] * m[iy[a] * n + ix[b]]).sum();
                    v += wy[a] * row;
                }
                y[(ch * out + oy) * out + ox] = v;
            }
        }
    }
    y
}

/// `F.interpolate(x, size=(out, out), mode='area')` (adaptive average pooling: window
/// `[floor(i n / out), ceil((i + 1) n / out))`) of `x: [c, n, n]`.
fn area_f64(x: &[f64], c: usize, n: usize, out: usize) -> Vec<f64> {
    let win = |i: usize| (i * n / out, ((i + 1) * n).div_ceil(out));
    let mut y = vec![0.0; c * out * out];
    for ch in 0..c {
        for oy in 0..out {
            let (y0, y1) = win(oy);
            for ox in 0..out {
                let (x0, x1) = win(ox);
                let mut s = 0.0;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        s += x[(ch * n + yy) * n + xx];
                    }
                }
                y[(ch * out + oy) * out + ox] = s / ((y1 - y0) * (x1 - x0)) as f64;
            }
        }
    }
    y
}

/// VAR's `Phi`: `h (1 - 0.5) + conv3x3(h, padding 1) 0.5` on `h: [c, n, n]`.
fn phi_f64(h: &[f64], c: usize, n: usize, wt: &[f64], bias: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; c * n * n];
    for o in 0..c {
        for py in 0..n {
            for px in 0..n {
                let mut s = bias[o];
                for i in 0..c {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (sy, sx) = (py as i64 + ky as i64 - 1, px as i64 + kx as i64 - 1);
                            if sy < 0 || sx < 0 || sy >= n as i64 || sx >= n as i64 {
                                continue;
                            }
                            s += wt[((o * c + i) * 3 + ky) * 3 + kx]
                                * h[(i * n + sy as usize) * n + sx as usize];
                        }
                    }
                }
                let at = (o * n + py) * n + px;
                y[at] = h[at] * 0.5 + s * 0.5;
            }
        }
    }
    y
}

/// VAR's `PhiPartiallyShared` with 4 Phis: the first `argmin |ticks - si / (SN - 1)|` over
/// `ticks = np.linspace(1/3/4, 1 - 1/3/4, 4)`, computed as numpy does (`i * step + start`, the
/// last tick exactly `stop`): for 10 scales the distances of scale 2 to ticks 0 and 1 are equal
/// in exact arithmetic, and numpy's rounding decides (tick 1).
fn phi_of_scale(si: usize, sn: usize) -> usize {
    let at = si as f64 / (sn - 1) as f64;
    let (start, stop) = (1.0 / 3.0 / 4.0, 1.0 - 1.0 / 3.0 / 4.0);
    let step = (stop - start) / 3.0;
    let ticks = [start, step + start, 2.0 * step + start, stop];
    let mut best = 0;
    for i in 1..4 {
        if (ticks[i] - at).abs() < (ticks[best] - at).abs() {
            best = i;
        }
    }
    best
}

/// The six AdaLN vectors of a block (gamma1, gamma2, scale1, scale2, shift1, shift2) or the
/// head's two (scale, shift): `Linear(SiLU(cond))` cut into `[C]` pieces.
fn ada(o: &Oracle<'_>, prefix: &str, cond: &[f64]) -> Vec<Vec<f64>> {
    let silu: Vec<f64> = cond.iter().map(|&x| x / (1.0 + (-x).exp())).collect();
    let m = linear_f64(
        &silu,
        cond.len(),
        &o.t(&format!("{prefix}.ada_lin.1.weight")),
        Some(&o.t(&format!("{prefix}.ada_lin.1.bias"))),
    );
    m.chunks(cond.len()).map(|c| c.to_vec()).collect()
}

impl Oracle<'_> {
    /// Weight `name` as f64 (with the perturbation, if it names this tensor).
    fn t(&self, name: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .w
            .get(name)
            .unwrap()
            .data()
            .iter()
            .map(|x| x.to_f64())
            .collect();
        if let Some((n, i, d)) = self.perturb {
            if n == name {
                v[i] += d;
            }
        }
        v
    }

    /// One stream's logits for the last `last_n` tokens of the sequence `x: [L', C]` (every
    /// token of the scales so far), all blocks run over the whole prefix with the block-causal
    /// mask (`scale_of[j] <= scale_of[i]`).
    fn stream_logits(
        &self,
        cond: &[f64],
        x: &[f64],
        scale_of: &[usize],
        last_n: usize,
    ) -> Vec<f64> {
        let cfg = self.cfg;
        let (c, heads, hd) = (cfg.width, cfg.heads, cfg.head_dim());
        let len = scale_of.len();
        let mut x = x.to_vec();
        for bi in 0..cfg.depth {
            let p = format!("blocks.{bi}");
            let m = ada(self, &p, cond);
            let (g1, g2, s1, s2, h1, h2) = (&m[0], &m[1], &m[2], &m[3], &m[4], &m[5]);
            // Attention.
            let h = modulate(&x, c, cfg.norm_eps, s1, h1);
            let mut bias = self.t(&format!("{p}.attn.q_bias"));
            bias.extend(std::iter::repeat_n(0.0, c));
            bias.extend(self.t(&format!("{p}.attn.v_bias")));
            let qkv = linear_f64(
                &h,
                c,
                &self.t(&format!("{p}.attn.mat_qkv.weight")),
                Some(&bias),
            );
            let smul = self.t(&format!("{p}.attn.scale_mul_1H11"));
            let mut out = vec![0.0; len * c];
            for hh in 0..heads {
                let mul = smul[hh].min(100f64.ln()).exp();
                let part = |t: usize, which: usize| {
                    let at = t * 3 * c + which * c + hh * hd;
                    qkv[at..at + hd].to_vec()
                };
                let keys: Vec<Vec<f64>> = (0..len)
                    .map(|t| {
                        let mut k = part(t, 1);
                        normalize(&mut k);
                        k
                    })
                    .collect();
                for i in 0..len {
                    let mut q = part(i, 0);
                    normalize(&mut q);
                    let vis: Vec<usize> =
                        (0..len).filter(|&j| scale_of[j] <= scale_of[i]).collect();
                    let sc: Vec<f64> = vis
                        .iter()
                        .map(|&j| mul * q.iter().zip(&keys[j]).map(|(a, b)| a * b).sum::<f64>())
                        .collect();
                    let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = sc.iter().map(|s| (s - mx).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (&j, ej) in vis.iter().zip(&e) {
                        let v = part(j, 2);
                        for d in 0..hd {
                            out[i * c + hh * hd + d] += ej / z * v[d];
                        }
                    }
                }
            }
            let a = linear_f64(
                &out,
                c,
                &self.t(&format!("{p}.attn.proj.weight")),
                Some(&self.t(&format!("{p}.attn.proj.bias"))),
            );
            for (k, v) in x.iter_mut().enumerate() {
                *v += a[k] * g1[k % c];
            }
            // FFN.
            let h = modulate(&x, c, cfg.norm_eps, s2, h2);
            let u = linear_f64(
                &h,
                c,
                &self.t(&format!("{p}.ffn.fc1.weight")),
                Some(&self.t(&format!("{p}.ffn.fc1.bias"))),
            );
            let g: Vec<f64> = u.into_iter().map(gelu_tanh).collect();
            let f = linear_f64(
                &g,
                cfg.hidden(),
                &self.t(&format!("{p}.ffn.fc2.weight")),
                Some(&self.t(&format!("{p}.ffn.fc2.bias"))),
            );
            for (k, v) in x.iter_mut().enumerate() {
                *v += f[k] * g2[k % c];
            }
        }
        let hm = ada(self, "head_nm", cond);
        let tail = &x[(len - last_n) * c..];
        let h = modulate(tail, c, cfg.norm_eps, &hm[0], &hm[1]);
        linear_f64(&h, c, &self.t("head.weight"), Some(&self.t("head.bias")))
    }

    /// Row `t` of `lvl_embed(si) + pos_1LC` (token `t` of the whole sequence, of scale `si`).
    fn lvl_pos(&self, si: usize, t: usize) -> Vec<f64> {
        let c = self.cfg.width;
        let lvl = self.t("lvl_embed.weight");
        let pos = self.t("pos_1LC");
        (0..c).map(|j| lvl[si * c + j] + pos[t * c + j]).collect()
    }

    /// The whole autoregressive transformer phase for `class` (VAR's `autoregressive_infer_cfg`
    /// up to the last scale's tokens).
    fn run(&self, class: usize, uniforms: Uniforms<'_>) -> OracleRun {
        let cfg = self.cfg;
        let (c, v, sn) = (cfg.width, cfg.vocab, cfg.num_scales());
        let emb = self.t("class_emb.weight");
        let cond = emb[class * c..(class + 1) * c].to_vec();
        let null = emb[cfg.num_classes * c..(cfg.num_classes + 1) * c].to_vec();
        let pos_start = self.t("pos_start");
        let first = |e: &[f64]| -> Vec<f64> {
            let mut x = Vec::with_capacity(cfg.scale_tokens(0) * c);
            for t in 0..cfg.scale_tokens(0) {
                let lp = self.lvl_pos(0, t);
                x.extend((0..c).map(|j| e[j] + pos_start[t * c + j] + lp[j]));
            }
            x
        };
        // Inputs of every scale so far: the conditional and unconditional streams differ only
        // in the first scale's tokens (their start token is the class embedding).
        let mut xc = first(&cond);
        let mut xu = first(&null);
        let mut scale_of = vec![0; cfg.scale_tokens(0)];
        let last = cfg.last_pn();
        let cvae = cfg.cvae;
        let codebook = self.t("quantize.embedding.weight");
        let mut f_hat = vec![0.0; cvae * last * last];
        let mut rng = tcvar::circuit::random::SplitMix64::new(match uniforms {
            Uniforms::AwayFromBoundaries { seed, .. } => seed,
            Uniforms::Given(_) => 0,
        });
        let mut run = OracleRun {
            tokens: Vec::new(),
            logits: Vec::new(),
            amplification: Vec::new(),
            logit_margin: f64::INFINITY,
            u_margin: 1.0,
            uniforms: Vec::new(),
        };
        for si in 0..sn {
            let pn = cfg.patch_nums[si];
            let n = pn * pn;
            let lc = self.stream_logits(&cond, &xc, &scale_of, n);
            let (logits, amp) = match cfg.cfg_scale {
                Some(g) => {
                    let t = g * si as f64 / (sn - 1) as f64;
                    let lu = self.stream_logits(&null, &xu, &scale_of, n);
                    let l = lc
                        .iter()
                        .zip(&lu)
                        .map(|(a, b)| (1.0 + t) * a - t * b)
                        .collect();
                    (l, 1.0 + 2.0 * t.abs())
                }
                None => (lc, 1.0),
            };
            let mut toks = Vec::with_capacity(n);
            for (r, row) in logits.chunks(v).enumerate() {
                let mut order: Vec<usize> = (0..v).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                let tok = match cfg.sampling {
                    Sampling::Argmax => {
                        if v > 1 {
                            run.logit_margin = run.logit_margin.min(row[order[0]] - row[order[1]]);
                        }
                        order[0]
                    }
                    Sampling::TopP { .. } => {
                        panic!("the oracle covers argmax and top-k (top-p: tests/var_sampling.rs)")
                    }
                    Sampling::TopK { k } => {
                        if k < v {
                            run.logit_margin =
                                run.logit_margin.min(row[order[k - 1]] - row[order[k]]);
                        }
                        let mx = row[order[0]];
                        let p: Vec<f64> = (0..v)
                            .map(|i| {
                                if order[..k].contains(&i) {
                                    (row[i] - mx).exp()
                                } else {
                                    0.0
                                }
                            })
                            .collect();
                        let total: f64 = p.iter().sum();
                        let cdf: Vec<f64> = p
                            .iter()
                            .scan(0.0, |s, x| {
                                *s += x;
                                Some(*s / total)
                            })
                            .collect();
                        let dist = |u: f64| cdf.iter().map(|c| (c - u).abs()).fold(1.0, f64::min);
                        let u = match uniforms {
                            Uniforms::Given(us) => us[cfg.scale_begin(si) + r],
                            Uniforms::AwayFromBoundaries { margin, .. } => loop {
                                let u = (rng.next_u64() >> 40) as f64 / (1u64 << 24) as f64;
                                if dist(u) >= margin {
                                    break u;
                                }
                            },
                        };
                        run.u_margin = run.u_margin.min(dist(u));
                        run.uniforms.push(u);
                        cdf.iter()
                            .position(|&c| c > u)
                            .unwrap_or(order[..k].iter().copied().max().unwrap_or(0))
                    }
                };
                toks.push(tok as u32);
            }
            run.logits.push(logits);
            run.amplification.push(amp);
            if si + 1 == sn {
                run.tokens.push(toks);
                break;
            }
            // h = codebook rows as [Cvae, pn, pn]; f_hat += Phi(bicubic(h)); next = area(f_hat).
            let mut h = vec![0.0; cvae * n];
            for (t, &tok) in toks.iter().enumerate() {
                for ch in 0..cvae {
                    h[ch * n + t] = codebook[tok as usize * cvae + ch];
                }
            }
            let k = phi_of_scale(si, sn);
            let pw = self.t(&format!("quantize.quant_resi.qresi_ls.{k}.weight"));
            let pb = self.t(&format!("quantize.quant_resi.qresi_ls.{k}.bias"));
            let up = bicubic_f64(&h, cvae, pn, last);
            let ph = phi_f64(&up, cvae, last, &pw, &pb);
            for (f, d) in f_hat.iter_mut().zip(&ph) {
                *f += d;
            }
            let np = cfg.patch_nums[si + 1];
            let next = area_f64(&f_hat, cvae, last, np);
            // word_embed(next^T) + lvl_pos of scale si + 1, appended to both streams.
            let nn = np * np;
            let mut tok_in = vec![0.0; nn * cvae];
            for t in 0..nn {
                for ch in 0..cvae {
                    tok_in[t * cvae + ch] = next[ch * nn + t];
                }
            }
            let e = linear_f64(
                &tok_in,
                cvae,
                &self.t("word_embed.weight"),
                Some(&self.t("word_embed.bias")),
            );
            let begin = cfg.scale_begin(si + 1);
            for t in 0..nn {
                let lp = self.lvl_pos(si + 1, begin + t);
                let row: Vec<f64> = (0..c).map(|j| e[t * c + j] + lp[j]).collect();
                xc.extend_from_slice(&row);
                xu.extend_from_slice(&row);
            }
            scale_of.extend(std::iter::repeat_n(si + 1, nn));
            run.tokens.push(toks);
        }
        run
    }
}

// ---------------------------------------------------------------------------------------------
// Comparisons.

fn f24() -> Format {
    Format::new(24, 9).unwrap()
}

/// `tiny` in F(24, 9).
fn tiny(sampling: Sampling, guidance: Option<f64>) -> VarConfig {
    let mut c = VarConfig::preset("tiny").unwrap();
    c.fmt = f24();
    c.sampling = sampling;
    c.cfg_scale = guidance;
    c.validate().unwrap();
    c
}

/// The released 10-scale schedule (680 tokens) with a narrow model so that the F(24, 9)
/// reference stays fast in the dev profile: C = 8, 2 blocks, 2 heads of 4, V = 16, Cvae = 4.
fn ten_scales(sampling: Sampling, guidance: Option<f64>) -> VarConfig {
    let mut c = tiny(sampling, guidance);
    c.patch_nums = vec![1, 2, 3, 4, 5, 6, 8, 10, 13, 16];
    c.width = 8;
    c.vocab = 16;
    c.cvae = 4;
    c.validate().unwrap();
    c
}

/// F(24, 9)'s unit roundoff: round to nearest has relative error at most `2^-24`.
const UNIT: f64 = 1.0 / (1u64 << 24) as f64;

/// The logit tolerance of a scale whose largest |logit| (oracle) is `max_abs`, with guidance
/// amplification `amp` ([`OracleRun::amplification`]): `amp * 16 * 2^-24 * max(1, max_abs)`,
/// sixteen units of F(24, 9)'s roundoff at the scale of the logits.
///
/// Why it is adequate: the reference rounds every operation once to F(24, 9) (relative error
/// `<= 2^-24`, like f32; sums and dot products are exact, then rounded once, so the row lengths
/// do not enter), and the oracle's f64 errors are negligible beside them. A logit carries the
/// roundings of the chain that produced it: about ten per block and stream (LayerNorm,
/// modulation, the qkv / proj / fc1 / fc2 linear maps, L2 normalisation, softmax, GELU, the
/// gated residuals) plus the head, each of about one unit of the value's magnitude; the
/// normalisations (LayerNorm, the L2 norms, softmax) are well-conditioned for the seeded
/// weights (no row close to constant), so these errors reach the logits at about the logits'
/// scale and partly cancel: observed a few units (3.8e-7 to 9.3e-7 for logits up to 5, that
/// is 5 to 10 times below the tolerance; the tests print the figures). Guidance
/// `(1 + t) c - t u` adds the two streams' errors weighted by `1 + t` and `t`: the factor
/// `1 + 2 t`. The tolerance is tight enough to see a small model error: one weight moved by
/// `2^-12` (about 0.1 % of its magnitude) in the FFN, the attention values, the AdaLN map, the
/// head or the position embedding is detected (`tiny_argmax_matches_f64_oracle`).
fn logit_tolerance(max_abs: f64, amp: f64) -> f64 {
    amp * 16.0 * UNIT * max_abs.max(1.0)
}

/// Decision margins must exceed this many logit tolerances (argmax: top two logits; top-k: the
/// k-th and (k+1)-th largest), so that the reference, within tolerance of the oracle, takes the
/// same decision.
const MARGIN_FACTOR: f64 = 8.0;

/// The tolerances of every scale of an oracle run.
fn tolerances(o: &OracleRun) -> Vec<f64> {
    o.logits
        .iter()
        .zip(&o.amplification)
        .map(|(l, &amp)| logit_tolerance(l.iter().fold(0.0, |m, x| m.max(x.abs())), amp))
        .collect()
}

/// Whether the oracle run's decisions are far enough from ties for its tolerances: every
/// logit margin above `MARGIN_FACTOR` tolerances; every top-k uniform farther than
/// `4 MARGIN_FACTOR` tolerances from a boundary of its cumulative distribution (as a fraction
/// of the total: a logit error `e` changes each `exp(l_i - max)` by a relative `2 e`, a
/// normalised cumulative sum by at most `4 e`).
fn far_from_ties(o: &OracleRun) -> bool {
    let tol = tolerances(o).into_iter().fold(0.0, f64::max);
    o.logit_margin > MARGIN_FACTOR * tol && o.u_margin > 4.0 * MARGIN_FACTOR * tol
}

/// The largest |oracle - reference| logit error, after checking the token maps scale by scale
/// and every logit within its scale's tolerance. Returns `(max error, max error / tolerance)`.
fn compare(cfg: &VarConfig, o: &OracleRun, r: &Trace) -> (f64, f64) {
    let tols = tolerances(o);
    let (mut worst, mut ratio) = (0.0f64, 0.0f64);
    assert_eq!(o.tokens.len(), cfg.num_scales());
    assert_eq!(r.tokens.len(), cfg.num_scales());
    for (si, tol) in tols.iter().enumerate() {
        assert_eq!(o.tokens[si], r.tokens[si], "token map of scale {si}");
        assert_eq!(o.logits[si].len(), r.logits[si].len());
        for (k, (a, b)) in o.logits[si].iter().zip(&r.logits[si]).enumerate() {
            let e = (a - b).abs();
            assert!(
                e <= *tol,
                "scale {si} logit {k}: oracle {a}, reference {b}, error {e:e} > {tol:e}"
            );
            worst = worst.max(e);
            ratio = ratio.max(e / tol);
        }
    }
    (worst, ratio)
}

/// The first `want` classes whose oracle runs (seeded weights `w`) are far from ties.
fn pick_classes<'a>(
    cfg: &'a VarConfig,
    w: &'a VarWeights,
    uniforms: impl Fn(usize) -> Uniforms<'static>,
    want: usize,
) -> Vec<(usize, OracleRun)> {
    let o = Oracle {
        cfg,
        w,
        perturb: None,
    };
    let picked: Vec<(usize, OracleRun)> = (0..cfg.num_classes)
        .map(|c| (c, o.run(c, uniforms(c))))
        .filter(|(_, r)| far_from_ties(r))
        .take(want)
        .collect();
    assert_eq!(picked.len(), want, "not enough classes far from ties");
    picked
}

/// `tiny` (4 scales, 2 blocks, 2 heads) in F(24, 9), greedy, no guidance: token maps equal and
/// logits within tolerance for two classes chosen far from ties; the same comparison against
/// an oracle with one weight moved by `2^-12` fails (so the tolerance is tight enough to see a
/// small model error).
#[test]
fn tiny_argmax_matches_f64_oracle() {
    let cfg = tiny(Sampling::Argmax, None);
    let w = VarWeights::seeded(&cfg, 1).unwrap();
    for (class, run) in pick_classes(&cfg, &w, |_| Uniforms::Given(&[]), 2) {
        let input = VarInput {
            class,
            uniforms: Vec::new(),
        };
        let r = reference_trace(&cfg, &w, &input, true);
        let (err, ratio) = compare(&cfg, &run, &r);
        eprintln!(
            "tiny argmax class {class}: max logit error {err:.3e} ({:.1}x below the tolerance), \
             smallest top-2 margin {:.2e}",
            1.0 / ratio,
            run.logit_margin
        );
        // blocks.0.attn.mat_qkv.weight row 2 C + 1 is a value row (q, k, v stacked).
        let v_row = 2 * cfg.width + 1;
        for (name, at) in [
            ("blocks.1.ffn.fc2.weight", 5),
            ("blocks.0.attn.mat_qkv.weight", v_row * cfg.width + 8),
            ("blocks.0.ada_lin.1.weight", 7),
            ("head.weight", 7),
            ("pos_1LC", 100),
        ] {
            let moved = Oracle {
                cfg: &cfg,
                w: &w,
                perturb: Some((name, at, 1.0 / 4096.0)),
            }
            .run(class, Uniforms::Given(&[]));
            let tols = tolerances(&moved);
            let caught = (0..cfg.num_scales()).any(|si| {
                moved.tokens[si] != r.tokens[si]
                    || moved.logits[si]
                        .iter()
                        .zip(&r.logits[si])
                        .any(|(a, b)| (a - b).abs() > tols[si])
            });
            assert!(caught, "moving {name}[{at}] by 2^-12 goes unnoticed");
        }
    }
}

/// `tiny` in F(24, 9) with classifier-free guidance 1.5 and top-k sampling (k = 8) driven by
/// supplied uniforms: the oracle draws them (24-bit numbers, exact in the format) away from
/// the boundaries of each position's cumulative distribution, picks a class whose k-th and
/// (k+1)-th largest logits are far apart everywhere; token maps equal, logits within
/// tolerance.
#[test]
fn tiny_top_k_guided_matches_f64_oracle() {
    let cfg = tiny(Sampling::TopK { k: 8 }, Some(1.5));
    let w = VarWeights::seeded(&cfg, 2).unwrap();
    let tol_guess = logit_tolerance(8.0, 4.0);
    let uniforms = |c: usize| Uniforms::AwayFromBoundaries {
        seed: 100 + c as u64,
        margin: 4.0 * MARGIN_FACTOR * tol_guess,
    };
    for (class, run) in pick_classes(&cfg, &w, uniforms, 1) {
        assert_eq!(run.uniforms.len(), cfg.total_tokens());
        let input = VarInput {
            class,
            uniforms: run.uniforms.clone(),
        };
        // The oracle with the uniforms given takes the same decisions.
        let again = Oracle {
            cfg: &cfg,
            w: &w,
            perturb: None,
        }
        .run(class, Uniforms::Given(&run.uniforms));
        assert_eq!(again.tokens, run.tokens);
        let r = reference_trace(&cfg, &w, &input, true);
        let (err, ratio) = compare(&cfg, &run, &r);
        eprintln!(
            "tiny top-k guided class {class}: max logit error {err:.3e} ({:.1}x below the \
             tolerance), smallest k-boundary margin {:.2e}, smallest u margin {:.2e}",
            1.0 / ratio,
            run.logit_margin,
            run.u_margin
        );
    }
}

/// The released 10-scale schedule (1, 2, 3, 4, 5, 6, 8, 10, 13, 16: 680 tokens, every
/// bicubic and area ratio of VAR, the four Phis) with a narrow model (one block, one head,
/// C = 8, V = 16, so that the F(24, 9) reference takes seconds in the dev profile), greedy: token
/// maps equal and logits within tolerance for a class chosen far from ties.
#[test]
fn ten_scales_argmax_matches_f64_oracle() {
    let mut cfg = ten_scales(Sampling::Argmax, None);
    cfg.depth = 1;
    cfg.heads = 1;
    cfg.validate().unwrap();
    assert_eq!(
        (0..10).map(|i| phi_of_scale(i, 10)).collect::<Vec<_>>(),
        vec![0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    );
    let w = VarWeights::seeded(&cfg, 1).unwrap();
    for (class, run) in pick_classes(&cfg, &w, |_| Uniforms::Given(&[]), 1) {
        let input = VarInput {
            class,
            uniforms: Vec::new(),
        };
        let r = reference_trace(&cfg, &w, &input, false);
        let (err, ratio) = compare(&cfg, &run, &r);
        eprintln!(
            "10 scales argmax class {class}: max logit error {err:.3e} ({:.1}x below the \
             tolerance), smallest top-2 margin {:.2e}",
            1.0 / ratio,
            run.logit_margin
        );
    }
}
