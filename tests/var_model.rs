//! Acceptance tests of the VAR pass: the compiled circuit equals the F(p, q)
//! reference bit for bit on the CPU and GPU evaluators (token indices included), the F(p, q)
//! image approaches the f32 image as p grows, the depth of the whole pass is independent of
//! the width and of the token-map sizes and affine in the number of scales (Theorem 5.11 with
//! the number of scales a constant), and configurations, weights and inputs are validated.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::gpu::{context_for_tests, GpuEvaluator, GpuOptions};
use tcvar::eval::Evaluator;
use tcvar::float::Format;
use tcvar::model::tensor::Tensor;
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{
    compile_with, record_with, var_f32, var_reference, CompileOptions, CompiledVar, Until,
    VarInput, VarOutput,
};
use tcvar::model::var::weights::{expected_tensors, tensors_to_safetensors, VarWeights};
use tcvar::model::ModelError;
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
                Sampling::TopK { .. } | Sampling::TopP { .. } => (0..cfg.total_tokens())
                    .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64)
                    .collect(),
            },
        })
        .collect()
}

/// A compiled micro pass with its weights, the 64 inputs and their reference outputs.
struct Fixture {
    cfg: VarConfig,
    cv: CompiledVar,
    inputs: Vec<VarInput>,
    refs: Vec<VarOutput>,
}

fn fixture(sampling: Sampling) -> Fixture {
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.sampling = sampling;
    let w = VarWeights::seeded(&cfg, 11).unwrap();
    let t = Instant::now();
    let cv = compile_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Image,
        },
    )
    .unwrap();
    eprintln!(
        "micro {:?} {}: {} gates, depth {}, built in {:.1}s",
        sampling,
        cfg.fmt,
        cv.circuit.num_gates(),
        cv.circuit.depth(),
        t.elapsed().as_secs_f64()
    );
    let inputs = inputs(&cfg, 64, 7 + cfg.vocab as u64);
    let refs: Vec<_> = inputs
        .iter()
        .map(|i| var_reference(&cfg, &w, i).unwrap())
        .collect();
    Fixture {
        cfg,
        cv,
        inputs,
        refs,
    }
}

fn topk_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(Sampling::TopK { k: 4 }))
}

fn argmax_fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| fixture(Sampling::Argmax))
}

/// `min_distinct`: how many distinct token maps and images the references must contain (the
/// inputs must exercise the pass; argmax depends on the class only).
fn check_outputs(what: &str, f: &Fixture, got: &[VarOutput], min_distinct: usize) {
    assert_eq!(got.len(), f.refs.len());
    for (i, (g, r)) in got.iter().zip(&f.refs).enumerate() {
        assert_eq!(g, r, "{what}: instance {i} ({:?})", f.inputs[i].class);
    }
    // The inputs really exercise the pass: several distinct token maps and images.
    let distinct_tokens: std::collections::HashSet<_> = f.refs.iter().map(|r| &r.tokens).collect();
    let distinct_images: std::collections::HashSet<_> = f.refs.iter().map(|r| &r.image).collect();
    eprintln!(
        "{what}: {} distinct token maps, {} distinct images",
        distinct_tokens.len(),
        distinct_images.len()
    );
    assert!(
        distinct_tokens.len() >= min_distinct,
        "{what}: only {} token maps",
        distinct_tokens.len()
    );
    assert!(
        distinct_images.len() >= min_distinct,
        "{what}: only {} images",
        distinct_images.len()
    );
}

fn eval_cpu(f: &Fixture) -> Vec<VarOutput> {
    let lv = f.cv.circuit.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let out = ev.evaluate(&f.cv.pack_inputs(&f.inputs).unwrap()).unwrap();
    f.cv.unpack_outputs(&out).unwrap()
}

fn eval_gpu(test: &str, f: &Fixture) -> Option<Vec<VarOutput>> {
    let opts = GpuOptions::default();
    let ctx = context_for_tests(test, &opts).unwrap()?;
    let lv = f.cv.circuit.levelize();
    let mut ev = GpuEvaluator::with_context(Arc::new(ctx), &lv, &opts).unwrap();
    let out = ev.evaluate(&f.cv.pack_inputs(&f.inputs).unwrap()).unwrap();
    Some(f.cv.unpack_outputs(&out).unwrap())
}

