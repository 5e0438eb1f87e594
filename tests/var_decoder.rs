//! VAR phase 2 (feature-map reconstruction) and phase 3 (VQ-VAE decoder): the circuits equal
//! the F(p, q) reference bit for bit; bicubic, area and Phi agree with independent f64
//! implementations of the PyTorch formulas within the format's rounding; the decoder's depth
//! does not depend on the spatial size.

use std::time::Instant;

use tcvar::circuit::random::SplitMix64;
use tcvar::circuit::{Builder, Circuit, Lit};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::float::{Float, Format};
use tcvar::model::blocks::{circuit_input, circuit_output};
use tcvar::model::tensor::Tensor;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::decoder::{decode, group_norm, DecoderWeights, GroupNormWeights};
use tcvar::model::var::recon::{
    area_down, bicubic_up, codebook_lookup, next_autoregressive_input, phi, phi_index, ReconWeights,
};
use tcvar::model::{Arith, CircuitArith, RefArith};

const INSTANCES: usize = 64;

/// The small decoder shape of the bit-exact tests (kept small so that CI stays fast): Cvae 4,
/// f_hat 2x2, channels 4 at the lowest level and 2 at full resolution (so a 1x1 shortcut),
/// 2 groups, one upsampling, attention in the middle and at the lowest level, F(5, 4).
fn test_cfg() -> VarConfig {
    let mut c = VarConfig::preset("micro").unwrap();
    c.fmt = Format::new(5, 4).unwrap();
    c.patch_nums = vec![1, 2];
    c.cvae = 4;
    c.vocab = 8;
    c.vae_ch = 2;
    c.vae_ch_mult = vec![1, 2];
    c.vae_num_res_blocks = 0;
    c.vae_groups = 2;
    c.vae_mid_attn = true;
    c.vae_up_attn = true;
    c.validate().unwrap();
    c
}

/// The brief's micro-like shape (channels 8 and 4): only for the size report.
fn wide_cfg() -> VarConfig {
    let mut c = test_cfg();
    c.vae_ch = 4;
    c.validate().unwrap();
    c
}

fn random_tensor(fmt: Format, shape: &[usize], rng: &mut SplitMix64, scale: f64) -> Tensor<Float> {
    Tensor::random(fmt, shape.to_vec(), rng.next_u64(), scale).unwrap()
}

fn eval_cpu(c: &Circuit, inputs: &[Vec<u64>], widths: &[u32], out_widths: &[u32]) -> Vec<Vec<u64>> {
    let lv = c.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let batch = Batch::pack_fields(widths, inputs).unwrap();
    let out = ev.evaluate(&batch).unwrap();
    out.unpack_fields(out_widths).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Independent f64 implementations of the PyTorch formulas.

/// PyTorch's `upsample_bicubic2d` (align_corners = false, A = -0.75), written from the
/// formulas: source `(dst + 0.5) * in/out - 0.5`, taps `floor - 1 .. floor + 2` clamped, the
/// 1-D interpolation along x for each of the 4 rows, then along y. Returns, per output, the
/// value and the sum of |coefficient * input| over the 16 taps.
fn bicubic_f64(x: &[f64], c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<(f64, f64)> {
    const A: f64 = -0.75;
    let cc1 = |t: f64| ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let cc2 = |t: f64| ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A;
    let coeffs = |t: f64| [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)];
    let src = |o: usize, i: usize, n: usize| -> (i64, f64) {
        let s = (i as f64 / n as f64) * (o as f64 + 0.5) - 0.5;
        let f = s.floor();
        (f as i64, s - f)
    };
    let mut out = Vec::new();
    for ch in 0..c {
        for oy in 0..oh {
            let (iy, ty) = src(oy, h, oh);
            let wy = coeffs(ty);
            for ox in 0..ow {
                let (ix, tx) = src(ox, w, ow);
                let wx = coeffs(tx);
                let mut v = 0.0;
                let mut mag = 0.0;
                for (a, cy) in wy.iter().enumerate() {
                    let yy = (iy - 1 + a as i64).clamp(0, h as i64 - 1) as usize;
                    let mut row = 0.0;
                    for (b, cx) in wx.iter().enumerate() {
                        let xx = (ix - 1 + b as i64).clamp(0, w as i64 - 1) as usize;
                        let val = x[(ch * h + yy) * w + xx];
                        row += cx * val;
                        mag += (cy * cx * val).abs();
                    }
                    v += cy * row;
                }
                out.push((v, mag));
            }
        }
    }
    out
}

/// PyTorch's `adaptive_avg_pool2d`: windows `[floor(i in/out), ceil((i+1) in/out))`, mean.
fn area_f64(x: &[f64], c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<f64> {
    let start = |i: usize, n: usize, o: usize| (i * n) / o;
    let end = |i: usize, n: usize, o: usize| ((i + 1) * n).div_ceil(o);
    let mut out = Vec::new();
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, y1) = (start(oy, h, oh), end(oy, h, oh));
                let (x0, x1) = (start(ox, w, ow), end(ox, w, ow));
                let mut s = 0.0;
                for y in y0..y1 {
                    for xx in x0..x1 {
                        s += x[(ch * h + y) * w + xx];
                    }
                }
                out.push(s / ((y1 - y0) * (x1 - x0)) as f64);
            }
        }
    }
    out
}

