//! The VAR pass as a uniform program: recorded, counted, flattened and evaluated, bit for bit
//! against the F(p, q) reference.

mod common;

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::{Batch, Evaluator};
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::{record_with, var_reference, CompileOptions, RecordedVar, Until};
use tcvar::model::var::weights::VarWeights;

use common::var::inputs;

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
        c.fan_in,
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
    assert_eq!(st.fan_in as u128, c.fan_in);
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

/// No weights (for programs of bare tensor operations).
struct NoWeights(tcvar::float::Format);

impl tcvar::model::ops::WeightProvider for NoWeights {
    fn format(&self) -> tcvar::float::Format {
        self.0
    }
    fn check(&self, name: &str, _shape: &[usize]) -> tcvar::model::error::Result<()> {
        Err(tcvar::model::ModelError::Weights {
            name: name.into(),
            reason: "no weights".into(),
        })
    }
    fn tensor(
        &self,
        name: &str,
        shape: &[usize],
    ) -> tcvar::model::error::Result<
        std::borrow::Cow<'_, tcvar::model::tensor::Tensor<tcvar::float::Float>>,
    > {
        self.check(name, shape).map(|_| unreachable!())
    }
}

/// Rows longer than the split threshold are summed in two stages (exact partial sums of a
/// chunk each, then their exact sum rounded once): recorded with a small threshold and chunk
/// (so that the circuit is small), flattened and evaluated, the mean (`sum / n`) and the
/// normalisation step (`rsqrt(sum of squares / n + eps)`) equal the reference bit for bit, on
/// rows built to cancel; the depth does not depend on the row length.
#[test]
fn split_row_sums_equal_the_reference() {
    use tcvar::model::arith::Unary;
    use tcvar::model::ops::kernels::Finish;
    use tcvar::model::ops::nn::sum_rows_split;
    use tcvar::model::ops::record::Recorder;
    use tcvar::model::ops::scalar::Scalar;
    use tcvar::model::ops::{Kind, TensorArith};
    use tcvar::model::tensor::Tensor;
    use tcvar::model::RefArith;
    let fmt = tcvar::float::Format::new(4, 3).unwrap();
    let w = NoWeights(fmt);
    let finishes = |d: usize| {
        let n = fmt.from_i64(d as i64);
        [
            (false, Finish::Div(n)),
            (
                true,
                Finish::Norm {
                    n,
                    eps: Some(fmt.min_positive()),
                    root: Unary::Rsqrt,
                },
            ),
        ]
    };
    let program = |d: usize| {
        let mut r = Recorder::new(fmt, &w);
        let x = r.input("x", Kind::Float, vec![3, d]).unwrap();
        for (k, (sq, f)) in finishes(d).into_iter().enumerate() {
            let y = sum_rows_split(&mut r, "s", &x, sq, f, 16, 7).unwrap();
            r.output(&format!("y{k}"), &y).unwrap();
        }
        r.finish().unwrap()
    };
    let d = 61; // 9 chunks of 7, the last padded with zeros
    let prog = program(d);
    assert!(
        prog.templates.iter().any(|t| t.key.starts_with("accsum")),
        "not split"
    );
    assert_eq!(
        prog.depth(),
        program(130).depth(),
        "depth varies with the row length"
    );
    let flat = prog
        .flatten(50_000_000, &mut |_| Err("no weights".into()))
        .unwrap();
    assert_eq!(flat.stats().gates as u128, prog.counts().gates);
    assert_eq!(flat.depth(), prog.depth());
    let lv = flat.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let vals = fmt.all_values().collect::<Vec<_>>();
    let mut s = 12345u64;
    let mut pick = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let mut rows = Vec::new();
    for inst in 0..40 {
        // Row 0: large values cancelling in pairs around a few small ones; rows 1, 2: random.
        let mut v = Vec::with_capacity(3 * d);
        for i in 0..d {
            let big = vals[vals.len() - 1 - pick() % 8];
            v.push(if i < d - 5 {
                if i % 2 == 0 {
                    big
                } else {
                    big.neg()
                }
            } else {
                vals[pick() % vals.len()]
            });
        }
        for _ in 0..2 * d {
            v.push(vals[pick() % vals.len()]);
        }
        if inst % 2 == 1 {
            v.reverse();
        }
        rows.push(v);
    }
    let packed: Vec<Vec<u64>> = rows
        .iter()
        .map(|v| v.iter().map(|f| f.to_bits()).collect())
        .collect();
    let batch = Batch::pack_fields(&vec![fmt.width(); 3 * d], &packed).unwrap();
    let out = ev.evaluate(&batch).unwrap();
    let got = out.unpack_fields(&[fmt.width(); 6]).unwrap();
    for (inst, v) in rows.iter().enumerate() {
        let mut want = Vec::new();
        for (sq, f) in finishes(d) {
            let mut sref = Scalar::new(RefArith::new(fmt), &w);
            let vv = v.clone();
            let xt = sref
                .constant("x", vec![3, d], &mut |_| {
                    Tensor::new(vec![3, d], vv.clone())
                })
                .unwrap();
            // The reference with no split: one exact sum per row.
            let y = sum_rows_split(&mut sref, "s", &xt, sq, f, usize::MAX, 7).unwrap();
            want.extend(y.to_floats().unwrap().to_bits());
        }
        // ... which is the float module's sum.
        let mean0 = fmt
            .sum(&v[..d])
            .unwrap()
            .div(fmt.from_i64(d as i64))
            .unwrap();
        assert_eq!(want[0], mean0.to_bits());
        assert_eq!(got[inst], want, "instance {inst}");
    }
}
