//! Acceptance tests of the VAR pass (issue 7).

use std::time::Instant;

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::Evaluator;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{compile_with, var_reference, CompileOptions, VarInput};
use tcvar::model::var::weights::VarWeights;

fn inputs(cfg: &VarConfig, n: usize, seed: u64) -> Vec<VarInput> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|i| VarInput {
            class: i % cfg.num_classes,
            uniforms: match cfg.sampling {
                Sampling::Argmax => vec![],
                Sampling::TopK { .. } => (0..cfg.total_tokens())
                    .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64)
                    .collect(),
            },
        })
        .collect()
}

#[test]
fn micro_circuit_matches_reference_cpu() {
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 1).unwrap();
    let t = Instant::now();
    let cv = compile_with(&cfg, &w, CompileOptions { progress: false }).unwrap();
    eprintln!("build {:.2}s gates {} depth {}", t.elapsed().as_secs_f64(), cv.circuit.num_gates(), cv.circuit.depth());
    let ins = inputs(&cfg, 64, 7);
    let t = Instant::now();
    let refs: Vec<_> = ins.iter().map(|i| var_reference(&cfg, &w, i).unwrap()).collect();
    eprintln!("ref {:.2}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let lv = cv.circuit.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let out = ev.evaluate(&cv.pack_inputs(&ins).unwrap()).unwrap();
    let got = cv.unpack_outputs(&out).unwrap();
    eprintln!("eval {:.2}s", t.elapsed().as_secs_f64());
    for (i, (g, r)) in got.iter().zip(&refs).enumerate() {
        assert_eq!(g, r, "instance {i}");
    }
    eprintln!("{:?}", refs[0]);
}
