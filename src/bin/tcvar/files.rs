//! `tcvar build`, `tcvar eval`, `tcvar export`: circuits as files.
//!
//! Vector files (inputs of `eval`, outputs it writes) use the format of the Verilog testbench,
//! so one file drives both `tcvar eval` and an Icarus simulation of `tcvar export --verilog`:
//! one instance per line, one character `0`/`1` per bit, the LAST character being input (or
//! output) bit 0; empty lines and lines starting with `#` are ignored. A circuit without
//! inputs reads one line holding a single `0` per instance (an empty line would be skipped), as
//! its testbench writes. A file without any vector is an error, not an empty evaluation. The
//! file must be a regular file: its size bounds what is read (at most one instance per two
//! bytes, no line longer than the circuit's input count plus a margin for comments).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use tcvar::circuit::serial;
use tcvar::circuit::verilog::format_input_vector;
use tcvar::circuit::{Builder, Circuit};
use tcvar::eval::Batch;
use tcvar::float::Format;
use tcvar::gadgets::float::{self as fg, FloatWord};

use crate::common::{self, Backend, CliError, Outcome};

/// Circuits `build` knows besides VAR configurations.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GadgetKind {
    /// x + y.
    Add,
    /// x * y.
    Mul,
    /// x / y.
    Div,
    /// e^x.
    Exp,
    /// sqrt(x).
    Sqrt,
    /// Exact sum of n values, rounded once.
    Sum,
    /// Largest of n values.
    Max,
    /// The paper's dot product of two n-vectors.
    Dot,
}

/// `tcvar build` options: a VAR configuration (`--config`) or a float gadget (`--gadget`).
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["config", "gadget"])))]
pub struct BuildArgs {
    /// A VAR configuration preset (micro, tiny, ...): the whole pass as one circuit.
    #[arg(long)]
    pub config: Option<String>,
    /// A float gadget circuit to build.
    #[arg(long, value_enum)]
    pub gadget: Option<GadgetKind>,
    /// Significand bits p (default: the preset's for --config, 8 for --gadget).
    #[arg(long)]
    pub p: Option<u32>,
    /// Exponent bits q (default: the preset's for --config, 5 for --gadget).
    #[arg(long)]
    pub q: Option<u32>,
    /// Seed of the generated VAR weights (with --config).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// VAR weights in a safetensors file (with --config).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Refuse VAR configurations estimated above this many gates.
    #[arg(long, default_value_t = 40_000_000.0, value_parser = crate::args::positive_finite)]
    pub max_gates: f64,
    /// Refuse gadgets whose circuit would take more than this many GiB to build.
    #[arg(long, default_value_t = 8.0, value_parser = crate::args::gibibytes)]
    pub memory_budget: f64,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Operand count of the n-ary gadgets.
    #[arg(long, default_value_t = 4, value_parser = crate::args::operand_count)]
    pub n: usize,
    /// The circuit file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `tcvar eval` options.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A circuit file written by `tcvar build`.
    pub circuit: PathBuf,
    /// The input vectors (see the module docs for the format).
    #[arg(long)]
    pub inputs: PathBuf,
    /// Where to write the output vectors (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluator.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Print a JSON summary on stdout (outputs then need --out).
    #[arg(long)]
    pub json: bool,
}

/// `tcvar export` options.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// A circuit file written by `tcvar build`.
    pub circuit: PathBuf,
    /// Write structural Verilog `<module>.v` and its testbench `<module>_tb.v` into DIR.
    #[arg(long, value_name = "DIR")]
    pub verilog: PathBuf,
    /// Module name.
    #[arg(long, default_value = "tcvar_circuit")]
    pub module: String,
}

