//! `tcvar scale`: depth and size sweeps over n (tokens, pixels), d (width) and the number of
//! scales, for the paper's blocks and the full VAR pass, as CSV and SVG plots with fitted
//! log-log slopes: the measurements behind Theorem 5.11.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use plotters::prelude::*;
use tcvar::model::blocks::sweep::{loglog_slope, sweep, to_csv, SweepRow};
use tcvar::model::ops::record::TemplateCache;
use tcvar::model::ops::SeededWeights;
use tcvar::model::var::config::VarConfig;
use tcvar::model::var::pass::{record_cached, CompileOptions, Until};

use crate::common::{self, CliError, Outcome};

/// Largest n and d of the block sweep (explicit circuits: larger ones do not fit in memory).
const MAX_SWEEP_N: usize = 4096;
/// Largest transformer layer count of the block sweep.
const MAX_SWEEP_M: usize = 64;
/// Largest number of scales of the model sweep.
const MAX_SWEEP_SCALES: usize = 32;

fn parse_list(s: &str, max: usize, what: &str) -> Result<Vec<usize>, CliError> {
    crate::args::list(s, max, what).map_err(CliError::User)
}

/// `tcvar scale` options.
#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// Significand bits p of the sweep's format.
    #[arg(long, default_value_t = 4)]
    pub p: u32,
    /// Exponent bits q of the sweep's format.
    #[arg(long, default_value_t = 4)]
    pub q: u32,
    /// Token / pixel counts n of the block sweep.
    #[arg(long, default_value = "1,4,16")]
    pub ns: String,
    /// Widths d of the block sweep.
    #[arg(long, default_value = "2,4,8")]
    pub ds: String,
    /// Transformer layer counts m (Definition 4.9) of the block sweep.
    #[arg(long, default_value = "1,2")]
    pub ms: String,
    /// Numbers of scales K of the full-model sweep (scales 1, 2, ..., K).
    #[arg(long, default_value = "1,2,3")]
    pub scales: String,
    /// Widths of the full-model sweep.
    #[arg(long, default_value = "4,8")]
    pub widths: String,
    /// Skip the full-model sweeps.
    #[arg(long)]
    pub no_model: bool,
    /// Widths C of the released-architecture sweep (the whole pass of `--released-config` at
    /// width C, heads of dimension 64; exact counts, never built); `none` skips it.
    #[arg(long, default_value = "8,16,32,64,128,256,512,1024,1920")]
    pub released_widths: String,
    /// The released configuration of that sweep.
    #[arg(long, default_value = "d30")]
    pub released_config: String,
    /// Format F(p, q) of that sweep, as `p,q`.
    #[arg(long, default_value = "11,6")]
    pub released_format: String,
    /// Directory for blocks.csv, model.csv and the SVG plots.
    #[arg(long, default_value = "scale-out")]
    pub out: PathBuf,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// One row of the full-model sweeps (exact counts of the uniform program).
pub struct ModelRow {
    scales: usize,
    width: usize,
    heads: usize,
    depth: u32,
    gates: u128,
    terms: u128,
    fan_in: u128,
    phase_depth: BTreeMap<String, u32>,
}

/// The micro preset with `k` scales (1, 2, ..., k) and width `d` (one head).
fn model_config(fmt: tcvar::float::Format, k: usize, d: usize) -> Result<VarConfig, CliError> {
    let mut cfg = VarConfig::preset("micro").map_err(|e| CliError::Failure(e.to_string()))?;
    cfg.fmt = fmt;
    cfg.patch_nums = (1..=k).collect();
    cfg.width = d;
    cfg.heads = 1;
    cfg.validate()
        .map_err(|e| CliError::User(format!("model sweep at K = {k}, d = {d}: {e}")))?;
    Ok(cfg)
}

