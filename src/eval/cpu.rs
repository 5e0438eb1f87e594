//! The CPU batch evaluator (docs/gpu.md): bit-sliced `u64` batches, levels in order, rayon.
//!
//! [`CpuEvaluator::new`] compiles a [`Levelized`] circuit once into its own *program*: within
//! each level the rows are renumbered so that gates of one kind are contiguous (2-input AND,
//! 2-input OR, wider AND, wider OR, bit-sliced forms, per-instance forms), OR gates of fan-in 2
//! are rewritten by De Morgan into complemented ANDs, and every linear form is assigned the
//! evaluation method estimated to be cheaper:
//!
//! - **bit-sliced vertical counters**: the weighted sum of 64 instances per word is kept as bit
//!   planes (negative weights become complemented literals, `w * x = w + |w| * !x`), and each
//!   threshold of the bank is one bit-sliced comparison with a constant. The planes are built
//!   in one of two ways: *ripple* adds `|w| * l` term by term,
//!   a ripple of half adders from each set bit of `|w|` (word terms as a ripple of full
//!   adders); *columns* places one literal per set bit of `|w|` in its column and reduces the
//!   columns from the lowest with full adders, carries going to the next column (cheaper for
//!   wide weights: no ripple to the top per bit). `Auto` takes columns only where they are
//!   estimated at a third of the ripple's cost or less (closer calls measured slower);
//! - **per-instance sums** (large weights): a signed `i64` sum per instance, compared with every
//!   threshold of the bank. The sum is computed once per bank (docs/circuit_format.md).
//!
//! Evaluation processes the batch in *column blocks* of `B` words (`B` a power of two up to
//! [`CpuOptions::max_block_words`]): the wire values of one block are a row-major
//! `(slots + stage) * B` array of `u64`, so one row of a block is `B` contiguous words and the
//! inner loops have a compile-time trip count. Values live in *slots*, allocated as for the GPU
//! (`CheckedLevelized::allocate_slots`: a row's slot is reused once the last level reading it
//! has run), so the array holds the peak number of live rows, not every row; each level writes
//! its rows into a staging block, which is then copied into their slots. With several threads and at least as many blocks as threads,
//! each thread evaluates whole blocks with its own value array (no synchronisation per level);
//! otherwise blocks are processed one after another and the gates of each level are split into
//! chunks evaluated in parallel.
//!
//! Bits past the last instance are *don't care* inside the value arrays (a complemented literal
//! turns the zero tail into ones, but instances never mix: every operation is lane-wise), and
//! the tail of every output row is cleared, so result batches keep the [`Batch`] invariant.

use rayon::prelude::*;

use super::batch::tail_mask;
use super::{Batch, EvalError, Evaluator};
use crate::circuit::{CheckedLevelized, Level, Levelized, Row, RowLit};

/// How linear forms (general threshold gates and banks) are evaluated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum FormMethod {
    /// Per form, whichever method has the smaller estimated cost.
    #[default]
    Auto,
    /// Bit-sliced vertical counters for every form.
    BitSliced,
    /// Per-instance `i64` sums for every form.
    PerInstance,
    /// Bit-sliced counters for every form, each added by columns (carry-save full adders per
    /// plane, then one bit per plane).
    Columns,
}

/// Tuning options of a [`CpuEvaluator`]. The defaults are what the benches found fastest,
/// except `reuse_slots`, which gives up a few percent of speed for the memory of the live rows
/// only (`micro` at batch 4096: 6% slower, 2.4x less memory).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CpuOptions {
    /// How linear forms are evaluated.
    pub form_method: FormMethod,
    /// Largest column block in 64-bit words (a power of two, 1..=32).
    pub max_block_words: usize,
    /// Use rayon's thread pool (`false`: evaluate on the calling thread only).
    pub parallel: bool,
    /// Soft limit on the bytes of wire-value arrays; the block width shrinks (and block
    /// parallelism is abandoned) to stay below it.
    pub max_scratch_bytes: u64,
    /// Add the word terms of bit-sliced forms as words (a ripple of full adders over the
    /// word's bit planes) rather than term by term. Same outputs either way.
    pub word_terms: bool,
    /// Keep wire values in reused slots (the peak number of live rows plus one level's
    /// staging block, copied into the slots after each level) rather than one row per gate
    /// written in place. Same outputs either way: less memory (`micro`: 2.4x less in all),
    /// one copy of every row per evaluation.
    pub reuse_slots: bool,
}

impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            form_method: FormMethod::Auto,
            max_block_words: 8,
            parallel: true,
            max_scratch_bytes: 4 << 30,
            word_terms: true,
            reuse_slots: true,
        }
    }
}

/// How many gates of each kind the compiled program holds (for reports and benches).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// 2-input AND gates.
    pub and2: u64,
    /// 2-input OR gates.
    pub or2: u64,
    /// AND/OR gates of other fan-in.
    pub logic_wide: u64,
    /// Literals of those gates.
    pub logic_wide_lits: u64,
    /// Forms evaluated with bit-sliced counters.
    pub bitsliced_forms: u64,
    /// Their terms.
    pub bitsliced_terms: u64,
    /// Their thresholds (gates).
    pub bitsliced_thresholds: u64,
    /// Forms evaluated with per-instance sums.
    pub per_instance_forms: u64,
    /// Their terms.
    pub per_instance_terms: u64,
    /// Their thresholds (gates).
    pub per_instance_thresholds: u64,
    /// Bit-sliced forms added by columns (the others ripple term by term).
    pub column_forms: u64,
    /// Word terms of the bit-sliced forms (each added as one multi-bit word).
    pub word_terms: u64,
    /// Bits (scalar terms) those word terms stand for.
    pub word_term_bits: u64,
}

