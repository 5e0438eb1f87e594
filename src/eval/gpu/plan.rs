//! The CPU side of the GPU evaluator: wire-slot allocation, segmentation of the circuit arrays
//! into buffers that fit the binding limit, and the list of dispatches.
//!
//! Nothing here touches wgpu, so the planning rules are unit-tested without an adapter.

use crate::circuit::{CheckedLevelized, Levelized, RowLit};
use crate::eval::EvalError;

/// Largest |sum| a form may reach to use the 32-bit kernel: `sum |w| <= NARROW_MAX`, so every
/// partial sum and the total fit in `i32` with the threshold clamped to `i32` (see
/// [`clamp_threshold`]).
pub const NARROW_MAX: i128 = i32::MAX as i128 - 1;

/// Which kernel a dispatch runs.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    /// AND of literals, one invocation per (gate, word).
    And,
    /// OR of literals, one invocation per (gate, word).
    Or,
    /// Bank of thresholds on a form with `sum |w| <= 2^31 - 2`: 32-bit per-lane sums.
    Narrow,
    /// Bank of thresholds on a wider form: exact 64-bit sums as two `u32` words with carry.
    Wide,
    /// Unit-weight bank (every |w| = 1, at most [`COUNT_MAX_TERMS`] terms) by an 8-plane
    /// bit-sliced counter; stored in the `n_*` arrays as `(slot literal, 0)` terms and
    /// `(t + #negative terms clamped to [0, n + 1], output slot)` thresholds.
    Count,
    /// Bank of thresholds by bit-sliced counters (32 lanes per operation); any form.
    /// Stored in the `w_*` arrays with the meaning given there.
    Sliced,
}

/// Which kernel evaluates threshold banks (AND/OR gates always use the logic kernel).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub enum FormKernel {
    /// The 8-plane counter ([`Kind::Count`]) for unit-weight forms of at most
    /// [`COUNT_MAX_TERMS`] terms, per-lane sums for all others (32-bit when
    /// `sum |w| <= 2^31 - 2`, else two-word). (The general bit-sliced kernel indexes its planes
    /// dynamically, which measured 4x slower than per-lane sums on lavapipe.)
    #[default]
    Auto,
    /// The general bit-sliced counter ([`Kind::Sliced`]) for every form.
    Sliced,
    /// Per-lane sums for every form (32-bit or two-word by the bound).
    PerLane,
}

/// Mesa llvmpipe's (lavapipe's) limit on the loop back-edges of one shader invocation, shared
/// by all its loops (gallivm `LP_MAX_TGSI_LOOP_ITERATIONS`); see [`Plan::loop_bound`].
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65535;

/// Largest term count of a [`Kind::Count`] form (its count and thresholds fit 8 planes).
pub const COUNT_MAX_TERMS: usize = 254;

/// One dispatch of the plan: `count` consecutive items (gates or forms, numbered locally in
/// segment `segment`'s arrays of kind `kind`) starting at `first`, all from one level.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Dispatch {
    /// Index into [`Plan::segments`].
    pub segment: u32,
    /// Kernel.
    pub kind: Kind,
    /// First item, local to the segment's arrays of this kind.
    pub first: u32,
    /// Number of items.
    pub count: u32,
    /// Level index (0-based position in [`Levelized::levels`]); for reports.
    pub level: u32,
}