/// The unit roundoff of F(p, q): round-to-nearest has relative error at most `2^-p`.
fn unit(fmt: Format) -> f64 {
    (-(fmt.p() as f64)).exp2()
}

#[test]
fn phi_mapping_matches_var_schedules() {
    let m = |sn: usize| (0..sn).map(|i| phi_index(i, sn)).collect::<Vec<_>>();
    assert_eq!(m(10), vec![0, 0, 1, 1, 1, 2, 2, 3, 3, 3]);
    assert_eq!(m(4), vec![0, 1, 2, 3]);
    assert_eq!(m(3), vec![0, 2, 3]);
    assert_eq!(m(1), vec![0]);
}

#[test]
fn bicubic_matches_pytorch_formula_f64() {
    let fmt = Format::new(12, 6).unwrap();
    let u = unit(fmt);
    let mut rng = SplitMix64::new(11);
    let mut a = RefArith::new(fmt);
    for &(h, w, oh, ow) in &[
        (1, 1, 3, 3),
        (2, 2, 5, 5),
        (3, 3, 16, 16),
        (4, 4, 7, 7),
        (13, 13, 16, 16),
        (2, 3, 5, 4),
        (5, 5, 5, 5),
    ] {
        let x = random_tensor(fmt, &[2, h, w], &mut rng, 2.0);
        let y = bicubic_up(&mut a, &x, oh, ow).unwrap();
        assert_eq!(y.shape(), &[2, oh, ow]);
        let want = bicubic_f64(&x.to_f64(), 2, h, w, oh, ow);
        for (k, (got, (v, mag))) in y.to_f64().iter().zip(&want).enumerate() {
            // coefficient, product and sum roundings, plus values flushed below min_positive
            let tol = u * v.abs() + 2.1 * u * mag + 16.0 * fmt.min_positive().to_f64();
            assert!(
                (got - v).abs() <= tol,
                "{h}x{w} -> {oh}x{ow} output {k}: {got} vs {v} (tol {tol})"
            );
        }
    }
}

#[test]
fn area_matches_adaptive_avg_pool_f64() {
    let fmt = Format::new(12, 6).unwrap();
    let u = unit(fmt);
    let mut rng = SplitMix64::new(12);
    let mut a = RefArith::new(fmt);
    for &(h, w, oh, ow) in &[
        (4, 4, 2, 2),
        (4, 4, 3, 3),
        (5, 5, 3, 3),
        (16, 16, 13, 13),
        (16, 16, 5, 5),
        (3, 5, 2, 4),
        (3, 3, 3, 3),
        (3, 3, 1, 1),
    ] {
        let x = random_tensor(fmt, &[2, h, w], &mut rng, 2.0);
        let y = area_down(&mut a, &x, oh, ow).unwrap();
        assert_eq!(y.shape(), &[2, oh, ow]);
        let want = area_f64(&x.to_f64(), 2, h, w, oh, ow);
        for (k, (got, v)) in y.to_f64().iter().zip(&want).enumerate() {
            // round(round(sum) * round(1/count)): three roundings of relative error u each
            let tol = 3.1 * u * v.abs() + fmt.min_positive().to_f64();
            assert!(
                (got - v).abs() <= tol,
                "{h}x{w} -> {oh}x{ow} output {k}: {got} vs {v} (tol {tol})"
            );
        }
        if (h, w) == (oh, ow) {
            assert_eq!(y, x, "same size is the identity");
        }
    }
}