#[test]
fn micro_topk_cpu_equals_reference() {
    let f = topk_fixture();
    check_outputs("cpu top-k", f, &eval_cpu(f), 16);
}

#[test]
fn micro_topk_gpu_equals_reference() {
    let f = topk_fixture();
    if let Some(got) = eval_gpu("micro_topk_gpu_equals_reference", f) {
        check_outputs("gpu top-k", f, &got, 16);
    }
}

#[test]
fn micro_argmax_cpu_and_gpu_equal_reference() {
    let f = argmax_fixture();
    check_outputs("cpu argmax", f, &eval_cpu(f), 2);
    if let Some(got) = eval_gpu("micro_argmax_cpu_and_gpu_equal_reference", f) {
        check_outputs("gpu argmax", f, &got, 2);
    }
}

/// Largest |F(p,q) image - f32 image| over a few inputs, the f32 pass forced to the F(p,q)
/// pass's tokens; weights are the same seeded draws rounded to each format.
fn image_error(p: u32, q: u32) -> f64 {
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.fmt = Format::new(p, q).unwrap();
    let w = VarWeights::seeded(&cfg, 5).unwrap();
    let mut worst = 0f64;
    let mut unclamped = 0usize;
    for inp in inputs(&cfg, 8, 99) {
        let r = var_reference(&cfg, &w, &inp).unwrap();
        let (toks, img) = var_f32(&cfg, &w, &inp, Some(&r.tokens)).unwrap();
        assert_eq!(toks, r.tokens);
        for (&bits, &y) in r.image.iter().zip(&img) {
            let x = cfg.fmt.from_bits(bits).unwrap().to_f64();
            worst = worst.max((x - y as f64).abs());
            if x.abs() < 1.0 {
                unclamped += 1;
            }
        }
    }
    assert!(
        unclamped > 0,
        "every image value is clamped: the comparison would be vacuous"
    );
    worst
}

/// Stated tolerances: max |image error| <= 0.5 at F(6, 5) and <= 0.05 at F(10, 6) (images
/// are in [-1, 1]), and the error at p = 10 is below the error at p = 6.
#[test]
fn image_error_vs_f32_shrinks_with_p() {
    let e6 = image_error(6, 5);
    let e10 = image_error(10, 6);
    eprintln!("max |F(p,q) - f32| image error: p=6: {e6:.4}, p=10: {e10:.5}");
    assert!(e6 <= 0.5, "p = 6: {e6}");
    assert!(e10 <= 0.05, "p = 10: {e10}");
    assert!(e10 < e6, "error does not shrink: {e6} -> {e10}");
}

/// The configuration of the depth test: everything tiny except the scales and the width.
fn depth_cfg(scales: usize, width: usize) -> VarConfig {
    let mut c = VarConfig::preset("micro").unwrap();
    c.fmt = Format::new(4, 4).unwrap();
    c.patch_nums = (1..=scales).collect();
    c.width = width;
    c.heads = 1;
    c.mlp_ratio = 1;
    c.vocab = 2;
    c.cvae = 1;
    c.num_classes = 1;
    c.vae_ch = 1;
    c.vae_ch_mult = vec![1];
    c.vae_groups = 1;
    c.vae_mid_attn = false;
    c.vae_up_attn = false;
    c.vae_out_ch = 1;
    c.sampling = Sampling::TopK { k: 2 };
    c
}

/// Depth of the pass counted on its uniform program (exactly the depth of the circuit, see
/// `tests/program_var.rs`).
fn depth_of(k: usize, width: usize) -> u32 {
    let cfg = depth_cfg(k, width);
    let w = VarWeights::seeded(&cfg, 3).unwrap();
    let t = Instant::now();
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Image,
        },
    )
    .unwrap();
    let d = rec.program.depth();
    eprintln!(
        "K = {k}, width = {width}: depth {d}, {} gates, recorded in {:.1}s",
        rec.program.counts().gates,
        t.elapsed().as_secs_f64()
    );
    d
}