/// One level of the compiled program. Its rows, from `row_start`: 2-input ANDs
/// (`lit2[and2_start..or2_start]`), 2-input ORs (`lit2[or2_start..lit2_end]`), wide ANDs
/// (gates `andk_start..ork_start` of `litk_off`), wide ORs (`ork_start..litk_end`), then one row
/// per threshold of the bit-sliced forms `bs_start..bs_end` and of the per-instance forms
/// `pi_start..pi_end`.
#[derive(Copy, Clone, Debug, Default)]
struct PLevel {
    row_start: u32,
    and2_start: u32,
    or2_start: u32,
    lit2_end: u32,
    andk_start: u32,
    ork_start: u32,
    litk_end: u32,
    bs_start: u32,
    bs_end: u32,
    pi_start: u32,
    pi_end: u32,
}

/// Term lists of one kind of form: form `f` has terms `term_off[f]..term_off[f+1]` and
/// thresholds `thr_off[f]..thr_off[f+1]`.
#[derive(Clone, Debug, Default)]
struct FormSet<W, T> {
    term_off: Vec<u32>,
    /// Bit-sliced: literals (`row << 1 | complement`); per-instance: rows.
    terms: Vec<u32>,
    weights: Vec<W>,
    thr_off: Vec<u32>,
    thresholds: Vec<T>,
    /// Bit-sliced only: per term, the bits of the word term starting there (its
    /// `weights` entry is `|c|`, the weight of its lowest bit), 1 for a scalar term, 0 for the
    /// later bits of a word term.
    spans: Vec<u8>,
    /// Bit-sliced only, per form: 0 for a form added term by term (ripples), else the number
    /// of planes of its sum for a form added by columns: its terms are then one literal per
    /// set bit of `|w|`, in column order, and `weights` holds the column.
    columns: Vec<u8>,
}

impl<W, T> FormSet<W, T> {
    fn new() -> Self {
        FormSet {
            term_off: vec![0],
            terms: Vec::new(),
            weights: Vec::new(),
            thr_off: vec![0],
            thresholds: Vec::new(),
            spans: Vec::new(),
            columns: Vec::new(),
        }
    }
    fn len(&self) -> usize {
        self.term_off.len() - 1
    }
    fn bytes(&self) -> usize {
        4 * (self.term_off.len() + self.terms.len() + self.thr_off.len())
            + self.spans.len()
            + self.columns.len()
            + 8 * (self.weights.len() + self.thresholds.len())
    }
}

/// The compiled program (see the module documentation).
#[derive(Clone, Debug, Default)]
struct Program {
    num_inputs: u32,
    num_rows: u32,
    /// Wire-value slots (`CheckedLevelized::allocate_slots`): literals name slots.
    num_slots: u32,
    /// Rows of the largest level: the staging block each level writes before its rows are
    /// copied into their slots.
    stage_rows: u32,
    /// The slot of every gate row, indexed by program row minus `1 + num_inputs`.
    row_slot: Vec<u32>,
    levels: Vec<PLevel>,
    /// 2-input gates; OR gates hold complemented literals (De Morgan) and flip their output.
    lit2: Vec<[u32; 2]>,
    litk_off: Vec<u32>,
    litk: Vec<u32>,
    /// Bit-sliced forms: |weights|, thresholds `T' = t - sum of negative weights` clamped to
    /// `0..=max_sum + 1`.
    bs: FormSet<u64, u64>,
    /// Per-instance forms: signed weights and thresholds as in the circuit.
    pi: FormSet<i64, i64>,
    outputs: Vec<u32>,
    counts: KindCounts,
}

impl Program {
    /// Rows of a wire-value array: the slots, then the staging block.
    fn value_rows(&self) -> usize {
        self.num_slots as usize + self.stage_rows as usize
    }

    fn bytes(&self) -> usize {
        self.levels.len() * std::mem::size_of::<PLevel>()
            + 8 * self.lit2.len()
            + 4 * (self.litk_off.len() + self.litk.len() + self.outputs.len())
            + 4 * self.row_slot.len()
            + self.bs.bytes()
            + self.pi.bytes()
    }
}

/// Estimated word-operations per 64 instances of a form evaluated bit-sliced, and the number
/// of bit planes of its sum. `ws` are the weights, `spans` the word terms (see [`FormView`]):
/// a scalar term costs a ripple of half adders from each set bit of `|w|` to the top plane, a
/// word term of `k` bits a ripple of `k` full adders from each set bit of `|c|` and half
/// adders above.
fn bitsliced_cost(ws: &[i64], spans: &[u8], thresholds: usize) -> (u64, u32) {
    let mut sum = 0u64;
    let mut ops = 0u64;
    let mut j = 0;
    while j < ws.len() {
        let k = spans[j].max(1) as usize;
        let a = ws[j].unsigned_abs();
        for &w in &ws[j..j + k] {
            sum += w.unsigned_abs();
        }
        let top = 64 - sum.leading_zeros() as u64;
        let mut bits = a;
        while bits != 0 {
            let s = bits.trailing_zeros() as u64;
            bits &= bits - 1;
            ops += if k == 1 {
                3 * (top - s)
            } else {
                6 * k as u64 + 3 * top.saturating_sub(s + k as u64)
            };
        }
        ops += 2 * k as u64;
        j += k;
    }
    let top = 64 - sum.leading_zeros();
    (ops + thresholds as u64 * 3 * top as u64, top)
}

/// Estimated word-operations per 64 instances of a form added by columns: a full adder (5
/// operations) per literal beyond the first of each column, a load per literal, and one
/// comparison per threshold. `top` is the number of planes of the sum.
fn columns_cost(ws: &[i64], top: u32, thresholds: usize) -> u64 {
    let bits: u64 = ws
        .iter()
        .map(|w| w.unsigned_abs().count_ones() as u64)
        .sum();
    7 * bits + 2 * top as u64 + thresholds as u64 * 3 * top as u64
}