#[test]
fn phi_matches_f64_residual_conv() {
    let fmt = Format::new(12, 6).unwrap();
    let u = unit(fmt);
    let mut cfg = test_cfg();
    cfg.fmt = fmt;
    let w = ReconWeights::seeded(&cfg, 5).unwrap();
    let mut rng = SplitMix64::new(13);
    let mut a = RefArith::new(fmt);
    let (c, n) = (cfg.cvae, 3usize);
    let x = random_tensor(fmt, &[c, n, n], &mut rng, 1.0);
    let xs = x.to_f64();
    for conv in &w.phi {
        let y = phi(&mut a, conv, &x).unwrap().to_f64();
        let k = conv.weight.to_f64();
        let b = conv.bias.to_f64();
        for o in 0..c {
            for i in 0..n {
                for j in 0..n {
                    let mut s = b[o];
                    let mut mag = b[o].abs();
                    for q in 0..c {
                        for m in 0..3 {
                            for l in 0..3 {
                                let (yy, xx) = (i as i64 + m as i64 - 1, j as i64 + l as i64 - 1);
                                if yy < 0 || xx < 0 || yy >= n as i64 || xx >= n as i64 {
                                    continue;
                                }
                                let t = k[((o * c + q) * 3 + m) * 3 + l]
                                    * xs[(q * n + yy as usize) * n + xx as usize];
                                s += t;
                                mag += t.abs();
                            }
                        }
                    }
                    let hv = xs[(o * n + i) * n + j];
                    let want = 0.5 * hv + 0.5 * s;
                    let got = y[(o * n + i) * n + j];
                    let tol = u * want.abs() + 1.1 * u * (0.5 * mag + 0.5 * hv.abs());
                    assert!(
                        (got - want).abs() <= tol,
                        "phi ({o},{i},{j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn group_norm_matches_f64() {
    let fmt = Format::new(14, 6).unwrap();
    let mut rng = SplitMix64::new(14);
    let mut a = RefArith::new(fmt);
    let (c, h, w, g) = (4usize, 3usize, 2usize, 2usize);
    let x = random_tensor(fmt, &[c, h, w], &mut rng, 2.0);
    let gw = GroupNormWeights {
        weight: random_tensor(fmt, &[c], &mut rng, 1.5),
        bias: random_tensor(fmt, &[c], &mut rng, 0.5),
    };
    let y = group_norm(&mut a, &x, g, &gw, 1e-6).unwrap().to_f64();
    let xs = x.to_f64();
    let (gam, bet) = (gw.weight.to_f64(), gw.bias.to_f64());
    let n = (c / g) * h * w;
    for gi in 0..g {
        let vals = &xs[gi * n..(gi + 1) * n];
        let mu = vals.iter().sum::<f64>() / n as f64;
        let var = vals.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n as f64;
        let r = 1.0 / (var + 1e-6).sqrt();
        for (k, v) in vals.iter().enumerate() {
            let ch = gi * (c / g) + k / (h * w);
            let want = (v - mu) * r * gam[ch] + bet[ch];
            let got = y[gi * n + k];
            // a dozen roundings on values of magnitude ~ |gamma| * 3
            let tol = 40.0 * unit(fmt) * (gam[ch].abs() * 3.0 + bet[ch].abs());
            assert!(
                (got - want).abs() <= tol,
                "group {gi} elt {k}: {got} vs {want}"
            );
        }
    }
}

/// `0.5 x + 0.5 (conv3x3(x) + b)` in f64 on `[c, n, n]`.
fn phi_f64(x: &[f64], c: usize, n: usize, k: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; c * n * n];
    for o in 0..c {
        for i in 0..n {
            for j in 0..n {
                let mut s = b[o];
                for q in 0..c {
                    for m in 0..3 {
                        for l in 0..3 {
                            let (yy, xx) = (i as i64 + m as i64 - 1, j as i64 + l as i64 - 1);
                            if yy < 0 || xx < 0 || yy >= n as i64 || xx >= n as i64 {
                                continue;
                            }
                            s += k[((o * c + q) * 3 + m) * 3 + l]
                                * x[(q * n + yy as usize) * n + xx as usize];
                        }
                    }
                }
                y[(o * n + i) * n + j] = 0.5 * x[(o * n + i) * n + j] + 0.5 * s;
            }
        }
    }
    y
}

#[test]
fn recon_chain_matches_f64_get_next_autoregressive_input() {
    // VAR's loop in f64 (f_hat = 0; per scale: embed, upsample unless last, Phi[si/(SN-1)],
    // accumulate, area-downsample to the next scale) against the generic chain at F(24, 8).
    let mut cfg = test_cfg();
    cfg.fmt = Format::new(24, 8).unwrap();
    cfg.patch_nums = vec![1, 2, 3, 5];
    let fmt = cfg.fmt;
    let w = ReconWeights::seeded(&cfg, 61).unwrap();
    let (c, sn, last) = (cfg.cvae, cfg.patch_nums.len(), 5usize);
    let cb = w.codebook.to_f64();
    let ticks = [
        1.0 / 12.0,
        1.0 / 12.0 + 5.0 / 18.0,
        1.0 / 12.0 + 10.0 / 18.0,
        11.0 / 12.0,
    ];
    let mut rng = SplitMix64::new(62);
    let idx: Vec<Vec<usize>> = cfg
        .patch_nums
        .iter()
        .map(|&pn| {
            (0..pn * pn)
                .map(|_| rng.below(cfg.vocab as u64) as usize)
                .collect()
        })
        .collect();
    let mut r = RefArith::new(fmt);
    let got: Vec<Vec<f64>> = recon_chain(&mut r, &cfg, &w, &idx)
        .iter()
        .map(|t| t.to_f64())
        .collect();
    let mut f_hat = vec![0.0; c * last * last];
    let mut want = Vec::new();
    for (si, &pn) in cfg.patch_nums.iter().enumerate() {
        let mut h = vec![0.0; c * pn * pn];
        for (l, &i) in idx[si].iter().enumerate() {
            for ch in 0..c {
                h[ch * pn * pn + l] = cb[i * c + ch];
            }
        }
        let at = si as f64 / (sn - 1) as f64;
        // the closest tick (exact ties do not occur for SN = 4)
        let k = (0..4)
            .min_by(|&a, &b| (ticks[a] - at).abs().total_cmp(&(ticks[b] - at).abs()))
            .unwrap();
        let up = if si + 1 < sn {
            bicubic_f64(&h, c, pn, pn, last, last)
                .iter()
                .map(|p| p.0)
                .collect()
        } else {
            h
        };
        let ph = phi_f64(
            &up,
            c,
            last,
            &w.phi[k].weight.to_f64(),
            &w.phi[k].bias.to_f64(),
        );
        for (f, p) in f_hat.iter_mut().zip(&ph) {
            *f += p;
        }
        if si + 1 < sn {
            let nx = cfg.patch_nums[si + 1];
            want.push(area_f64(&f_hat, c, last, last, nx, nx));
        }
    }
    want.push(f_hat);
    assert_eq!(got.len(), want.len());
    for (g, wv) in got.iter().zip(&want) {
        assert_eq!(g.len(), wv.len());
        for (a, b) in g.iter().zip(wv) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Circuits against the reference, bit for bit.

/// The whole phase 2 chain over every scale: tokens (one-hot) -> codebook lookup -> next
/// autoregressive input, f_hat carried from scale to scale. Returns the final f_hat and the
/// next-scale maps.
fn recon_chain<A: Arith>(
    a: &mut A,
    cfg: &VarConfig,
    w: &ReconWeights,
    choices: &[Vec<A::Choice>],
) -> Vec<Tensor<A::V>> {
    let mut f_hat: Option<Tensor<A::V>> = None;
    let mut outs = Vec::new();
    for (si, &pn) in cfg.patch_nums.iter().enumerate() {
        let h = codebook_lookup(a, w, &choices[si], pn).unwrap();
        let (f, next) =
            next_autoregressive_input(a, &cfg.patch_nums, w, si, f_hat.as_ref(), &h).unwrap();
        if si + 1 < cfg.patch_nums.len() {
            outs.push(next);
        }
        f_hat = Some(f);
    }
    outs.push(f_hat.unwrap());
    outs
}

#[test]
fn recon_circuit_equals_reference() {
    let mut cfg = test_cfg();
    cfg.patch_nums = vec![1, 2, 3]; // Phi 0, 2, 3; bicubic 1->3, 2->3; area 3->2, 3->3
    let fmt = cfg.fmt;
    let w = ReconWeights::seeded(&cfg, 21).unwrap();
    let v = cfg.vocab;

    let mut b = Builder::new();
    let mut a = CircuitArith::new(&mut b, fmt);
    let mut choices: Vec<Vec<Vec<Lit>>> = Vec::new();
    for (si, &pn) in cfg.patch_nums.iter().enumerate() {
        let mut per = Vec::new();
        for t in 0..pn * pn {
            let bits: Vec<Lit> = (0..v)
                .map(|k| a.b.input(&format!("tok{si}.{t}.{k}")).unwrap())
                .collect();
            per.push(a.choice_from_bits(&bits).unwrap());
        }
        choices.push(per);
    }
    let outs = recon_chain(&mut a, &cfg, &w, &choices);
    let mut out_widths = Vec::new();
    for (k, o) in outs.iter().enumerate() {
        circuit_output(a.b, &format!("out{k}"), o).unwrap();
        out_widths.extend(std::iter::repeat_n(fmt.width(), o.len()));
    }
    let c = b.finish();
    let s = c.stats();
    println!(
        "recon {:?}: depth {} gates {} wires {}",
        cfg.patch_nums, s.depth, s.gates, s.wires
    );

    let ntok: usize = cfg.patch_nums.iter().map(|p| p * p).sum();
    let widths = vec![1u32; ntok * v];
    let mut rng = SplitMix64::new(22);
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for _ in 0..INSTANCES {
        let idx: Vec<Vec<usize>> = cfg
            .patch_nums
            .iter()
            .map(|&pn| (0..pn * pn).map(|_| rng.below(v as u64) as usize).collect())
            .collect();
        let mut bits = Vec::new();
        for per in &idx {
            for &i in per {
                bits.extend((0..v).map(|k| (k == i) as u64));
            }
        }
        inputs.push(bits);
        let mut r = RefArith::new(fmt);
        let outs = recon_chain(&mut r, &cfg, &w, &idx);
        want.push(outs.iter().flat_map(|t| t.to_bits()).collect::<Vec<u64>>());
    }
    let got = eval_cpu(&c, &inputs, &widths, &out_widths);
    for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, wv, "instance {i}");
    }
    // The instances differ (the check is not vacuous).
    assert!(want.iter().any(|x| x != &want[0]));
}

/// Bicubic 2x2 -> 5x5 then area 5x5 -> 2x2 (windows of 3x3 cells: a non-power-of-two count)
/// and 5x5 -> 3x3, one channel, as a circuit against the reference.
#[test]
fn resampling_circuit_equals_reference() {
    let fmt = Format::new(5, 4).unwrap();
    fn run<A: Arith>(a: &mut A, x: &Tensor<A::V>) -> Vec<Tensor<A::V>> {
        let up = bicubic_up(a, x, 5, 5).unwrap();
        let d2 = area_down(a, &up, 2, 2).unwrap();
        let d3 = area_down(a, &up, 3, 3).unwrap();
        vec![up, d2, d3]
    }
    let mut b = Builder::new();
    let mut a = CircuitArith::new(&mut b, fmt);
    let x = circuit_input(&mut a, "x", vec![1, 2, 2]).unwrap();
    let outs = run(&mut a, &x);
    let mut out_widths = Vec::new();
    for (k, o) in outs.iter().enumerate() {
        circuit_output(a.b, &format!("out{k}"), o).unwrap();
        out_widths.extend(std::iter::repeat_n(fmt.width(), o.len()));
    }
    let c = b.finish();
    let mut rng = SplitMix64::new(23);
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for _ in 0..INSTANCES {
        let x = random_tensor(fmt, &[1, 2, 2], &mut rng, 4.0);
        inputs.push(x.to_bits());
        let mut r = RefArith::new(fmt);
        want.push(
            run(&mut r, &x)
                .iter()
                .flat_map(|t| t.to_bits())
                .collect::<Vec<u64>>(),
        );
    }
    let got = eval_cpu(&c, &inputs, &[fmt.width(); 4], &out_widths);
    assert_eq!(got, want);
    assert!(want.iter().any(|x| x != &want[0]));
}

/// Build the decoder circuit for an f_hat of side `n`; returns the circuit.
fn decoder_circuit(cfg: &VarConfig, w: &DecoderWeights, n: usize) -> Circuit {
    let mut b = Builder::new();
    let mut a = CircuitArith::new(&mut b, cfg.fmt);
    let x = circuit_input(&mut a, "f_hat", vec![cfg.cvae, n, n]).unwrap();
    let y = decode(&mut a, cfg, w, &x).unwrap();
    assert_eq!(y.shape(), &[cfg.vae_out_ch, 2 * n, 2 * n]);
    circuit_output(a.b, "image", &y).unwrap();
    b.finish()
}

#[test]
fn decoder_circuit_equals_reference() {
    let cfg = test_cfg();
    let fmt = cfg.fmt;
    let w = DecoderWeights::seeded(&cfg, 31).unwrap();
    let n = 2;
    let t0 = Instant::now();
    let c = decoder_circuit(&cfg, &w, n);
    let s = c.stats();
    println!(
        "decoder (Cvae 4, 2x2 -> 4x4, ch 4/2, groups 2, F(5,4)): depth {} gates {} wires {} (build {:?})",
        s.depth,
        s.gates,
        s.wires,
        t0.elapsed()
    );
    let nin = cfg.cvae * n * n;
    let nout = cfg.vae_out_ch * 4 * n * n;
    let mut rng = SplitMix64::new(32);
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for _ in 0..INSTANCES {
        let x = random_tensor(fmt, &[cfg.cvae, n, n], &mut rng, 1.5);
        inputs.push(x.to_bits());
        let mut r = RefArith::new(fmt);
        want.push(decode(&mut r, &cfg, &w, &x).unwrap().to_bits());
    }
    let got = eval_cpu(
        &c,
        &inputs,
        &vec![fmt.width(); nin],
        &vec![fmt.width(); nout],
    );
    for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, wv, "instance {i}");
    }
    assert!(want.iter().any(|x| x != &want[0]), "instances differ");
    // The clamp is effective: every value within [-1, 1].
    let one = fmt.one().unwrap().to_f64();
    for wv in &want {
        for &bits in wv {
            let v = fmt.from_bits(bits).unwrap().to_f64();
            assert!(v.abs() <= one);
        }
    }
}

#[test]
fn decoder_depth_independent_of_spatial_size() {
    // A narrower decoder (Cvae 2, channels 2 and 1, one group, both attention kinds) built for
    // f_hat 2x2 and 3x3: the same depth, more gates. (At 1x1 some sums have a single operand
    // and are free, so the depth is constant from 2x2 on.)
    let mut cfg = test_cfg();
    cfg.cvae = 2;
    cfg.vae_ch = 1;
    cfg.vae_groups = 1;
    cfg.validate().unwrap();
    let w = DecoderWeights::seeded(&cfg, 41).unwrap();
    let d2 = decoder_circuit(&cfg, &w, 2).stats();
    let d3 = decoder_circuit(&cfg, &w, 3).stats();
    println!(
        "decoder depth: 2x2 {} ({} gates), 3x3 {} ({} gates)",
        d2.depth, d2.gates, d3.depth, d3.gates
    );
    assert_eq!(d2.depth, d3.depth);
    assert!(d3.gates > d2.gates);
}

/// An independent f64 decoder written from VAR's PyTorch modules, reading the weights by their
/// state_dict names (so it also checks the names and the block order).
struct F64Decoder {
    m: std::collections::HashMap<String, (Vec<usize>, Vec<f64>)>,
    groups: usize,
}

impl F64Decoder {
    fn new(w: &DecoderWeights, groups: usize) -> Self {
        let m = w
            .named_tensors()
            .into_iter()
            .map(|(n, t)| (n, (t.shape().to_vec(), t.to_f64())))
            .collect();
        F64Decoder { m, groups }
    }

    fn has(&self, name: &str) -> bool {
        self.m.contains_key(name)
    }

    /// Conv2d with padding k/2, stride 1, bias.
    fn conv(&self, x: &[f64], (c, h, w): (usize, usize, usize), p: &str) -> (Vec<f64>, usize) {
        let (ks, k) = &self.m[&format!("{p}.weight")];
        let b = &self.m[&format!("{p}.bias")].1;
        let (co, ci, kh, kw) = (ks[0], ks[1], ks[2], ks[3]);
        assert_eq!(ci, c, "{p}");
        let pad = (kh / 2) as i64;
        let mut y = vec![0.0; co * h * w];
        for o in 0..co {
            for i in 0..h {
                for j in 0..w {
                    let mut s = b[o];
                    for q in 0..ci {
                        for m in 0..kh {
                            for n in 0..kw {
                                let yy = i as i64 + m as i64 - pad;
                                let xx = j as i64 + n as i64 - pad;
                                if yy < 0 || xx < 0 || yy >= h as i64 || xx >= w as i64 {
                                    continue;
                                }
                                s += k[((o * ci + q) * kh + m) * kw + n]
                                    * x[(q * h + yy as usize) * w + xx as usize];
                            }
                        }
                    }
                    y[(o * h + i) * w + j] = s;
                }
            }
        }
        (y, co)
    }

    fn gn(&self, x: &[f64], (c, h, w): (usize, usize, usize), p: &str) -> Vec<f64> {
        let gam = &self.m[&format!("{p}.weight")].1;
        let bet = &self.m[&format!("{p}.bias")].1;
        let n = c / self.groups * h * w;
        let mut y = vec![0.0; x.len()];
        for g in 0..self.groups {
            let v = &x[g * n..(g + 1) * n];
            let mu = v.iter().sum::<f64>() / n as f64;
            let var = v.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / n as f64;
            for k in 0..n {
                let ch = (g * n + k) / (h * w);
                y[g * n + k] = (v[k] - mu) / (var + 1e-6).sqrt() * gam[ch] + bet[ch];
            }
        }
        y
    }

    fn silu(x: &[f64]) -> Vec<f64> {
        x.iter().map(|v| v / (1.0 + (-v).exp())).collect()
    }

    fn resnet(&self, x: &[f64], (c, h, w): (usize, usize, usize), p: &str) -> (Vec<f64>, usize) {
        let t = Self::silu(&self.gn(x, (c, h, w), &format!("{p}.norm1")));
        let (t, co) = self.conv(&t, (c, h, w), &format!("{p}.conv1"));
        let t = Self::silu(&self.gn(&t, (co, h, w), &format!("{p}.norm2")));
        let (t, _) = self.conv(&t, (co, h, w), &format!("{p}.conv2"));
        let sc = if self.has(&format!("{p}.nin_shortcut.weight")) {
            self.conv(x, (c, h, w), &format!("{p}.nin_shortcut")).0
        } else {
            x.to_vec()
        };
        (sc.iter().zip(&t).map(|(a, b)| a + b).collect(), co)
    }

    fn attn(&self, x: &[f64], (c, h, w): (usize, usize, usize), p: &str) -> Vec<f64> {
        let t = self.gn(x, (c, h, w), &format!("{p}.norm"));
        let (qkv, _) = self.conv(&t, (c, h, w), &format!("{p}.qkv"));
        let n = h * w;
        let (q, k, v) = (&qkv[..c * n], &qkv[c * n..2 * c * n], &qkv[2 * c * n..]);
        let mut out = vec![0.0; c * n];
        for i in 0..n {
            let s: Vec<f64> = (0..n)
                .map(|j| {
                    (0..c).map(|ch| q[ch * n + i] * k[ch * n + j]).sum::<f64>()
                        * (c as f64).powf(-0.5)
                })
                .collect();
            let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - mx).exp()).collect();
            let z: f64 = e.iter().sum();
            for ch in 0..c {
                out[ch * n + i] = (0..n).map(|j| v[ch * n + j] * e[j] / z).sum();
            }
        }
        let (pr, _) = self.conv(&out, (c, h, w), &format!("{p}.proj_out"));
        x.iter().zip(&pr).map(|(a, b)| a + b).collect()
    }

    fn decode(&self, x: &[f64], (c, h, w): (usize, usize, usize), levels: usize) -> Vec<f64> {
        let (x, c) = self.conv(x, (c, h, w), "post_quant_conv");
        let (x, c) = self.conv(&x, (c, h, w), "decoder.conv_in");
        let (mut x, mut c) = self.resnet(&x, (c, h, w), "decoder.mid.block_1");
        if self.has("decoder.mid.attn_1.qkv.weight") {
            x = self.attn(&x, (c, h, w), "decoder.mid.attn_1");
        }
        (x, c) = self.resnet(&x, (c, h, w), "decoder.mid.block_2");
        let (mut h, mut w) = (h, w);
        for lvl in (0..levels).rev() {
            let mut j = 0;
            while self.has(&format!("decoder.up.{lvl}.block.{j}.conv1.weight")) {
                (x, c) = self.resnet(&x, (c, h, w), &format!("decoder.up.{lvl}.block.{j}"));
                if self.has(&format!("decoder.up.{lvl}.attn.{j}.qkv.weight")) {
                    x = self.attn(&x, (c, h, w), &format!("decoder.up.{lvl}.attn.{j}"));
                }
                j += 1;
            }
            if self.has(&format!("decoder.up.{lvl}.upsample.conv.weight")) {
                let mut u = vec![0.0; c * 4 * h * w];
                for ch in 0..c {
                    for i in 0..2 * h {
                        for jj in 0..2 * w {
                            u[(ch * 2 * h + i) * 2 * w + jj] = x[(ch * h + i / 2) * w + jj / 2];
                        }
                    }
                }
                (h, w) = (2 * h, 2 * w);
                (x, c) = self.conv(&u, (c, h, w), &format!("decoder.up.{lvl}.upsample.conv"));
            }
        }
        let t = Self::silu(&self.gn(&x, (c, h, w), "decoder.norm_out"));
        let (t, _) = self.conv(&t, (c, h, w), "decoder.conv_out");
        t.iter().map(|v| v.clamp(-1.0, 1.0)).collect()
    }
}

