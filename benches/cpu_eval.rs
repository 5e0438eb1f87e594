//! CPU evaluator bench: gate-evals/s (gates x instances per second) at batch 4096.
//!
//! Circuits (all from `circuit::random::layered`; the GPU bench uses the same specs):
//! - `and_or2_wide`: 4 layers of 32768 2-input AND/OR gates, each layer reading the previous;
//! - `majority16`: 2 layers of 8192 unit-weight majority gates of fan-in 16;
//! - `weighted32_w2e20`: 2 layers of 4096 threshold gates of fan-in 32, weights up to 2^20;
//! - `micro`: the explicit circuit of the `micro` VAR preset (seeded weights, up to the image);
//! - `mixed_random_big`: a random levelized circuit of `TCVAR_BENCH_BIG_GATES` gates (default
//!   10M) in 20 layers, mostly 2-input AND/OR plus small threshold gates, operands read from
//!   random earlier rows (every gate live).
//!
//! Each shape is timed with all threads (`all`), with word terms off (`words_off`: every form
//! term added on its own, the evaluation before word terms) and on one thread (`1thread`, the
//! per-core figure); the summary line gives terms, word terms and the work per lane (scalar
//! terms + word terms); `majority16` and `weighted32_w2e20` are also timed with each form method forced,
//! which is how `FormMethod::Auto`'s cost model was calibrated. Criterion reports elements/s =
//! gate-evals/s; a summary line per shape prints bytes per gate and per wire of the
//! `Levelized` IR (`Levelized::bytes / gates`, `/ terms`) and of the evaluator's program.
//!
//! Run: `cargo bench --bench cpu_eval` (`TCVAR_BENCH_ONLY=majority` keeps matching shapes) (add `-- --quick` for a fast pass). For AVX-512 code:
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench cpu_eval`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tcvar::circuit::random::{bench_shapes, layered, LayeredSpec, SplitMix64};
use tcvar::circuit::Levelized;
use tcvar::eval::cpu::{CpuEvaluator, CpuOptions, FormMethod};
use tcvar::eval::Batch;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::{compile_with, CompileOptions, Until};
use tcvar::model::var::weights::VarWeights;

/// Batch size of every bench (instances).
const BATCH: usize = 4096;

fn big_gates() -> u32 {
    std::env::var("TCVAR_BENCH_BIG_GATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s: &u32| s >= 1000)
        .unwrap_or(10_000_000)
}

fn shapes() -> Vec<(&'static str, LayeredSpec)> {
    bench_shapes(big_gates())
}

fn random_batch(rows: u32, n: usize, seed: u64) -> Batch {
    let mut rng = SplitMix64::new(seed);
    let wpr = n.div_ceil(64);
    let words = (0..rows as usize * wpr).map(|_| rng.next_u64()).collect();
    Batch::from_words(rows, n, words).expect("batch shape")
}

/// `micro`'s explicit circuit (seeded weights, the pass up to the image), levelized.
fn micro() -> Levelized {
    let cfg = VarConfig::preset("micro").expect("micro preset");
    let w = VarWeights::seeded(&cfg, 11).expect("seeded weights");
    let opts = CompileOptions {
        progress: false,
        until: Until::Image,
    };
    compile_with(&cfg, &w, opts)
        .expect("micro circuit")
        .circuit
        .levelize()
}

fn bench(c: &mut Criterion) {
    // TCVAR_BENCH_ONLY=<a,b,..> keeps only the shapes containing one of the substrings (skips building the others).
    let only = std::env::var("TCVAR_BENCH_ONLY").unwrap_or_default();
    let keep = |name: &str| only.is_empty() || only.split(',').any(|o| name.contains(o));
    if keep("micro") {
        let t = Instant::now();
        let lv = micro();
        bench_circuit(c, "micro", &lv, t.elapsed());
    }
    for (name, spec) in shapes() {
        if !keep(name) {
            continue;
        }
        let t = Instant::now();
        let circuit = layered(&spec).expect("bench circuit");
        let built = t.elapsed();
        let lv: Levelized = circuit.levelize();
        drop(circuit);
        bench_circuit(c, name, &lv, built);
    }
}

fn bench_circuit(c: &mut Criterion, name: &str, lv: &Levelized, built: Duration) {
    {
        let gates = lv.num_gates();
        let terms = lv.num_terms();
        let inputs = random_batch(lv.num_inputs, BATCH, 7);
        let mut out = Batch::zeros(lv.num_outputs(), BATCH);
        let big = name == "mixed_random_big" || name == "micro";

        let d = CpuOptions::default();
        let mut variants: Vec<(&str, CpuOptions)> = vec![
            ("all", d),
            (
                "words_off",
                CpuOptions {
                    word_terms: false,
                    ..d
                },
            ),
            (
                "rows_in_place",
                CpuOptions {
                    reuse_slots: false,
                    ..d
                },
            ),
            (
                "ripple",
                CpuOptions {
                    form_method: FormMethod::BitSliced,
                    ..d
                },
            ),
            (
                "columns",
                CpuOptions {
                    form_method: FormMethod::Columns,
                    ..d
                },
            ),
            (
                "1thread",
                CpuOptions {
                    parallel: false,
                    ..d
                },
            ),
        ];
        if name == "majority16" || name == "weighted32_w2e20" {
            for (v, m) in [
                ("bitsliced", FormMethod::BitSliced),
                ("per_instance", FormMethod::PerInstance),
            ] {
                variants.push((
                    v,
                    CpuOptions {
                        form_method: m,
                        ..d
                    },
                ));
            }
        }

        let mut g = c.benchmark_group(format!("cpu_eval/{name}"));
        g.throughput(Throughput::Elements(gates * BATCH as u64));
        if big {
            g.sample_size(10);
            g.warm_up_time(Duration::from_secs(1));
            g.measurement_time(Duration::from_secs(20));
        }
        for (v, opts) in variants {
            let mut ev = CpuEvaluator::with_options(lv, opts).expect("compile");
            ev.evaluate_into(&inputs, &mut out).expect("evaluate");
            let t = Instant::now();
            ev.evaluate_into(&inputs, &mut out).expect("evaluate");
            let secs = t.elapsed().as_secs_f64();
            if v == "all" {
                eprintln!(
                    "{name}: {gates} gates, {terms} terms, {} word terms, work per lane {} \
                     (scalar terms + word terms), depth {}, built in {:.1} s; \
                     Levelized {:.2} bytes/gate, {:.2} bytes/term; evaluator program+values {:.1} \
                     bytes/gate; kinds {:?}",
                    lv.num_word_terms(),
                    lv.work_per_lane(),
                    lv.depth(),
                    built.as_secs_f64(),
                    lv.bytes() as f64 / gates as f64,
                    lv.bytes() as f64 / terms as f64,
                    ev.bytes() as f64 / gates as f64,
                    ev.kind_counts()
                );
            }
            eprintln!(
                "{name}/{v}: one batch in {:.3} ms = {:.3e} gate-evals/s",
                secs * 1e3,
                (gates * BATCH as u64) as f64 / secs
            );
            g.bench_function(v, |b| {
                b.iter(|| ev.evaluate_into(&inputs, &mut out).expect("evaluate"))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
