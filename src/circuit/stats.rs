//! Size and depth statistics of a circuit and of each of its named regions (docs/circuit_format.md).
//!
//! Two kinds of size are reported side by side:
//! - the *theoretical size* of the threshold circuit, as in the paper: the number of gates and the
//!   fan-in sum, i.e. every gate's fan-in added up (a gate of a bank reading a form of `k`
//!   terms counts `k`, even though the form is shared);
//! - the *evaluation cost*: the number of distinct linear forms read by gates and their terms
//!   (each form counted once, however many thresholds its bank holds).
//!
//! The *majority-equivalent size* is the sum over gates of the sum of absolute weights: the size
//! of the circuit once every weighted gate is rewritten with unit weights (a weight `w` becomes
//! `|w|` copies of the wire), the measure under which weighted and unweighted threshold circuits
//! of polynomial size coincide.

use std::fmt;

use serde_json::json;

use super::ids::RegionId;
use super::levelize::Levelized;
use super::netlist::{Circuit, Node};

/// Statistics of a whole circuit or of one region (a region includes its subregions).
///
/// Invariants: `fan_in >= gates` when every form has at least one term; `form_terms <= fan_in`;
/// `majority_size >= fan_in`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CircuitStats {
    /// Depth in gates. For a circuit: [`Circuit::depth`] (the largest level of an output). For a
    /// region: the longest path that passes only through gates of the region and its subregions.
    pub depth: u32,
    /// Number of primary inputs (for a region: inputs created while the region was open).
    pub inputs: u64,
    /// Number of output bits (for a region: output bits driven by a wire of the region).
    pub outputs: u64,
    /// Number of threshold gates (every threshold of a bank is one gate).
    pub gates: u64,
    /// Sum of the fan-in of every gate: the theoretical wire count.
    pub fan_in: u64,
    /// Number of distinct linear forms read by the gates (evaluation cost: each form once).
    pub forms: u64,
    /// Number of terms of those forms (each form counted once).
    pub form_terms: u64,
    /// Largest |weight| of any term read by a gate (0 when there are no gates).
    pub max_abs_weight: u64,
    /// Majority-equivalent size: sum over gates of the sum of |weights| of the gate's form.
    pub majority_size: u128,
    /// Memory held by the circuit and its levelization; `None` for regions.
    pub memory: Option<MemoryStats>,
    /// Shape of the levelized circuit (only the cone of the outputs); `None` for regions.
    pub levelized: Option<LevelizedStats>,
}

/// Bytes held in memory by a circuit's arrays and by its [`Levelized`] form.
///
/// Counted from the arrays' lengths (not their capacities), names included.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MemoryStats {
    /// Bytes of the [`Circuit`]'s arrays (nodes, levels, forms, words, regions, node regions).
    pub circuit_bytes: u64,
    /// Bytes of the [`Levelized`] arrays ([`Levelized::bytes`]).
    pub levelized_bytes: u64,
}

/// The shape of a [`Levelized`] circuit: what an evaluator actually runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LevelizedStats {
    /// Number of levels (equals the circuit depth).
    pub levels: u32,
    /// Gates evaluated as unit-weight AND of literals.
    pub and_gates: u64,
    /// Gates evaluated as unit-weight OR of literals.
    pub or_gates: u64,
    /// Forms evaluated as weighted sums (banks).
    pub banks: u64,
    /// Thresholds read off those banks.
    pub thresholds: u64,
    /// Literals of AND/OR gates plus terms of banks ([`Levelized::num_terms`]).
    pub terms: u64,
    /// Word terms of the banks ([`Levelized::num_word_terms`]).
    pub word_terms: u64,
    /// Evaluation work per lane: literals, scalar form terms and word terms
    /// ([`Levelized::work_per_lane`]).
    pub work_per_lane: u64,
}

