//! The `tcvar` command line, end to end: every subcommand on the smallest configuration, its JSON
//! output parsed and checked against the library's own results, and bad arguments giving one
//! line on stderr and exit status 2.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use tcvar::circuit::Circuit;
use tcvar::eval::{cpu::CpuEvaluator, Batch, Evaluator};
use tcvar::float::Format;
use tcvar::gadgets::report::gadget_report;
use tcvar::model::blocks::sweep::sweep;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::{compile_with, record_with, CompileOptions};
use tcvar::model::var::weights::VarWeights;

use common::cli::{
    assert_mentions, assert_success, json, tcvar, user_error_line, PANIC_OR_BACKTRACE,
};

/// A fresh, empty temporary directory for the test part `name`.
fn tmpdir(name: &str) -> PathBuf {
    common::cli::tmpdir("tcvar-cli", name)
}

/// A user error: status 2, exactly one line on stderr mentioning `needle`, no panic or
/// backtrace.
fn assert_user_error(out: &Output, needle: &str) {
    let line = user_error_line(out, PANIC_OR_BACKTRACE, "");
    assert_mentions(&line, needle);
}

#[test]
fn run_json_matches_the_library() {
    let out = tcvar(&[
        "run",
        "--config",
        "micro",
        "--p",
        "4",
        "--q",
        "4",
        "--batch",
        "6",
        "--backend",
        "cpu",
        "--seed",
        "3",
        "--json",
        "--quiet",
    ]);
    let v = json(&out);
    for key in [
        "config",
        "p",
        "q",
        "batch",
        "backend",
        "gates",
        "terms",
        "fan_in",
        "depth",
        "depth_by_phase",
        "gates_by_phase",
        "terms_by_phase",
        "build_seconds",
        "eval_seconds",
        "gate_evals_per_second",
        "bit_exact",
        "max_abs_error_vs_f32",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["config"], "micro");
    assert_eq!((v["p"].as_u64(), v["q"].as_u64()), (Some(4), Some(4)));
    assert_eq!(v["batch"].as_u64(), Some(6));
    assert_eq!(v["backend"], "cpu");
    assert_eq!(v["bit_exact"], true);
    assert!(v["max_abs_error_vs_f32"].as_f64().is_some());

    // The same program recorded by the library has the same size and depths.
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.fmt = Format::new(4, 4).unwrap();
    let w = VarWeights::seeded(&cfg, 3).unwrap();
    let rec = record_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: tcvar::model::var::pass::Until::Image,
        },
    )
    .unwrap();
    let c = rec.program.counts();
    assert_eq!(v["gates"].as_u64(), Some(c.gates as u64));
    assert_eq!(v["terms"].as_u64(), Some(c.terms as u64));
    assert_eq!(v["fan_in"].as_u64(), Some(c.fan_in as u64));
    assert_eq!(v["depth"].as_u64(), Some(rec.program.depth() as u64));
    let phases = v["depth_by_phase"].as_object().expect("object");
    for r in rec.program.region_counts() {
        if !r.path.is_empty() && !r.path.contains('.') {
            assert_eq!(
                phases[&r.path].as_u64(),
                Some(r.depth as u64),
                "phase {}",
                r.path
            );
        }
    }
    assert!(phases.contains_key("transformer") && phases.contains_key("decoder"));
}

#[test]
fn run_writes_png_grid_and_summary() {
    let d = tmpdir("run-out");
    let out = tcvar(&[
        "run",
        "--p",
        "4",
        "--q",
        "4",
        "--batch",
        "3",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gate-evals/s") && text.contains("bit for bit"),
        "{text}"
    );
    let png = std::fs::read(d.join("images.png")).expect("images.png");
    assert_eq!(&png[1..4], b"PNG");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["bit_exact"], true);
}

