//! Top-p sampling (see `Sampling::TopP` and docs/var.md): the compiled program equals the
//! F(p, q) reference bit for bit, and the reference equals an independent f64 computation of
//! the definition on inputs without near ties.

use tcvar::eval::program::{CpuProgramEvaluator, ProgramOptions};
use tcvar::float::Format;
use tcvar::model::arith::RefArith;
use tcvar::model::ops::scalar::{STensor, Scalar};
use tcvar::model::ops::weights::SeededWeights;
use tcvar::model::tensor::Tensor;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{
    record_with, var_reference_until, CompileOptions, RecordedVar, Until, VarInput,
};
use tcvar::model::var::transformer::sample;
use tcvar::model::var::weights::VarWeights;

/// A small deterministic generator (independent of the crate's).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn top_p_program_equals_reference_on_micro() {
    for (p, seed) in [(0.5, 1u64), (0.9, 2)] {
        let mut cfg = VarConfig::preset("micro").unwrap();
        cfg.sampling = Sampling::TopP { p };
        let w = VarWeights::seeded(&cfg, seed).unwrap();
        let rec = record_with(
            &cfg,
            &w,
            CompileOptions {
                progress: false,
                until: Until::Tokens,
            },
        )
        .unwrap();
        let mut rng = Lcg(seed);
        let inputs: Vec<VarInput> = (0..24)
            .map(|i| VarInput {
                class: i % cfg.num_classes,
                uniforms: (0..cfg.total_tokens()).map(|_| rng.next()).collect(),
            })
            .collect();
        let vals = rec.input_values(&inputs).unwrap();
        let mut ev = CpuProgramEvaluator::new(ProgramOptions::default());
        let (out, _) = ev
            .run(&rec.program, &vals, &mut |d| {
                RecordedVar::weight_encodings(&w, d).map_err(|e| e.to_string())
            })
            .unwrap();
        let got = rec.outputs(&out).unwrap();
        let mut distinct = std::collections::BTreeSet::new();
        for (i, (g, inp)) in got.iter().zip(&inputs).enumerate() {
            let r = var_reference_until(&cfg, &w, inp, Until::Tokens).unwrap();
            assert_eq!(g, &r, "top-p:{p}, instance {i}");
            distinct.insert(r.tokens.clone());
        }
        // The inputs exercise the sampling: not every instance draws the same tokens.
        assert!(
            distinct.len() > 1,
            "top-p:{p}: one token map for all inputs"
        );
    }
}

/// The top-p choice in f64, straight from the definition, or `None` when a decision is within
/// `margin * total` of its boundary (a near tie that rounding in F(p, q) may decide otherwise).
fn top_p_f64(logits: &[f64], p: f64, u: f64, margin: f64) -> Option<(usize, usize)> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| logits[b].partial_cmp(&logits[a]).unwrap().then(a.cmp(&b)));
    let target = p * total;
    // Kept: the smallest prefix in rank order whose mass reaches the target (at least one).
    let mut kept = vec![false; w.len()];
    let mut before = 0.0;
    let mut n_kept = 0;
    for (r, &i) in order.iter().enumerate() {
        if r > 0 && (before - target).abs() < margin * total {
            return None;
        }
        if r == 0 || before < target {
            kept[i] = true;
            n_kept += 1;
        }
        before += w[i];
    }
    let mut c = Vec::with_capacity(w.len());
    let mut acc = 0.0;
    for (i, &wi) in w.iter().enumerate() {
        acc += if kept[i] { wi } else { 0.0 };
        c.push(acc);
    }
    let thr = u * acc;
    if c.iter().any(|&cj| (cj - thr).abs() < margin * total) {
        return None;
    }
    let choice = c
        .iter()
        .position(|&cj| cj > thr)
        .unwrap_or_else(|| (0..w.len()).rev().find(|&j| kept[j]).unwrap());
    Some((choice, n_kept))
}

#[test]
fn top_p_reference_matches_an_independent_f64_definition() {
    let fmt = Format::new(24, 9).unwrap();
    let v = 16;
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.fmt = fmt;
    cfg.vocab = v;
    let weights = SeededWeights::new(&cfg, 0).unwrap();
    let mut rng = Lcg(12345);
    let (mut checked, mut sizes) = (0, std::collections::BTreeSet::new());
    for case in 0..400 {
        let p = [0.3, 0.6, 0.8, 0.95, 1.0][case % 5];
        cfg.sampling = Sampling::TopP { p };
        // Distinct logits on a grid of 1/64 (exact in F(24, 9)): ranks have no ties; the
        // spread varies so that the kept set ranges from one logit to all of them.
        let spread = [0.5, 2.0, 6.0][case % 3];
        let mut ls: Vec<f64> = Vec::new();
        while ls.len() < v {
            let l = ((rng.next() * 2.0 - 1.0) * spread * 64.0).round() / 64.0;
            if !ls.contains(&l) {
                ls.push(l);
            }
        }
        let u = (rng.next() * 1024.0).floor() / 1024.0;
        let Some((want, n_kept)) = top_p_f64(&ls, p, u, 1e-4) else {
            continue;
        };
        let mut b = Scalar::new(RefArith::new(fmt), &weights);
        let floats = |xs: &[f64], shape: Vec<usize>| {
            let data = xs.iter().map(|&x| fmt.from_f64(x).unwrap()).collect();
            STensor::floats(Tensor::new(shape, data).unwrap())
        };
        let logits = floats(&ls, vec![1, v]);
        let us = floats(&[u], vec![1]);
        let got = sample(&mut b, &cfg, &logits, Some((&us, 0)))
            .unwrap()
            .to_choices()
            .unwrap();
        assert_eq!(
            got,
            vec![want],
            "case {case}: top-p:{p}, u = {u}, logits {ls:?}"
        );
        checked += 1;
        sizes.insert(n_kept);
    }
    assert!(checked >= 300, "only {checked} cases without near ties");
    assert!(
        sizes.len() >= 5,
        "kept-set sizes {sizes:?}: the inputs do not exercise the nucleus"
    );
}
