//! VAR bench: what users of `tcvar run` ask for, in one `cargo bench --bench var`.
//!
//! For each configuration (`TCVAR_BENCH_VAR_CONFIGS`, default `micro,tiny`):
//! - `var_build/<config>`: compiling the pass into one circuit (weights seeded). Configurations
//!   whose build takes longer than `TCVAR_BENCH_VAR_MAX_BUILD_S` seconds (default 30) are
//!   timed once, outside criterion's sampling, and the time is printed;
//! - `var_eval/<config>/cpu` and `var_eval/<config>/gpu`: evaluating a batch of 4096
//!   (class, noise) instances, throughput in gate-evaluations (gates x instances) per second;
//! - `var_reference/<config>`: the F(p, q) reference pass for one image.
//!
//! Configurations whose estimated gate count (`estimate_gates`) is above
//! `TCVAR_BENCH_VAR_MAX_GATES` (default 4e7) are skipped with a notice: `tiny` is estimated at
//! about 1.2e9 gates, far beyond a 24 GiB machine.
//!
//! A summary line per configuration prints gates, depth, build seconds and the CPU and GPU
//! gate-evals/s side by side. Without a GPU adapter the GPU rows are skipped with a notice.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{GpuEvaluator, GpuOptions};
use tcvar::eval::Evaluator;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{
    compile_with, record_with, var_reference, CompileOptions, Until, VarInput,
};
use tcvar::model::var::weights::VarWeights;

const BATCH: usize = 4096;

fn configs() -> Vec<String> {
    std::env::var("TCVAR_BENCH_VAR_CONFIGS")
        .unwrap_or_else(|_| "micro,tiny".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Configurations estimated above this many gates are not built (`TCVAR_BENCH_VAR_MAX_GATES`,
/// default 4e7: a build holds a few hundred bytes per gate).
fn max_gates() -> f64 {
    std::env::var("TCVAR_BENCH_VAR_MAX_GATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4e7)
}

fn max_build_s() -> f64 {
    std::env::var("TCVAR_BENCH_VAR_MAX_BUILD_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0)
}

fn inputs(cfg: &VarConfig, n: usize) -> Vec<VarInput> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| VarInput {
            class: i % cfg.num_classes,
            uniforms: match cfg.sampling {
                Sampling::Argmax => Vec::new(),
                Sampling::TopK { .. } => (0..cfg.total_tokens()).map(|_| next()).collect(),
            },
        })
        .collect()
}

fn bench_var(c: &mut Criterion) {
    for name in configs() {
        let cfg = match VarConfig::preset(&name) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("var bench: skipping {name}: {e}");
                continue;
            }
        };
        let w = VarWeights::seeded(&cfg, 0).expect("seeded weights");
        let opts = CompileOptions {
            progress: false,
            until: Until::Image,
        };
        match record_with(&cfg, &w, opts).map(|r| r.program.counts().gates as f64) {
            Ok(g) if g > max_gates() => {
                println!(
                    "var bench: {name} skipped: {g:.2e} gates (uniform program), above \
                     TCVAR_BENCH_VAR_MAX_GATES = {:.1e}",
                    max_gates()
                );
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("var bench: skipping {name}: {e}");
                continue;
            }
        }
        let t = Instant::now();
        let compiled = match compile_with(&cfg, &w, opts) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("var bench: cannot build {name}: {e}");
                continue;
            }
        };
        let build_s = t.elapsed().as_secs_f64();
        if build_s <= max_build_s() {
            let mut g = c.benchmark_group("var_build");
            g.sample_size(10);
            g.measurement_time(Duration::from_secs_f64((build_s * 12.0).max(5.0)));
            g.bench_function(BenchmarkId::from_parameter(&name), |b| {
                b.iter(|| compile_with(&cfg, &w, opts).expect("build"))
            });
            g.finish();
        } else {
            println!(
                "var_build/{name}: {build_s:.1} s (timed once: longer than the sampling limit)"
            );
        }
        let lv = compiled.circuit.levelize();
        let gates = lv.num_gates();
        let ins = inputs(&cfg, BATCH);
        let batch = compiled.pack_inputs(&ins).expect("pack");

        let mut g = c.benchmark_group(format!("var_eval/{name}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(gates * BATCH as u64));
        let mut rates = Vec::new();
        let mut cpu = CpuEvaluator::new(&lv).expect("cpu evaluator");
        let t = Instant::now();
        cpu.evaluate(&batch).expect("cpu eval");
        rates.push((
            "cpu",
            gates as f64 * BATCH as f64 / t.elapsed().as_secs_f64(),
        ));
        g.bench_function("cpu", |b| {
            b.iter(|| cpu.evaluate(&batch).expect("cpu eval"))
        });
        match GpuEvaluator::new(&lv, &GpuOptions::default()) {
            Ok(mut gpu) => {
                let t = Instant::now();
                gpu.evaluate(&batch).expect("gpu eval");
                rates.push((
                    "gpu",
                    gates as f64 * BATCH as f64 / t.elapsed().as_secs_f64(),
                ));
                g.bench_function("gpu", |b| {
                    b.iter(|| gpu.evaluate(&batch).expect("gpu eval"))
                });
            }
            Err(e) => eprintln!("var bench: GPU rows skipped: {e}"),
        }
        g.finish();

        let mut g = c.benchmark_group("var_reference");
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| var_reference(&cfg, &w, &ins[0]).expect("reference"))
        });
        g.finish();
        println!(
            "var {name}: {gates} gates, depth {}, build {build_s:.2} s; one batch of {BATCH}: {}",
            lv.depth(),
            rates
                .iter()
                .map(|(k, r)| format!("{k} {r:.3e} gate-evals/s"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

criterion_group!(benches, bench_var);
criterion_main!(benches);