impl LevelizedStats {
    /// The shape of `lv`.
    pub fn of(lv: &Levelized) -> LevelizedStats {
        let mut s = LevelizedStats {
            levels: lv.depth(),
            terms: lv.num_terms(),
            word_terms: lv.num_word_terms(),
            work_per_lane: lv.work_per_lane(),
            ..Default::default()
        };
        for l in &lv.levels {
            s.and_gates += (l.or_start - l.and_start) as u64;
            s.or_gates += (l.or_end - l.or_start) as u64;
            s.banks += (l.form_end - l.form_start) as u64;
            s.thresholds += (l.threshold_end - l.threshold_start) as u64;
        }
        s
    }
}

/// Bytes held by the arrays of `c`, from their lengths.
pub fn circuit_bytes(c: &Circuit) -> u64 {
    let words_in: usize = c
        .inputs
        .iter()
        .map(|w| w.name.len() + 4 * w.bits.len())
        .sum();
    let words_out: usize = c
        .outputs
        .iter()
        .map(|w| w.name.len() + 4 * w.bits.len())
        .sum();
    let regions: usize = c.regions.iter().map(|r| r.name.len() + 8).sum();
    (c.nodes.len() * std::mem::size_of::<Node>()
        + 4 * c.levels.len()
        + 4 * c.forms.offsets.len()
        + 4 * c.forms.wires.len()
        + 8 * c.forms.weights.len()
        + 4 * c.node_region.len()
        + words_in
        + words_out
        + regions) as u64
}

/// Per-form sum of |weights| and max |weight|.
fn form_abs(c: &Circuit) -> (Vec<u64>, Vec<u64>) {
    let n = c.forms.len();
    let mut sum = Vec::with_capacity(n);
    let mut max = Vec::with_capacity(n);
    for f in 0..n {
        let r = c.forms.offsets[f] as usize..c.forms.offsets[f + 1] as usize;
        let ws = &c.forms.weights[r];
        sum.push(ws.iter().map(|w| w.unsigned_abs()).sum::<u64>());
        max.push(ws.iter().map(|w| w.unsigned_abs()).max().unwrap_or(0));
    }
    (sum, max)
}

/// Add node `w`'s contribution to the additive and max statistics in `s`.
fn accumulate(c: &Circuit, fsum: &[u64], fmax: &[u64], s: &mut CircuitStats, w: usize) {
    match c.nodes[w] {
        Node::Gate { form, .. } => {
            let k = (c.forms.offsets[form.index() + 1] - c.forms.offsets[form.index()]) as u64;
            s.gates += 1;
            s.fan_in += k;
            s.majority_size += fsum[form.index()] as u128;
            s.max_abs_weight = s.max_abs_weight.max(fmax[form.index()]);
        }
        Node::Input(_) => s.inputs += 1,
        Node::False => {}
    }
}

impl Circuit {
    /// Statistics of the whole circuit; levelizes it to measure the [`Levelized`] form.
    pub fn stats(&self) -> CircuitStats {
        self.stats_with_levelized(&self.levelize())
    }

    /// [`Circuit::stats`] with an already computed levelization `lv` of this circuit.
    pub fn stats_with_levelized(&self, lv: &Levelized) -> CircuitStats {
        let (fsum, fmax) = form_abs(self);
        let mut s = CircuitStats {
            depth: self.depth(),
            outputs: self.num_outputs() as u64,
            ..Default::default()
        };
        let mut form_used = vec![false; self.forms.len()];
        for w in 0..self.nodes.len() {
            accumulate(self, &fsum, &fmax, &mut s, w);
            if let Node::Gate { form, .. } = self.nodes[w] {
                if !form_used[form.index()] {
                    form_used[form.index()] = true;
                    s.forms += 1;
                    s.form_terms += (self.forms.offsets[form.index() + 1]
                        - self.forms.offsets[form.index()])
                        as u64;
                }
            }
        }
        s.memory = Some(MemoryStats {
            circuit_bytes: circuit_bytes(self),
            levelized_bytes: lv.bytes(),
        });
        s.levelized = Some(LevelizedStats::of(lv));
        s
    }