/// Append a form's terms to `p.bs` by columns: one literal per set bit `c` of `|w|` (complemented
/// for a negative weight), ordered by `c`, with `c` as its weight; `top` planes.
fn push_columns(p: &mut Program, rd: &Reader, rows: &[Row], ws: &[i64], top: u32) {
    let mut bits: Vec<(u8, u32)> = Vec::new();
    for (&r, &w) in rows.iter().zip(ws) {
        let lit = rd.row(r, w < 0);
        let mut a = w.unsigned_abs();
        while a != 0 {
            bits.push((a.trailing_zeros() as u8, lit));
            a &= a - 1;
        }
    }
    bits.sort_by_key(|b| b.0);
    for (c, lit) in bits {
        p.bs.terms.push(lit);
        p.bs.weights.push(c as u64);
        p.bs.spans.push(1);
    }
    p.bs.columns.push(top as u8);
    p.counts.column_forms += 1;
}

/// Estimated word-operations per 64 instances of a form evaluated with per-instance sums
/// (calibrated against [`bitsliced_cost`] with the `cpu_eval` bench).
fn per_instance_cost(terms: usize, thresholds: usize) -> u64 {
    terms as u64 * 160 + thresholds as u64 * 48
}

/// Translates the rows a level reads into program literals over slots (rows written before
/// the level, as [`Levelized::check`] guarantees, whose slots are not yet reused).
struct Reader<'a> {
    slot: &'a [u32],
}

impl Reader<'_> {
    /// The program literal of row `r`, complemented when `c`.
    fn row(&self, r: Row, c: bool) -> u32 {
        self.slot[r.index()] << 1 | c as u32
    }
    /// The program literal of a `Levelized` literal.
    fn lit(&self, lit: RowLit) -> u32 {
        self.row(lit.row(), lit.is_complemented())
    }
}

/// Rows assigned so far in one level: `(old row, new row)` pairs and the next new row.
struct Assign {
    pairs: Vec<(u32, u32)>,
    next: u32,
}

impl Assign {
    fn push(&mut self, old: u32) {
        self.pairs.push((old, self.next));
        self.next += 1;
    }
}

/// Compile the AND/OR gates of level `l` into `p`: 2-input gates (ORs by De Morgan), then
/// wider ones.
fn compile_logic(
    lv: CheckedLevelized,
    l: &Level,
    rd: &Reader,
    p: &mut Program,
    pl: &mut PLevel,
    asg: &mut Assign,
) {
    let old_logic_row = |g: u32| l.row_start + (g - l.and_start);
    let lits_of = |g: u32| lv.gate_lits_of(g);
    // 2-input AND, then 2-input OR (De Morgan: !(!a & !b)).
    pl.and2_start = p.lit2.len() as u32;
    for (or, range) in [
        (false, l.and_start..l.or_start),
        (true, l.or_start..l.or_end),
    ] {
        if or {
            pl.or2_start = p.lit2.len() as u32;
        }
        for g in range {
            let lits = lits_of(g);
            if lits.len() == 2 {
                let f = or as u32;
                p.lit2.push([rd.lit(lits[0]) ^ f, rd.lit(lits[1]) ^ f]);
                asg.push(old_logic_row(g));
            }
        }
    }
    pl.lit2_end = p.lit2.len() as u32;
    p.counts.and2 += (pl.or2_start - pl.and2_start) as u64;
    p.counts.or2 += (pl.lit2_end - pl.or2_start) as u64;
    // Wide AND, then wide OR.
    pl.andk_start = (p.litk_off.len() - 1) as u32;
    for (or, range) in [
        (false, l.and_start..l.or_start),
        (true, l.or_start..l.or_end),
    ] {
        if or {
            pl.ork_start = (p.litk_off.len() - 1) as u32;
        }
        for g in range {
            let lits = lits_of(g);
            if lits.len() != 2 {
                for &x in lits {
                    p.litk.push(rd.lit(x));
                }
                p.litk_off.push(p.litk.len() as u32);
                asg.push(old_logic_row(g));
                p.counts.logic_wide += 1;
                p.counts.logic_wide_lits += lits.len() as u64;
            }
        }
    }
    pl.litk_end = (p.litk_off.len() - 1) as u32;
}

/// One form of a level, decoded and checked: its weights, the `span` of each term (the bits
/// of the word term starting there, 1 for a scalar term, 0 inside a word term), and the sums
/// the bit-sliced rewrite needs.
struct FormView {
    ws: Vec<i64>,
    spans: Vec<u8>,
    abs_sum: u128,
    neg_sum: i128,
}

fn view_form(lv: CheckedLevelized, f: u32, word_terms: bool) -> FormView {
    let ws: Vec<i64> = lv.weights(f).collect();
    let abs_sum: u128 = ws.iter().map(|w| w.unsigned_abs() as u128).sum();
    let neg_sum: i128 = ws.iter().filter(|&&w| w < 0).map(|&w| w as i128).sum();
    let mut spans = vec![1u8; ws.len()];
    if word_terms {
        let t0 = lv.form_offsets[f as usize];
        for r in lv.word_runs_of(f) {
            let j = (r.start - t0) as usize;
            spans[j..j + r.len as usize].fill(0);
            spans[j] = r.len as u8;
        }
    }
    FormView {
        ws,
        spans,
        abs_sum,
        neg_sum,
    }
}

