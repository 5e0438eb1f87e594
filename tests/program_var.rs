//! The VAR pass as a uniform program: recorded, counted, flattened and evaluated, bit for bit
//! against the F(p, q) reference.

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{
    record_with, var_reference, CompileOptions, RecordedVar, Until, VarInput,
};
use tcvar::model::var::weights::VarWeights;

fn inputs(cfg: &VarConfig, n: usize, seed: u64) -> Vec<VarInput> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
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

#[test]
fn micro_program_flattened_equals_reference() {
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 0).unwrap();
    let t = std::time::Instant::now();
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Image,
        },
    )
    .unwrap();
    let c = rec.program.counts();
    eprintln!(
        "micro: recorded in {:.2}s ({} templates, {} applications): {} gates, {} terms, {} wires, depth {}",
        t.elapsed().as_secs_f64(),
        rec.program.templates.len(),
        rec.program.num_applications(),
        c.gates,
        c.terms,
        c.wires,
        rec.program.depth()
    );
    let t = std::time::Instant::now();
    let flat = rec
        .program
        .flatten(100_000_000, &mut |d| {
            RecordedVar::weight_encodings(&w, d).map_err(|e| e.to_string())
        })
        .unwrap();
    let st = flat.stats();
    eprintln!(
        "flattened in {:.2}s: {} gates, {} terms, depth {}",
        t.elapsed().as_secs_f64(),
        st.gates,
        st.form_terms,
        flat.depth()
    );
    assert_eq!(st.gates as u128, c.gates);
    assert_eq!(st.form_terms as u128, c.terms);
    assert_eq!(st.wires as u128, c.wires);
    assert_eq!(flat.depth(), rec.program.depth());
    let ins = inputs(&cfg, 8, 7);
    let vals = rec.input_values(&ins).unwrap();
    let mut widths = vec![cfg.class_bits()];
    widths.extend(std::iter::repeat_n(cfg.fmt.width(), cfg.total_tokens()));
    let rows: Vec<Vec<u64>> = (0..ins.len())
        .map(|i| vals.iter().flat_map(|v| v[i].iter().copied()).collect())
        .collect();
    let batch = Batch::pack_fields(&widths, &rows).unwrap();
    let lv = flat.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let out = ev.evaluate(&batch).unwrap();
    let img = cfg.vae_out_ch * cfg.image_side() * cfg.image_side();
    let mut ow = vec![cfg.token_bits(); cfg.total_tokens()];
    ow.extend(std::iter::repeat_n(cfg.fmt.width(), img));
    let got = out.unpack_fields(&ow).unwrap();
    for (i, inp) in ins.iter().enumerate() {
        let r = var_reference(&cfg, &w, inp).unwrap();
        let want: Vec<u64> = r
            .tokens
            .iter()
            .flatten()
            .map(|&t| t as u64)
            .chain(r.image.iter().copied())
            .collect();
        assert_eq!(got[i], want, "instance {i}");
    }
}
