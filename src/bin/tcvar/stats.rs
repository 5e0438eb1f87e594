//! `tcvar stats`: the exact size and depth of a configuration's circuit, from its uniform
//! program (never materialised), for any preset and format.

use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use tcvar::circuit::program::Program;
use tcvar::model::ops::SeededWeights;
use tcvar::model::var::config::{VarConfig, PRESETS};
use tcvar::model::var::pass::{record_with, CompileOptions, RecordedVar, Until};

use crate::common::{self, CliError, Outcome};

/// How far the pass runs (`--until`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum UntilArg {
    /// The token maps of every scale only (no final reconstruction, no decoder).
    Tokens,
    /// Tokens and the decoded image.
    #[default]
    Image,
}

impl From<UntilArg> for Until {
    fn from(u: UntilArg) -> Until {
        match u {
            UntilArg::Tokens => Until::Tokens,
            UntilArg::Image => Until::Image,
        }
    }
}

/// The configuration and the part of the pass a command works on.
#[derive(Args, Debug, Clone)]
pub struct ScopeArgs {
    /// Configuration preset (micro, tiny, d16, d20, d24, d30).
    #[arg(long, default_value = "micro")]
    pub config: String,
    /// Override the preset's significand bits p.
    #[arg(long)]
    pub p: Option<u32>,
    /// Override the preset's exponent bits q.
    #[arg(long)]
    pub q: Option<u32>,
    /// Override the preset's token-map schedule (patch sizes, e.g. `1,2,3`).
    #[arg(long, value_delimiter = ',', value_parser = crate::args::patch)]
    pub scales: Option<Vec<usize>>,
    /// Keep only the first N transformer blocks (the weights of those blocks are the preset's).
    #[arg(long, value_parser = crate::args::blocks)]
    pub blocks: Option<usize>,
    /// Override the transformer width C (a multiple of the number of heads).
    #[arg(long, value_parser = crate::args::width)]
    pub width: Option<usize>,
    /// Run the pass up to the token maps, or to the image.
    #[arg(long, value_enum, default_value_t = UntilArg::Image)]
    pub until: UntilArg,
}

impl ScopeArgs {
    /// The configuration with every override applied (validated).
    pub fn config(&self) -> Result<VarConfig, CliError> {
        let mut cfg = crate::run::config(&self.config, self.p, self.q)?;
        if let Some(s) = &self.scales {
            cfg.patch_nums = s.clone();
        }
        if let Some(b) = self.blocks {
            if b == 0 || b > cfg.depth {
                return Err(CliError::User(format!(
                    "--blocks {b}: the preset has {} blocks (1..={} allowed)",
                    cfg.depth, cfg.depth
                )));
            }
            cfg.depth = b;
        }
        if let Some(w) = self.width {
            cfg.width = w;
        }
        cfg.validate().map_err(|e| CliError::User(e.to_string()))?;
        Ok(cfg)
    }
}

/// `tcvar stats` options.
#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Seed of the generated weights (only the lookup tables' values enter the counts).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// Peak resident memory of this process so far, in bytes (Linux; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Record the program of `cfg` with seeded weights.
pub fn record(
    cfg: &VarConfig,
    seed: u64,
    until: Until,
    progress: bool,
) -> Result<RecordedVar, CliError> {
    let w = SeededWeights::new(cfg, seed).map_err(|e| CliError::User(e.to_string()))?;
    record_with(cfg, &w, CompileOptions { progress, until })
        .map_err(|e| CliError::Failure(format!("cannot record the program: {e}")))
}

/// One top-level phase: `(name, gates, terms, depth)`.
pub type Phase = (String, u128, u128, u32);

/// The top-level phases of a program: `(name, gates, terms, depth)`.
pub fn phases(p: &Program) -> Vec<Phase> {
    p.region_counts()
        .into_iter()
        .filter(|r| !r.path.is_empty() && !r.path.contains('.'))
        .map(|r| (r.path, r.counts.gates, r.counts.terms, r.depth))
        .collect()
}

/// A count as a JSON number (a decimal string in the unlikely case it exceeds u64).
pub fn count_json(v: u128) -> Value {
    u64::try_from(v).map_or_else(|_| json!(v.to_string()), |x| json!(x))
}

fn until_name(u: Until) -> &'static str {
    match u {
        Until::Tokens => "tokens",
        Until::Image => "image",
    }
}

