//! `tcvar run` end to end: shapes and sampling from flags and configuration files, the
//! reference backend and its output files, and hostile arguments (status 2, one line, before
//! anything is built).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tcvar::model::var::config::{Sampling, VarConfig};
use tcvar::model::var::pass::{var_reference_until, Until, VarInput};
use tcvar::model::var::weights::VarWeights;

use common::cli::{assert_mentions, assert_success, json, tcvar, user_error_line, PANIC};

/// A fresh, empty temporary directory for the test part `name`.
fn tmpdir(name: &str) -> PathBuf {
    common::cli::tmpdir("tcvar-cli-run", name)
}

/// A user error: status 2, exactly one line on stderr naming `needle`, no panic.
fn assert_user_error(out: &Output, needle: &str) {
    let line = user_error_line(out, PANIC, "");
    assert_mentions(&line, needle);
}

/// Run with a wall-clock cap: a command that should stop at once (an argument check) must not
/// start a long build first. `None` when it was still running at the cap (then killed).
fn run_capped(args: &[&str], cap: Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcvar"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let t = Instant::now();
    while t.elapsed() < cap {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

const ACCEPT: [&str; 12] = [
    "run",
    "--scales",
    "1,2",
    "--sampling",
    "argmax",
    "--backend",
    "cpu",
    "--batch",
    "8",
    "--json",
    "--quiet",
    "--seed=5",
];

#[test]
fn tiny_with_flags_and_the_same_from_config_files() {
    let mut args = vec!["--config", "tiny"];
    args.extend(ACCEPT);
    args.rotate_left(2);
    let a = json(&tcvar(&args));
    assert_eq!(a["bit_exact"], true);
    assert_eq!(a["batch"], 8);
    assert_eq!(a["patch_nums"], serde_json::json!([1, 2]));
    let vc = &a["var_config"];
    assert_eq!(vc["sampling"], "argmax");
    let tiny = VarConfig::preset("tiny").unwrap();
    assert_eq!(vc["width"], tiny.width);
    assert_eq!(vc["vocab"], tiny.vocab);

    // The printed configuration, given back as a JSON file (no --config, no shape flags).
    let d = tmpdir("cfgfile");
    let jf = d.join("c.json");
    std::fs::write(&jf, vc.to_string()).unwrap();
    let b = json(&tcvar(&[
        "run",
        "--config-file",
        jf.to_str().unwrap(),
        "--backend",
        "cpu",
        "--batch",
        "8",
        "--json",
        "--quiet",
        "--seed=5",
    ]));
    // The same TOML file naming the preset and changing only what the flags changed.
    let tf = d.join("c.toml");
    std::fs::write(
        &tf,
        "preset = \"tiny\"\npatch_nums = [1, 2]\nsampling = \"argmax\"\n",
    )
    .unwrap();
    let c = json(&tcvar(&[
        "run",
        "--config-file",
        tf.to_str().unwrap(),
        "--backend",
        "cpu",
        "--batch",
        "8",
        "--json",
        "--quiet",
        "--seed=5",
    ]));
    for v in [&b, &c] {
        assert_eq!(v["bit_exact"], true);
        for k in [
            "var_config",
            "gates",
            "terms",
            "depth",
            "max_abs_error_vs_f32",
        ] {
            assert_eq!(v[k], a[k], "{k}");
        }
    }
}

#[test]
fn reference_backend_f24_9_writes_tokens_and_images() {
    let d = tmpdir("ref");
    let out = tcvar(&[
        "run",
        "--config",
        "tiny",
        "--p",
        "24",
        "--q",
        "9",
        "--sampling",
        "argmax",
        "--labels",
        "0,1,2,3",
        "--backend",
        "reference",
        "--quiet",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_success(&out);
    // The library's reference pass on the same configuration, weights and labels.
    let mut cfg = VarConfig::preset("tiny").unwrap();
    cfg.fmt = tcvar::float::Format::new(24, 9).unwrap();
    cfg.sampling = Sampling::Argmax;
    let w = VarWeights::seeded(&cfg, 0).unwrap();
    let refs: Vec<_> = (0..4)
        .map(|class| {
            let inp = VarInput {
                class,
                uniforms: vec![],
            };
            var_reference_until(&cfg, &w, &inp, Until::Image).unwrap()
        })
        .collect();
    let tokens: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("tokens.json")).unwrap()).unwrap();
    let want: Vec<&Vec<Vec<u32>>> = refs.iter().map(|r| &r.tokens).collect();
    assert_eq!(tokens, serde_json::json!(want));

    let npy = std::fs::read(d.join("images.npy")).unwrap();
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = std::str::from_utf8(&npy[10..10 + hl]).unwrap();
    let side = cfg.image_side();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert!(
        header.contains(&format!("'shape': (4, 3, {side}, {side})")),
        "{header}"
    );
    assert_eq!((10 + hl) % 64, 0);
    let data: Vec<f32> = npy[10 + hl..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), 4 * 3 * side * side);
    let expect: Vec<f32> = refs
        .iter()
        .flat_map(|r| r.image.iter())
        .map(|&b| {
            // VAR: decoder output clamped to [-1, 1], then add_(1).mul_(0.5) in f32.
            let x = cfg.fmt.from_bits(b).unwrap().to_f64().clamp(-1.0, 1.0) as f32;
            (x + 1.0) * 0.5
        })
        .collect();
    assert_eq!(data, expect);
    assert!(data.iter().all(|v| (0.0..=1.0).contains(v)));
    for f in ["images.png", "summary.json"] {
        assert!(d.join(f).is_file(), "{f}");
    }
}

#[test]
fn top_p_sampling_runs_bit_exact() {
    let v = json(&tcvar(&[
        "run",
        "--sampling",
        "top-p:0.8",
        "--backend",
        "cpu",
        "--batch",
        "4",
        "--until",
        "tokens",
        "--json",
        "--quiet",
    ]));
    assert_eq!(v["bit_exact"], true);
    assert_eq!(v["var_config"]["sampling"], "top-p:0.8");
}

#[test]
fn huge_batches_are_refused_up_front_with_the_bytes() {
    for b in ["18446744073709551615", "10000000000", "100000000"] {
        let out = run_capped(
            &["run", "--batch", b, "--backend", "cpu", "--quiet"],
            Duration::from_secs(60),
        )
        .unwrap_or_else(|| panic!("--batch {b} still running after 60 s"));
        assert_user_error(&out, "bytes");
        assert_user_error(&out, "--memory-budget");
    }
    // With --labels the batch is their count; a mismatch is an error.
    assert_user_error(
        &tcvar(&["run", "--labels", "0,1", "--batch", "3", "--quiet"]),
        "--labels",
    );
}

#[test]
fn numeric_options_are_validated() {
    let bad: &[(&[&str], &str)] = &[
        (&["--memory-budget", "NaN"], "memory-budget"),
        (&["--memory-budget", "inf"], "memory-budget"),
        (&["--memory-budget", "0"], "memory-budget"),
        (&["--cfg", "NaN"], "--cfg"),
        (&["--cfg", "inf"], "--cfg"),
        (&["--cfg=-1"], "--cfg"),
        (&["--sampling", "top-p:0"], "top-p"),
        (&["--sampling", "top-p:NaN"], "top-p"),
        (&["--sampling", "top-p:1.5"], "top-p"),
        (&["--sampling", "top-k:0"], "top-k"),
        (&["--sampling", "top-k:99"], "top-k"),
        (&["--sampling", "nucleus"], "sampling"),
        (&["--labels", "0,9"], "class 9"),
        (&["--width", "0"], "width"),
        (&["--heads", "3"], "heads"),
        (&["--vocab", "0"], "vocab"),
        (&["--depth", "0"], "depth"),
        (&["--scales", "0,1"], "patch size"),
        (&["--batch=-1"], "batch"),
    ];
    for (args, needle) in bad {
        let mut a = vec!["run", "--quiet", "--backend", "cpu"];
        a.extend_from_slice(args);
        let out = run_capped(&a, Duration::from_secs(60)).expect("refused at once");
        assert_user_error(&out, needle);
    }
}

#[test]
fn configuration_files_are_checked() {
    let d = tmpdir("badcfg");
    let unk = d.join("u.toml");
    std::fs::write(&unk, "width = 16\nwidht = 3\nlayers = 2\n").unwrap();
    let out = tcvar(&["run", "--config-file", unk.to_str().unwrap(), "--quiet"]);
    assert_user_error(&out, "widht");
    assert_user_error(&out, "layers");
    let ext = d.join("c.yaml");
    std::fs::write(&ext, "width: 16\n").unwrap();
    assert_user_error(
        &tcvar(&["run", "--config-file", ext.to_str().unwrap()]),
        ".toml",
    );
    let typ = d.join("t.json");
    std::fs::write(&typ, r#"{"width": "wide"}"#).unwrap();
    assert_user_error(
        &tcvar(&["run", "--config-file", typ.to_str().unwrap()]),
        "width",
    );
    assert_user_error(
        &tcvar(&["run", "--config-file", "/nonexistent/c.toml"]),
        "nonexistent",
    );
}

#[test]
fn out_is_checked_before_the_build() {
    let d = tmpdir("outfile");
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let target = file.join("sub");
    // d16 takes minutes to record: the check must come first.
    let out = run_capped(
        &[
            "run",
            "--config",
            "d16",
            "--batch",
            "1",
            "--backend",
            "cpu",
            "--quiet",
            "--out",
            target.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    )
    .expect("--out checked before the build");
    assert_user_error(&out, "--out");
}

#[test]
fn weights_arguments_are_checked() {
    let d = tmpdir("weights");
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 4).unwrap();
    let f = d.join("w.safetensors");
    w.save_safetensors(&f).unwrap();
    // Without --config the configuration is printed; with the directory it is the same run.
    let by_file = tcvar(&[
        "run",
        "--weights",
        f.to_str().unwrap(),
        "--backend",
        "cpu",
        "--batch",
        "2",
        "--until",
        "tokens",
        "--quiet",
    ]);
    let text = String::from_utf8_lossy(&by_file.stdout);
    assert!(by_file.status.success(), "{text}");
    assert!(text.contains("configuration: {"), "{text}");
    assert!(text.contains("bit for bit"), "{text}");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_user_error(
        &tcvar(&["run", "--weights", empty.to_str().unwrap(), "--quiet"]),
        "holds no",
    );
    assert_user_error(
        &tcvar(&["run", "--weights", "/dev/null", "--quiet"]),
        "/dev/null",
    );
}