/// The circuit arrays of one segment, in the layouts the WGSL kernels read.
///
/// Invariant: every array's byte size is at most the plan's binding limit, and every index
/// stored in it is local to this segment (`lits`, `*_terms`, `*_thrs` offsets) or a wire slot.
#[derive(Clone, Default, Debug)]
pub struct Segment {
    /// AND/OR gate `g`: `(first literal, output slot)`; entry `g + 1`'s first literal ends it
    /// (a sentinel entry follows the last gate).
    pub gates: Vec<[u32; 2]>,
    /// Slot literals `slot << 1 | complement`.
    pub lits: Vec<u32>,
    /// Narrow form `f`: `(term start, term end, threshold start, threshold end)`.
    pub n_forms: Vec<[u32; 4]>,
    /// Narrow terms: `(slot, weight as i32 bits)`.
    pub n_terms: Vec<[u32; 2]>,
    /// Narrow thresholds: `(threshold as i32 bits, output slot)`.
    pub n_thrs: Vec<[u32; 2]>,
    /// Wide form `f`: as `n_forms`.
    pub w_forms: Vec<[u32; 4]>,
    /// Wide terms: `(slot, weight low word, weight high word, 0)`; for [`Kind::Sliced`]
    /// forms `(slot literal with the weight's sign as complement, |w| low, |w| high, 0)`.
    pub w_terms: Vec<[u32; 4]>,
    /// Wide thresholds: `(threshold low word, high word, output slot, 0)`; for
    /// [`Kind::Sliced`] forms the threshold is `t + sum_{w<0} |w|` clamped to
    /// `[0, sum |w| + 1]`.
    pub w_thrs: Vec<[u32; 4]>,
}

impl Segment {
    fn new() -> Segment {
        Segment {
            gates: vec![[0, 0]],
            ..Default::default()
        }
    }

    /// Bytes of the arrays as uploaded.
    pub fn bytes(&self) -> u64 {
        (8 * self.gates.len()
            + 4 * self.lits.len()
            + 16 * self.n_forms.len()
            + 8 * self.n_terms.len()
            + 8 * self.n_thrs.len()
            + 16 * self.w_forms.len()
            + 16 * self.w_terms.len()
            + 16 * self.w_thrs.len()) as u64
    }

    fn is_empty(&self) -> bool {
        self.gates.len() == 1 && self.n_forms.is_empty() && self.w_forms.is_empty()
    }

    fn num_gates(&self) -> u32 {
        self.gates.len() as u32 - 1
    }
}

/// The evaluation plan of one levelized circuit.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Number of wire slots (rows of value storage); `<= num_rows`.
    pub num_slots: u32,
    /// Number of circuit inputs (slots `1..=num_inputs`; slot 0 is constant false).
    pub num_inputs: u32,
    /// Segments of circuit arrays.
    pub segments: Vec<Segment>,
    /// Dispatches in execution order (level by level).
    pub dispatches: Vec<Dispatch>,
    /// Output literals over slots (`slot << 1 | complement`), in output order.
    pub outputs: Vec<u32>,
    /// Steps of the fused kernel per segment: `(kind, first item, item count, 0)` with kind 0
    /// AND, 1 OR, 2 narrow form, 3 unit-weight counter.
    pub steps: Vec<Vec<[u32; 4]>>,
    /// Forms evaluated with the wide (two-word) kernel.
    pub wide_forms: u32,
    /// Forms evaluated with the narrow kernel.
    pub narrow_forms: u32,
    /// Forms evaluated with the bit-sliced kernel.
    pub sliced_forms: u32,
    /// Unit-weight forms evaluated with the 8-plane counter.
    pub count_forms: u32,
    /// Groups of consecutive levels evaluated in one dispatch each (see [`Plan::fuse`]), in
    /// execution order; the dispatches they cover are not recorded on their own.
    pub fused: Vec<FusedGroup>,
}

/// How consecutive levels are fused into one dispatch ([`Plan::fuse`]).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub enum Fusion {
    /// Per-level dispatches only.
    Off,
    /// Groups as long as the loop budget [`FUSE_LOOP_BUDGET`] allows.
    #[default]
    Auto,
    /// A group starts at each of these level indices (0-based) and wherever a level cannot
    /// join the previous group; groups of one dispatch are fused too. For tests that put a
    /// group boundary at every place.
    Starts(Vec<u32>),
}

/// A group of consecutive levels evaluated by one dispatch of the fused kernel
/// (`shaders/fused.wgsl`): one workgroup per word column runs the group's *steps* (the
/// dispatches it replaces) in order, its 64 invocations sharing each step's items, with a
/// storage barrier after every step. Columns never exchange values, so no cross-workgroup
/// synchronisation is needed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct FusedGroup {
    /// Segment of every step.
    pub segment: u32,
    /// First step in the segment's `steps`.
    pub first_step: u32,
    /// Number of steps (= dispatches replaced).
    pub steps: u32,
    /// First replaced dispatch (index into [`Plan::dispatches`]).
    pub first_dispatch: u32,
    /// Levels covered, `first_level .. first_level + levels` (0-based).
    pub first_level: u32,
    /// Number of levels.
    pub levels: u32,
}