/// Theorem 5.11 in numbers. Depth of the whole pass (transformer, reconstruction, decoder) for
/// K = 2..5 scales (patch_nums 1..=K) and widths 8, 16 and 32, everything else tiny
/// ([`depth_cfg`], F(4, 4)), counted on the uniform program:
/// - for each K the depth is the same for every width, although the sizes grow;
/// - a scale adds depth (the autoregressive chain: each scale's transformer step reads the
///   previous scale's sampled tokens), by the same amount from K = 3 on: depth(K) = a + b K.
#[test]
fn theorem_5_11_depth_is_constant_in_width() {
    for k in [2usize, 3] {
        let d: Vec<u32> = [8usize, 16, 32].iter().map(|&w| depth_of(k, w)).collect();
        assert!(
            d.iter().all(|&x| x == d[0]),
            "K = {k}: depth varies with the width: {d:?}"
        );
    }
    let d: Vec<u32> = (2..=5).map(|k| depth_of(k, 8)).collect();
    eprintln!("depth(K) for K = 2..5: {d:?}");
    assert!(d[1] > d[0], "a scale adds no depth: {d:?}");
    assert_eq!(d[3] - d[2], d[2] - d[1], "not affine for K >= 3: {d:?}");
}

#[test]
fn config_errors_name_the_field() {
    let field = |e: ModelError| match e {
        ModelError::Config { field, .. } => field,
        e => panic!("not a config error: {e}"),
    };
    let base = VarConfig::preset("micro").unwrap();
    let mut c = base.clone();
    c.heads = 3;
    assert_eq!(field(c.validate().unwrap_err()), "heads");
    let mut c = base.clone();
    c.patch_nums = vec![1, 3, 2];
    assert_eq!(field(c.validate().unwrap_err()), "patch_nums");
    let mut c = base.clone();
    c.patch_nums = vec![];
    assert_eq!(field(c.validate().unwrap_err()), "patch_nums");
    let mut c = base.clone();
    c.vae_groups = 3;
    assert_eq!(field(c.validate().unwrap_err()), "vae_groups");
    let mut c = base.clone();
    c.vocab = 0;
    assert_eq!(field(c.validate().unwrap_err()), "vocab");
    let mut c = base.clone();
    c.sampling = Sampling::TopK { k: 9 };
    assert_eq!(field(c.validate().unwrap_err()), "sampling");
    let mut c = base.clone();
    c.cfg_scale = Some(f64::NAN);
    assert_eq!(field(c.validate().unwrap_err()), "cfg_scale");
    let e = VarConfig::preset("huge").unwrap_err();
    assert!(
        e.to_string().contains("micro") && e.to_string().contains("d16"),
        "{e}"
    );
    // Consumers refuse an invalid configuration too.
    let mut c = base.clone();
    c.heads = 3;
    assert_eq!(field(VarWeights::seeded(&c, 1).unwrap_err()), "heads");
}

fn weights_error_name(e: ModelError) -> String {
    match e {
        ModelError::Weights { name, .. } => name,
        e => panic!("not a weights error: {e}"),
    }
}

