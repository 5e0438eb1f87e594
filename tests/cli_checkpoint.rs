//! `tcvar run --weights` on the checkpoint fixtures exported by the reference implementation's
//! own code (`scripts/export_fixtures.py`, tests/fixtures/var_tiny/): the configuration inferred
//! from PyTorch checkpoints with no `--config`, the same results from the same weights as
//! safetensors bit for bit, the reference implementation's token maps and images reproduced by
//! `--backend reference --out`, and unexpected or contradicting tensors refused with one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use tcvar::model::var::config::VarConfig;
use tcvar::model::var::weights::{tensors_to_safetensors, VarWeights};

use common::cli::{assert_success, tcvar, user_error_line, PANIC};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/var_tiny")
        .join(name)
        .display()
        .to_string()
}

/// A fresh, empty temporary directory for the test part `name`.
fn tmpdir(name: &str) -> PathBuf {
    common::cli::tmpdir("tcvar-cli-ckpt", name)
}

fn ok_json(out: &Output) -> serde_json::Value {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}: {err}", out.status);
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).expect("JSON")
}

/// Status 2, one line on stderr (lavapipe's XDG notice aside), containing every needle.
fn assert_user_error(out: &Output, needles: &[&str]) {
    let line = user_error_line(out, PANIC, "");
    for n in needles {
        assert!(line.contains(n), "{line:?} should name {n:?}");
    }
}

/// `.npy` float32 values (C order) and shape.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY", "{}", path.display());
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let sh = header.split("'shape': (").nth(1).unwrap();
    let sh = &sh[..sh.find(')').unwrap()];
    let shape = sh
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

fn tokens(path: &Path) -> serde_json::Value {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&s).expect("tokens.json is JSON")
}

/// Acceptance: the PyTorch checkpoints with no `--config` give the tiny configuration (printed),
/// and exactly the token maps and images of the same weights as one safetensors file.
#[test]
fn pth_checkpoints_infer_config_and_equal_safetensors() {
    let (var, vae, st) = (
        fixture("var_tiny.pth"),
        fixture("vae_tiny.pth"),
        fixture("tiny.safetensors"),
    );
    let common = [
        "run",
        "--backend",
        "reference",
        "--labels",
        "0,1,2,3",
        "--seed",
        "5",
    ];
    let d_pth = tmpdir("pth");
    let mut args: Vec<&str> = common.to_vec();
    let out_pth = d_pth.display().to_string();
    args.extend(["--weights", &var, "--weights", &vae, "--out", &out_pth]);
    let text = tcvar(&args);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(
        stdout.contains("configuration"),
        "the inferred configuration is printed: {stdout}"
    );

    let d_st = tmpdir("st");
    let out_st = d_st.display().to_string();
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--weights", &st, "--out", &out_st, "--json"]);
    let j = ok_json(&tcvar(&args));
    assert_eq!(j["config_inferred_from_weights"], true);
    let tiny = VarConfig::preset("tiny").unwrap();
    assert_eq!(j["var_config"]["width"], tiny.width);
    assert_eq!(j["var_config"]["depth"], tiny.depth);
    assert_eq!(j["var_config"]["vocab"], tiny.vocab);
    assert_eq!(
        j["var_config"]["patch_nums"],
        serde_json::json!(tiny.patch_nums)
    );

    for f in ["tokens.json", "images.npy"] {
        let a = std::fs::read(d_pth.join(f)).unwrap();
        let b = std::fs::read(d_st.join(f)).unwrap();
        assert!(!a.is_empty());
        assert_eq!(a, b, "{f}: .pth and .safetensors runs differ");
    }
}

/// The circuit on the checkpoints (no `--config`, restricted to two scales' token maps) equals
/// the reference pass bit for bit.
#[test]
fn pth_checkpoints_circuit_is_bit_exact() {
    let (var, vae) = (fixture("var_tiny.pth"), fixture("vae_tiny.pth"));
    let j = ok_json(&tcvar(&[
        "run",
        "--weights",
        &var,
        "--weights",
        &vae,
        "--scales",
        "1,2",
        "--blocks",
        "1",
        "--until",
        "tokens",
        "--backend",
        "cpu",
        "--batch",
        "4",
        "--json",
    ]));
    assert_eq!(j["bit_exact"], true, "{j}");
    assert_eq!(j["config_inferred_from_weights"], true);
}

/// Acceptance: the F(24, 9) reference pass of `tcvar run` writes the token maps and images that
/// the reference implementation produced for the same weights and labels (greedy, no guidance).
#[test]
fn reference_backend_reproduces_reference_code() {
    let d = tmpdir("refcode");
    let out = d.display().to_string();
    let st = fixture("tiny.safetensors");
    let o = tcvar(&[
        "run",
        "--config",
        "tiny",
        "--weights",
        &st,
        "--p",
        "24",
        "--q",
        "9",
        "--sampling",
        "argmax",
        "--labels",
        "0,1,2,3",
        "--batch",
        "4",
        "--backend",
        "reference",
        "--out",
        &out,
    ]);
    assert_success(&o);
    let want = tokens(Path::new(&fixture("expected_tokens.json")));
    assert_eq!(want["labels"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(
        tokens(&d.join("tokens.json")),
        want["tokens"],
        "token maps differ from the reference code's"
    );
    let (ws, wv) = read_npy(Path::new(&fixture("expected_images.npy")));
    let (gs, gv) = read_npy(&d.join("images.npy"));
    assert_eq!(gs, ws, "image array shape");
    let worst = gv
        .iter()
        .zip(&wv)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-5, "max image difference {worst:e} > 1e-5");
}

/// A weight file with an unexpected tensor: status 2, one line naming it.
#[test]
fn unexpected_tensor_is_refused() {
    let cfg = VarConfig::preset("tiny").unwrap();
    let w = VarWeights::load(&cfg, &[PathBuf::from(fixture("tiny.safetensors"))]).unwrap();
    let mut map = w.tensors().clone();
    let extra = map.get("head.bias").unwrap().clone();
    map.insert("head.extra_bias".to_string(), extra);
    let d = tmpdir("extra");
    let f = d.join("extra.safetensors");
    std::fs::write(&f, tensors_to_safetensors(&map).unwrap()).unwrap();
    let fs = f.display().to_string();
    for cfg_args in [&["--config", "tiny"][..], &[][..]] {
        let mut args = vec![
            "run",
            "--weights",
            &fs,
            "--backend",
            "reference",
            "--batch",
            "1",
        ];
        args.extend_from_slice(cfg_args);
        assert_user_error(&tcvar(&args), &["head.extra_bias"]);
    }
}

/// A preset that contradicts the weights: status 2, one line naming a tensor and both shapes.
#[test]
fn contradicting_preset_is_refused() {
    let st = fixture("tiny.safetensors");
    let out = tcvar(&[
        "run",
        "--config",
        "micro",
        "--weights",
        &st,
        "--backend",
        "reference",
        "--batch",
        "1",
    ]);
    assert_user_error(&out, &["["]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The tiny width (32) and the micro width (8) both appear with the tensor's name.
    assert!(err.contains("32") && err.contains('8'), "{err}");
    assert!(
        err.contains('.') || err.contains("_"),
        "a tensor name: {err}"
    );
}