/// Compile the forms of level `l` into `p`: bit-sliced ones first, then per-instance ones.
#[allow(clippy::too_many_arguments)]
fn compile_forms(
    lv: CheckedLevelized,
    l: &Level,
    rd: &Reader,
    p: &mut Program,
    pl: &mut PLevel,
    asg: &mut Assign,
    method: FormMethod,
    word_terms: bool,
) {
    let thr_row = |j: u32| l.threshold_row_start() + (j - l.threshold_start);
    pl.bs_start = p.bs.len() as u32;
    let mut pi_forms: Vec<(u32, FormView)> = Vec::new();
    for f in l.form_start..l.form_end {
        let fv = view_form(lv, f, word_terms);
        let th = lv.bank(f);
        let ripple = bitsliced_cost(&fv.ws, &fv.spans, th.len());
        let columns = columns_cost(&fv.ws, ripple.1, th.len());
        // A form whose sum has no plane (no nonzero weight) always ripples (adds nothing).
        let (use_bs, by_columns) = match method {
            FormMethod::BitSliced => (true, false),
            FormMethod::Columns => (true, ripple.1 > 0),
            FormMethod::PerInstance => (false, false),
            FormMethod::Auto => {
                let by_columns = ripple.1 > 0 && 3 * columns < ripple.0;
                let cost = if by_columns { columns } else { ripple.0 };
                (cost <= per_instance_cost(fv.ws.len(), th.len()), by_columns)
            }
        };
        if !use_bs {
            pi_forms.push((f, fv));
            continue;
        }
        let rows = lv.form_rows_of(f);
        if by_columns {
            push_columns(p, rd, rows, &fv.ws, ripple.1);
        } else {
            for ((&r, &w), &sp) in rows.iter().zip(&fv.ws).zip(&fv.spans) {
                // w * x = |w| * x (w > 0) or w + |w| * !x (w < 0).
                p.bs.terms.push(rd.row(r, w < 0));
                p.bs.weights.push(w.unsigned_abs());
                p.bs.spans.push(sp);
                if sp > 1 {
                    p.counts.word_terms += 1;
                    p.counts.word_term_bits += sp as u64;
                }
            }
            p.bs.columns.push(0);
        }
        p.bs.term_off.push(p.bs.terms.len() as u32);
        for j in th.clone() {
            let t2 = lv.thresholds[j] as i128 - fv.neg_sum;
            p.bs.thresholds
                .push(t2.clamp(0, fv.abs_sum as i128 + 1) as u64);
            asg.push(thr_row(j as u32));
        }
        p.bs.thr_off.push(p.bs.thresholds.len() as u32);
        p.counts.bitsliced_forms += 1;
        p.counts.bitsliced_terms += rows.len() as u64;
        p.counts.bitsliced_thresholds += th.len() as u64;
    }
    pl.bs_end = p.bs.len() as u32;
    pl.pi_start = p.pi.len() as u32;
    for &(f, ref fv) in &pi_forms {
        let rows = lv.form_rows_of(f);
        for (&r, &w) in rows.iter().zip(&fv.ws) {
            p.pi.terms.push(rd.row(r, false) >> 1);
            p.pi.weights.push(w);
        }
        p.pi.term_off.push(p.pi.terms.len() as u32);
        let th = lv.bank(f);
        for j in th.clone() {
            p.pi.thresholds.push(lv.thresholds[j]);
            asg.push(thr_row(j as u32));
        }
        p.pi.thr_off.push(p.pi.thresholds.len() as u32);
        p.counts.per_instance_forms += 1;
        p.counts.per_instance_terms += rows.len() as u64;
        p.counts.per_instance_thresholds += th.len() as u64;
    }
    pl.pi_end = p.pi.len() as u32;
}

/// Compile the checked circuit `lv` into a program. Within each level the rows are renumbered
/// so that each kind is contiguous. With `reuse_slots`, every row is stored in its slot
/// (`CheckedLevelized::allocate_slots`) and a level's rows, written in program order into the
/// staging block, are copied there (`row_slot`); without, a row's slot is its program row and
/// each level writes its rows in place (`row_slot` empty, no staging).
fn compile(lv: CheckedLevelized, opts: &CpuOptions) -> Program {
    let first_gate_row = 1 + lv.num_inputs;
    let (mut slot, num_slots) = if opts.reuse_slots {
        lv.allocate_slots()
    } else {
        // Program rows, filled level by level (a level reads only earlier ones).
        let mut perm = vec![u32::MAX; lv.num_rows as usize];
        for (r, p) in perm.iter_mut().enumerate().take(first_gate_row as usize) {
            *p = r as u32;
        }
        (perm, lv.num_rows)
    };
    let mut p = Program {
        num_inputs: lv.num_inputs,
        num_rows: lv.num_rows,
        num_slots,
        litk_off: vec![0],
        bs: FormSet::new(),
        pi: FormSet::new(),
        ..Default::default()
    };
    if opts.reuse_slots {
        p.stage_rows = lv.levels.iter().map(|l| l.num_rows()).max().unwrap_or(0);
        p.row_slot = vec![u32::MAX; (lv.num_rows - first_gate_row) as usize];
    }
    let (method, word_terms) = (opts.form_method, opts.word_terms);
    for l in &lv.levels {
        let mut pl = PLevel {
            row_start: l.row_start,
            ..Default::default()
        };
        let mut asg = Assign {
            pairs: Vec::new(),
            next: l.row_start,
        };
        let rd = Reader { slot: &slot };
        compile_logic(lv, l, &rd, &mut p, &mut pl, &mut asg);
        compile_forms(lv, l, &rd, &mut p, &mut pl, &mut asg, method, word_terms);
        for (old, new) in asg.pairs {
            if opts.reuse_slots {
                p.row_slot[(new - first_gate_row) as usize] = slot[old as usize];
            } else {
                slot[old as usize] = new;
            }
        }
        p.levels.push(pl);
    }
    let rd = Reader { slot: &slot };
    p.outputs = lv.outputs.iter().map(|&o| rd.lit(o)).collect();
    p
}

// ------------------------------------------------------------------------------- kernels

/// All ones when the literal is complemented.
#[inline(always)]
fn mask(lit: u32) -> u64 {
    0u64.wrapping_sub((lit & 1) as u64)
}

/// Row `row` of a block of `B` words per row.
#[inline(always)]
fn rd<const B: usize>(vals: &[u64], row: u32) -> &[u64; B] {
    let s = row as usize * B;
    vals[s..s + B].try_into().expect("row inside the block")
}

/// 2-input gates: `out = (a ^ ma) & (b ^ mb)`, complemented for OR (De Morgan).
fn k_logic2<const B: usize, const OR: bool>(prev: &[u64], lits: &[[u32; 2]], out: &mut [u64]) {
    let flip = if OR { !0u64 } else { 0 };
    for (g, o) in lits.iter().zip(out.chunks_exact_mut(B)) {
        let a = rd::<B>(prev, g[0] >> 1);
        let b = rd::<B>(prev, g[1] >> 1);
        let (ma, mb) = (mask(g[0]), mask(g[1]));
        for w in 0..B {
            o[w] = ((a[w] ^ ma) & (b[w] ^ mb)) ^ flip;
        }
    }
}