#[test]
fn safetensors_round_trip_and_errors() {
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 2).unwrap();
    assert_eq!(
        w.num_params(),
        expected_tensors(&cfg)
            .unwrap()
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum::<usize>()
    );
    // Round trip through a file.
    let dir = std::env::temp_dir().join(format!("tcvar_var_model_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("micro.safetensors");
    w.save_safetensors(&path).unwrap();
    let back = VarWeights::load_safetensors(&cfg, &path).unwrap();
    assert_eq!(back, w);
    let inp = inputs(&cfg, 1, 1).remove(0);
    assert_eq!(
        var_reference(&cfg, &back, &inp).unwrap(),
        var_reference(&cfg, &w, &inp).unwrap()
    );
    // Another seed gives other weights.
    assert_ne!(VarWeights::seeded(&cfg, 3).unwrap(), w);

    // Missing tensor.
    let mut m: BTreeMap<String, Tensor<tcvar::float::Float>> = w.tensors().clone();
    m.remove("blocks.0.attn.q_bias");
    let e = VarWeights::from_safetensors(&cfg, &tensors_to_safetensors(&m).unwrap()).unwrap_err();
    assert_eq!(weights_error_name(e), "blocks.0.attn.q_bias");
    let mut m = w.tensors().clone();
    m.remove("decoder.conv_out.weight");
    let e = VarWeights::from_safetensors(&cfg, &tensors_to_safetensors(&m).unwrap()).unwrap_err();
    assert_eq!(weights_error_name(e), "decoder.conv_out.weight");
    // Wrong shape.
    let mut m = w.tensors().clone();
    let t = m["head.weight"].clone();
    let n = t.len();
    m.insert("head.weight".into(), t.reshape(vec![1, n]).unwrap());
    let e = VarWeights::from_safetensors(&cfg, &tensors_to_safetensors(&m).unwrap()).unwrap_err();
    assert_eq!(weights_error_name(e), "head.weight");
    // Unsupported dtype (i32).
    let mut views = Vec::new();
    let bufs: Vec<(String, Vec<usize>, Vec<u8>)> = w
        .tensors()
        .iter()
        .map(|(k, t)| {
            let bytes: Vec<u8> = t
                .data()
                .iter()
                .flat_map(|x| x.to_f32().to_le_bytes())
                .collect();
            (k.clone(), t.shape().to_vec(), bytes)
        })
        .collect();
    for (k, s, b) in &bufs {
        let dt = if k == "pos_start" {
            safetensors::Dtype::I32
        } else {
            safetensors::Dtype::F32
        };
        views.push((
            k.clone(),
            safetensors::tensor::TensorView::new(dt, s.clone(), b).unwrap(),
        ));
    }
    let bytes = safetensors::serialize(views, None).unwrap();
    let e = VarWeights::from_safetensors(&cfg, &bytes).unwrap_err();
    assert_eq!(weights_error_name(e), "pos_start");
    // f16 is accepted and rounded to the format (micro's F(5,4) values are f16-exact).
    let mut views = Vec::new();
    let bufs16: Vec<(String, Vec<usize>, Vec<u8>)> = w
        .tensors()
        .iter()
        .map(|(k, t)| {
            let bytes: Vec<u8> = t
                .data()
                .iter()
                .flat_map(|x| half::f16::from_f32(x.to_f32()).to_le_bytes())
                .collect();
            (k.clone(), t.shape().to_vec(), bytes)
        })
        .collect();
    for (k, s, b) in &bufs16 {
        views.push((
            k.clone(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), b).unwrap(),
        ));
    }
    let bytes = safetensors::serialize(views, None).unwrap();
    assert_eq!(VarWeights::from_safetensors(&cfg, &bytes).unwrap(), w);
    // Truncated file.
    let good = std::fs::read(&path).unwrap();
    let e = VarWeights::from_safetensors(&cfg, &good[..good.len() / 2]).unwrap_err();
    assert!(matches!(e, ModelError::Weights { .. }), "{e}");
    // Weights of another configuration.
    let mut other = cfg.clone();
    other.width = 16;
    assert!(VarWeights::from_safetensors(&other, &good).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_inputs_are_refused() {
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 2).unwrap();
    let field = |e: ModelError| match e {
        ModelError::Config { field, .. } => field,
        e => panic!("not an input error: {e}"),
    };
    let good = inputs(&cfg, 1, 4).remove(0);
    let mut bad = good.clone();
    bad.class = cfg.num_classes;
    assert_eq!(
        field(var_reference(&cfg, &w, &bad).unwrap_err()),
        "input.class"
    );
    let mut bad = good.clone();
    bad.uniforms.pop();
    assert_eq!(
        field(var_reference(&cfg, &w, &bad).unwrap_err()),
        "input.uniforms"
    );
    let mut bad = good.clone();
    bad.uniforms[0] = 1.0;
    assert_eq!(
        field(var_reference(&cfg, &w, &bad).unwrap_err()),
        "input.uniforms"
    );
    let mut bad = good.clone();
    bad.uniforms[0] = f64::NAN;
    assert_eq!(
        field(var_f32(&cfg, &w, &bad, None).unwrap_err()),
        "input.uniforms"
    );
    // Forced tokens of the wrong shape.
    assert!(var_f32(&cfg, &w, &good, Some(&[vec![0]])).is_err());
    // The packer refuses the same inputs (checked on the compiled fixture).
    let f = argmax_fixture();
    let mut bad = f.inputs[0].clone();
    bad.class = f.cfg.num_classes;
    assert_eq!(field(f.cv.pack_inputs(&[bad]).unwrap_err()), "input.class");
    let mut bad = f.inputs[0].clone();
    bad.uniforms = vec![0.5];
    assert_eq!(
        field(f.cv.pack_inputs(&[bad]).unwrap_err()),
        "input.uniforms"
    );
}

/// Guidance: with scale 0 the guided logits equal the conditional ones (round((1+0) c) -
/// round(0 u) = c), so the pass equals the unguided one; a large scale changes some tokens.
#[test]
fn guidance_scale_zero_is_identity_and_large_scale_matters() {
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 9).unwrap();
    let mut c0 = cfg.clone();
    c0.cfg_scale = Some(0.0);
    let mut c4 = cfg.clone();
    c4.cfg_scale = Some(4.0);
    let mut changed = 0;
    for inp in inputs(&cfg, 16, 21) {
        let plain = var_reference(&cfg, &w, &inp).unwrap();
        assert_eq!(var_reference(&c0, &w, &inp).unwrap(), plain);
        if var_reference(&c4, &w, &inp).unwrap() != plain {
            changed += 1;
        }
    }
    assert!(changed > 0, "guidance scale 4 never changed the output");
}

