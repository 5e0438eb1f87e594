//! VAR bench: what users of `tcvar run` ask for, in one `cargo bench --bench var`.
//!
//! For each configuration (`TCVAR_BENCH_VAR_CONFIGS`, default `micro,tiny`; a name may carry a
//! scale prefix and block count, e.g. `d16:1/2:1` = d16 restricted to scales (1, 2) and one
//! block, token maps only):
//! - `var_record/<config>`: recording the pass as a uniform program (templates built);
//! - `var_eval/<config>/cpu` and `var_eval/<config>/gpu`: evaluating the program template by
//!   template on a batch (`TCVAR_BENCH_VAR_BATCH`, default 64), throughput in
//!   gate-evaluations (gates x batch) per second;
//! - `var_reference/<config>`: the F(p, q) reference pass for one input.
//!
//! A summary line per configuration prints gates, terms, depth, record seconds and the CPU and
//! GPU gate-evals/s and term-evals/s side by side. Without a GPU adapter the GPU rows are
//! skipped with a notice.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tcvar::eval::gpu::GpuOptions;
use tcvar::eval::program::{CpuProgramEvaluator, GpuProgramEvaluator, ProgramOptions};
use tcvar::model::ops::weights::SeededWeights;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{
    record_with, var_reference_until, CompileOptions, RecordedVar, Until, VarInput,
};

fn configs() -> Vec<String> {
    std::env::var("TCVAR_BENCH_VAR_CONFIGS")
        .unwrap_or_else(|_| "micro,tiny".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn batch() -> usize {
    std::env::var("TCVAR_BENCH_VAR_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

/// `name[:scales[:blocks]]`, scales separated by `/` (a scale prefix runs to the token maps).
fn parse(spec: &str) -> Result<(VarConfig, Until), String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    let mut cfg = VarConfig::preset(name).map_err(|e| e.to_string())?;
    let mut until = Until::Image;
    if let Some(sc) = parts.next() {
        cfg.patch_nums = sc
            .split('/')
            .map(|x| x.parse::<usize>().map_err(|e| format!("{spec}: {e}")))
            .collect::<Result<_, _>>()?;
        until = Until::Tokens;
    }
    if let Some(b) = parts.next() {
        cfg.depth = b.parse().map_err(|e| format!("{spec}: {e}"))?;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok((cfg, until))
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
                Sampling::TopK { .. } | Sampling::TopP { .. } => {
                    (0..cfg.total_tokens()).map(|_| next()).collect()
                }
            },
        })
        .collect()
}

fn bench_var(c: &mut Criterion) {
    let batch = batch();
    for spec in configs() {
        let (cfg, until) = match parse(&spec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("var bench: skipping {spec}: {e}");
                continue;
            }
        };
        let w = SeededWeights::new(&cfg, 0).expect("seeded weights");
        let opts = CompileOptions {
            progress: false,
            until,
        };
        let t = Instant::now();
        let rec = match record_with(&cfg, &w, opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("var bench: cannot record {spec}: {e}");
                continue;
            }
        };
        let record_s = t.elapsed().as_secs_f64();
        let counts = rec.program.counts();
        let mut g = c.benchmark_group("var_record");
        g.sample_size(10);
        g.measurement_time(Duration::from_secs_f64((record_s * 12.0).max(5.0)));
        g.bench_function(BenchmarkId::from_parameter(&spec), |b| {
            b.iter(|| record_with(&cfg, &w, opts).expect("record"))
        });
        g.finish();

        let ins = inputs(&cfg, batch);
        let vals = rec.input_values(&ins).expect("inputs");
        let mut wf = |d: &tcvar::circuit::program::TensorDecl| {
            RecordedVar::weight_encodings(&w, d).map_err(|e| e.to_string())
        };
        let mut g = c.benchmark_group(format!("var_eval/{spec}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(
            u64::try_from(counts.gates * batch as u128).unwrap_or(u64::MAX),
        ));
        let mut rates = Vec::new();
        let mut cpu = CpuProgramEvaluator::new(ProgramOptions::default());
        let (_, st) = cpu.run(&rec.program, &vals, &mut wf).expect("cpu eval");
        rates.push(("cpu", st));
        g.bench_function("cpu", |b| {
            b.iter(|| cpu.run(&rec.program, &vals, &mut wf).expect("cpu eval"))
        });
        match GpuProgramEvaluator::new(&GpuOptions::default(), ProgramOptions::default()) {
            Ok(mut gpu) => {
                let (_, st) = gpu.run(&rec.program, &vals, &mut wf).expect("gpu eval");
                rates.push(("gpu", st));
                g.bench_function("gpu", |b| {
                    b.iter(|| gpu.run(&rec.program, &vals, &mut wf).expect("gpu eval"))
                });
            }
            Err(e) => eprintln!("var bench: GPU rows skipped: {e}"),
        }
        g.finish();

        let mut g = c.benchmark_group("var_reference");
        g.sample_size(10);
        g.bench_function(BenchmarkId::from_parameter(&spec), |b| {
            b.iter(|| var_reference_until(&cfg, &w, &ins[0], until).expect("reference"))
        });
        g.finish();
        println!(
            "var {spec}: {:.4e} gates, {:.4e} terms, depth {}, recorded in {record_s:.2} s; a batch of {batch}: {}",
            counts.gates as f64,
            counts.terms as f64,
            rec.program.depth(),
            rates
                .iter()
                .map(|(k, st)| format!(
                    "{k} {:.3e} gate-evals/s, {:.3e} term-evals/s",
                    st.gate_evals as f64 / st.seconds,
                    st.term_evals as f64 / st.seconds
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

criterion_group!(benches, bench_var);
criterion_main!(benches);