#[test]
fn decoder_reference_matches_independent_f64_decoder() {
    // At F(24, 8) (f32-like precision) the generic decoder under RefArith must follow the
    // independent f64 implementation closely; a wrong block order, a transposed attention or
    // a misread weight would be off by far more than the tolerance.
    let mut cfg = test_cfg();
    cfg.fmt = Format::new(24, 8).unwrap();
    let fmt = cfg.fmt;
    let w = DecoderWeights::seeded(&cfg, 51).unwrap();
    let f = F64Decoder::new(&w, cfg.vae_groups);
    let mut rng = SplitMix64::new(52);
    let mut worst = 0.0f64;
    for n in [2usize, 3] {
        for _ in 0..4 {
            let x = random_tensor(fmt, &[cfg.cvae, n, n], &mut rng, 1.5);
            let mut r = RefArith::new(fmt);
            let got = decode(&mut r, &cfg, &w, &x).unwrap().to_f64();
            let want = f.decode(&x.to_f64(), (cfg.cvae, n, n), cfg.vae_ch_mult.len());
            assert_eq!(got.len(), want.len());
            assert!(want.iter().any(|v| v.abs() > 0.05), "non-trivial image");
            for (g, v) in got.iter().zip(&want) {
                worst = worst.max((g - v).abs());
            }
        }
    }
    println!("decoder F(24,8) vs f64: max abs error {worst:e}");
    assert!(worst <= 2e-5, "max abs error {worst}");
}