/// Build report for a preset (`TCVAR_PRESET`, default micro; `TCVAR_P`/`TCVAR_Q` override the
/// format): gates, wires, depth, build time, per-phase regions. Run in release:
/// `cargo test --release --test var_model build_report -- --ignored --nocapture`.
#[test]
#[ignore = "release-profile measurement report, not a check"]
fn build_report() {
    let name = std::env::var("TCVAR_PRESET").unwrap_or_else(|_| "micro".into());
    let mut cfg = VarConfig::preset(&name).unwrap();
    if let (Ok(p), Ok(q)) = (std::env::var("TCVAR_P"), std::env::var("TCVAR_Q")) {
        cfg.fmt = tcvar::float::Format::new(p.parse().unwrap(), q.parse().unwrap()).unwrap();
    }
    let w = VarWeights::seeded(&cfg, 1).unwrap();
    let t = Instant::now();
    let cv = compile_with(
        &cfg,
        &w,
        CompileOptions {
            progress: true,
            until: Until::Image,
        },
    )
    .unwrap();
    let build = t.elapsed().as_secs_f64();
    let st = cv.circuit.stats();
    eprintln!("{name} {}: build {build:.2}s", cfg.fmt);
    eprintln!("{st}");
    if std::env::var("TCVAR_REGIONS").is_ok() {
        let rs: Vec<_> = cv
            .circuit
            .region_stats()
            .into_iter()
            .filter(|(n, _)| {
                !n.ends_with(".align") && !n.ends_with(".exact") && !n.ends_with(".round")
            })
            .collect();
        eprintln!("{}", tcvar::circuit::stats::format_region_table(&rs));
    }
    let ins = inputs(&cfg, 64, 3);
    let t = Instant::now();
    let lv = cv.circuit.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let out = ev.evaluate(&cv.pack_inputs(&ins).unwrap()).unwrap();
    let got = cv.unpack_outputs(&out).unwrap();
    eprintln!(
        "cpu eval of 64 instances (incl. levelize): {:.2}s",
        t.elapsed().as_secs_f64()
    );
    for (i, inp) in ins.iter().enumerate().take(8) {
        assert_eq!(
            got[i],
            var_reference(&cfg, &w, inp).unwrap(),
            "instance {i}"
        );
    }
}

/// Exact counts of every preset (`cargo test --release --test var_model count_presets --
/// --ignored --nocapture`; `tcvar stats` prints the same per preset).
#[test]
#[ignore = "size report of every preset, not a check"]
fn count_presets() {
    for name in ["micro", "tiny", "d16", "d20", "d24", "d30"] {
        let cfg = VarConfig::preset(name).unwrap();
        let w = tcvar::model::ops::SeededWeights::new(&cfg, 0).unwrap();
        let t = Instant::now();
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
            "{name} {}: {:.3e} gates, {:.3e} terms, depth {} ({:.1}s)",
            cfg.fmt,
            c.gates as f64,
            c.terms as f64,
            rec.program.depth(),
            t.elapsed().as_secs_f64()
        );
    }
}