/// Loop back-edges one invocation of a fused dispatch may take (bounded as in
/// [`Plan::loop_bound`]), below [`LLVMPIPE_LOOP_LIMIT`]; it also bounds the run time of one
/// dispatch on any GPU.
pub const FUSE_LOOP_BUDGET: u64 = 60_000;

/// Invocations of one workgroup of the fused kernel.
pub const FUSE_WORKGROUP: u64 = 64;

/// Step kinds of the fused kernel (`steps[i].x`).
fn step_kind(k: Kind) -> Option<u32> {
    match k {
        Kind::And => Some(0),
        Kind::Or => Some(1),
        Kind::Narrow => Some(2),
        Kind::Count => Some(3),
        Kind::Wide | Kind::Sliced => None,
    }
}

/// Clamp a threshold for the narrow kernel. With `|S| <= NARROW_MAX < i32::MAX`, a threshold
/// above `i32::MAX` is unreachable like `i32::MAX`, and one below `i32::MIN` is always met
/// like `i32::MIN`, so `[S >= t] == [S >= clamp(t)]`.
pub fn clamp_threshold(t: i64) -> i32 {
    t.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Bytes per term (or literal) and per threshold of an item of `kind`.
fn item_sizes(kind: Kind) -> (u64, u64) {
    match kind {
        Kind::And | Kind::Or => (4, 0),
        Kind::Narrow | Kind::Count => (8, 8),
        Kind::Wide | Kind::Sliced => (16, 16),
    }
}

/// Whether `seg` can take one more item of `kind` with `terms` terms and `thrs` thresholds
/// while keeping every array within `limit` bytes.
fn fits(seg: &Segment, kind: Kind, terms: u64, thrs: u64, limit: u64) -> bool {
    let (items, term_bytes, thr_bytes, item_size, (per_term, per_thr)) = match kind {
        Kind::And | Kind::Or => (
            seg.gates.len() as u64,
            4 * seg.lits.len() as u64,
            0,
            8,
            item_sizes(kind),
        ),
        Kind::Narrow | Kind::Count => (
            seg.n_forms.len() as u64,
            8 * seg.n_terms.len() as u64,
            8 * seg.n_thrs.len() as u64,
            16,
            item_sizes(kind),
        ),
        Kind::Wide | Kind::Sliced => (
            seg.w_forms.len() as u64,
            16 * seg.w_terms.len() as u64,
            16 * seg.w_thrs.len() as u64,
            16,
            item_sizes(kind),
        ),
    };
    (items + 1) * item_size <= limit
        && term_bytes + per_term * terms <= limit
        && thr_bytes + per_thr * thrs <= limit
}

/// One threshold bank (form `f`) of a level, ready to be written into a segment.
struct FormItem {
    /// The form's term range in `form_rows` / the weight bytes.
    terms: std::ops::Range<usize>,
    /// The form's weights.
    ws: Vec<i64>,
    /// The bank's threshold range in `thresholds`.
    thrs: std::ops::Range<usize>,
    /// The row (wire) of the bank's first threshold output.
    row0: usize,
    /// `sum |w|`, at most `i64::MAX`.
    sum_abs: i128,
    /// `-sum_(w < 0) w`: the shift that makes a signed sum a count of true terms.
    neg_sum: i128,
}

impl FormItem {
    /// Form `f` of level `l` (its sum of |weights| is at most 2^62, as checked).
    fn new(lv: CheckedLevelized, l: &crate::circuit::Level, f: u32) -> FormItem {
        let ws: Vec<i64> = lv.weights(f).collect();
        let sum_abs: i128 = ws.iter().map(|&w| (w as i128).abs()).sum();
        let neg_sum: i128 = ws.iter().filter(|&&w| w < 0).map(|&w| -(w as i128)).sum();
        let thrs = lv.bank(f);
        let row0 = l.threshold_row_start() + lv.bank_offsets[f as usize] - l.threshold_start;
        FormItem {
            terms: lv.form_terms(f),
            ws,
            thrs,
            row0: row0 as usize,
            sum_abs,
            neg_sum,
        }
    }

    /// The kernel that evaluates this bank under `form_kernel`: the counter for small
    /// unit-weight forms (`Auto`), 32-bit sums when `sum |w| <= NARROW_MAX`, else two-word sums.
    fn kind(&self, form_kernel: FormKernel) -> Kind {
        let ws = &self.ws;
        let unit = ws.len() <= COUNT_MAX_TERMS && ws.iter().all(|w| w.abs() == 1);
        match form_kernel {
            FormKernel::Sliced => Kind::Sliced,
            FormKernel::Auto if unit => Kind::Count,
            _ if self.sum_abs > NARROW_MAX => Kind::Wide,
            _ => Kind::Narrow,
        }
    }

    /// Append the bank to the `w_*` arrays of `seg` (the two-word kernel, or the bit-sliced
    /// one when `sliced`: sign-tagged slot literals and count thresholds shifted by `neg_sum`,
    /// clamped to `[0, sum |w| + 1]`); returns its local form index.
    fn write_wide(&self, seg: &mut Segment, lv: &Levelized, slot: &[u32], sliced: bool) -> u32 {
        let fi = seg.w_forms.len() as u32;
        let (t0, h0) = (seg.w_terms.len() as u32, seg.w_thrs.len() as u32);
        for (j, &w) in self.terms.clone().zip(&self.ws) {
            let s = slot[lv.form_rows[j].index()];
            let (first, w) = if sliced {
                (s << 1 | (w < 0) as u32, w.unsigned_abs())
            } else {
                (s, w as u64)
            };
            seg.w_terms.push([first, w as u32, (w >> 32) as u32, 0]);
        }
        for (k, j) in self.thrs.clone().enumerate() {
            let t = if sliced {
                (lv.thresholds[j] as i128 + self.neg_sum).clamp(0, self.sum_abs + 1) as u64
            } else {
                lv.thresholds[j] as u64
            };
            let out = slot[self.row0 + k];
            seg.w_thrs.push([t as u32, (t >> 32) as u32, out, 0]);
        }
        seg.w_forms
            .push([t0, seg.w_terms.len() as u32, h0, seg.w_thrs.len() as u32]);
        fi
    }

    /// Append the bank to the `n_*` arrays of `seg` (the 32-bit kernel, or the 8-plane counter
    /// when `count`: sign-tagged slot literals and count thresholds shifted by `neg_sum`,
    /// clamped to `[0, sum |w| + 1]`); returns its local form index.
    fn write_narrow(&self, seg: &mut Segment, lv: &Levelized, slot: &[u32], count: bool) -> u32 {
        let fi = seg.n_forms.len() as u32;
        let (t0, h0) = (seg.n_terms.len() as u32, seg.n_thrs.len() as u32);
        for (j, &w) in self.terms.clone().zip(&self.ws) {
            let s = slot[lv.form_rows[j].index()];
            seg.n_terms.push(if count {
                [s << 1 | (w < 0) as u32, 0]
            } else {
                [s, w as i32 as u32]
            });
        }
        for (k, j) in self.thrs.clone().enumerate() {
            let t = if count {
                (lv.thresholds[j] as i128 + self.neg_sum).clamp(0, self.sum_abs + 1) as u32
            } else {
                clamp_threshold(lv.thresholds[j]) as u32
            };
            seg.n_thrs.push([t, slot[self.row0 + k]]);
        }
        seg.n_forms
            .push([t0, seg.n_terms.len() as u32, h0, seg.n_thrs.len() as u32]);
        fi
    }
}

impl Plan {
    /// Plan the evaluation of `lv` with every circuit array of a segment at most
    /// `binding_limit` bytes.
    ///
    /// Errors: a malformed `lv` (as [`Levelized::check`] reports it); more than 2^31 slots; a
    /// single gate or form whose arrays alone exceed the limit (it cannot be split).
    pub fn new(
        lv: &Levelized,
        binding_limit: u64,
        form_kernel: FormKernel,
    ) -> Result<Plan, EvalError> {
        let lv = lv
            .check()
            .map_err(|e| EvalError::Unsupported(e.to_string()))?;
        let (slot, num_slots) = lv.allocate_slots();
        if num_slots > 1 << 31 {
            return Err(EvalError::LimitExceeded {
                what: "wire slots (slot literals are 31-bit)".into(),
                needed: num_slots as u64,
                limit: 1 << 31,
            });
        }
        let slit = |l: RowLit| slot[l.row().index()] << 1 | l.is_complemented() as u32;
        let mut plan = Plan {
            num_slots,
            num_inputs: lv.num_inputs,
            segments: vec![Segment::new()],
            dispatches: Vec::new(),
            outputs: lv.outputs.iter().map(|&l| slit(l)).collect(),
            wide_forms: 0,
            narrow_forms: 0,
            sliced_forms: 0,
            count_forms: 0,
            steps: Vec::new(),
            fused: Vec::new(),
        };
        for (li, l) in lv.levels.iter().enumerate() {
            // AND and OR gates.
            for (kind, range) in [
                (Kind::And, l.and_start..l.or_start),
                (Kind::Or, l.or_start..l.or_end),
            ] {
                for g in range {
                    let lits = lv.gate_offsets[g as usize] as usize
                        ..lv.gate_offsets[g as usize + 1] as usize;
                    let out = slot[(l.row_start + g - l.and_start) as usize];
                    let size = (lits.len() as u64, 0);
                    plan.push_item(li as u32, kind, binding_limit, size, |seg| {
                        let gi = seg.num_gates();
                        seg.lits
                            .extend(lv.gate_lits[lits.clone()].iter().map(|&x| slit(x)));
                        seg.gates[gi as usize][1] = out;
                        seg.gates.push([seg.lits.len() as u32, 0]);
                        gi
                    })
                    .map_err(|e| name_item(e, &format!("level {} gate {g}", li + 1)))?;
                }
            }
            // Forms: bit-sliced ones first, then narrow, then wide ones.
            for pass in [Kind::Count, Kind::Sliced, Kind::Narrow, Kind::Wide] {
                for f in l.form_start..l.form_end {
                    let item = FormItem::new(lv, l, f);
                    let kind = item.kind(form_kernel);
                    if kind != pass {
                        continue;
                    }
                    let size = (item.terms.len() as u64, item.thrs.len() as u64);
                    plan.push_item(li as u32, kind, binding_limit, size, |seg| match kind {
                        Kind::Wide | Kind::Sliced => {
                            item.write_wide(seg, &lv, &slot, kind == Kind::Sliced)
                        }
                        _ => item.write_narrow(seg, &lv, &slot, kind == Kind::Count),
                    })
                    .map_err(|e| name_item(e, &format!("level {} form {f}", li + 1)))?;
                    match kind {
                        Kind::Wide => plan.wide_forms += 1,
                        Kind::Sliced => plan.sliced_forms += 1,
                        Kind::Count => plan.count_forms += 1,
                        _ => plan.narrow_forms += 1,
                    }
                }
            }
        }
        if plan.segments.len() > 1 && plan.segments.last().is_some_and(|s| s.is_empty()) {
            plan.segments.pop();
        }
        Ok(plan)
    }

    /// Append one item with `add` (which returns its local index) to the last segment, or to a
    /// fresh segment when it does not fit, and extend or start a dispatch. `terms` is the
    /// item's literal or term count, `thrs` its threshold count.
    fn push_item(
        &mut self,
        level: u32,
        kind: Kind,
        limit: u64,
        (terms, thrs): (u64, u64),
        add: impl Fn(&mut Segment) -> u32,
    ) -> Result<(), EvalError> {
        if !fits(&Segment::new(), kind, terms, thrs, limit) {
            let (per_term, per_thr) = item_sizes(kind);
            return Err(EvalError::LimitExceeded {
                what: "circuit arrays of a single gate or form (cannot be split)".into(),
                needed: (per_term * terms).max(per_thr * thrs),
                limit,
            });
        }
        if !fits(
            self.segments.last().expect("a segment"),
            kind,
            terms,
            thrs,
            limit,
        ) {
            self.segments.push(Segment::new());
        }
        let seg_i = self.segments.len() - 1;
        let local = add(&mut self.segments[seg_i]);
        match self.dispatches.last_mut() {
            Some(d)
                if d.segment == seg_i as u32
                    && d.kind == kind
                    && d.level == level
                    && d.first + d.count == local =>
            {
                d.count += 1
            }
            _ => self.dispatches.push(Dispatch {
                segment: seg_i as u32,
                kind,
                first: local,
                count: 1,
                level,
            }),
        }
        Ok(())
    }

    /// An upper bound on the loop back-edges one SIMD group of invocations of dispatch `d`
    /// executes: the sum over the kernel's loops of (largest trip count among the dispatch's
    /// items) x (largest inner trip count per iteration). Loops with a constant trip count
    /// nested inside (the 32 lanes of the per-lane kernels, the 8 planes of the counter
    /// kernel) count as straight-line code: the shader compiler unrolls them (checked on
    /// lavapipe by `tests/gpu_gadgets.rs::llvmpipe_loop_limit_is_enforced`).
    ///
    /// Used on Mesa's llvmpipe (lavapipe), which silently ends every loop of a shader
    /// invocation once all its loops together have taken [`LLVMPIPE_LOOP_LIMIT`] back-edges
    /// (gallivm's `LP_MAX_TGSI_LOOP_ITERATIONS`, one counter shared by every loop of the
    /// function), which would give wrong outputs instead of an error.
    pub fn loop_bound(&self, d: &Dispatch) -> u64 {
        let seg = &self.segments[d.segment as usize];
        let items = d.first as usize..(d.first + d.count) as usize;
        match d.kind {
            Kind::And | Kind::Or => items
                .map(|g| (seg.gates[g + 1][0] - seg.gates[g][0]) as u64)
                .max()
                .unwrap_or(0),
            Kind::Narrow | Kind::Count | Kind::Wide => {
                let forms = if d.kind == Kind::Wide {
                    &seg.w_forms
                } else {
                    &seg.n_forms
                };
                let terms = items
                    .clone()
                    .map(|f| (forms[f][1] - forms[f][0]) as u64)
                    .max();
                let thrs = items.map(|f| (forms[f][3] - forms[f][2]) as u64).max();
                terms.unwrap_or(0) + thrs.unwrap_or(0)
            }
            Kind::Sliced => {
                // Per term: one pass of the set-bit loop per set bit of |w| plus its exit,
                // each running a carry loop of at most 64 - pos + 1 back-edges; per threshold
                // a comparison over at most 64 planes; 64 plane initialisations.
                let (mut terms, mut inner, mut thrs) = (0u64, 0u64, 0u64);
                for f in items {
                    let fm = seg.w_forms[f];
                    terms = terms.max((fm[1] - fm[0]) as u64);
                    thrs = thrs.max((fm[3] - fm[2]) as u64);
                    for t in &seg.w_terms[fm[0] as usize..fm[1] as usize] {
                        let w = t[1] as u64 | (t[2] as u64) << 32;
                        inner = inner.max(1 + w.count_ones() as u64 * 66);
                    }
                }
                64 + terms * inner + thrs * 65
            }
        }
    }

    /// Bytes of all circuit arrays.
    pub fn circuit_bytes(&self) -> u64 {
        self.segments.iter().map(Segment::bytes).sum::<u64>()
            + 16 * self.steps.iter().map(Vec::len).sum::<usize>() as u64
            + 4 * self.outputs.len() as u64
    }

    /// Dispatches recorded per column chunk: fused groups, the dispatches outside them, and
    /// the output gather (before splitting for the workgroup-count limit).
    pub fn dispatches_per_batch(&self) -> u32 {
        let covered: u32 = self.fused.iter().map(|g| g.steps).sum();
        self.dispatches.len() as u32 - covered
            + self.fused.len() as u32
            + (!self.outputs.is_empty()) as u32
    }

    /// Loop back-edges of one fused-kernel invocation running dispatch `d` as a step.
    fn step_cost(&self, d: &Dispatch) -> u64 {
        (d.count as u64).div_ceil(FUSE_WORKGROUP) * (self.loop_bound(d) + 1) + 1
    }

    /// Partition consecutive levels into fused groups (replacing any earlier grouping).
    ///
    /// A group is a run of whole levels whose dispatches all run fusable kernels (AND, OR,
    /// narrow, unit-weight counter) on one segment, whose step loop bound stays within
    /// [`FUSE_LOOP_BUDGET`], and whose steps fit one binding of `binding_limit` bytes. Levels
    /// that cannot join a group keep their per-level dispatches. With [`Fusion::Auto`] a group
    /// of a single dispatch is not fused (nothing to save).
    pub fn fuse(&mut self, fusion: &Fusion, binding_limit: u64) {
        self.fused.clear();
        self.steps = vec![Vec::new(); self.segments.len()];
        if *fusion == Fusion::Off {
            return;
        }
        let starts: &[u32] = match fusion {
            Fusion::Starts(s) => s,
            _ => &[],
        };
        let max_steps = (binding_limit / 16) as usize;
        // Dispatch ranges of the levels, in order.
        let mut levels: Vec<(usize, usize)> = Vec::new();
        for (i, d) in self.dispatches.iter().enumerate() {
            match levels.last_mut() {
                Some(r) if self.dispatches[r.0].level == d.level => r.1 = i + 1,
                _ => levels.push((i, i + 1)),
            }
        }
        let mut cur: Option<FusedGroup> = None;
        let mut budget = 0u64;
        for &(a, b) in &levels {
            let ds = self.dispatches[a..b].to_vec();
            let seg = ds[0].segment;
            let fusable = ds
                .iter()
                .all(|d| step_kind(d.kind).is_some() && d.segment == seg);
            let cost: u64 = ds.iter().map(|d| self.step_cost(d)).sum();
            let level = ds[0].level;
            let joins = cur.is_some_and(|g| {
                g.segment == seg
                    && !starts.contains(&level)
                    && budget + cost <= FUSE_LOOP_BUDGET
                    && self.steps[seg as usize].len() + (b - a) <= max_steps
            });
            if !(fusable && joins) {
                if let Some(g) = cur.take() {
                    self.close_group(g, fusion);
                }
            }
            if !fusable
                || cost > FUSE_LOOP_BUDGET
                || self.steps[seg as usize].len() + (b - a) > max_steps
            {
                continue;
            }
            if cur.is_none() {
                budget = 0;
                cur = Some(FusedGroup {
                    segment: seg,
                    first_step: self.steps[seg as usize].len() as u32,
                    steps: 0,
                    first_dispatch: a as u32,
                    first_level: level,
                    levels: 0,
                });
            }
            let g = cur.as_mut().expect("an open group");
            budget += cost;
            g.levels += 1;
            g.steps += (b - a) as u32;
            for d in &ds {
                let k = step_kind(d.kind).expect("fusable");
                self.steps[seg as usize].push([k, d.first, d.count, 0]);
            }
        }
        if let Some(g) = cur.take() {
            self.close_group(g, fusion);
        }
    }

    /// Keep group `g` (its steps were appended), or drop it and its steps when it would
    /// replace a single dispatch under [`Fusion::Auto`].
    fn close_group(&mut self, g: FusedGroup, fusion: &Fusion) {
        if g.steps < 2 && *fusion == Fusion::Auto {
            self.steps[g.segment as usize].truncate(g.first_step as usize);
        } else {
            self.fused.push(g);
        }
    }
}

fn name_item(e: EvalError, item: &str) -> EvalError {
    match e {
        EvalError::LimitExceeded {
            what,
            needed,
            limit,
        } => EvalError::LimitExceeded {
            what: format!("{what}: {item}"),
            needed,
            limit,
        },
        other => other,
    }
}