// ---------------------------------------------------------------------------------------------
// Weights and errors.

#[test]
fn weights_roundtrip_by_name() {
    let cfg = test_cfg();
    let dw = DecoderWeights::seeded(&cfg, 7).unwrap();
    let rw = ReconWeights::seeded(&cfg, 7).unwrap();
    let map: std::collections::HashMap<String, Tensor<Float>> = dw
        .named_tensors()
        .into_iter()
        .chain(rw.named_tensors())
        .map(|(n, t)| (n, t.clone()))
        .collect();
    let n_names = dw.named_tensors().len() + rw.named_tensors().len();
    assert_eq!(map.len(), n_names, "names are unique");
    for name in [
        "post_quant_conv.weight",
        "decoder.conv_in.weight",
        "decoder.mid.attn_1.qkv.weight",
        "decoder.up.1.attn.0.proj_out.bias",
        "decoder.up.1.upsample.conv.weight",
        "decoder.up.0.block.0.nin_shortcut.weight",
        "decoder.norm_out.weight",
        "decoder.conv_out.bias",
        "quantize.embedding.weight",
        "quantize.quant_resi.qresi_ls.3.bias",
    ] {
        assert!(map.contains_key(name), "{name}");
    }
    let mut get = |name: &str, _shape: &[usize]| {
        map.get(name)
            .cloned()
            .ok_or(tcvar::model::ModelError::Weights {
                name: name.into(),
                reason: "missing".into(),
            })
    };
    assert_eq!(DecoderWeights::load(&cfg, &mut get).unwrap(), dw);
    assert_eq!(ReconWeights::load(&cfg, &mut get).unwrap(), rw);
    // A missing tensor and a wrong shape are errors naming the tensor.
    let mut missing = |name: &str, shape: &[usize]| {
        if name == "decoder.mid.block_2.conv1.weight" {
            Err(tcvar::model::ModelError::Weights {
                name: name.into(),
                reason: "missing".into(),
            })
        } else {
            Ok(Tensor::zeros(cfg.fmt, shape.to_vec()).unwrap())
        }
    };
    let e = DecoderWeights::load(&cfg, &mut missing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("decoder.mid.block_2.conv1.weight"), "{e}");
    let mut wrong = |name: &str, shape: &[usize]| {
        let mut s = shape.to_vec();
        if name == "quantize.embedding.weight" {
            s[0] += 1;
        }
        Ok(Tensor::zeros(cfg.fmt, s).unwrap())
    };
    let e = ReconWeights::load(&cfg, &mut wrong)
        .unwrap_err()
        .to_string();
    assert!(e.contains("quantize.embedding.weight"), "{e}");
}