fn gadget_circuit(
    kind: GadgetKind,
    fmt: Format,
    n: usize,
    budget: u64,
) -> Result<Circuit, CliError> {
    let user = |e: tcvar::gadgets::error::GadgetError| CliError::User(e.to_string());
    let operands = match kind {
        GadgetKind::Add | GadgetKind::Mul | GadgetKind::Div => 2,
        GadgetKind::Exp | GadgetKind::Sqrt => 1,
        GadgetKind::Sum | GadgetKind::Max => n,
        GadgetKind::Dot => 2 * n,
    };
    let est = tcvar::gadgets::report::estimate_bytes(fmt, operands);
    if est > budget {
        return Err(CliError::User(format!(
            "--gadget {kind:?} with {operands} operands in {fmt}: about {:.2} GiB needed, above \
             --memory-budget {:.2} GiB",
            est as f64 / crate::args::GIB,
            budget as f64 / crate::args::GIB
        )));
    }
    let mut b = Builder::new();
    b.set_byte_limit(tcvar::gadgets::report::builder_limit(budget));
    let inputs = |b: &mut Builder, k: usize, prefix: &str| -> Result<Vec<FloatWord>, CliError> {
        (0..k)
            .map(|i| FloatWord::input(b, &format!("{prefix}{i}"), fmt).map_err(user))
            .collect()
    };
    let out = match kind {
        GadgetKind::Add | GadgetKind::Mul | GadgetKind::Div => {
            let x = inputs(&mut b, 2, "x")?;
            match kind {
                GadgetKind::Add => fg::add::add(&mut b, &x[0], &x[1]),
                GadgetKind::Mul => fg::mul::mul(&mut b, &x[0], &x[1]),
                _ => fg::div::div(&mut b, &x[0], &x[1]),
            }
            .map_err(user)?
        }
        GadgetKind::Exp | GadgetKind::Sqrt => {
            let x = inputs(&mut b, 1, "x")?;
            match kind {
                GadgetKind::Exp => fg::table::exp(&mut b, &x[0]),
                _ => fg::table::sqrt(&mut b, &x[0]),
            }
            .map_err(user)?
        }
        GadgetKind::Sum | GadgetKind::Max => {
            let x = inputs(&mut b, n, "x")?;
            match kind {
                GadgetKind::Sum => fg::sum::sum(&mut b, &x),
                _ => fg::cmp::max_n(&mut b, &x),
            }
            .map_err(user)?
        }
        GadgetKind::Dot => {
            let x = inputs(&mut b, n, "x")?;
            let y = inputs(&mut b, n, "y")?;
            fg::sum::dot(&mut b, &x, &y).map_err(user)?
        }
    };
    b.output_word("result", &out.bits)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    Ok(b.finish())
}

fn var_circuit(a: &BuildArgs, name: &str) -> Result<Circuit, CliError> {
    let cfg = crate::run::config(name, a.p, a.q)?;
    let w = crate::run::weights(&cfg, a.weights.as_deref(), a.seed)?;
    // The uniform program's exact gate count bounds the explicit circuit's (which folds
    // constants): refuse before building what would not fit.
    let rec = tcvar::model::var::pass::record_with(
        &cfg,
        &w,
        tcvar::model::var::pass::CompileOptions {
            progress: false,
            until: tcvar::model::var::pass::Until::Image,
        },
    )
    .map_err(|e| CliError::User(format!("cannot record {name}: {e}")))?;
    let gates = rec.program.counts().gates;
    if gates as f64 > a.max_gates {
        return Err(CliError::User(format!(
            "config {name}: {gates} gates (uniform program), above --max-gates {:.1e}",
            a.max_gates
        )));
    }
    let show = common::progress_allowed(a.quiet, a.json);
    let compiled = tcvar::model::var::pass::compile_with(
        &cfg,
        &w,
        tcvar::model::var::pass::CompileOptions {
            progress: show,
            until: tcvar::model::var::pass::Until::Image,
        },
    )
    .map_err(|e| CliError::User(format!("cannot build {name}: {e}")))?;
    Ok(compiled.circuit)
}

/// Check that `path` can be written, before a long build: an existing file is opened for
/// writing (not truncated), a new one is created and removed again.
pub fn check_writable(path: &Path) -> Result<(), CliError> {
    let err = |e: std::io::Error| CliError::User(format!("cannot write {}: {e}", path.display()));
    if path.is_dir() {
        return Err(CliError::User(format!(
            "cannot write {}: it is a directory",
            path.display()
        )));
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(err)?;
    } else {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(err)?;
        std::fs::remove_file(path).map_err(err)?;
    }
    Ok(())
}

/// `tcvar build`.
pub fn build(a: &BuildArgs) -> Result<Outcome, CliError> {
    check_writable(&a.out)?;
    let t = std::time::Instant::now();
    let c = match (&a.config, a.gadget) {
        (Some(name), _) => var_circuit(a, name)?,
        (None, Some(kind)) => {
            let fmt = common::format(a.p.unwrap_or(8), a.q.unwrap_or(5))?;
            let budget = crate::args::budget_bytes(a.memory_budget);
            gadget_circuit(kind, fmt, a.n, budget)?
        }
        (None, None) => return Err(CliError::User("give --config NAME or --gadget KIND".into())),
    };
    let secs = t.elapsed().as_secs_f64();
    c.save_file(&a.out)
        .map_err(|e| CliError::User(format!("cannot write {}: {e}", a.out.display())))?;
    let s = c.stats();
    if a.json {
        let v = serde_json::json!({"file": a.out.display().to_string(), "inputs": c.num_inputs(),
            "outputs": c.num_outputs(), "gates": s.gates, "fan_in": s.fan_in, "depth": s.depth,
            "build_seconds": secs});
        println!("{v}");
    } else {
        println!(
            "wrote {}: {} inputs, {} outputs, {} gates, fan-in {}, depth {} (built in {:.2} s)",
            a.out.display(),
            c.num_inputs(),
            c.num_outputs(),
            s.gates,
            s.fan_in,
            s.depth,
            secs
        );
    }
    Ok(Outcome::Ok)
}