/// The `--json` object of `tcvar stats` (fields listed in the README).
fn stats_json(a: &StatsArgs, cfg: &VarConfig, rec: &RecordedVar, seconds: f64) -> Value {
    let p = &rec.program;
    let c = p.counts();
    let ph = phases(p);
    let by_phase = |f: &dyn Fn(&Phase) -> Value| -> serde_json::Map<String, Value> {
        ph.iter().map(|x| (x.0.clone(), f(x))).collect()
    };
    let regions: Vec<Value> = p
        .region_counts()
        .iter()
        .map(|r| {
            json!({"path": r.path, "gates": count_json(r.counts.gates),
                "terms": count_json(r.counts.terms), "fan_in": count_json(r.counts.fan_in),
                "instances": count_json(r.counts.instances),
                "applications": count_json(r.counts.applications as u128), "depth": r.depth})
        })
        .collect();
    let slowest = rec
        .template_log
        .iter()
        .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .map_or(Value::Null, |t| {
            json!({"key": t.key, "seconds": round3(t.seconds), "gates": t.gates, "terms": t.terms})
        });
    json!({"config": a.scope.config, "p": cfg.fmt.p(), "q": cfg.fmt.q(),
        "patch_nums": cfg.patch_nums, "blocks": cfg.depth, "width": cfg.width,
        "until": until_name(rec.until), "gates": count_json(c.gates),
        "terms": count_json(c.terms), "fan_in": count_json(c.fan_in), "depth": p.depth(),
        "depth_by_phase": by_phase(&|x| json!(x.3)),
        "gates_by_phase": by_phase(&|x| count_json(x.1)),
        "terms_by_phase": by_phase(&|x| count_json(x.2)),
        "templates": p.templates.len(), "applications": count_json(c.applications as u128),
        "instances": count_json(c.instances),
        "template_seconds": round3(rec.template_seconds), "slowest_template": slowest,
        "seconds": round3(seconds), "peak_rss_bytes": peak_rss_bytes(), "regions": regions})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `tcvar stats`.
pub fn stats(a: &StatsArgs) -> Result<Outcome, CliError> {
    if !PRESETS.contains(&a.scope.config.as_str()) {
        return Err(CliError::User(format!(
            "unknown config {:?}; presets: {}",
            a.scope.config,
            PRESETS.join(", ")
        )));
    }
    let cfg = a.scope.config()?;
    let t = Instant::now();
    let pb = common::spinner(
        common::progress_allowed(a.quiet, a.json),
        &format!("recording {} in {}", a.scope.config, cfg.fmt),
    );
    let rec = record(&cfg, a.seed, a.scope.until.into(), false)?;
    let p = &rec.program;
    let c = p.counts();
    let depth = p.depth();
    let seconds = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let ph = phases(p);
    let rss = peak_rss_bytes();
    if a.json {
        println!("{}", stats_json(a, &cfg, &rec, seconds));
    } else {
        println!(
            "{} in {} ({} scales {:?}, {} blocks, width {}, up to the {}):",
            a.scope.config,
            cfg.fmt,
            cfg.num_scales(),
            cfg.patch_nums,
            cfg.depth,
            cfg.width,
            until_name(rec.until)
        );
        println!(
            "  gates {:.4e}  terms {:.4e}  fan-in {:.4e}  depth {}",
            c.gates as f64, c.terms as f64, c.fan_in as f64, depth
        );
        println!(
            "  {} templates, {} applications, {} instances; recorded in {:.2} s ({:.2} s building templates){}",
            p.templates.len(),
            c.applications,
            c.instances,
            seconds,
            rec.template_seconds,
            rss.map_or(String::new(), |r| format!(", peak memory {:.2} GB", r as f64 / 1e9))
        );
        println!(
            "  {:<16} {:>12} {:>12} {:>6}",
            "phase", "gates", "terms", "depth"
        );
        for (name, g, tm, d) in &ph {
            println!(
                "  {:<16} {:>12.4e} {:>12.4e} {:>6}",
                name, *g as f64, *tm as f64, d
            );
        }
        let mut slow = rec.template_log.clone();
        slow.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        println!("  slowest templates to build:");
        for t in slow.iter().take(5) {
            println!(
                "    {:>7.2} s {:>10} gates {:>12} terms  {}",
                t.seconds, t.gates, t.terms, t.key
            );
        }
    }
    Ok(Outcome::Ok)
}
