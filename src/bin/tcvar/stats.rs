//! `tcvar stats`: the exact size and depth of a configuration's circuit, from its uniform
//! program (never materialised), for any preset and format.

use std::time::Instant;

use clap::{Args, ValueEnum};
use tcvar::circuit::program::Program;
use tcvar::circuit::stats::json_string;
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
    #[arg(long, value_delimiter = ',')]
    pub scales: Option<Vec<usize>>,
    /// Keep only the first N transformer blocks (the weights of those blocks are the preset's).
    #[arg(long)]
    pub blocks: Option<usize>,
    /// Override the transformer width C (a multiple of the number of heads).
    #[arg(long)]
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

/// The top-level phases of a program: `(name, gates, terms, depth)`.
pub fn phases(p: &Program) -> Vec<(String, u128, u128, u32)> {
    p.region_counts()
        .into_iter()
        .filter(|r| !r.path.is_empty() && !r.path.contains('.'))
        .map(|r| (r.path, r.counts.gates, r.counts.terms, r.depth))
        .collect()
}

fn json_map(items: impl Iterator<Item = (String, String)>) -> String {
    let v: Vec<String> = items
        .map(|(k, v)| format!("{}:{v}", json_string(&k)))
        .collect();
    format!("{{{}}}", v.join(","))
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
    let regions = p.region_counts();
    let seconds = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let ph = phases(p);
    let rss = peak_rss_bytes();
    if a.json {
        let regions_json: Vec<String> = regions
            .iter()
            .map(|r| {
                format!(
                    "{{\"path\":{},\"gates\":{},\"terms\":{},\"wires\":{},\"instances\":{},\"applications\":{},\"depth\":{}}}",
                    json_string(&r.path),
                    r.counts.gates,
                    r.counts.terms,
                    r.counts.wires,
                    r.counts.instances,
                    r.counts.applications,
                    r.depth
                )
            })
            .collect();
        println!(
            "{{\"config\":{},\"p\":{},\"q\":{},\"patch_nums\":{:?},\"blocks\":{},\"width\":{},\"until\":{},\"gates\":{},\"terms\":{},\"wires\":{},\"depth\":{},\"depth_by_phase\":{},\"gates_by_phase\":{},\"terms_by_phase\":{},\"templates\":{},\"applications\":{},\"instances\":{},\"template_seconds\":{:.3},\"slowest_template\":{},\"seconds\":{:.3},\"peak_rss_bytes\":{},\"regions\":[{}]}}",
            json_string(&a.scope.config),
            cfg.fmt.p(),
            cfg.fmt.q(),
            cfg.patch_nums,
            cfg.depth,
            cfg.width,
            json_string(match rec.until {
                Until::Tokens => "tokens",
                Until::Image => "image",
            }),
            c.gates,
            c.terms,
            c.wires,
            depth,
            json_map(ph.iter().map(|x| (x.0.clone(), x.3.to_string()))),
            json_map(ph.iter().map(|x| (x.0.clone(), x.1.to_string()))),
            json_map(ph.iter().map(|x| (x.0.clone(), x.2.to_string()))),
            p.templates.len(),
            c.applications,
            c.instances,
            rec.template_seconds,
            rec.template_log
                .iter()
                .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
                .map_or("null".into(), |t| format!(
                    "{{\"key\":{},\"seconds\":{:.3},\"gates\":{},\"terms\":{}}}",
                    json_string(&t.key),
                    t.seconds,
                    t.gates,
                    t.terms
                )),
            seconds,
            rss.map_or("null".into(), |r| r.to_string()),
            regions_json.join(",")
        );
    } else {
        println!(
            "{} in {} ({} scales {:?}, {} blocks, width {}, up to the {}):",
            a.scope.config,
            cfg.fmt,
            cfg.num_scales(),
            cfg.patch_nums,
            cfg.depth,
            cfg.width,
            match rec.until {
                Until::Tokens => "tokens",
                Until::Image => "image",
            }
        );
        println!(
            "  gates {:.4e}  terms {:.4e}  wires {:.4e}  depth {}",
            c.gates as f64, c.terms as f64, c.wires as f64, depth
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
