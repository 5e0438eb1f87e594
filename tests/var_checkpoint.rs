//! Weight files: PyTorch checkpoints and safetensors written by the reference implementation's
//! own code (tests/fixtures/var_tiny, made by scripts/export_fixtures.py), configuration
//! inference, the refusal of files that do not fit, malformed and hostile inputs, the F(24, 9)
//! reference pass against the reference implementation's tokens and images, and shared AdaLN
//! (circuit equal to the reference bit for bit; the reference against the reference
//! implementation).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tcvar::eval::cpu::CpuEvaluator;
use tcvar::eval::Evaluator;
use tcvar::float::Format;
use tcvar::model::var::checkpoint::{
    infer_config, infer_config_with_notes, read_pth, read_tensor_file, read_tensor_files, restrict,
    RawData, RawTensors,
};
use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{compile_with, var_reference, CompileOptions, Until, VarInput};
use tcvar::model::var::weights::{tensors_to_safetensors, VarWeights};
use tcvar::model::ModelError;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/var_tiny")
}

fn fx(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn pth_pair() -> Vec<PathBuf> {
    vec![fx("var_tiny.pth"), fx("vae_tiny.pth")]
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcvar_ckpt_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn weights_error(e: ModelError) -> (String, String) {
    match e {
        ModelError::Weights { name, reason } => (name, reason),
        e => panic!("expected a weights error, got {e}"),
    }
}

fn same_values(a: &RawTensors, b: &RawTensors) {
    let an: Vec<_> = a.iter().map(|(n, _)| n.clone()).collect();
    let bn: Vec<_> = b.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(an, bn);
    for (n, t) in a.iter() {
        let u = b.get(n).unwrap();
        assert_eq!(t.shape, u.shape, "{n}");
        assert_eq!(t.data, u.data, "{n}");
    }
}

#[test]
fn pth_and_safetensors_hold_the_same_tensors() {
    let pth = read_tensor_files(&pth_pair()).unwrap();
    let st = read_tensor_file(&fx("tiny.safetensors")).unwrap();
    same_values(&pth, &st);
    // The files really are the reference's state dicts: names of both sides, buffers included.
    for n in [
        "blocks.1.attn.scale_mul_1H11",
        "blocks.0.attn.zero_k_bias",
        "lvl_1L",
        "attn_bias_for_masking",
        "encoder.conv_in.weight",
        "quant_conv.weight",
        "quantize.ema_vocab_hit_SV",
        "decoder.up.1.attn.0.qkv.weight",
    ] {
        assert!(pth.get(n).is_some(), "{n}");
    }
    // A directory stands for its weight files.
    let d = tmpdir("dir");
    for f in ["var_tiny.pth", "vae_tiny.pth"] {
        std::fs::copy(fx(f), d.join(f)).unwrap();
    }
    same_values(&read_tensor_files(std::slice::from_ref(&d)).unwrap(), &pth);
    // The same tensors twice (the safetensors file beside the checkpoints) name the tensor.
    std::fs::copy(fx("tiny.safetensors"), d.join("tiny.safetensors")).unwrap();
    let (name, why) = weights_error(read_tensor_files(std::slice::from_ref(&d)).unwrap_err());
    assert!(pth.get(&name).is_some(), "{name}");
    assert!(why.contains("both"), "{why}");
    std::fs::remove_dir_all(&d).ok();
    let empty = tmpdir("empty");
    let e = read_tensor_files(std::slice::from_ref(&empty)).unwrap_err();
    assert!(e.to_string().contains("no *.pth"), "{e}");
    std::fs::remove_dir_all(&empty).ok();
}

#[test]
fn weights_from_pth_equal_weights_from_safetensors() {
    let cfg = VarConfig::preset("tiny").unwrap();
    let a = VarWeights::load(&cfg, &pth_pair()).unwrap();
    let b = VarWeights::load(&cfg, &[fx("tiny.safetensors")]).unwrap();
    assert_eq!(a, b);
}

#[test]
fn inferred_configuration_is_the_tiny_shape() {
    let raw = read_tensor_files(&pth_pair()).unwrap();
    let tiny = VarConfig::preset("tiny").unwrap();
    let (cfg, notes) = infer_config_with_notes(&raw, None).unwrap();
    assert_eq!(cfg, tiny, "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("lvl_1L")), "{notes:?}");
    // Without lvl_1L, 30 tokens in 4 scales is the tiny preset's schedule.
    let mut no_lvl = raw.clone();
    no_lvl.remove("lvl_1L");
    let (c, notes) = infer_config_with_notes(&no_lvl, None).unwrap();
    assert_eq!(c, tiny);
    assert!(notes.iter().any(|n| n.contains("preset tiny")), "{notes:?}");
    // 29 tokens in 4 scales is no known schedule: the scales are asked.
    let mut odd = no_lvl.clone();
    let mut pos = odd.remove("pos_1LC").unwrap();
    pos.shape[1] = 29;
    if let RawData::Float(v) = &mut pos.data {
        v.truncate(29 * tiny.width);
    }
    odd.insert("pos_1LC".into(), pos).unwrap();
    let e = infer_config(&odd, None).unwrap_err();
    assert!(
        matches!(&e, ModelError::Config { field, .. } if field == "patch_nums"),
        "{e}"
    );
    // ... unless the configuration gives them.
    assert_eq!(infer_config(&no_lvl, Some(&tiny)).unwrap(), tiny);
    // Other fields of a base that agrees with every shape are kept.
    let mut t2 = tiny.clone();
    t2.fmt = Format::new(24, 9).unwrap();
    t2.sampling = Sampling::Argmax;
    assert_eq!(infer_config(&raw, Some(&t2)).unwrap(), t2);
    // The shared-AdaLN variant is recognised.
    let shared =
        read_tensor_files(&[fx("shared/var_tiny_shared.pth"), fx("vae_tiny.pth")]).unwrap();
    let s = infer_config(&shared, None).unwrap();
    assert!(s.shared_aln);
    assert_eq!(s.width, 32);
    assert_eq!(s.depth, 2);
}

#[test]
fn contradicting_configuration_names_the_tensor_and_both_shapes() {
    let raw = read_tensor_files(&pth_pair()).unwrap();
    let mut cfg = VarConfig::preset("tiny").unwrap();
    cfg.heads = 4;
    let (name, why) = weights_error(infer_config(&raw, Some(&cfg)).unwrap_err());
    assert_eq!(name, "blocks.0.attn.scale_mul_1H11");
    assert!(
        why.contains("[1, 2, 1, 1]") && why.contains("[1, 4, 1, 1]"),
        "{why}"
    );
    let micro = VarConfig::preset("micro").unwrap();
    let (name, why) = weights_error(infer_config(&raw, Some(&micro)).unwrap_err());
    assert_eq!(name, "class_emb.weight");
    assert!(why.contains("[11, 32]") && why.contains("[5, 8]"), "{why}");
    // A schedule with the right number of tokens but fewer scales.
    let mut sched = VarConfig::preset("tiny").unwrap();
    sched.patch_nums = vec![1, 2, 5];
    let e = infer_config(&raw, Some(&sched)).unwrap_err();
    let (name, _) = weights_error(e);
    assert_eq!(name, "lvl_embed.weight");
}

#[test]
fn unexpected_tensors_are_errors_naming_them() {
    let cfg = VarConfig::preset("tiny").unwrap();
    let mut raw = read_tensor_files(&pth_pair()).unwrap();
    let mut extra = raw.get("head.bias").unwrap().clone();
    extra.shape = vec![32];
    raw.insert("head.extra_bias".into(), extra).unwrap();
    let (name, why) = weights_error(infer_config(&raw, Some(&cfg)).unwrap_err());
    assert_eq!(name, "head.extra_bias");
    assert!(why.contains("unexpected"), "{why}");
    let (name, _) = weights_error(infer_config(&raw, None).unwrap_err());
    assert_eq!(name, "head.extra_bias");
    let (name, _) = weights_error(VarWeights::from_raw(&cfg, &raw).unwrap_err());
    assert_eq!(name, "head.extra_bias");

    // Two ResNet blocks per decoder level under the `tiny` preset (one block per level): an
    // error naming a tensor of the second blocks, not a model that drops them.
    let mut two = cfg.clone();
    two.vae_num_res_blocks = 1;
    let w2 = VarWeights::seeded(&two, 3).unwrap();
    let bytes = tensors_to_safetensors(w2.tensors()).unwrap();
    let (name, why) = weights_error(VarWeights::from_safetensors(&cfg, &bytes).unwrap_err());
    assert!(
        name.starts_with("decoder.up.") && name.contains(".block.1."),
        "{name}: {why}"
    );
    // The weights fit the configuration with two blocks; without one, the GroupNorm groups are
    // not in these weights (no preset has this shape, and 32 groups do not divide 8 channels):
    // an error naming that field, with or without lvl_1L (the schedule is the tiny preset's).
    let d = tmpdir("two");
    let p = d.join("two.safetensors");
    std::fs::write(&p, &bytes).unwrap();
    let mut raw2 = read_tensor_file(&p).unwrap();
    assert_eq!(infer_config(&raw2, Some(&two)).unwrap(), two);
    let field = |e: ModelError| match e {
        ModelError::Config { field, .. } => field,
        e => panic!("{e}"),
    };
    assert_eq!(field(infer_config(&raw2, None).unwrap_err()), "vae_groups");
    let lvl = read_tensor_file(&fx("var_tiny.pth"))
        .unwrap()
        .get("lvl_1L")
        .unwrap()
        .clone();
    raw2.insert("lvl_1L".into(), lvl).unwrap();
    assert_eq!(field(infer_config(&raw2, None).unwrap_err()), "vae_groups");
    std::fs::remove_dir_all(&d).ok();

    // A non-zero zero_k_bias is refused.
    let mut raw = read_tensor_files(&pth_pair()).unwrap();
    let mut z = raw.remove("blocks.1.attn.zero_k_bias").unwrap();
    z.data = RawData::Float(vec![0.5; 32]);
    raw.insert("blocks.1.attn.zero_k_bias".into(), z).unwrap();
    let (name, _) = weights_error(infer_config(&raw, None).unwrap_err());
    assert_eq!(name, "blocks.1.attn.zero_k_bias");
}

#[test]
fn pickle_views_dtypes_and_nesting() {
    // formats.pth: {"model": {...}, "epoch": 3}; base = arange(24).reshape(4, 6) / 8.
    let raw = read_tensor_file(&fx("formats.pth")).unwrap();
    let base = |r: usize, c: usize| (r * 6 + c) as f32 / 8.0;
    let floats = |n: &str| match &raw.get(n).unwrap().data {
        RawData::Float(v) => v.clone(),
        d => panic!("{n}: {d:?}"),
    };
    let all: Vec<f32> = (0..24).map(|i| base(i / 6, i % 6)).collect();
    for n in ["f32", "f16", "bf16"] {
        assert_eq!(raw.shape(n).unwrap(), &[4, 6]);
        assert_eq!(floats(n), all, "{n}");
    }
    assert_eq!(raw.shape("transposed").unwrap(), &[6, 4]);
    let t: Vec<f32> = (0..24).map(|i| base(i % 4, i / 4)).collect();
    assert_eq!(floats("transposed"), t);
    assert_eq!(
        floats("row1"),
        (0..6).map(|c| base(1, c)).collect::<Vec<_>>()
    );
    assert_eq!(raw.shape("col_tail").unwrap(), &[2, 3]);
    let ct: Vec<f32> = (0..6).map(|i| base(2 + i / 3, 3 + i % 3)).collect();
    assert_eq!(floats("col_tail"), ct);
    assert_eq!(
        raw.get("i64").unwrap().data,
        RawData::Int(vec![0, 1, 2, 3, 4])
    );
}

/// A stored (uncompressed) zip archive of `entries`.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opt =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (n, b) in entries {
        w.start_file(*n, opt).unwrap();
        w.write_all(b).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The pickle (protocol 2) of `{name: _rebuild_tensor_v2(storage, offset, (size,), (stride,),
/// False, OrderedDict())}` with the storage `('storage', torch.FloatStorage, '0', 'cpu', numel)`.
fn tensor_pickle(name: &str, numel: u32, offset: u32, size: u32, stride: u32) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    p_str(&mut p, name);
    p_view(&mut p, "0", numel, offset, size, stride);
    p.extend(b"u.");
    p
}

fn read_zip(bytes: &[u8]) -> Result<RawTensors, ModelError> {
    read_pth(
        std::io::Cursor::new(bytes),
        bytes.len() as u64,
        Arc::new(PathBuf::from("test.pth")),
    )
}

#[test]
fn malformed_files_are_clear_errors() {
    // The hand-made pickle reads back.
    let data: Vec<u8> = [1.5f32, -2.0, 3.25]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let good = zip_of(&[
        ("t/data.pkl", &tensor_pickle("w", 3, 1, 2, 1)),
        ("t/data/0", &data),
    ]);
    let raw = read_zip(&good).unwrap();
    assert_eq!(raw.get("w").unwrap().data, RawData::Float(vec![-2.0, 3.25]));
    let msg = |b: &[u8]| read_zip(b).unwrap_err().to_string();
    // A storage larger than the file, a view beyond its storage, a short storage entry.
    let e = msg(&zip_of(&[
        ("t/data.pkl", &tensor_pickle("w", 1 << 30, 0, 2, 1)),
        ("t/data/0", &data),
    ]));
    assert!(e.contains("exceed the file"), "{e}");
    let e = msg(&zip_of(&[
        ("t/data.pkl", &tensor_pickle("w", 3, 2, 2, 1)),
        ("t/data/0", &data),
    ]));
    assert!(
        e.contains("\"w\"") && e.contains("exceeds its storage"),
        "{e}"
    );
    let e = msg(&zip_of(&[
        ("t/data.pkl", &tensor_pickle("w", 3, 0, 2, 1)),
        ("t/data/0", &data[..8]),
    ]));
    assert!(e.contains("storage 0"), "{e}");
    let e = msg(&zip_of(&[("t/data.pkl", &tensor_pickle("w", 3, 0, 2, 1))]));
    assert!(e.contains("t/data/0"), "{e}");
    // Bad pickles: truncated, unknown opcode, no tensors, not a dict.
    let pk = tensor_pickle("w", 3, 0, 2, 1);
    let e = msg(&zip_of(&[
        ("t/data.pkl", &pk[..pk.len() / 2]),
        ("t/data/0", &data),
    ]));
    assert!(e.contains("t/data.pkl") && e.contains("truncated"), "{e}");
    let e = msg(&zip_of(&[
        ("t/data.pkl", b"\x80\x02\xffK\x01."),
        ("t/data/0", &data),
    ]));
    assert!(e.contains("opcode 0xff"), "{e}");
    let e = msg(&zip_of(&[("t/data.pkl", b"\x80\x02}q\x00.")]));
    assert!(e.contains("no tensors"), "{e}");
    let e = msg(&zip_of(&[("t/data.pkl", b"\x80\x02K\x05.")]));
    assert!(e.contains("not a dict"), "{e}");
    // A zip archive that is not a checkpoint; a truncated archive.
    let e = msg(&zip_of(&[("readme.txt", b"hello")]));
    assert!(e.contains("not a PyTorch checkpoint"), "{e}");
    let real = std::fs::read(fx("var_tiny.pth")).unwrap();
    let d = tmpdir("bad");
    let cut = d.join("cut.pth");
    std::fs::write(&cut, &real[..real.len() / 2]).unwrap();
    let e = read_tensor_file(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.pth"), "{e}");
    // Neither format, a lying safetensors header, the legacy torch format.
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\xff\xff\xff\x7f{}").unwrap();
    let e = read_tensor_file(&junk).unwrap_err().to_string();
    assert!(
        e.contains("junk.safetensors") && e.contains("exceeds the file"),
        "{e}"
    );
    let legacy = d.join("legacy.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
    let e = read_tensor_file(&legacy).unwrap_err().to_string();
    assert!(e.contains("legacy"), "{e}");
    std::fs::remove_dir_all(&d).ok();
    // Not a regular file: refused at once, not read.
    if Path::new("/dev/zero").exists() {
        let t = Instant::now();
        let e = read_tensor_files(&[PathBuf::from("/dev/zero")]).unwrap_err();
        assert!(e.to_string().contains("/dev/zero"), "{e}");
        eprintln!("/dev/zero refused in {:?}", t.elapsed());
    }
    let e = read_tensor_files(&[PathBuf::from("/nonexistent/w.pth")]).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/w.pth"), "{e}");
}

/// `expected_images.npy`: float32, C order; returns the shape and the values.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let sh = header.split("'shape': (").nth(1).unwrap();
    let sh = &sh[..sh.find(')').unwrap()];
    let shape: Vec<usize> = sh
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let vals = b[10 + hl..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, vals)
}

/// The F(24, 9) reference pass (argmax, no guidance) on the fixture weights against the
/// reference implementation's tokens and images (greedy: top_k = 1, cfg = 0).
fn against_reference_code(files: &[PathBuf], dir: &Path) {
    let raw = read_tensor_files(files).unwrap();
    let mut cfg = infer_config(&raw, None).unwrap();
    cfg.fmt = Format::new(24, 9).unwrap();
    cfg.sampling = Sampling::Argmax;
    let w = VarWeights::from_raw(&cfg, &raw).unwrap();
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_tokens.json")).unwrap())
            .unwrap();
    let (shape, img) = read_npy(&dir.join("expected_images.npy"));
    let side = cfg.image_side();
    assert_eq!(shape, vec![4, 3, side, side]);
    let labels: Vec<usize> = exp["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let mut worst = 0f64;
    for (i, &class) in labels.iter().enumerate() {
        let t = Instant::now();
        let out = var_reference(
            &cfg,
            &w,
            &VarInput {
                class,
                uniforms: vec![],
            },
        )
        .unwrap();
        eprintln!(
            "label {class}: F(24, 9) reference pass in {:?}",
            t.elapsed()
        );
        let want: Vec<Vec<u32>> = exp["tokens"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect()
            })
            .collect();
        assert_eq!(out.tokens, want, "label {class}: token maps");
        let n = 3 * side * side;
        assert_eq!(out.image.len(), n);
        for (k, &bits) in out.image.iter().enumerate() {
            // The pass returns the clamped decoder output in [-1, 1]; the reference code maps it
            // to [0, 1] as (x + 1) / 2.
            let x = cfg.fmt.from_bits(bits).unwrap().to_f64();
            let y = (x + 1.0) * 0.5;
            let d = (y - img[i * n + k] as f64).abs();
            worst = worst.max(d);
        }
    }
    eprintln!("{}: largest image difference {worst:.3e}", dir.display());
    assert!(worst <= 1e-5, "largest image difference {worst}");
}

#[test]
fn reference_pass_reproduces_the_reference_code() {
    against_reference_code(&pth_pair(), &fixtures());
}

#[test]
fn shared_adaln_reproduces_the_reference_code() {
    against_reference_code(
        &[fx("shared/var_tiny_shared.pth"), fx("vae_tiny.pth")],
        &fx("shared"),
    );
}

#[test]
fn shared_adaln_circuit_equals_reference() {
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.shared_aln = true;
    cfg.sampling = Sampling::Argmax;
    let w = VarWeights::seeded(&cfg, 21).unwrap();
    assert!(w.get("shared_ada_lin.1.weight").is_ok());
    assert!(w.get("blocks.0.ada_gss").is_ok());
    assert!(w.get("blocks.0.ada_lin.1.weight").is_err());
    let cv = compile_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Tokens,
        },
    )
    .unwrap();
    let inputs: Vec<VarInput> = (0..cfg.num_classes)
        .map(|class| VarInput {
            class,
            uniforms: vec![],
        })
        .collect();
    let lv = cv.circuit.levelize();
    let mut ev = CpuEvaluator::new(&lv).unwrap();
    let got = cv
        .unpack_outputs(&ev.evaluate(&cv.pack_inputs(&inputs).unwrap()).unwrap())
        .unwrap();
    let mut distinct = std::collections::HashSet::new();
    for (g, inp) in got.iter().zip(&inputs) {
        let r = tcvar::model::var::pass::var_reference_until(&cfg, &w, inp, Until::Tokens).unwrap();
        assert_eq!(g, &r, "class {}", inp.class);
        distinct.insert(r.tokens.clone());
    }
    assert!(distinct.len() >= 2, "the classes give one token map only");
    // The shared path is really used: other ada_gss values give other tokens for some class.
    let mut m = w.tensors().clone();
    let g = m["blocks.0.ada_gss"].clone();
    let fmt = cfg.fmt;
    let flipped: Vec<f64> = g.data().iter().map(|x| -x.to_f64()).collect();
    m.insert(
        "blocks.0.ada_gss".into(),
        tcvar::model::tensor::Tensor::from_f64(fmt, g.shape().to_vec(), &flipped).unwrap(),
    );
    let w2 = VarWeights::from_map(&cfg, m).unwrap();
    let changed = inputs.iter().any(|inp| {
        tcvar::model::var::pass::var_reference_until(&cfg, &w2, inp, Until::Tokens).unwrap()
            != tcvar::model::var::pass::var_reference_until(&cfg, &w, inp, Until::Tokens).unwrap()
    });
    assert!(changed, "ada_gss does not affect the tokens");
}

#[test]
fn restricted_configuration_reads_a_prefix_of_the_weights() {
    let raw = read_tensor_files(&pth_pair()).unwrap();
    let mut cfg = infer_config(&raw, None).unwrap();
    cfg.fmt = Format::new(24, 9).unwrap();
    cfg.sampling = Sampling::Argmax;
    cfg.patch_nums = vec![1, 2];
    // Unrestricted, the weights do not fit the shorter schedule: the error names pos_1LC.
    let (name, _) = weights_error(VarWeights::from_raw(&cfg, &raw).unwrap_err());
    assert_eq!(name, "pos_1LC");
    let w = VarWeights::from_raw(&cfg, &restrict(raw.clone(), &cfg).unwrap()).unwrap();
    // The first scale does not depend on the later ones: the reference code's first token
    // map (the second differs: f_hat has the last scale's side, 2 here and 4 in the weights).
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx("expected_tokens.json")).unwrap())
            .unwrap();
    for class in 0..4 {
        let out = tcvar::model::var::pass::var_reference_until(
            &cfg,
            &w,
            &VarInput {
                class,
                uniforms: vec![],
            },
            Until::Tokens,
        )
        .unwrap();
        assert_eq!(out.tokens.len(), 2);
        for (si, toks) in out.tokens.iter().enumerate().take(1) {
            let want: Vec<u32> = exp["tokens"][class][si]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(toks, &want, "class {class} scale {si}");
        }
    }
    // Fewer blocks; a schedule that is not a prefix is refused naming lvl_1L.
    let mut one = cfg.clone();
    one.depth = 1;
    VarWeights::from_raw(&one, &restrict(raw.clone(), &one).unwrap()).unwrap();
    let mut other = cfg.clone();
    other.patch_nums = vec![1, 3];
    let (name, _) = weights_error(restrict(raw, &other).unwrap_err());
    assert_eq!(name, "lvl_1L");
}