#[test]
fn shape_errors_are_errors() {
    let cfg = test_cfg();
    let fmt = cfg.fmt;
    let mut a = RefArith::new(fmt);
    let dw = DecoderWeights::seeded(&cfg, 1).unwrap();
    let rw = ReconWeights::seeded(&cfg, 1).unwrap();
    let bad = Tensor::zeros(fmt, vec![cfg.cvae + 1, 2, 2]).unwrap();
    assert!(decode(&mut a, &cfg, &dw, &bad).is_err());
    let h = Tensor::zeros(fmt, vec![cfg.cvae, 2, 2]).unwrap();
    assert!(next_autoregressive_input(&mut a, &cfg.patch_nums, &rw, 0, None, &h).is_err());
    assert!(next_autoregressive_input(&mut a, &cfg.patch_nums, &rw, 5, None, &h).is_err());
    assert!(codebook_lookup(&mut a, &rw, &[0usize, 1], 2).is_err());
    assert!(codebook_lookup(&mut a, &rw, &[99usize], 1).is_err());
    assert!(area_down(&mut a, &h, 0, 1).is_err());
    let mut bad_cfg = cfg.clone();
    bad_cfg.vae_groups = 3;
    assert!(DecoderWeights::seeded(&bad_cfg, 1).is_err());
}

/// Sizes for the report (slow: run with `--ignored --nocapture`).
#[test]
#[ignore = "decoder size report (slow), not a check"]
fn decoder_sizes_report() {
    let micro = VarConfig::preset("micro").unwrap();
    for (name, cfg) in [
        ("micro preset", micro),
        ("ch 4/2 + up attn (tests)", test_cfg()),
        ("ch 8/4 + up attn", wide_cfg()),
    ] {
        let w = DecoderWeights::seeded(&cfg, 1).unwrap();
        let n = cfg.last_pn();
        let t0 = Instant::now();
        let c = decoder_circuit(&cfg, &w, n);
        let s = c.stats();
        println!(
            "{name}: f_hat {n}x{n}: depth {} gates {} wires {} build {:?}",
            s.depth,
            s.gates,
            s.wires,
            t0.elapsed()
        );
        for (r, rs) in c.region_stats() {
            println!("  {r}: depth {} gates {}", rs.depth, rs.gates);
        }
    }
}