/// AND / OR of any number of literals.
fn k_logick<const B: usize, const OR: bool>(
    prev: &[u64],
    off: &[u32],
    lits: &[u32],
    out: &mut [u64],
) {
    for (i, o) in out.chunks_exact_mut(B).enumerate() {
        let mut acc = [if OR { 0u64 } else { !0u64 }; B];
        for &l in &lits[off[i] as usize..off[i + 1] as usize] {
            let x = rd::<B>(prev, l >> 1);
            let m = mask(l);
            for w in 0..B {
                if OR {
                    acc[w] |= x[w] ^ m;
                } else {
                    acc[w] &= x[w] ^ m;
                }
            }
        }
        o.copy_from_slice(&acc);
    }
}

/// The literal `l` (row `l >> 1`, complemented when `l & 1`) of a block.
#[inline(always)]
fn lit_value<const B: usize>(prev: &[u64], l: u32) -> [u64; B] {
    let x = rd::<B>(prev, l >> 1);
    let m = mask(l);
    let mut xv = [0u64; B];
    for w in 0..B {
        xv[w] = x[w] ^ m;
    }
    xv
}

/// `planes += a * l`: a ripple of half adders from plane `k` for every set bit `k` of `a`.
/// (Ending the ripple at the first plane where no instance carries was measured: 8% faster on
/// `micro`'s term-by-term path, 17% slower on `tiny`'s program.)
#[inline(always)]
fn add_bit<const B: usize>(planes: &mut [[u64; B]], prev: &[u64], l: u32, a: u64) {
    let xv = lit_value::<B>(prev, l);
    let mut bits = a;
    while bits != 0 {
        let k = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let mut carry = xv;
        for plane in planes.iter_mut().skip(k) {
            for w in 0..B {
                let t = plane[w] & carry[w];
                plane[w] ^= carry[w];
                carry[w] = t;
            }
        }
    }
}

/// `planes += a * X` for the word `X` whose bit `i` is the literal `lits[i]`: for every set
/// bit `k` of `a`, a ripple of full adders adding bit `i` of `X` into plane `k + i`, then half
/// adders carrying above the word. The caller's planes reach the sum's top, which is at least
/// `k + lits.len()`.
#[inline(always)]
fn add_word<const B: usize>(planes: &mut [[u64; B]], prev: &[u64], lits: &[u32], a: u64) {
    let mut bits = a;
    while bits != 0 {
        let k = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let mut carry = [0u64; B];
        let (word, above) = planes[k..].split_at_mut(lits.len());
        for (plane, &l) in word.iter_mut().zip(lits) {
            let x = lit_value::<B>(prev, l);
            for w in 0..B {
                let t = plane[w] ^ x[w];
                let c = (plane[w] & x[w]) | (carry[w] & t);
                plane[w] = t ^ carry[w];
                carry[w] = c;
            }
        }
        for plane in above.iter_mut() {
            if carry.iter().all(|&c| c == 0) {
                break;
            }
            for w in 0..B {
                let t = plane[w] & carry[w];
                plane[w] ^= carry[w];
                carry[w] = t;
            }
        }
    }
}

/// `planes = sum of the column-ordered literals terms[range]`, literal `j` in column
/// `weights[j]`: per column from the lowest, the column's literals and the carries into it
/// are reduced by full adders (3 bits to a bit here and a carry into the next column) and a
/// last half adder, until one bit is left: the plane. `planes` reaches the sum's top, so no
/// carry leaves the last column. `cur` and `next` are scratch.
fn add_columns<const B: usize>(
    planes: &mut [[u64; B]],
    prev: &[u64],
    set: &FormSet<u64, u64>,
    range: std::ops::Range<usize>,
    cur: &mut Vec<[u64; B]>,
    next: &mut Vec<[u64; B]>,
) {
    let mut j = range.start;
    cur.clear();
    next.clear();
    for (c, plane) in planes.iter_mut().enumerate() {
        while j < range.end && set.weights[j] as usize == c {
            cur.push(lit_value::<B>(prev, set.terms[j]));
            j += 1;
        }
        while cur.len() >= 3 {
            let (a, b, d) = (cur.pop().unwrap(), cur.pop().unwrap(), cur.pop().unwrap());
            let (mut s, mut cy) = ([0u64; B], [0u64; B]);
            for w in 0..B {
                let t = a[w] ^ b[w];
                s[w] = t ^ d[w];
                cy[w] = (a[w] & b[w]) | (t & d[w]);
            }
            cur.push(s);
            next.push(cy);
        }
        if cur.len() == 2 {
            let (a, b) = (cur.pop().unwrap(), cur.pop().unwrap());
            let (mut s, mut cy) = ([0u64; B], [0u64; B]);
            for w in 0..B {
                s[w] = a[w] ^ b[w];
                cy[w] = a[w] & b[w];
            }
            cur.push(s);
            next.push(cy);
        }
        *plane = cur.pop().unwrap_or([0; B]);
        std::mem::swap(cur, next);
    }
}