#[test]
fn gadgets_json_matches_the_library() {
    let v = json(&tcvar(&[
        "gadgets", "--p", "4", "--q", "4", "--n", "4", "--json",
    ]));
    let r = gadget_report(Format::new(4, 4).unwrap(), 4).unwrap();
    for (k, want) in [
        ("d_std", r.d_std),
        ("d_sum", r.d_sum),
        ("d_prod", r.d_prod),
        ("d_exp", r.d_exp),
        ("d_sqrt", r.d_sqrt),
    ] {
        assert_eq!(v[k].as_u64(), Some(want as u64), "{k}");
    }
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), r.rows.len());
    for (j, lib) in rows.iter().zip(&r.rows) {
        assert_eq!(j["gadget"], lib.name.as_str());
        assert_eq!(j["n"].as_u64(), Some(lib.n as u64));
        assert_eq!(j["depth"].as_u64(), Some(lib.depth as u64));
        assert_eq!(j["gates"].as_u64(), Some(lib.gates));
        assert_eq!(j["terms"].as_u64(), Some(lib.terms));
        assert_eq!(j["fan_in"].as_u64(), Some(lib.fan_in));
        assert_eq!(j["max_weight"].as_u64(), Some(lib.max_weight));
    }
}

#[test]
fn formats_json() {
    let v = json(&tcvar(&["formats", "--json"]));
    assert_eq!(v["p_range"], serde_json::json!([2, 32]));
    assert_eq!(v["q_range"], serde_json::json!([2, 16]));
    let f = Format::new(24, 9).unwrap();
    let row = v["formats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["p"] == 24)
        .expect("F(24,9) listed");
    assert_eq!(row["width"].as_u64(), Some(f.width() as u64));
    assert_eq!(row["e_min"].as_i64(), Some(f.e_min() as i64));
    assert!(v["gpu"]["found"].is_boolean());
}

#[test]
fn build_eval_export_round_trip() {
    let d = tmpdir("files");
    let file = d.join("mul.tcc");
    let v = json(&tcvar(&[
        "build",
        "--gadget",
        "mul",
        "--p",
        "4",
        "--q",
        "4",
        "--out",
        file.to_str().unwrap(),
        "--json",
    ]));
    let c = Circuit::load_file(&file).expect("a valid circuit file");
    let s = c.stats();
    assert_eq!(v["gates"].as_u64(), Some(s.gates));
    assert_eq!(v["depth"].as_u64(), Some(s.depth as u64));

    // Inputs: canonical F(4,4) pairs; outputs must be the reference products.
    let fmt = Format::new(4, 4).unwrap();
    let vals: Vec<_> = fmt.all_values().collect();
    let pairs: Vec<(u64, u64)> = (0..40)
        .map(|i| {
            (
                vals[(i * 37) % vals.len()].to_bits(),
                vals[(i * 11 + 5) % vals.len()].to_bits(),
            )
        })
        .collect();
    let w = fmt.width() as usize;
    let mut text = String::from("# x0 then x1, bit 0 last\n");
    for &(x, y) in &pairs {
        let bits: u64 = x | (y << w);
        text.push_str(&format!("{:0width$b}\n", bits, width = 2 * w));
    }
    let inp = d.join("in.txt");
    std::fs::write(&inp, text).unwrap();
    let outp = d.join("out.txt");
    let out = tcvar(&[
        "eval",
        file.to_str().unwrap(),
        "--inputs",
        inp.to_str().unwrap(),
        "--out",
        outp.to_str().unwrap(),
    ]);
    assert_success(&out);
    let lines: Vec<String> = std::fs::read_to_string(&outp)
        .unwrap()
        .lines()
        .map(|l| l.to_string())
        .collect();
    assert_eq!(lines.len(), pairs.len());
    for (line, &(x, y)) in lines.iter().zip(&pairs) {
        let got = u64::from_str_radix(line, 2).unwrap();
        let want = fmt
            .from_bits(x)
            .unwrap()
            .mul(fmt.from_bits(y).unwrap())
            .unwrap()
            .to_bits();
        assert_eq!(got, want, "{x:#x} * {y:#x}");
    }
    // The library's CPU evaluator on the loaded circuit agrees as well.
    let rows: Vec<Vec<u64>> = pairs.iter().map(|&(x, y)| vec![x, y]).collect();
    let batch = Batch::pack_fields(&[w as u32, w as u32], &rows).unwrap();
    let lib = CpuEvaluator::new(&c.levelize())
        .unwrap()
        .evaluate(&batch)
        .unwrap();
    let lib = lib.unpack_fields(&[w as u32]).unwrap();
    for (line, l) in lines.iter().zip(&lib) {
        assert_eq!(u64::from_str_radix(line, 2).unwrap(), l[0]);
    }

    let vdir = d.join("verilog");
    let out = tcvar(&[
        "export",
        file.to_str().unwrap(),
        "--verilog",
        vdir.to_str().unwrap(),
        "--module",
        "mul4",
    ]);
    assert_success(&out);
    let v = std::fs::read_to_string(vdir.join("mul4.v")).unwrap();
    assert!(v.contains("module mul4"));
    assert!(std::fs::read_to_string(vdir.join("mul4_tb.v"))
        .unwrap()
        .contains("module"));
}

#[test]
fn build_a_var_configuration() {
    let d = tmpdir("var-build");
    let file = d.join("micro.tcc");
    let v = json(&tcvar(&[
        "build",
        "--config",
        "micro",
        "--p",
        "4",
        "--q",
        "4",
        "--seed",
        "3",
        "--out",
        file.to_str().unwrap(),
        "--json",
        "--quiet",
    ]));
    let c = Circuit::load_file(&file).expect("a valid circuit file");
    let mut cfg = VarConfig::preset("micro").unwrap();
    cfg.fmt = Format::new(4, 4).unwrap();
    let w = VarWeights::seeded(&cfg, 3).unwrap();
    let lib = compile_with(
        &cfg,
        &w,
        CompileOptions {
            progress: false,
            until: tcvar::model::var::pass::Until::Image,
        },
    )
    .unwrap();
    assert_eq!(c, lib.circuit, "the saved circuit is the library's circuit");
    assert_eq!(v["gates"].as_u64(), Some(lib.circuit.stats().gates));
    let _ = std::fs::remove_dir_all(&d); // the file is a few hundred MB
}

#[test]
fn scale_json_matches_the_library() {
    let d = tmpdir("scale");
    let v = json(&tcvar(&[
        "scale",
        "--p",
        "4",
        "--q",
        "4",
        "--ns",
        "1,4",
        "--ds",
        "2",
        "--ms",
        "1",
        "--no-model",
        "--out",
        d.to_str().unwrap(),
        "--json",
    ]));
    let rows = sweep(Format::new(4, 4).unwrap(), &[1, 4], &[2], &[1]).unwrap();
    let js = v["blocks"].as_array().unwrap();
    assert_eq!(js.len(), rows.len());
    for (j, r) in js.iter().zip(&rows) {
        assert_eq!(j["block"], r.block);
        assert_eq!(j["depth"].as_u64(), Some(r.depth as u64));
        assert_eq!(j["gates"].as_u64(), Some(r.gates));
        assert_eq!(j["fan_in"].as_u64(), Some(r.fan_in));
    }
    assert!(d.join("blocks.csv").exists());
    assert!(d.join("blocks_fan_in_vs_n.svg").exists());
}

#[test]
fn bad_arguments_are_one_line_and_status_2() {
    assert_user_error(&tcvar(&["run", "--config", "nosuch"]), "nosuch");
    assert_user_error(&tcvar(&["run", "--bogus"]), "--bogus");
    assert_user_error(&tcvar(&["run", "--p", "99"]), "p");
    assert_user_error(&tcvar(&["run", "--batch", "0"]), "batch");
    // A batch whose tensor values exceed the memory budget is refused before evaluating.
    assert_user_error(
        &tcvar(&[
            "run",
            "--batch",
            "4",
            "--memory-budget",
            "0.0000001",
            "--quiet",
        ]),
        "memory-budget",
    );
    assert_user_error(&tcvar(&["run", "--memory-budget=-1"]), "memory-budget");
    assert_user_error(&tcvar(&["run", "--blocks", "7"]), "blocks");
    assert_user_error(&tcvar(&["run", "--scales", "2,1"]), "increasing");
    assert_user_error(&tcvar(&["gadgets", "--q", "1"]), "q");
    assert_user_error(
        &tcvar(&["run", "--weights", "/nonexistent/w.safetensors", "--quiet"]),
        "nonexistent",
    );
    assert_user_error(
        &tcvar(&["eval", "/nonexistent.tcc", "--inputs", "/nonexistent.txt"]),
        "nonexistent",
    );
    let d = tmpdir("bad");
    let junk = d.join("junk.tcc");
    std::fs::write(&junk, b"this is not a circuit").unwrap();
    assert_user_error(
        &tcvar(&[
            "eval",
            junk.to_str().unwrap(),
            "--inputs",
            "/nonexistent.txt",
        ]),
        "not a tcvar circuit",
    );
    assert_user_error(&tcvar(&["scale", "--ns", "1,x"]), "--ns");
    assert_user_error(&tcvar(&["build", "--out", "/tmp/never.tcc"]), "--config");
    assert_user_error(&tcvar(&["run", "--backend", "foo"]), "foo");
    // No GPU with --backend gpu: an adapter name that cannot exist.
    let out = Command::new(env!("CARGO_BIN_EXE_tcvar"))
        .args([
            "run",
            "--p",
            "4",
            "--q",
            "4",
            "--batch",
            "1",
            "--backend",
            "gpu",
            "--quiet",
        ])
        .env("TCVAR_GPU_ADAPTER", "no-such-adapter-anywhere")
        .output()
        .unwrap();
    assert_user_error(&out, "--backend gpu");
}

/// `tcvar stats --json`: every documented field, the counts equal the library's recording.
#[test]
fn stats_json_has_the_documented_fields_and_the_library_counts() {
    let out = tcvar(&["stats", "--config", "micro", "--json", "--quiet"]);
    let v = json(&out);
    for key in [
        "config",
        "p",
        "q",
        "gates",
        "terms",
        "fan_in",
        "depth",
        "depth_by_phase",
        "gates_by_phase",
        "templates",
        "applications",
        "instances",
        "seconds",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    let cfg = VarConfig::preset("micro").unwrap();
    let w = VarWeights::seeded(&cfg, 0).unwrap();
    let rec = record_with(&cfg, &w, CompileOptions::default()).unwrap();
    let c = rec.program.counts();
    assert_eq!(v["gates"].as_u64(), Some(c.gates as u64));
    assert_eq!(v["terms"].as_u64(), Some(c.terms as u64));
    assert_eq!(v["fan_in"].as_u64(), Some(c.fan_in as u64));
    assert_eq!(v["depth"].as_u64(), Some(rec.program.depth() as u64));
    assert_eq!(
        v["templates"].as_u64(),
        Some(rec.program.templates.len() as u64)
    );
    assert_eq!(v["applications"].as_u64(), Some(c.applications));
}

/// Depth is flat in the width: `tcvar stats` reports the same depth for C = 8, 16 and 32 (tiny's
/// first two scales, one block), while the gate count grows.
#[test]
fn stats_depth_is_the_same_for_widths_8_16_32() {
    let mut seen = Vec::new();
    for w in ["8", "16", "32"] {
        let out = tcvar(&[
            "stats", "--config", "tiny", "--width", w, "--scales", "1,2", "--blocks", "1",
            "--until", "tokens", "--json", "--quiet",
        ]);
        let v = json(&out);
        assert_eq!(v["width"].as_u64(), Some(w.parse().unwrap()));
        seen.push((v["depth"].as_u64().unwrap(), v["gates"].as_f64().unwrap()));
    }
    eprintln!("(depth, gates) at C = 8, 16, 32: {seen:?}");
    assert!(seen.iter().all(|s| s.0 == seen[0].0), "{seen:?}");
    assert!(seen[0].1 < seen[1].1 && seen[1].1 < seen[2].1, "{seen:?}");
}