    /// Statistics of every region, root first then in region order, keyed by dotted path (the
    /// root's path is `""`). A region's statistics include all of its subregions.
    ///
    /// Depth of a region is computed by a dynamic program over nodes in (topological) order, one
    /// pass per depth of the region tree: `d[w] = 1 + max d[x]` over inputs `x` of gate `w` that
    /// lie in the same region subtree, `0` for nodes outside it. Forms shared between regions
    /// count once in every region that reads them. Assumes the circuit's invariants (regions'
    /// parents precede them; [`Circuit::load`] checks this for files).
    pub fn region_stats(&self) -> Vec<(String, CircuitStats)> {
        let nr = self.regions.len();
        let (fsum, fmax) = form_abs(self);
        // Tree depth of each region (parents precede children).
        let mut tdepth = vec![0u32; nr];
        for r in 1..nr {
            if let Some(p) = self.regions[r].parent {
                tdepth[r] = tdepth[p.index()] + 1;
            }
        }
        // Own (non-recursive) additive stats, then summed into ancestors.
        let mut st = vec![CircuitStats::default(); nr];
        for w in 0..self.nodes.len() {
            let r = self.node_region[w].index();
            accumulate(self, &fsum, &fmax, &mut st[r], w);
        }
        for l in self.output_lits() {
            st[self.node_region[l.wire().index()].index()].outputs += 1;
        }
        for r in (1..nr).rev() {
            if let Some(p) = self.regions[r].parent {
                let child = st[r].clone();
                let ps = &mut st[p.index()];
                ps.inputs += child.inputs;
                ps.outputs += child.outputs;
                ps.gates += child.gates;
                ps.fan_in += child.fan_in;
                ps.majority_size += child.majority_size;
                ps.max_abs_weight = ps.max_abs_weight.max(child.max_abs_weight);
            }
        }
        // Depth and distinct forms, one pass per tree depth k: anc[r] = ancestor of r at depth k.
        let max_t = tdepth.iter().copied().max().unwrap_or(0);
        let mut anc: Vec<u32> = (0..nr as u32).collect();
        let mut d = vec![0u32; self.nodes.len()];
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for k in (0..=max_t).rev() {
            // anc currently maps each region of depth >= k to its ancestor at depth k.
            let anc_of = |w: usize| -> Option<u32> {
                let r = self.node_region[w].index();
                (tdepth[r] >= k).then(|| anc[r])
            };
            pairs.clear();
            // The thresholds of a bank are consecutive gates on one form: the form's inputs
            // are scanned once per bank, not once per threshold.
            let mut last: Option<(u32, u32, u32)> = None;
            for w in 0..self.nodes.len() {
                d[w] = 0;
                let Node::Gate { form, .. } = self.nodes[w] else {
                    continue;
                };
                let Some(a) = anc_of(w) else { continue };
                let m = match last {
                    Some((f, la, m)) if f == form.0 && la == a => m,
                    _ => {
                        let mut m = 0;
                        for x in self.forms.terms(form).0 {
                            if anc_of(x.index()) == Some(a) {
                                m = m.max(d[x.index()]);
                            }
                        }
                        last = Some((form.0, a, m));
                        m
                    }
                };
                d[w] = m + 1;
                let s = &mut st[a as usize];
                s.depth = s.depth.max(d[w]);
                pairs.push((a, form.0));
            }
            pairs.sort_unstable();
            pairs.dedup();
            for &(a, f) in &pairs {
                let s = &mut st[a as usize];
                s.forms += 1;
                s.form_terms +=
                    (self.forms.offsets[f as usize + 1] - self.forms.offsets[f as usize]) as u64;
            }
            // Step the ancestor map up one level for regions deeper than k - 1.
            if k > 0 {
                for r in 0..nr {
                    if tdepth[r] >= k {
                        if let Some(p) = self.regions[anc[r] as usize].parent {
                            anc[r] = p.0;
                        }
                    }
                }
            }
        }
        st.into_iter()
            .enumerate()
            .map(|(r, s)| (self.region_path(RegionId(r as u32)), s))
            .collect()
    }
}

impl CircuitStats {
    /// The column headers of [`CircuitStats::table_row`].
    pub const TABLE_HEADER: [&'static str; 9] = [
        "depth",
        "gates",
        "fan_in",
        "forms",
        "form_terms",
        "max|w|",
        "maj_size",
        "inputs",
        "outputs",
    ];

