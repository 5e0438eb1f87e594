//! Word terms: forms whose terms read the bits of a word with weights `c, 2c, 4c, ...` are
//! recognised by the levelizer and added as whole words by the CPU evaluator. The outputs must
//! equal, bit for bit, the serial reference `Circuit::eval_single` and the term-by-term
//! evaluation, for random circuits with full and partial runs, negative coefficients, runs
//! whose bits come from different levels, and wide coefficients. The GPU evaluator (which
//! evaluates word terms term by term) is checked on the same circuits when an adapter exists.

mod common;

use tcvar::circuit::random::SplitMix64;
use tcvar::circuit::{Builder, Circuit, Levelized, Lit};
use tcvar::eval::cpu::{CpuEvaluator, CpuOptions, FormMethod};
use tcvar::eval::gpu::{FormKernel, GpuEvaluator, GpuOptions};
use tcvar::eval::{Batch, Evaluator};

use common::eval::{context, random_batch};

fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// A random circuit with word runs. Level 0 words are inputs; each later stage computes new
/// words from banks over runs of earlier words (bits of one word may come from gates of
/// different levels: a word mixes bits of the previous stage with fresh gates and inputs).
fn word_circuit(seed: u64, stages: usize, coef_bits: u32) -> Circuit {
    let mut rng = SplitMix64::new(seed);
    let mut b = Builder::new();
    let mut words: Vec<Vec<Lit>> = Vec::new();
    for i in 0..4 {
        let w = 3 + pick(&mut rng, 10) as u32;
        words.push(b.input_word(&format!("x{i}"), w).unwrap());
    }
    let mut outs: Vec<Lit> = Vec::new();
    for _stage in 0..stages {
        let mut new_words = Vec::new();
        for _ in 0..3 {
            let mut terms: Vec<(Lit, i64)> = Vec::new();
            let mut range: i128 = 0;
            for _ in 0..1 + pick(&mut rng, 3) {
                let w = &words[pick(&mut rng, words.len())];
                // A full or partial run: bits lo..hi.
                let lo = pick(&mut rng, w.len().saturating_sub(2).max(1));
                let hi = (lo + 1 + pick(&mut rng, w.len() - lo)).min(w.len());
                let mag = 1 + (rng.next_u64() % (1 << coef_bits)) as i64;
                let c = if rng.coin() { mag } else { -mag };
                for (j, &l) in w[lo..hi].iter().enumerate() {
                    terms.push((l, c << j));
                    range += ((c << j) as i128).abs();
                }
            }
            // A few scalar terms.
            for _ in 0..pick(&mut rng, 3) {
                let w = &words[pick(&mut rng, words.len())];
                let l = w[pick(&mut rng, w.len())];
                let wt = (rng.next_u64() % 7) as i64 - 3;
                terms.push((l, wt));
                range += wt.abs() as i128;
            }
            let k = 1 + pick(&mut rng, 6);
            let thetas: Vec<i64> = (0..k)
                .map(|_| ((rng.next_u64() as i128 % (2 * range + 3)) - range - 1) as i64)
                .collect();
            let bits = b.bank(&terms, &thetas).unwrap();
            outs.extend(&bits);
            // A word of this stage: bank outputs, then bits of an older word and an input bit
            // (different levels in one word).
            let mut nw = bits.clone();
            let old = &words[pick(&mut rng, words.len())];
            nw.extend(old.iter().take(3));
            let a = words[0][0];
            let g = b.and(&[a, !nw[0]]).unwrap();
            nw.push(g);
            new_words.push(nw);
        }
        words.extend(new_words);
    }
    b.output_word("y", &outs).unwrap();
    b.finish()
}

fn reference(c: &Circuit, batch: &Batch) -> Vec<Vec<bool>> {
    batch
        .to_instances()
        .iter()
        .map(|x| c.eval_single(x).expect("reference"))
        .collect()
}

fn cpu_options() -> Vec<CpuOptions> {
    let d = CpuOptions::default();
    let mut v = Vec::new();
    for word_terms in [true, false] {
        for form_method in [
            FormMethod::Auto,
            FormMethod::BitSliced,
            FormMethod::PerInstance,
            FormMethod::Columns,
        ] {
            for (max_block_words, reuse_slots) in [(1, true), (8, false)] {
                v.push(CpuOptions {
                    word_terms,
                    form_method,
                    max_block_words,
                    reuse_slots,
                    ..d
                });
            }
        }
    }
    v
}