/// The released configuration `name` at width `c`: heads of dimension 64 (one head below 64),
/// everything else (blocks, scales, vocabulary, VQ-VAE) as released.
fn released_config(name: &str, fmt: tcvar::float::Format, c: usize) -> Result<VarConfig, CliError> {
    let mut cfg = VarConfig::preset(name).map_err(|e| CliError::User(e.to_string()))?;
    cfg.fmt = fmt;
    cfg.width = c;
    cfg.heads = if c >= 64 && c % 64 == 0 { c / 64 } else { 1 };
    cfg.validate()
        .map_err(|e| CliError::User(format!("released sweep at C = {c}: {e}")))?;
    Ok(cfg)
}

/// Record `cfg`'s program (templates shared through `cache`) and measure it.
fn model_row(cfg: &VarConfig, cache: &TemplateCache) -> Result<ModelRow, CliError> {
    let w = SeededWeights::new(cfg, 0).map_err(|e| CliError::Failure(e.to_string()))?;
    let rec = record_cached(
        cfg,
        &w,
        CompileOptions {
            progress: false,
            until: Until::Image,
        },
        Some(cache.clone()),
    )
    .map_err(|e| CliError::User(format!("width {}: {e}", cfg.width)))?;
    let p = &rec.program;
    let c = p.counts();
    Ok(ModelRow {
        scales: cfg.num_scales(),
        width: cfg.width,
        heads: cfg.heads,
        depth: p.depth(),
        gates: c.gates,
        terms: c.terms,
        fan_in: c.fan_in,
        phase_depth: crate::stats::phases(p)
            .into_iter()
            .map(|(n, _, _, d)| (n, d))
            .collect(),
    })
}

fn model_sweep(
    fmt: tcvar::float::Format,
    ks: &[usize],
    ds: &[usize],
    show: bool,
) -> Result<Vec<ModelRow>, CliError> {
    let cache = TemplateCache::default();
    let mut rows = Vec::new();
    for &k in ks {
        for &d in ds {
            let pb = common::spinner(show, &format!("VAR pass, {k} scales, width {d}"));
            rows.push(model_row(&model_config(fmt, k, d)?, &cache)?);
            pb.finish_and_clear();
        }
    }
    Ok(rows)
}

fn released_sweep(
    name: &str,
    fmt: tcvar::float::Format,
    cs: &[usize],
    show: bool,
) -> Result<Vec<ModelRow>, CliError> {
    let cache = TemplateCache::default();
    let mut rows = Vec::new();
    for &c in cs {
        let pb = common::spinner(show, &format!("{name} at width {c} ({fmt})"));
        rows.push(model_row(&released_config(name, fmt, c)?, &cache)?);
        pb.finish_and_clear();
    }
    Ok(rows)
}

fn model_csv(rows: &[ModelRow]) -> String {
    let phases: Vec<String> = rows
        .first()
        .map(|r| r.phase_depth.keys().cloned().collect())
        .unwrap_or_default();
    let mut csv = String::from("scales,width,heads,depth,gates,terms,fan_in");
    for p in &phases {
        csv.push_str(&format!(",depth_{p}"));
    }
    csv.push('\n');
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}",
            r.scales, r.width, r.heads, r.depth, r.gates, r.terms, r.fan_in
        ));
        for p in &phases {
            csv.push_str(&format!(",{}", r.phase_depth.get(p).copied().unwrap_or(0)));
        }
        csv.push('\n');
    }
    csv
}

fn model_json(rows: &[ModelRow]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            serde_json::json!({"scales": r.scales, "width": r.width, "heads": r.heads,
                "depth": r.depth, "gates": r.gates.to_string(), "terms": r.terms.to_string(),
                "fan_in": r.fan_in.to_string(), "depth_by_phase": r.phase_depth})
        })
        .collect()
}

type Series = (String, Vec<(f64, f64)>);

