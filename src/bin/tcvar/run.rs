//! `tcvar run`: build a circuit, evaluate a batch, cross-check against the reference, report.

use std::time::Instant;

use clap::Args;
use rand::{Rng, SeedableRng};
use tcvar::circuit::{Builder, Circuit};
use tcvar::eval::Batch;
use tcvar::float::{Float, Format};
use tcvar::gadgets::float::{sum::dot, FloatWord};

use crate::common::{self, Backend, CliError, Outcome};

/// `tcvar run` options.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Significand bits p of the format F(p, q).
    #[arg(long, default_value_t = 8)]
    pub p: u32,
    /// Exponent bits q of the format F(p, q).
    #[arg(long, default_value_t = 5)]
    pub q: u32,
    /// Vector length of the dot-product circuit.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Number of instances evaluated in one batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Evaluator: auto (GPU when an adapter exists, else CPU), cpu, gpu, both.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The defaults of plain `tcvar`.
    pub fn default_args() -> RunArgs {
        RunArgs {
            p: 8,
            q: 5,
            n: 16,
            batch: 256,
            backend: Backend::Auto,
            seed: 1,
            json: false,
            quiet: false,
        }
    }
}

fn random_value(fmt: Format, rng: &mut impl Rng) -> Float {
    // A spread of magnitudes around 1, both signs, some zeros.
    if rng.random_range(0..16) == 0 {
        return fmt.zero();
    }
    let x: f64 = rng.random_range(-4.0..4.0) * 2f64.powi(rng.random_range(-3..3));
    fmt.from_f64(x).unwrap_or(fmt.zero())
}

/// The dot-product job: circuit `round(sum_i round(x_i * y_i))` over 2n inputs.
fn build_dot(fmt: Format, n: usize) -> Result<Circuit, CliError> {
    let mut b = Builder::new();
    let mk = |b: &mut Builder, name: String| FloatWord::input(b, &name, fmt);
    let xs: Vec<FloatWord> = (0..n)
        .map(|i| mk(&mut b, format!("x{i}")))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::User(e.to_string()))?;
    let ys: Vec<FloatWord> = (0..n)
        .map(|i| mk(&mut b, format!("y{i}")))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::User(e.to_string()))?;
    let d = b
        .region("dot", |b| dot(b, &xs, &ys))
        .map_err(|e| CliError::User(format!("cannot build the dot product: {e}")))?;
    b.output_word("dot", &d.bits)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    Ok(b.finish())
}

/// `tcvar run`.
pub fn run(a: &RunArgs) -> Result<Outcome, CliError> {
    let fmt = common::format(a.p, a.q)?;
    if a.n == 0 {
        return Err(CliError::User("--n must be at least 1".into()));
    }
    if a.batch == 0 {
        return Err(CliError::User("--batch must be at least 1".into()));
    }
    let show = common::progress_allowed(a.quiet, a.json);
    let t0 = Instant::now();
    let pb = common::spinner(
        show,
        &format!("building the dot-product circuit, n = {}", a.n),
    );
    let circuit = build_dot(fmt, a.n)?;
    let lv = circuit.levelize();
    pb.finish_and_clear();
    let build_seconds = t0.elapsed().as_secs_f64();
    let stats = circuit.stats_with_levelized(&lv);

    // Inputs and the reference outputs.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let widths = vec![fmt.width(); 2 * a.n];
    let mut values = Vec::with_capacity(a.batch);
    let mut expected = Vec::with_capacity(a.batch);
    for _ in 0..a.batch {
        let xs: Vec<Float> = (0..2 * a.n).map(|_| random_value(fmt, &mut rng)).collect();
        let r = fmt
            .dot(&xs[..a.n], &xs[a.n..])
            .map_err(|e| CliError::Failure(e.to_string()))?;
        expected.push(vec![r.to_bits()]);
        values.push(xs.iter().map(|v| v.to_bits()).collect::<Vec<u64>>());
    }
    let inputs =
        Batch::pack_fields(&widths, &values).map_err(|e| CliError::Failure(e.to_string()))?;

    let (mut evs, why) = common::evaluators(a.backend, &lv)?;
    if !a.json {
        println!("backend: {why}");
    }
    let mut results = Vec::new();
    let mut all_exact = true;
    for ev in evs.iter_mut() {
        let (out, secs) = common::timed_eval(ev.as_mut(), &inputs)?;
        let got = out
            .unpack_fields(&[fmt.width()])
            .map_err(|e| CliError::Failure(e.to_string()))?;
        let mismatches = got.iter().zip(&expected).filter(|(g, e)| g != e).count();
        all_exact &= mismatches == 0;
        let geps = stats.gates as f64 * a.batch as f64 / secs.max(1e-12);
        results.push((ev.name(), secs, geps, mismatches));
    }
    if a.json {
        let evals: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, secs, geps, mm)| {
                serde_json::json!({"evaluator": name, "eval_seconds": secs,
                    "gate_evals_per_second": geps, "mismatches": mm})
            })
            .collect();
        let v = serde_json::json!({
            "job": "dot", "n": a.n, "p": a.p, "q": a.q, "batch": a.batch,
            "backend": results.iter().map(|r| r.0.clone()).collect::<Vec<_>>().join(", "),
            "gates": stats.gates, "wires": stats.wires, "depth": stats.depth,
            "build_seconds": build_seconds,
            "eval_seconds": results.first().map(|r| r.1).unwrap_or(0.0),
            "gate_evals_per_second": results.first().map(|r| r.2).unwrap_or(0.0),
            "bit_exact": all_exact, "evaluators": evals,
        });
        println!("{v}");
    } else {
        println!(
            "circuit: dot product of two {}-vectors in {fmt}: {} gates, {} wires, depth {}, built in {:.2} s",
            a.n, stats.gates, stats.wires, stats.depth, build_seconds
        );
        for (name, secs, geps, mm) in &results {
            println!(
                "{name}: batch {} in {:.4} s, {:.3e} gate-evals/s, {}",
                a.batch,
                secs,
                geps,
                if *mm == 0 {
                    "every output equals the F(p,q) reference bit for bit".to_string()
                } else {
                    format!("{mm} of {} instances DIFFER from the reference", a.batch)
                }
            );
        }
    }
    Ok(if all_exact {
        Outcome::Ok
    } else {
        Outcome::Mismatch
    })
}