/// Bit-sliced forms `forms` of `set`: vertical counters, then one comparison per threshold.
///
/// A form compiled by columns is reduced by [`add_columns`]; otherwise `|w| * l` is added with
/// a ripple of half adders from plane `k` for every set bit `k` of `|w|`, up to the highest
/// plane the running maximum sum can reach.
fn k_bitsliced<const B: usize>(
    prev: &[u64],
    set: &FormSet<u64, u64>,
    forms: std::ops::Range<usize>,
    out: &mut [u64],
) {
    let mut planes = [[0u64; B]; 64];
    let mut o = out.chunks_exact_mut(B);
    let (mut cur, mut next): (Vec<[u64; B]>, Vec<[u64; B]>) = (Vec::new(), Vec::new());
    for f in forms {
        let mut top = 0usize;
        let mut sum = 0u64;
        let (mut j, end) = (set.term_off[f] as usize, set.term_off[f + 1] as usize);
        if set.columns[f] > 0 {
            top = set.columns[f] as usize;
            add_columns::<B>(&mut planes[..top], prev, set, j..end, &mut cur, &mut next);
            j = end;
        }
        while j < end {
            let k = set.spans[j].max(1) as usize;
            let a = set.weights[j];
            for &w in &set.weights[j..j + k] {
                sum += w;
            }
            let new_top = 64 - sum.leading_zeros() as usize;
            for plane in planes.iter_mut().take(new_top).skip(top) {
                *plane = [0; B];
            }
            top = new_top;
            if k == 1 {
                add_bit::<B>(&mut planes[..top], prev, set.terms[j], a);
            } else {
                add_word::<B>(&mut planes[..top], prev, &set.terms[j..j + k], a);
            }
            j += k;
        }
        for &t in &set.thresholds[set.thr_off[f] as usize..set.thr_off[f + 1] as usize] {
            let dst = o.next().expect("one output row per threshold");
            if top < 64 && t >> top != 0 {
                dst.fill(0);
                continue;
            }
            // [S >= t] from the most significant plane down.
            let mut gt = [0u64; B];
            let mut eq = [!0u64; B];
            for p in (0..top).rev() {
                let s = &planes[p];
                if (t >> p) & 1 == 1 {
                    for w in 0..B {
                        eq[w] &= s[w];
                    }
                } else {
                    for w in 0..B {
                        gt[w] |= eq[w] & s[w];
                        eq[w] &= !s[w];
                    }
                }
            }
            for w in 0..B {
                dst[w] = gt[w] | eq[w];
            }
        }
    }
}

/// `BYTE_MASKS[b][i]` is all ones when bit `i` of `b` is set: expands 8 instances of a word
/// into lane masks with one load (vectorises, unlike a shift per instance).
static BYTE_MASKS: [[i64; 8]; 256] = {
    let mut t = [[0i64; 8]; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b][i] = -(((b >> i) & 1) as i64);
            i += 1;
        }
        b += 1;
    }
    t
};

/// Per-instance forms: a signed `i64` sum per instance, compared with every threshold.
fn k_per_instance<const B: usize>(
    prev: &[u64],
    set: &FormSet<i64, i64>,
    forms: std::ops::Range<usize>,
    out: &mut [u64],
) {
    let mut base = 0usize;
    for f in forms {
        let terms = set.term_off[f] as usize..set.term_off[f + 1] as usize;
        let thr = &set.thresholds[set.thr_off[f] as usize..set.thr_off[f + 1] as usize];
        for w in 0..B {
            let mut acc = [0i64; 64];
            for j in terms.clone() {
                let x = prev[set.terms[j] as usize * B + w];
                let wt = set.weights[j];
                for (byte, group) in acc.chunks_exact_mut(8).enumerate() {
                    let m = &BYTE_MASKS[((x >> (8 * byte)) & 0xff) as usize];
                    for i in 0..8 {
                        group[i] = group[i].wrapping_add(wt & m[i]);
                    }
                }
            }
            for (k, &t) in thr.iter().enumerate() {
                let mut bits = 0u64;
                for (i, &a) in acc.iter().enumerate() {
                    bits |= ((a >= t) as u64) << i;
                }
                out[base + k * B + w] = bits;
            }
        }
        base += thr.len() * B;
    }
}

// ------------------------------------------------------------------------------- driver

/// Below this many word-operations a segment of a level is evaluated on one thread.
const PAR_MIN_WORK: usize = 1 << 15;

/// Split the items `items` of one kind (item `i` writes rows `row_of(i)..row_of(i + 1)` of
/// `out`, relative to the segment) into chunks of about equal work and run `f` on each, in
/// parallel when `par` and the work is large enough.
fn segment<F>(
    out: &mut [u64],
    b: usize,
    items: std::ops::Range<usize>,
    row_of: impl Fn(usize) -> usize,
    work: usize,
    par: bool,
    f: F,
) where
    F: Fn(std::ops::Range<usize>, &mut [u64]) + Sync + Send,
{
    let n = items.len();
    if n == 0 {
        return;
    }
    if !par || n < 2 || work < PAR_MIN_WORK {
        f(items, out);
        return;
    }
    let chunks = (work / PAR_MIN_WORK)
        .clamp(2, 8 * rayon::current_num_threads())
        .min(n);
    let per = n.div_ceil(chunks);
    let mut parts = Vec::with_capacity(chunks);
    let mut rest = out;
    let mut start = items.start;
    while start < items.end {
        let end = (start + per).min(items.end);
        let (a, r) = std::mem::take(&mut rest).split_at_mut((row_of(end) - row_of(start)) * b);
        parts.push((start..end, a));
        rest = r;
        start = end;
    }
    parts.into_par_iter().for_each(|(r, o)| f(r, o));
}

/// Evaluate all levels on one block of `B` words per row.
fn run_levels<const B: usize>(p: &Program, vals: &mut [u64], par: bool) {
    let (slots, stage) = vals.split_at_mut(p.num_slots as usize * B);
    let first_gate_row = 1 + p.num_inputs as usize;
    for (li, l) in p.levels.iter().enumerate() {
        let end = p.levels.get(li + 1).map_or(p.num_rows, |n| n.row_start) as usize;
        let rows = end - l.row_start as usize;
        if p.row_slot.is_empty() {
            // Slots are program rows: the level writes its rows in place.
            let (prev, out) = slots.split_at_mut(l.row_start as usize * B);
            run_level::<B>(p, l, prev, &mut out[..rows * B], par);
            continue;
        }
        run_level::<B>(p, l, slots, &mut stage[..rows * B], par);
        let first = l.row_start as usize - first_gate_row;
        for (i, &s) in p.row_slot[first..first + rows].iter().enumerate() {
            let s = s as usize;
            slots[s * B..(s + 1) * B].copy_from_slice(&stage[i * B..(i + 1) * B]);
        }
    }
}