fn load(path: &Path) -> Result<Circuit, CliError> {
    Circuit::load_file(path).map_err(|e| CliError::User(format!("{}: {e}", path.display())))
}

/// Read a vector file (module docs) from a regular file.
pub fn read_vectors(path: &Path, width: usize) -> Result<Vec<Vec<bool>>, CliError> {
    let user = |e: String| CliError::User(format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path)
        .map_err(|e| CliError::User(format!("cannot read {}: {e}", path.display())))?;
    serial::regular_file_size(&f).map_err(|e| user(e.to_string()))?;
    serial::parse_vectors(std::io::BufReader::new(f), width).map_err(|e| user(e.to_string()))
}

/// `tcvar eval`.
pub fn eval(a: &EvalArgs) -> Result<Outcome, CliError> {
    if let Some(p) = &a.out {
        check_writable(p)?;
    }
    let c = load(&a.circuit)?;
    let vectors = read_vectors(&a.inputs, c.num_inputs())?;
    let batch = Batch::from_instances(c.num_inputs() as u32, &vectors)
        .map_err(|e| CliError::User(e.to_string()))?;
    let lv = c.levelize();
    let (mut evs, why) = common::evaluators(a.backend, &lv)?;
    let mut outputs: Option<Batch> = None;
    let mut secs = Vec::new();
    for ev in evs.iter_mut() {
        let (out, s) = common::timed_eval(ev.as_mut(), &batch)?;
        secs.push((ev.name(), s));
        if let Some(prev) = &outputs {
            if prev != &out {
                return Err(CliError::Failure(
                    "the CPU and GPU evaluators disagree on this circuit".into(),
                ));
            }
        }
        outputs = Some(out);
    }
    let out = outputs.ok_or_else(|| CliError::Failure("no evaluator ran".into()))?;
    let mut text = String::new();
    for inst in out.to_instances() {
        text.push_str(&format_input_vector(&inst));
        text.push('\n');
    }
    match &a.out {
        Some(p) => std::fs::write(p, &text)
            .map_err(|e| CliError::User(format!("cannot write {}: {e}", p.display())))?,
        None if a.json => {
            return Err(CliError::User(
                "--json prints the summary on stdout: give --out for the outputs".into(),
            ))
        }
        None => {
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    if a.json {
        let v = serde_json::json!({"instances": vectors.len(), "inputs": c.num_inputs(),
            "outputs": c.num_outputs(), "backend": why,
            "eval_seconds": secs.iter().map(|(_, s)| s).sum::<f64>()});
        println!("{v}");
    } else if a.out.is_some() {
        println!("evaluated {} instances ({why})", vectors.len());
    }
    Ok(Outcome::Ok)
}

/// `tcvar export`.
pub fn export(a: &ExportArgs) -> Result<Outcome, CliError> {
    let c = load(&a.circuit)?;
    if a.module.is_empty()
        || !a
            .module
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        || a.module.starts_with(|ch: char| ch.is_ascii_digit())
    {
        return Err(CliError::User(format!(
            "--module {:?}: use letters, digits and '_', not starting with a digit",
            a.module
        )));
    }
    std::fs::create_dir_all(&a.verilog)
        .map_err(|e| CliError::User(format!("cannot create {}: {e}", a.verilog.display())))?;
    let v = a.verilog.join(format!("{}.v", a.module));
    let tb = a.verilog.join(format!("{}_tb.v", a.module));
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&v)
            .map_err(|e| CliError::User(format!("cannot write {}: {e}", v.display())))?,
    );
    c.write_verilog(&a.module, &mut f)?;
    f.flush()?;
    std::fs::write(&tb, c.verilog_testbench(&a.module))
        .map_err(|e| CliError::User(format!("cannot write {}: {e}", tb.display())))?;
    println!(
        "wrote {} and {} (run: iverilog -o sim {} {} && vvp sim +vectors=INPUTS)",
        v.display(),
        tb.display(),
        v.display(),
        tb.display()
    );
    Ok(Outcome::Ok)
}