fn svg_plot(
    path: &Path,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    log: bool,
    series: &[Series],
) -> Result<(), CliError> {
    let err = |e: String| CliError::Failure(format!("plot {}: {e}", path.display()));
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    if pts.is_empty() {
        return Ok(());
    }
    let tf = |v: f64| if log { v.max(1e-9).log10() } else { v };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in &pts {
        x0 = x0.min(tf(x));
        x1 = x1.max(tf(x));
        y0 = y0.min(tf(y));
        y1 = y1.max(tf(y));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.08;
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| err(e.to_string()))?;
    let xl = if log {
        format!("log10 {xlabel}")
    } else {
        xlabel.to_string()
    };
    let yl = if log {
        format!("log10 {ylabel}")
    } else {
        ylabel.to_string()
    };
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_desc(yl)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, (name, s)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let data: Vec<(f64, f64)> = s.iter().map(|&(x, y)| (tf(x), tf(y))).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

fn by_block(rows: &[SweepRow]) -> BTreeMap<String, Vec<&SweepRow>> {
    let mut m: BTreeMap<String, Vec<&SweepRow>> = BTreeMap::new();
    for r in rows {
        let key = if r.m > 0 {
            format!("{} m={}", r.block, r.m)
        } else {
            r.block.to_string()
        };
        m.entry(key).or_default().push(r);
    }
    m
}

/// The parsed and validated lists of `tcvar scale`.
struct Lists {
    ns: Vec<usize>,
    ds: Vec<usize>,
    ms: Vec<usize>,
    ks: Vec<usize>,
    widths: Vec<usize>,
    released: Vec<usize>,
    released_format: tcvar::float::Format,
}

impl Lists {
    fn parse(a: &ScaleArgs) -> Result<Lists, CliError> {
        let released = if a.no_model || a.released_widths == "none" {
            Vec::new()
        } else {
            parse_list(
                &a.released_widths,
                crate::args::MAX_WIDTH,
                "--released-widths",
            )?
        };
        let v = parse_list(&a.released_format, 64, "--released-format")?;
        if v.len() != 2 {
            return Err(CliError::User(format!(
                "--released-format: expected p,q, got {:?}",
                a.released_format
            )));
        }
        Ok(Lists {
            ns: parse_list(&a.ns, MAX_SWEEP_N, "--ns")?,
            ds: parse_list(&a.ds, MAX_SWEEP_N, "--ds")?,
            ms: parse_list(&a.ms, MAX_SWEEP_M, "--ms")?,
            ks: parse_list(&a.scales, MAX_SWEEP_SCALES, "--scales")?,
            widths: parse_list(&a.widths, crate::args::MAX_WIDTH, "--widths")?,
            released,
            released_format: common::format(v[0] as u32, v[1] as u32)?,
        })
    }
}

/// Log-log slopes of the fan-in sum in n and in d, per block: `(block, slope in n, slope in d)`.
type Slopes = Vec<(String, Option<f64>, Option<f64>)>;

/// The block sweep: rows, blocks.csv, the three plots and the fitted slopes.
fn block_sweep(
    a: &ScaleArgs,
    fmt: tcvar::float::Format,
    l: &Lists,
    show: bool,
) -> Result<(Vec<SweepRow>, Slopes), CliError> {
    let pb = common::spinner(show, "sweeping the paper's blocks");
    let rows =
        sweep(fmt, &l.ns, &l.ds, &l.ms).map_err(|e| CliError::User(format!("block sweep: {e}")))?;
    pb.finish_and_clear();
    std::fs::write(a.out.join("blocks.csv"), to_csv(&rows))?;
    let (dmax, nmax) = (
        *l.ds.iter().max().unwrap_or(&1),
        *l.ns.iter().max().unwrap_or(&1),
    );
    let mut slopes = Vec::new();
    let mut depth_n: Vec<Series> = Vec::new();
    let mut fan_in_n: Vec<Series> = Vec::new();
    let mut fan_in_d: Vec<Series> = Vec::new();
    for (name, rs) in &by_block(&rows) {
        let series = |keep: &dyn Fn(&SweepRow) -> bool, xy: &dyn Fn(&SweepRow) -> (f64, f64)| {
            rs.iter()
                .filter(|r| keep(r))
                .map(|r| xy(r))
                .collect::<Vec<_>>()
        };
        let in_n = series(&|r| r.d == dmax, &|r| (r.n as f64, r.fan_in as f64));
        let in_d = series(&|r| r.n == nmax, &|r| (r.d as f64, r.fan_in as f64));
        depth_n.push((
            name.clone(),
            series(&|r| r.d == dmax, &|r| (r.n as f64, r.depth as f64)),
        ));
        slopes.push((name.clone(), loglog_slope(&in_n), loglog_slope(&in_d)));
        fan_in_n.push((name.clone(), in_n));
        fan_in_d.push((name.clone(), in_d));
    }
    #[allow(clippy::type_complexity)]
    let plots: [(&str, String, &str, &str, bool, &[Series]); 3] = [
        (
            "blocks_depth_vs_n.svg",
            format!("block depth vs n (d = {dmax}, {fmt})"),
            "n",
            "depth",
            false,
            &depth_n,
        ),
        (
            "blocks_fan_in_vs_n.svg",
            format!("block fan-in vs n (d = {dmax}, {fmt})"),
            "n",
            "fan-in",
            true,
            &fan_in_n,
        ),
        (
            "blocks_fan_in_vs_d.svg",
            format!("block fan-in vs d (n = {nmax}, {fmt})"),
            "d",
            "fan-in",
            true,
            &fan_in_d,
        ),
    ];
    for (file, title, x, y, log, series) in plots {
        svg_plot(&a.out.join(file), &title, x, y, log, series)?;
    }
    Ok((rows, slopes))
}

/// The model sweep over scales and widths: model.csv and its depth plot.
fn model_part(
    a: &ScaleArgs,
    fmt: tcvar::float::Format,
    l: &Lists,
    show: bool,
) -> Result<Vec<ModelRow>, CliError> {
    if a.no_model {
        return Ok(Vec::new());
    }
    let model = model_sweep(fmt, &l.ks, &l.widths, show)?;
    if model.is_empty() {
        return Ok(model);
    }
    std::fs::write(a.out.join("model.csv"), model_csv(&model))?;
    let series: Vec<Series> = l
        .widths
        .iter()
        .map(|&d| {
            let pts = model
                .iter()
                .filter(|r| r.width == d)
                .map(|r| (r.scales as f64, r.depth as f64))
                .collect();
            (format!("width {d}"), pts)
        })
        .collect();
    svg_plot(
        &a.out.join("model_depth_vs_scales.svg"),
        &format!("VAR pass depth vs number of scales ({fmt})"),
        "scales",
        "depth",
        false,
        &series,
    )?;
    Ok(model)
}

/// The released-architecture sweep over widths: released.csv, two plots, the size exponent.
fn released_part(
    a: &ScaleArgs,
    l: &Lists,
    show: bool,
) -> Result<(Vec<ModelRow>, Option<f64>), CliError> {
    let rfmt = l.released_format;
    let released = released_sweep(&a.released_config, rfmt, &l.released, show)?;
    let slope = loglog_slope(
        &released
            .iter()
            .map(|r| (r.width as f64, r.gates as f64))
            .collect::<Vec<_>>(),
    );
    if released.is_empty() {
        return Ok((released, slope));
    }
    std::fs::write(a.out.join("released.csv"), model_csv(&released))?;
    let pts = |f: &dyn Fn(&ModelRow) -> f64| -> Vec<(f64, f64)> {
        released.iter().map(|r| (r.width as f64, f(r))).collect()
    };
    svg_plot(
        &a.out.join("released_size_vs_width.svg"),
        &format!("{} pass size vs width C ({rfmt})", a.released_config),
        "C",
        "count",
        true,
        &[
            ("gates".into(), pts(&|r| r.gates as f64)),
            ("terms".into(), pts(&|r| r.terms as f64)),
        ],
    )?;
    svg_plot(
        &a.out.join("released_depth_vs_width.svg"),
        &format!("{} pass depth vs width C ({rfmt})", a.released_config),
        "C",
        "depth",
        false,
        &[("depth".into(), pts(&|r| r.depth as f64))],
    )?;
    Ok((released, slope))
}

/// Everything `tcvar scale` measured.
struct Sweeps {
    rows: Vec<SweepRow>,
    slopes: Slopes,
    model: Vec<ModelRow>,
    released: Vec<ModelRow>,
    released_slope: Option<f64>,
}

fn scale_json(
    a: &ScaleArgs,
    fmt: tcvar::float::Format,
    l: &Lists,
    s: &Sweeps,
) -> serde_json::Value {
    let rfmt = l.released_format;
    serde_json::json!({
        "p": fmt.p(), "q": fmt.q(), "out": a.out.display().to_string(),
        "blocks": s.rows.iter().map(|r| serde_json::json!({"block": r.block, "n": r.n, "d": r.d,
            "m": r.m, "depth": r.depth, "bound": r.bound, "gates": r.gates, "fan_in": r.fan_in,
            "forms": r.forms, "form_terms": r.form_terms})).collect::<Vec<_>>(),
        "slopes": s.slopes.iter().map(|(n, sn, sd)| serde_json::json!({"block": n,
            "fan_in_slope_n": sn, "fan_in_slope_d": sd})).collect::<Vec<_>>(),
        "model": model_json(&s.model),
        "released": {"config": a.released_config, "p": rfmt.p(), "q": rfmt.q(),
            "rows": model_json(&s.released), "gates_slope_in_width": s.released_slope},
    })
}

fn print_text(a: &ScaleArgs, l: &Lists, s: &Sweeps) {
    let (dmax, nmax) = (
        *l.ds.iter().max().unwrap_or(&1),
        *l.ns.iter().max().unwrap_or(&1),
    );
    print!("{}", to_csv(&s.rows));
    println!("fitted log-log slopes of the fan-in sum (n at d = {dmax}; d at n = {nmax}):");
    for (name, sn, sd) in &s.slopes {
        let f = |s: &Option<f64>| s.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        println!("  {name:<20} in n: {:>6}   in d: {:>6}", f(sn), f(sd));
    }
    for r in &s.model {
        let phases: Vec<String> = r
            .phase_depth
            .iter()
            .map(|(p, d)| format!("{p} {d}"))
            .collect();
        println!(
            "VAR pass, {} scales, width {}: depth {} ({}), {} gates, fan-in {}",
            r.scales,
            r.width,
            r.depth,
            phases.join(", "),
            r.gates,
            r.fan_in
        );
    }
    for r in &s.released {
        println!(
            "{} at C = {} ({} heads, {}): depth {}, {:.4e} gates, {:.4e} terms",
            a.released_config,
            r.width,
            r.heads,
            l.released_format,
            r.depth,
            r.gates as f64,
            r.terms as f64
        );
    }
    if let Some(x) = s.released_slope {
        println!("fitted size exponent in C (log-log slope of gates): {x:.3}");
    }
    println!("wrote CSV and SVG files to {}", a.out.display());
}

/// `tcvar scale`.
pub fn scale(a: &ScaleArgs) -> Result<Outcome, CliError> {
    let fmt = common::format(a.p, a.q)?;
    let l = Lists::parse(a)?;
    let show = common::progress_allowed(a.quiet, a.json);
    std::fs::create_dir_all(&a.out)
        .map_err(|e| CliError::User(format!("cannot create {}: {e}", a.out.display())))?;
    let (rows, slopes) = block_sweep(a, fmt, &l, show)?;
    let model = model_part(a, fmt, &l, show)?;
    let (released, released_slope) = released_part(a, &l, show)?;
    let s = Sweeps {
        rows,
        slopes,
        model,
        released,
        released_slope,
    };
    if a.json {
        println!("{}", scale_json(a, fmt, &l, &s));
    } else {
        print_text(a, &l, &s);
    }
    Ok(Outcome::Ok)
}