/// Evaluate level `l`, reading the slots `prev` and writing its rows in program order into
/// `rest`.
fn run_level<const B: usize>(p: &Program, l: &PLevel, prev: &[u64], rest: &mut [u64], par: bool) {
    let n2a = (l.or2_start - l.and2_start) as usize;
    let n2o = (l.lit2_end - l.or2_start) as usize;
    let nka = (l.ork_start - l.andk_start) as usize;
    let nko = (l.litk_end - l.ork_start) as usize;
    let bs_rows = (p.bs.thr_off[l.bs_end as usize] - p.bs.thr_off[l.bs_start as usize]) as usize;
    let pi_rows = (p.pi.thr_off[l.pi_end as usize] - p.pi.thr_off[l.pi_start as usize]) as usize;
    let (o2a, rest) = rest.split_at_mut(n2a * B);
    let (o2o, rest) = rest.split_at_mut(n2o * B);
    let (oka, rest) = rest.split_at_mut(nka * B);
    let (oko, rest) = rest.split_at_mut(nko * B);
    let (obs, rest) = rest.split_at_mut(bs_rows * B);
    let opi = &mut rest[..pi_rows * B];

    let a0 = l.and2_start as usize;
    segment(
        o2a,
        B,
        a0..a0 + n2a,
        |i| i,
        3 * n2a * B,
        par,
        |r, o| k_logic2::<B, false>(prev, &p.lit2[r], o),
    );
    let o0 = l.or2_start as usize;
    segment(
        o2o,
        B,
        o0..o0 + n2o,
        |i| i,
        3 * n2o * B,
        par,
        |r, o| k_logic2::<B, true>(prev, &p.lit2[r], o),
    );
    for (or, start, n, o) in [
        (false, l.andk_start as usize, nka, oka),
        (true, l.ork_start as usize, nko, oko),
    ] {
        let lits = (p.litk_off[start + n] - p.litk_off[start]) as usize;
        segment(
            o,
            B,
            start..start + n,
            |i| i,
            2 * lits * B,
            par,
            |r, o| {
                let off = &p.litk_off[r.start..=r.end];
                if or {
                    k_logick::<B, true>(prev, off, &p.litk, o)
                } else {
                    k_logick::<B, false>(prev, off, &p.litk, o)
                }
            },
        );
    }
    let (f0, f1) = (l.bs_start as usize, l.bs_end as usize);
    let terms = (p.bs.term_off[f1] - p.bs.term_off[f0]) as usize;
    let base = p.bs.thr_off[f0] as usize;
    segment(
        obs,
        B,
        f0..f1,
        |f| p.bs.thr_off[f] as usize - base,
        8 * terms * B,
        par,
        |r, o| k_bitsliced::<B>(prev, &p.bs, r, o),
    );
    let (f0, f1) = (l.pi_start as usize, l.pi_end as usize);
    let terms = (p.pi.term_off[f1] - p.pi.term_off[f0]) as usize;
    let base = p.pi.thr_off[f0] as usize;
    segment(
        opi,
        B,
        f0..f1,
        |f| p.pi.thr_off[f] as usize - base,
        160 * terms * B,
        par,
        |r, o| k_per_instance::<B>(prev, &p.pi, r, o),
    );
}

/// Copy column block `blk` of the inputs into `vals` (row 0 zero, rows `1..=inputs`), padding
/// words past the batch with zeros.
fn load_block<const B: usize>(p: &Program, inputs: &Batch, blk: usize, vals: &mut [u64]) {
    let wpr = inputs.words_per_row();
    let c0 = blk * B;
    let n = B.min(wpr - c0);
    vals[..B].fill(0);
    let src = inputs.words();
    for i in 0..p.num_inputs as usize {
        let d = &mut vals[(1 + i) * B..(2 + i) * B];
        d[..n].copy_from_slice(&src[i * wpr + c0..i * wpr + c0 + n]);
        d[n..].fill(0);
    }
}

/// The output rows of a block, `num_outputs * B` words (row-major).
fn store_block<const B: usize>(p: &Program, vals: &[u64], dst: &mut [u64]) {
    for (k, &o) in p.outputs.iter().enumerate() {
        let x = rd::<B>(vals, o >> 1);
        let m = mask(o);
        for w in 0..B {
            dst[k * B + w] = x[w] ^ m;
        }
    }
}

/// The CPU evaluator: a compiled [`Levelized`] circuit plus reusable wire-value arrays.
///
/// Invariant: the program was validated at construction (every read refers to an earlier
/// level, every range is in bounds), so evaluation cannot fail except on a batch of the wrong
/// shape or when the value arrays cannot be allocated.
#[derive(Debug)]
pub struct CpuEvaluator {
    prog: Program,
    opts: CpuOptions,
    /// One wire-value array per worker, reused across calls.
    scratch: Vec<Vec<u64>>,
}

impl CpuEvaluator {
    /// Compile `lv` with the default [`CpuOptions`].
    ///
    /// Errors with [`EvalError::Unsupported`] when `lv` violates the invariants of
    /// [`Levelized`] (as [`Levelized::check`] reports them: e.g. a level reading a row of its
    /// own or a later level, inconsistent offsets, a form whose sum of |weights| exceeds 2^62).
    pub fn new(lv: &Levelized) -> Result<Self, EvalError> {
        Self::with_options(lv, CpuOptions::default())
    }

    /// Compile `lv` with explicit options. `max_block_words` must be a power of two in 1..=32.
    pub fn with_options(lv: &Levelized, opts: CpuOptions) -> Result<Self, EvalError> {
        if !opts.max_block_words.is_power_of_two() || opts.max_block_words > 32 {
            return Err(EvalError::Unsupported(format!(
                "max_block_words must be a power of two in 1..=32, got {}",
                opts.max_block_words
            )));
        }
        let lv = lv
            .check()
            .map_err(|e| EvalError::Unsupported(e.to_string()))?;
        Ok(CpuEvaluator {
            prog: compile(lv, &opts),
            opts,
            scratch: Vec::new(),
        })
    }