fn check_cpu(c: &Circuit, lv: &Levelized, n: usize, seed: u64) {
    let batch = random_batch(lv.num_inputs, n, seed);
    let want = reference(c, &batch);
    for o in cpu_options() {
        let mut ev = CpuEvaluator::with_options(lv, o).unwrap();
        let got = ev.evaluate(&batch).unwrap().to_instances();
        assert_eq!(got, want, "seed {seed}, batch {n}, {o:?}");
        let k = ev.kind_counts();
        if o.word_terms && o.form_method == FormMethod::BitSliced {
            assert_eq!(k.word_terms, lv.num_word_terms(), "every word term used");
        }
        if !o.word_terms {
            assert_eq!(k.word_terms, 0);
        }
    }
}

#[test]
fn levelizer_finds_runs_and_counts_work() {
    let mut found = 0;
    for seed in 0..6 {
        let c = word_circuit(seed, 3, 4);
        let lv = c.levelize();
        // Every run is valid and maximal-length runs are found where the weights double.
        for f in 0..lv.num_forms() {
            let ws: Vec<i64> = lv.form_weights(f).unwrap().collect();
            let runs = lv.checked_word_runs(f, &ws).unwrap();
            let t0 = lv.form_offsets[f as usize] as usize;
            let mut covered = vec![false; ws.len()];
            for r in runs {
                for j in r.start as usize..(r.start + r.len) as usize {
                    covered[j - t0] = true;
                }
            }
            // No three consecutive uncovered terms with doubling weights remain.
            for j in 0..ws.len().saturating_sub(2) {
                let dbl = ws[j] != 0 && ws[j + 1] == 2 * ws[j] && ws[j + 2] == 2 * ws[j + 1];
                assert!(!(dbl && !covered[j] && !covered[j + 1] && !covered[j + 2]));
            }
        }
        found += lv.num_word_terms();
        assert_eq!(
            lv.work_per_lane(),
            lv.gate_lits.len() as u64 + lv.num_scalar_form_terms() + lv.num_word_terms()
        );
        assert!(lv.work_per_lane() <= lv.num_terms());
    }
    assert!(found > 20, "only {found} word terms");
}

#[test]
fn cpu_word_terms_equal_reference() {
    for seed in 0..8 {
        let c = word_circuit(100 + seed, 3, 4);
        let lv = c.levelize();
        assert!(lv.num_word_terms() > 0);
        check_cpu(&c, &lv, [1, 64, 200, 1000][seed as usize % 4], seed);
    }
}

/// Coefficients up to 2^40: sums far beyond 32 bits, words added at high planes.
#[test]
fn cpu_wide_coefficients_equal_reference() {
    for seed in 0..4 {
        let c = word_circuit(200 + seed, 2, 40);
        let lv = c.levelize();
        check_cpu(&c, &lv, 130, seed);
    }
}

/// A hand-made `Levelized` whose runs break the invariant is refused, not evaluated.
#[test]
fn malformed_word_runs_are_refused() {
    let c = word_circuit(7, 2, 3);
    let lv = c.levelize();
    assert!(lv.num_word_terms() > 0);
    let mut bad = lv.clone();
    bad.word_runs[0].len += 1000;
    assert!(CpuEvaluator::new(&bad).is_err());
    let mut bad = lv.clone();
    bad.word_runs[0].start += 1;
    bad.word_runs[0].len = 2;
    assert!(CpuEvaluator::new(&bad).is_err());
    // Without runs the circuit is evaluated term by term, with the same outputs.
    let mut plain = lv.clone();
    plain.form_run_offsets.clear();
    plain.word_runs.clear();
    let batch = random_batch(lv.num_inputs, 100, 3);
    let a = CpuEvaluator::new(&lv).unwrap().evaluate(&batch).unwrap();
    let b = CpuEvaluator::new(&plain).unwrap().evaluate(&batch).unwrap();
    assert_eq!(a, b);
}

#[test]
fn gpu_word_circuits_equal_reference() {
    let Some(ctx) = context("gpu_word_circuits_equal_reference") else {
        return;
    };
    for seed in 0..4 {
        let c = word_circuit(300 + seed, 3, if seed < 2 { 4 } else { 40 });
        let lv = c.levelize();
        let batch = random_batch(lv.num_inputs, 100, seed);
        let want = reference(&c, &batch);
        for form_kernel in [FormKernel::Auto, FormKernel::Sliced, FormKernel::PerLane] {
            let opts = GpuOptions {
                form_kernel,
                ..Default::default()
            };
            let mut ev = GpuEvaluator::with_context(ctx.clone(), &lv, &opts).unwrap();
            let got = ev.evaluate(&batch).unwrap().to_instances();
            assert_eq!(got, want, "seed {seed}, {form_kernel:?}");
        }
    }
}