#[test]
fn shared_adaln_program_equals_reference() {
    use tcvar::eval::program::{CpuProgramEvaluator, ProgramOptions};
    use tcvar::model::var::pass::{record_with, RecordedVar};
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.shared_aln = true;
    cfg.sampling = Sampling::Argmax;
    let w = VarWeights::seeded(&cfg, 23).unwrap();
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Image,
        },
    )
    .unwrap();
    let inputs: Vec<VarInput> = (0..cfg.num_classes)
        .map(|class| VarInput {
            class,
            uniforms: vec![],
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
    for (g, inp) in got.iter().zip(&inputs) {
        assert_eq!(
            g,
            &var_reference(&cfg, &w, inp).unwrap(),
            "class {}",
            inp.class
        );
    }
}

/// BINUNICODE `s`.
fn p_str(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

/// BININT `v`.
fn p_int(p: &mut Vec<u8>, v: u32) {
    p.push(b'J');
    p.extend(v.to_le_bytes());
}

/// `_rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, (size,),
/// (stride,), False, OrderedDict())`: a vector view of storage `key`.
fn p_view(p: &mut Vec<u8>, key: &str, numel: u32, offset: u32, size: u32, stride: u32) {
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    p_str(p, "storage");
    p.extend(b"ctorch\nFloatStorage\n");
    p_str(p, key);
    p_str(p, "cpu");
    p_int(p, numel);
    p.extend(b"tQ");
    p_int(p, offset);
    p_int(p, size);
    p.push(0x85);
    p_int(p, stride);
    p.extend([0x85, 0x89]);
    p.extend(b"ccollections\nOrderedDict\n)RtR");
}

/// [`p_view`] of the whole storage `key` as a vector.
fn p_tensor(p: &mut Vec<u8>, key: &str, numel: u32) {
    p_view(p, key, numel, 0, numel, 1);
}

/// A dict `{name: tensor of storage key}` as pickle opcodes.
fn p_tensors(p: &mut Vec<u8>, tensors: &[(&str, &str, u32)]) {
    p.extend(b"}(");
    for &(name, key, numel) in tensors {
        p_str(p, name);
        p_tensor(p, key, numel);
    }
    p.push(b'u');
}

/// The reference code's training checkpoint (`train.py`): `{'epoch', 'trainer': {'config',
/// 'var_wo_ddp', 'vae_local', 'var_opt'}, 'args'}`, with the given transformer and VQ-VAE
/// tensors and an optimiser state holding a tensor of its own under an integer key.
fn trainer_pickle(var: &[(&str, &str, u32)], vae: Option<&[(&str, &str, u32)]>) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    p_str(&mut p, "epoch");
    p_int(&mut p, 3);
    p_str(&mut p, "trainer");
    p.extend(b"}(");
    p_str(&mut p, "config");
    p.extend(b"}(");
    p_str(&mut p, "depth");
    p_int(&mut p, 2);
    p.push(b'u');
    p_str(&mut p, "var_wo_ddp");
    p_tensors(&mut p, var);
    if let Some(vae) = vae {
        p_str(&mut p, "vae_local");
        p_tensors(&mut p, vae);
    }
    p_str(&mut p, "var_opt");
    p.extend(b"}(");
    p_str(&mut p, "state");
    p.extend(b"}(K\x00");
    p_tensors(&mut p, &[("exp_avg", "2", 3)]);
    p.extend(b"uu");
    p.push(b'u');
    p_str(&mut p, "args");
    p.extend(b"}(");
    p_str(&mut p, "tlr");
    p_int(&mut p, 1);
    p.extend(b"uu.");
    p
}

#[test]
fn training_checkpoints_read_the_transformer_and_the_vae_together() {
    let f = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let (d0, d1, d2) = (f(&[1.5, -2.0, 3.25]), f(&[4.0, 5.0]), f(&[7.0, 8.0, 9.0]));
    let file = |pkl: &[u8]| {
        zip_of(&[
            ("ar-ckpt-best/data.pkl", pkl),
            ("ar-ckpt-best/data/0", &d0),
            ("ar-ckpt-best/data/1", &d1),
            ("ar-ckpt-best/data/2", &d2),
        ])
    };
    let var = [("head.weight", "0", 3)];
    let vae = [("quantize.embedding.weight", "1", 2)];
    let raw = read_zip(&file(&trainer_pickle(&var, Some(&vae)))).unwrap();
    assert_eq!(raw.len(), 2, "the optimiser state is not read");
    assert_eq!(
        raw.get("head.weight").unwrap().data,
        RawData::Float(vec![1.5, -2.0, 3.25])
    );
    assert_eq!(
        raw.get("quantize.embedding.weight").unwrap().data,
        RawData::Float(vec![4.0, 5.0])
    );
    // Without the VQ-VAE: the transformer alone.
    let raw = read_zip(&file(&trainer_pickle(&var, None))).unwrap();
    assert_eq!(raw.len(), 1);
    // A name in both state dicts is an error naming it.
    let e = read_zip(&file(&trainer_pickle(
        &var,
        Some(&[("head.weight", "1", 2)]),
    )))
    .unwrap_err()
    .to_string();
    assert!(e.contains("head.weight") && e.contains("twice"), "{e}");
}