    /// The options this evaluator was compiled with.
    pub fn options(&self) -> CpuOptions {
        self.opts
    }

    /// How many gates of each kind the compiled program holds.
    pub fn kind_counts(&self) -> KindCounts {
        self.prog.counts
    }

    /// Bytes held by the evaluator: the compiled program plus the wire-value arrays kept from
    /// the last evaluation.
    pub fn bytes(&self) -> u64 {
        (self.prog.bytes() + self.scratch.iter().map(|s| s.capacity() * 8).sum::<usize>()) as u64
    }

    /// Release the wire-value arrays (they are reallocated by the next evaluation).
    pub fn release_scratch(&mut self) {
        self.scratch = Vec::new();
    }

    /// Evaluate `inputs` into `out`, which must have one row per output and as many instances
    /// as `inputs` (its previous contents are overwritten). Avoids allocating the result.
    pub fn evaluate_into(&mut self, inputs: &Batch, out: &mut Batch) -> Result<(), EvalError> {
        let p = &self.prog;
        if inputs.rows() != p.num_inputs {
            return Err(EvalError::InputWidth {
                expected: p.num_inputs as usize,
                got: inputs.rows() as usize,
            });
        }
        if out.rows() as usize != p.outputs.len() || out.instances() != inputs.instances() {
            return Err(EvalError::BatchShape(format!(
                "result batch has {} rows of {} instances, expected {} rows of {}",
                out.rows(),
                out.instances(),
                p.outputs.len(),
                inputs.instances()
            )));
        }
        let wpr = inputs.words_per_row();
        if wpr == 0 {
            return Ok(());
        }
        let threads = if self.opts.parallel {
            rayon::current_num_threads().max(1)
        } else {
            1
        };
        let rows = p.value_rows() as u64;
        let mut b = wpr.next_power_of_two().min(self.opts.max_block_words);
        let mut workers = threads.min(wpr.div_ceil(b));
        while b > 1 && workers as u64 * rows * b as u64 * 8 > self.opts.max_scratch_bytes {
            b /= 2;
            workers = threads.min(wpr.div_ceil(b));
        }
        if workers > 1 && workers as u64 * rows * b as u64 * 8 > self.opts.max_scratch_bytes {
            workers = 1;
        }
        match b {
            1 => self.run::<1>(inputs, out, workers),
            2 => self.run::<2>(inputs, out, workers),
            4 => self.run::<4>(inputs, out, workers),
            8 => self.run::<8>(inputs, out, workers),
            16 => self.run::<16>(inputs, out, workers),
            _ => self.run::<32>(inputs, out, workers),
        }?;
        let m = tail_mask(inputs.instances());
        let words = out.words_mut();
        for r in 0..self.prog.outputs.len() {
            words[r * wpr + wpr - 1] &= m;
        }
        Ok(())
    }

    fn run<const B: usize>(
        &mut self,
        inputs: &Batch,
        out: &mut Batch,
        workers: usize,
    ) -> Result<(), EvalError> {
        let p = &self.prog;
        let wpr = inputs.words_per_row();
        let nblocks = wpr.div_ceil(B);
        let len = p.value_rows() * B;
        self.scratch.truncate(workers);
        while self.scratch.len() < workers {
            self.scratch.push(Vec::new());
        }
        for s in self.scratch.iter_mut() {
            if s.len() < len {
                s.clear();
                s.try_reserve_exact(len)
                    .map_err(|_| EvalError::LimitExceeded {
                        what: "CPU wire-value array (bytes)".into(),
                        needed: len as u64 * 8,
                        limit: isize::MAX as u64,
                    })?;
                s.resize(len, 0);
            }
        }
        let nout = p.outputs.len();
        let scatter = |dst: &mut [u64], blk: usize, block_out: &[u64]| {
            let c0 = blk * B;
            let n = B.min(wpr - c0);
            for k in 0..nout {
                dst[k * wpr + c0..k * wpr + c0 + n].copy_from_slice(&block_out[k * B..k * B + n]);
            }
        };
        if workers <= 1 {
            let par = self.opts.parallel;
            let vals = &mut self.scratch[0][..len];
            let mut block_out = vec![0u64; nout * B];
            for blk in 0..nblocks {
                load_block::<B>(p, inputs, blk, vals);
                run_levels::<B>(p, vals, par);
                store_block::<B>(p, vals, &mut block_out);
                scatter(out.words_mut(), blk, &block_out);
            }
        } else {
            // Worker t evaluates blocks t, t + workers, ...; each keeps its outputs locally.
            let results: Vec<Vec<u64>> = self
                .scratch
                .par_iter_mut()
                .enumerate()
                .map(|(t, s)| {
                    let vals = &mut s[..len];
                    let mine: Vec<usize> = (t..nblocks).step_by(workers).collect();
                    let mut res = vec![0u64; mine.len() * nout * B];
                    for (i, &blk) in mine.iter().enumerate() {
                        load_block::<B>(p, inputs, blk, vals);
                        run_levels::<B>(p, vals, false);
                        store_block::<B>(p, vals, &mut res[i * nout * B..(i + 1) * nout * B]);
                    }
                    res
                })
                .collect();
            let dst = out.words_mut();
            for (t, res) in results.iter().enumerate() {
                for (i, blk) in (t..nblocks).step_by(workers).enumerate() {
                    scatter(dst, blk, &res[i * nout * B..(i + 1) * nout * B]);
                }
            }
        }
        Ok(())
    }
}

impl Evaluator for CpuEvaluator {
    fn name(&self) -> String {
        "cpu".to_string()
    }

    fn num_inputs(&self) -> u32 {
        self.prog.num_inputs
    }

    fn num_outputs(&self) -> u32 {
        self.prog.outputs.len() as u32
    }

    fn evaluate(&mut self, inputs: &Batch) -> Result<Batch, EvalError> {
        let mut out = Batch::zeros(self.prog.outputs.len() as u32, inputs.instances());
        self.evaluate_into(inputs, &mut out)?;
        Ok(out)
    }
}