    /// The values of this row, in [`CircuitStats::TABLE_HEADER`] order.
    pub fn table_row(&self) -> [String; 9] {
        [
            self.depth.to_string(),
            self.gates.to_string(),
            self.fan_in.to_string(),
            self.forms.to_string(),
            self.form_terms.to_string(),
            self.max_abs_weight.to_string(),
            self.majority_size.to_string(),
            self.inputs.to_string(),
            self.outputs.to_string(),
        ]
    }

    /// A JSON object of every field (integers as JSON numbers, `majority_size` as a decimal
    /// string when it exceeds u64; `null` for absent parts).
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// [`CircuitStats::to_json`] as a [`serde_json::Value`].
    pub fn to_value(&self) -> serde_json::Value {
        let mem = self.memory.map(
            |m| json!({"circuit_bytes": m.circuit_bytes, "levelized_bytes": m.levelized_bytes}),
        );
        let lev = self.levelized.map(|l| {
            json!({"levels": l.levels, "and_gates": l.and_gates, "or_gates": l.or_gates,
                "banks": l.banks, "thresholds": l.thresholds, "terms": l.terms})
        });
        let maj = u64::try_from(self.majority_size)
            .map_or_else(|_| json!(self.majority_size.to_string()), |v| json!(v));
        json!({"depth": self.depth, "inputs": self.inputs, "outputs": self.outputs,
            "gates": self.gates, "fan_in": self.fan_in, "forms": self.forms,
            "form_terms": self.form_terms, "max_abs_weight": self.max_abs_weight,
            "majority_size": maj, "memory": mem, "levelized": lev})
    }
}

/// `s` as a JSON string literal (quotes included).
pub fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Region statistics as a JSON array of `{"region": path, "stats": {...}}` objects.
pub fn regions_to_json(rows: &[(String, CircuitStats)]) -> String {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(p, s)| json!({"region": p, "stats": s.to_value()}))
        .collect();
    serde_json::Value::from(items).to_string()
}

/// A plain-text table with one row per region (the root shown as `<root>`), columns aligned.
pub fn format_region_table(rows: &[(String, CircuitStats)]) -> String {
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    let mut head = vec!["region".to_string()];
    head.extend(CircuitStats::TABLE_HEADER.iter().map(|h| h.to_string()));
    cells.push(head);
    for (p, s) in rows {
        let mut row = vec![if p.is_empty() {
            "<root>".to_string()
        } else {
            p.clone()
        }];
        row.extend(s.table_row());
        cells.push(row);
    }
    let ncol = cells[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|j| {
            cells
                .iter()
                .map(|r| r[j].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        for (j, cell) in row.iter().enumerate() {
            if j == 0 {
                out.push_str(&format!("{:<w$}", cell, w = widths[j]));
            } else {
                out.push_str(&format!("  {:>w$}", cell, w = widths[j]));
            }
        }
        out.push('\n');
    }
    out
}

impl fmt::Display for CircuitStats {
    /// A multi-line human-readable summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "depth            {}", self.depth)?;
        writeln!(f, "inputs           {}", self.inputs)?;
        writeln!(f, "outputs          {}", self.outputs)?;
        writeln!(f, "gates            {}", self.gates)?;
        writeln!(f, "fan-in           {}", self.fan_in)?;
        writeln!(f, "forms            {}", self.forms)?;
        writeln!(f, "form terms       {}", self.form_terms)?;
        writeln!(f, "max |weight|     {}", self.max_abs_weight)?;
        write!(f, "majority size    {}", self.majority_size)?;
        if let Some(l) = &self.levelized {
            write!(
                f,
                "\nlevelized        {} levels, {} AND, {} OR, {} banks with {} thresholds, {} terms",
                l.levels, l.and_gates, l.or_gates, l.banks, l.thresholds, l.terms
            )?;
        }
        if let Some(m) = &self.memory {
            write!(
                f,
                "\nmemory           circuit {} B, levelized {} B",
                m.circuit_bytes, m.levelized_bytes
            )?;
        }
        Ok(())
    }
}
