//! [`GpuEvaluator`]: a levelized circuit evaluated level by level in WGSL compute kernels.

use std::sync::Arc;

use super::context::{GpuContext, GpuOptions};
use super::plan::{Fusion, Kind, Plan, LLVMPIPE_LOOP_LIMIT};

/// Circuit-array bindings of the fused kernel (`shaders/fused.wgsl`).
const FUSED_BINDINGS: u32 = 6;
use crate::circuit::Levelized;
use crate::eval::{Batch, EvalError, Evaluator};

/// Number of value-buffer bindings the kernels declare (`v0..v3` in `shaders/common.wgsl`).
pub const VALUE_BINDINGS: u32 = 4;
/// Workgroup size of every kernel.
const WG: u64 = 64;
/// Size of the `Params` uniform struct.
const PARAMS_SIZE: u64 = 32;

/// GPU memory held by an evaluator, in bytes.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct GpuMemory {
    /// Circuit arrays (uploaded once).
    pub circuit: u64,
    /// Wire-value slots for the current batch capacity.
    pub values: u64,
    /// Output, read-back and dispatch-parameter buffers.
    pub io: u64,
}

impl GpuMemory {
    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.circuit + self.values + self.io
    }
}

/// Shape of the evaluation plan, for reports.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct PlanSummary {
    /// Rows of the levelized circuit (1 + inputs + gates).
    pub rows: u32,
    /// Wire slots after reuse (`<= rows`).
    pub slots: u32,
    /// Segments of circuit arrays (more than one when the arrays exceed the binding limit).
    pub segments: u32,
    /// Per-level dispatches (without fusion), before splitting for the workgroup-count limit.
    pub dispatches: u32,
    /// Dispatches recorded per column chunk of a batch: fused groups, per-level dispatches
    /// outside them, and the output gather (before splitting for the workgroup-count limit).
    pub dispatches_per_batch: u32,
    /// Levels of the circuit.
    pub levels: u32,
    /// Fused groups of levels (one dispatch each).
    pub fused_groups: u32,
    /// Levels inside fused groups.
    pub fused_levels: u32,
    /// Forms on the 32-bit kernel.
    pub narrow_forms: u32,
    /// Forms on the exact two-word kernel.
    pub wide_forms: u32,
    /// Forms on the bit-sliced counter kernel.
    pub sliced_forms: u32,
    /// Unit-weight forms on the 8-plane counter kernel.
    pub count_forms: u32,
    /// The per-binding byte limit used.
    pub binding_limit: u64,
}

/// How the wire-value storage is laid out for a batch (see [`GpuEvaluator::value_layout`]).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ValueLayout {
    /// u32 words (32 instances each) per row in one column chunk.
    pub words_per_chunk: u32,
    /// Column chunks the batch is processed in (one command buffer each).
    pub chunks: u32,
    /// Value buffers (bindings) the slots are spread over.
    pub value_buffers: u32,
    /// Slots per value buffer (a power of two).
    pub slots_per_buffer: u64,
}

/// How the slot storage is laid out for one batch width.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
struct Layout {
    /// u32 words per row in a column chunk.
    words: u32,
    /// log2 of slots per value buffer.
    shift: u32,
    /// Value buffers used.
    nb: u32,
}

struct Pipelines {
    logic: wgpu::ComputePipeline,
    narrow: wgpu::ComputePipeline,
    wide: wgpu::ComputePipeline,
    sliced: wgpu::ComputePipeline,
    count: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    /// The fused-levels kernel, when the adapter allows its bindings.
    fused: Option<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
    layout0: wgpu::BindGroupLayout,
    layout_logic: wgpu::BindGroupLayout,
    layout_form: wgpu::BindGroupLayout,
    layout_gather: wgpu::BindGroupLayout,
}

struct SegmentGroups {
    logic: wgpu::BindGroup,
    narrow: wgpu::BindGroup,
    wide: wgpu::BindGroup,
    fused: Option<wgpu::BindGroup>,
    _buffers: Vec<wgpu::Buffer>,
}

/// One recorded dispatch for a given chunk width.
#[derive(Copy, Clone, Debug)]
struct Rec {
    /// `None`: the gather kernel (or the fused kernel when `fused`).
    kind: Option<Kind>,
    /// A fused group of levels (`shaders/fused.wgsl`).
    fused: bool,
    segment: u32,
    params: [u32; 8],
    groups: (u32, u32),
}

/// Buffers sized for a batch capacity.
struct Resident {
    layout: Layout,
    vals: Vec<wgpu::Buffer>,
    params: wgpu::Buffer,
    param_cap: usize,
    out: wgpu::Buffer,
    readback: wgpu::Buffer,
    bg0: wgpu::BindGroup,
    bg_gather: wgpu::BindGroup,
    /// The chunk width the params buffer currently holds, with its records.
    recs_for: Option<u32>,
    recs: Vec<Rec>,
    value_bytes: u64,
    io_bytes: u64,
}

/// State of the split upload / run / download API.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Stage {
    Empty,
    Uploaded { instances: usize, words: u32 },
    Ran { instances: usize, words: u32 },
}

/// The GPU evaluator (docs/gpu.md): a levelized circuit uploaded once, then evaluated for many
/// bit-sliced batches, bit-exact with the CPU evaluator.
///
/// Per batch (or per column chunk of a batch too wide for the binding limit): the inputs are
/// written into their wire slots, all levels are recorded into one command buffer (one
/// dispatch per level, kernel kind and segment, split further only for the workgroup-count
/// limit), outputs are gathered and read back with `map_async`.
pub struct GpuEvaluator {
    ctx: Arc<GpuContext>,
    plan: Plan,
    limit: u64,
    num_rows: u32,
    num_gates: u64,
    num_levels: u32,
    pipes: Pipelines,
    segs: Vec<SegmentGroups>,
    outlist: wgpu::Buffer,
    circuit_bytes: u64,
    param_align: u64,
    res: Option<Resident>,
    stage: Stage,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn entry(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buf.as_entire_binding(),
    }
}

fn next_pow2(x: u64) -> u64 {
    x.max(1).next_power_of_two()
}

fn prev_pow2(x: u64) -> u64 {
    if x == 0 {
        0
    } else {
        1 << (63 - x.leading_zeros())
    }
}

impl GpuEvaluator {
    /// Create a device (see [`GpuOptions`]) and upload `lv`.
    pub fn new(lv: &Levelized, opts: &GpuOptions) -> Result<GpuEvaluator, EvalError> {
        GpuEvaluator::with_context(Arc::new(GpuContext::new(opts)?), lv, opts)
    }

    /// Upload `lv` to an existing context's device: plan slots and segments, upload the
    /// circuit arrays, build the pipelines. Only `opts.max_binding_bytes` is read here.
    pub fn with_context(
        ctx: Arc<GpuContext>,
        lv: &Levelized,
        opts: &GpuOptions,
    ) -> Result<GpuEvaluator, EvalError> {
        let lim = &ctx.limits;
        let needed_storage = VALUE_BINDINGS + 3;
        if lim.max_storage_buffers_per_shader_stage < needed_storage {
            return Err(EvalError::LimitExceeded {
                what: "max_storage_buffers_per_shader_stage".into(),
                needed: needed_storage as u64,
                limit: lim.max_storage_buffers_per_shader_stage as u64,
            });
        }
        let mut limit = lim.max_storage_buffer_binding_size.min(lim.max_buffer_size);
        if let Some(m) = opts.max_binding_bytes {
            limit = limit.min(m);
        }
        let limit = limit & !15;
        if limit < 16 {
            return Err(EvalError::LimitExceeded {
                what: "binding limit (must allow at least 16 bytes)".into(),
                needed: 16,
                limit,
            });
        }
        let mut plan = Plan::new(lv, limit, opts.form_kernel)?;
        let can_fuse = lim.max_storage_buffers_per_shader_stage >= VALUE_BINDINGS + FUSED_BINDINGS;
        plan.fuse(if can_fuse { &opts.fusion } else { &Fusion::Off }, limit);
        if ctx.adapter().name.to_lowercase().contains("llvmpipe") {
            check_llvmpipe_loops(&plan)?;
        }
        if 4 * plan.outputs.len() as u64 > limit {
            return Err(EvalError::LimitExceeded {
                what: "output list".into(),
                needed: 4 * plan.outputs.len() as u64,
                limit,
            });
        }
        let pipes = build_pipelines(&ctx, can_fuse)?;
        let mut segs = Vec::with_capacity(plan.segments.len());
        for (i, s) in plan.segments.iter().enumerate() {
            let b = |name: &str, data: &[u8]| ctx.storage_init(&format!("seg{i} {name}"), data);
            let buffers = vec![
                b("gates", bytemuck::cast_slice(&s.gates))?,
                b("lits", bytemuck::cast_slice(&s.lits))?,
                b("n_forms", bytemuck::cast_slice(&s.n_forms))?,
                b("n_terms", bytemuck::cast_slice(&s.n_terms))?,
                b("n_thrs", bytemuck::cast_slice(&s.n_thrs))?,
                b("w_forms", bytemuck::cast_slice(&s.w_forms))?,
                b("w_terms", bytemuck::cast_slice(&s.w_terms))?,
                b("w_thrs", bytemuck::cast_slice(&s.w_thrs))?,
                b("steps", bytemuck::cast_slice(&plan.steps[i]))?,
            ];
            let d = &ctx.device;
            let (logic, narrow, wide, fused) = ctx.scoped("segment bind groups", || {
                let mk = |layout: &wgpu::BindGroupLayout, bufs: &[&wgpu::Buffer]| {
                    let entries: Vec<_> = bufs
                        .iter()
                        .enumerate()
                        .map(|(k, bf)| entry(k as u32, bf))
                        .collect();
                    d.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("segment"),
                        layout,
                        entries: &entries,
                    })
                };
                (
                    mk(&pipes.layout_logic, &[&buffers[0], &buffers[1]]),
                    mk(&pipes.layout_form, &[&buffers[2], &buffers[3], &buffers[4]]),
                    mk(&pipes.layout_form, &[&buffers[5], &buffers[6], &buffers[7]]),
                    pipes.fused.as_ref().map(|(_, layout)| {
                        let b = &buffers;
                        mk(layout, &[&b[0], &b[1], &b[2], &b[3], &b[4], &b[8]])
                    }),
                )
            })?;
            segs.push(SegmentGroups {
                logic,
                narrow,
                wide,
                fused,
                _buffers: buffers,
            });
        }
        let outlist = ctx.storage_init("output list", bytemuck::cast_slice(&plan.outputs))?;
        let circuit_bytes = plan.circuit_bytes();
        let param_align = (lim.min_uniform_buffer_offset_alignment as u64).max(PARAMS_SIZE);
        Ok(GpuEvaluator {
            plan,
            limit,
            num_rows: lv.num_rows,
            num_gates: lv.num_gates(),
            num_levels: lv.depth(),
            pipes,
            segs,
            outlist,
            circuit_bytes,
            param_align,
            res: None,
            stage: Stage::Empty,
            ctx,
        })
    }

    /// The context (device and adapter) this evaluator runs on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// GPU memory currently held.
    pub fn memory(&self) -> GpuMemory {
        GpuMemory {
            circuit: self.circuit_bytes,
            values: self.res.as_ref().map_or(0, |r| r.value_bytes),
            io: self.res.as_ref().map_or(0, |r| r.io_bytes),
        }
    }

    /// GPU bytes per gate: [`GpuEvaluator::memory`]`.total()` divided by the gate count
    /// (AND, OR and bank thresholds); depends on the largest batch evaluated so far.
    pub fn bytes_per_gate(&self) -> f64 {
        self.memory().total() as f64 / self.num_gates.max(1) as f64
    }

    /// Slots, segments and kernels of the plan.
    pub fn plan_summary(&self) -> PlanSummary {
        PlanSummary {
            rows: self.num_rows,
            slots: self.plan.num_slots,
            segments: self.plan.segments.len() as u32,
            dispatches: self.plan.dispatches.len() as u32,
            dispatches_per_batch: self.plan.dispatches_per_batch(),
            levels: self.num_levels,
            fused_groups: self.plan.fused.len() as u32,
            fused_levels: self.plan.fused.iter().map(|g| g.levels).sum(),
            narrow_forms: self.plan.narrow_forms,
            wide_forms: self.plan.wide_forms,
            sliced_forms: self.plan.sliced_forms,
            count_forms: self.plan.count_forms,
            binding_limit: self.limit,
        }
    }

    /// How a batch of `instances` instances would be laid out: column chunks and value
    /// buffers (more than one of either when the binding limit forces a split).
    pub fn value_layout(&self, instances: usize) -> Result<ValueLayout, EvalError> {
        let w_total = 2 * instances.div_ceil(64) as u64;
        let l = self.choose_layout(w_total.max(2))?;
        Ok(ValueLayout {
            words_per_chunk: l.words,
            chunks: w_total.max(2).div_ceil(l.words as u64) as u32,
            value_buffers: l.nb,
            slots_per_buffer: 1 << l.shift,
        })
    }

    /// The slot layout for a batch of `w_total` u32 words per row.
    fn choose_layout(&self, w_total: u64) -> Result<Layout, EvalError> {
        let s = self.plan.num_slots as u64;
        let l = self.limit;
        let outs = (self.plan.outputs.len() as u64).max(1);
        let w_out = l / (4 * outs);
        let full = next_pow2(s);
        if full * 4 * w_total <= l && w_total <= w_out {
            return Ok(Layout {
                words: w_total as u32,
                shift: full.trailing_zeros(),
                nb: 1,
            });
        }
        let spb_min = next_pow2(s.div_ceil(VALUE_BINDINGS as u64));
        let w = w_total.min(l / (4 * spb_min)).min(w_out);
        if w == 0 {
            return Err(EvalError::LimitExceeded {
                what: format!(
                    "wire-value storage of one 32-instance column ({s} slots in at most \
                     {VALUE_BINDINGS} bindings, or {outs} output rows)"
                ),
                needed: 4 * s.max(outs),
                limit: l * if s > outs { VALUE_BINDINGS as u64 } else { 1 },
            });
        }
        let spb = prev_pow2(l / (4 * w)).min(full);
        Ok(Layout {
            words: w as u32,
            shift: spb.trailing_zeros(),
            nb: s.div_ceil(spb) as u32,
        })
    }

    /// The dispatch records for chunks of `words` words per row: fused groups, the
    /// per-level dispatches outside them, then the output gather.
    fn records(&self, words: u32, shift: u32) -> Vec<Rec> {
        let maxdim = self.ctx.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let max_inv = (maxdim * maxdim * WG).min(1 << 31);
        let per = (max_inv / words as u64).max(1);
        let push =
            |recs: &mut Vec<Rec>, kind: Option<Kind>, segment: u32, first: u32, count: u32| {
                let mut f = first as u64;
                let end = first as u64 + count as u64;
                while f < end {
                    let c = per.min(end - f);
                    let total = c * words as u64;
                    let groups = total.div_ceil(WG);
                    let x = groups.min(maxdim);
                    let y = groups.div_ceil(x);
                    let k = match kind {
                        Some(Kind::Or) => 1,
                        _ => 0,
                    };
                    recs.push(Rec {
                        kind,
                        fused: false,
                        segment,
                        params: [f as u32, c as u32, words, shift, k, total as u32, 0, 0],
                        groups: (x as u32, y as u32),
                    });
                    f += c;
                }
            };
        let mut recs = Vec::new();
        let mut groups = self.plan.fused.iter().peekable();
        let mut i = 0;
        while i < self.plan.dispatches.len() {
            if let Some(g) = groups.next_if(|g| g.first_dispatch as usize == i) {
                // One workgroup per word column (2D beyond the per-dimension limit).
                let x = (words as u64).min(maxdim);
                recs.push(Rec {
                    kind: None,
                    fused: true,
                    segment: g.segment,
                    params: [g.first_step, g.steps, words, shift, 0, 0, 0, 0],
                    groups: (x as u32, (words as u64).div_ceil(x) as u32),
                });
                i += g.steps as usize;
                continue;
            }
            let d = &self.plan.dispatches[i];
            push(&mut recs, Some(d.kind), d.segment, d.first, d.count);
            i += 1;
        }
        if !self.plan.outputs.is_empty() {
            push(&mut recs, None, 0, 0, self.plan.outputs.len() as u32);
        }
        recs
    }

    /// Make sure the resident buffers fit `layout` and `nrec` dispatch records.
    fn ensure_resident(&mut self, layout: Layout, nrec: usize) -> Result<(), EvalError> {
        if let Some(r) = &self.res {
            if r.layout.shift == layout.shift
                && r.layout.nb == layout.nb
                && r.layout.words >= layout.words
                && r.param_cap >= nrec
            {
                return Ok(());
            }
        }
        // Drop the old buffers first so that their memory can be reused.
        let old = self.res.take();
        let cap = old.map_or(0, |r| r.param_cap).max(nrec);
        let ctx = &self.ctx;
        let spb = 1u64 << layout.shift;
        let s = self.plan.num_slots as u64;
        let w = layout.words as u64;
        let mut vals = Vec::new();
        let mut value_bytes = 0;
        for b in 0..VALUE_BINDINGS as u64 {
            let rows = s.saturating_sub(b * spb).min(spb);
            let size = (rows * w * 4).max(16);
            if rows > 0 {
                value_bytes += size;
            }
            vals.push(ctx.buffer(
                &format!("values {b}"),
                size,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            )?);
        }
        let out_bytes = (self.plan.outputs.len() as u64 * w * 4).max(16);
        let out = ctx.buffer(
            "outputs",
            out_bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let readback = ctx.buffer(
            "read-back",
            out_bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let params_bytes = cap.max(1) as u64 * self.param_align;
        let params = ctx.buffer(
            "dispatch params",
            params_bytes,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        let d = &ctx.device;
        let (bg0, bg_gather) = ctx.scoped("value bind groups", || {
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &params,
                    offset: 0,
                    size: wgpu::BufferSize::new(PARAMS_SIZE),
                }),
            }];
            for (b, v) in vals.iter().enumerate() {
                entries.push(entry(b as u32 + 1, v));
            }
            let bg0 = d.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("values"),
                layout: &self.pipes.layout0,
                entries: &entries,
            });
            let bg_gather = d.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("gather"),
                layout: &self.pipes.layout_gather,
                entries: &[entry(0, &self.outlist), entry(1, &out)],
            });
            (bg0, bg_gather)
        })?;
        self.res = Some(Resident {
            layout,
            vals,
            params,
            param_cap: cap,
            out,
            readback,
            bg0,
            bg_gather,
            recs_for: None,
            recs: Vec::new(),
            value_bytes,
            io_bytes: 2 * out_bytes + params_bytes,
        });
        Ok(())
    }

    /// Prepare buffers and dispatch records for chunks of `words` words under `layout`.
    fn prepare(&mut self, layout: Layout, words: u32) -> Result<(), EvalError> {
        if self
            .res
            .as_ref()
            .is_some_and(|r| r.recs_for == Some(words) && r.layout.shift == layout.shift)
        {
            return Ok(());
        }
        let recs = self.records(words, layout.shift);
        self.ensure_resident(layout, recs.len())?;
        let align = self.param_align as usize;
        let mut bytes = vec![0u8; recs.len() * align];
        for (i, r) in recs.iter().enumerate() {
            bytes[i * align..i * align + PARAMS_SIZE as usize]
                .copy_from_slice(bytemuck::cast_slice(&r.params));
        }
        let res = self.res.as_mut().expect("resident buffers");
        if !bytes.is_empty() {
            self.ctx.scoped("write params", || {
                self.ctx.queue.write_buffer(&res.params, 0, &bytes)
            })?;
        }
        res.recs = recs;
        res.recs_for = Some(words);
        Ok(())
    }

    /// Write slot 0 (zeros) and the input rows of columns `c0..c0 + words` of `batch`.
    fn upload_chunk(&self, batch: &Batch, c0: usize, words: u32) -> Result<(), EvalError> {
        let res = self.res.as_ref().expect("resident buffers");
        let spb = 1usize << res.layout.shift;
        let n = self.plan.num_inputs as usize + 1;
        let wpr = batch.words_per_row();
        let src = batch.words();
        let w = words as usize;
        for (b, buf) in res.vals.iter().enumerate().take(res.layout.nb as usize) {
            let lo = b * spb;
            let hi = n.min((b + 1) * spb);
            if lo >= hi {
                break;
            }
            let mut data = vec![0u32; (hi - lo) * w];
            for s in lo.max(1)..hi {
                let row = &src[(s - 1) * wpr..s * wpr];
                let dst = &mut data[(s - lo) * w..(s - lo + 1) * w];
                for (j, d) in dst.iter_mut().enumerate() {
                    let k = c0 + j;
                    *d = (row[k / 2] >> (32 * (k % 2))) as u32;
                }
            }
            self.ctx.scoped("upload inputs", || {
                self.ctx
                    .queue
                    .write_buffer(buf, 0, bytemuck::cast_slice(&data))
            })?;
        }
        Ok(())
    }

    /// Record all levels and the output gather into one command buffer, submit it and wait.
    fn run_chunk(&self, words: u32) -> Result<(), EvalError> {
        let res = self.res.as_ref().expect("resident buffers");
        let ctx = &self.ctx;
        let out_bytes = self.plan.outputs.len() as u64 * words as u64 * 4;
        let cmd = ctx.scoped("record levels", || {
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("levels"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("levels"),
                    timestamp_writes: None,
                });
                for (i, r) in res.recs.iter().enumerate() {
                    let seg = &self.segs[r.segment as usize];
                    let (pipe, bg1) = match r.kind {
                        None if r.fused => match (&self.pipes.fused, &seg.fused) {
                            (Some((p, _)), Some(bg)) => (p, bg),
                            _ => {
                                unreachable!("fused groups are planned only with the fused kernel")
                            }
                        },
                        Some(Kind::And | Kind::Or) => {
                            (&self.pipes.logic, &self.segs[r.segment as usize].logic)
                        }
                        Some(Kind::Narrow) => {
                            (&self.pipes.narrow, &self.segs[r.segment as usize].narrow)
                        }
                        Some(Kind::Wide) => (&self.pipes.wide, &self.segs[r.segment as usize].wide),
                        Some(Kind::Count) => {
                            (&self.pipes.count, &self.segs[r.segment as usize].narrow)
                        }
                        Some(Kind::Sliced) => {
                            (&self.pipes.sliced, &self.segs[r.segment as usize].wide)
                        }
                        None => (&self.pipes.gather, &res.bg_gather),
                    };
                    pass.set_pipeline(pipe);
                    pass.set_bind_group(0, &res.bg0, &[(i as u64 * self.param_align) as u32]);
                    pass.set_bind_group(1, bg1, &[]);
                    pass.dispatch_workgroups(r.groups.0, r.groups.1, 1);
                }
            }
            if out_bytes > 0 {
                enc.copy_buffer_to_buffer(&res.out, 0, &res.readback, 0, out_bytes);
            }
            enc.finish()
        })?;
        ctx.scoped("submit levels", || {
            ctx.queue.submit([cmd]);
        })?;
        ctx.wait()
    }

    /// Map the read-back buffer and scatter the chunk's outputs into `out` (u32 rows of
    /// `w_total` words).
    fn download_chunk(
        &self,
        out: &mut [u32],
        w_total: usize,
        c0: usize,
        words: u32,
    ) -> Result<(), EvalError> {
        let res = self.res.as_ref().expect("resident buffers");
        let w = words as usize;
        let nout = self.plan.outputs.len();
        let mut bytes = Vec::new();
        self.ctx
            .read_mapped(&res.readback, (nout * w * 4) as u64, &mut bytes)?;
        let vals: &[u32] = bytemuck::cast_slice(&bytes);
        for k in 0..nout {
            out[k * w_total + c0..k * w_total + c0 + w].copy_from_slice(&vals[k * w..(k + 1) * w]);
        }
        Ok(())
    }

    fn check_batch(&self, batch: &Batch) -> Result<(), EvalError> {
        if batch.rows() != self.plan.num_inputs {
            return Err(EvalError::InputWidth {
                expected: self.plan.num_inputs as usize,
                got: batch.rows() as usize,
            });
        }
        Ok(())
    }

    /// Split API, step 1: upload `batch`'s inputs into the resident wire slots, so that
    /// [`GpuEvaluator::run`] can be timed alone. The batch must fit in one column chunk.
    pub fn upload(&mut self, batch: &Batch) -> Result<(), EvalError> {
        self.check_batch(batch)?;
        if batch.instances() == 0 {
            return Err(EvalError::BatchShape(
                "upload() needs at least one instance".into(),
            ));
        }
        let w_total = 2 * batch.words_per_row() as u64;
        let layout = self.choose_layout(w_total)?;
        if (layout.words as u64) < w_total {
            return Err(EvalError::LimitExceeded {
                what: "batch width for the split upload/run/download API (use evaluate)".into(),
                needed: w_total,
                limit: layout.words as u64,
            });
        }
        self.stage = Stage::Empty;
        self.prepare(layout, layout.words)?;
        self.upload_chunk(batch, 0, layout.words)?;
        self.stage = Stage::Uploaded {
            instances: batch.instances(),
            words: layout.words,
        };
        Ok(())
    }

    /// Split API, step 2: evaluate all levels on the uploaded inputs (submit and wait).
    /// May be repeated.
    pub fn run(&mut self) -> Result<(), EvalError> {
        match self.stage {
            Stage::Uploaded { instances, words } | Stage::Ran { instances, words } => {
                self.run_chunk(words)?;
                self.stage = Stage::Ran { instances, words };
                Ok(())
            }
            Stage::Empty => Err(EvalError::BatchShape("run() called before upload()".into())),
        }
    }

    /// Split API, step 3: read the outputs of the last [`GpuEvaluator::run`] back.
    pub fn download(&mut self) -> Result<Batch, EvalError> {
        let Stage::Ran { instances, words } = self.stage else {
            return Err(EvalError::BatchShape(
                "download() called before run()".into(),
            ));
        };
        let w = words as usize;
        let nout = self.plan.outputs.len();
        let mut out = vec![0u32; nout * w];
        self.download_chunk(&mut out, w, 0, words)?;
        to_batch(nout as u32, instances, &out, w)
    }
}

/// Refuse a plan that Mesa's llvmpipe (lavapipe) would evaluate wrongly: llvmpipe ends every
/// loop of a shader invocation once its loops together have taken
/// [`LLVMPIPE_LOOP_LIMIT`] back-edges, silently. [`Plan::loop_bound`] bounds each dispatch.
fn check_llvmpipe_loops(plan: &Plan) -> Result<(), EvalError> {
    for d in &plan.dispatches {
        let bound = plan.loop_bound(d);
        if bound > LLVMPIPE_LOOP_LIMIT {
            return Err(EvalError::LimitExceeded {
                what: format!(
                    "loop iterations of one shader invocation on llvmpipe (level {}, {:?} \
                     kernel, items {}..{} of segment {}): Mesa's software driver silently \
                     stops every loop after {LLVMPIPE_LOOP_LIMIT} (gallivm \
                     LP_MAX_TGSI_LOOP_ITERATIONS), which would give wrong outputs; use a \
                     hardware adapter, or another form kernel",
                    d.level + 1,
                    d.kind,
                    d.first,
                    d.first + d.count,
                    d.segment
                ),
                needed: bound,
                limit: LLVMPIPE_LOOP_LIMIT,
            });
        }
    }
    Ok(())
}

/// Convert u32 rows of `w` words (`w` even or covering the instances) to a [`Batch`].
fn to_batch(rows: u32, instances: usize, out: &[u32], w: usize) -> Result<Batch, EvalError> {
    let wpr = instances.div_ceil(64);
    let mut words = vec![0u64; rows as usize * wpr];
    for r in 0..rows as usize {
        for j in 0..wpr {
            let lo = out.get(r * w + 2 * j).copied().unwrap_or(0) as u64;
            let hi = if 2 * j + 1 < w {
                out[r * w + 2 * j + 1] as u64
            } else {
                0
            };
            words[r * wpr + j] = lo | hi << 32;
        }
    }
    Ok(Batch::from_words(rows, instances, words)?)
}

impl Evaluator for GpuEvaluator {
    fn name(&self) -> String {
        format!("gpu: {}", self.ctx.adapter().name)
    }

    fn num_inputs(&self) -> u32 {
        self.plan.num_inputs
    }

    fn num_outputs(&self) -> u32 {
        self.plan.outputs.len() as u32
    }

    fn evaluate(&mut self, inputs: &Batch) -> Result<Batch, EvalError> {
        self.check_batch(inputs)?;
        let nout = self.plan.outputs.len() as u32;
        let instances = inputs.instances();
        if instances == 0 {
            return Ok(Batch::zeros(nout, 0));
        }
        self.stage = Stage::Empty;
        let w_total = 2 * inputs.words_per_row();
        let layout = self.choose_layout(w_total as u64)?;
        let mut out = vec![0u32; nout as usize * w_total];
        let mut c0 = 0usize;
        while c0 < w_total {
            let w = (layout.words as usize).min(w_total - c0) as u32;
            self.prepare(layout, w)?;
            self.upload_chunk(inputs, c0, w)?;
            self.run_chunk(w)?;
            if nout > 0 {
                self.download_chunk(&mut out, w_total, c0, w)?;
            }
            c0 += w as usize;
        }
        to_batch(nout, instances, &out, w_total)
    }
}

/// Compile the kernels of `shaders/` and build their pipelines with explicit layouts.
fn build_pipelines(ctx: &GpuContext, with_fused: bool) -> Result<Pipelines, EvalError> {
    let common = include_str!("../../../shaders/common.wgsl");
    let src = |k: &str| format!("{common}\n{k}");
    let m_logic = ctx.shader(
        "logic.wgsl",
        &src(include_str!("../../../shaders/logic.wgsl")),
    )?;
    let m_narrow = ctx.shader(
        "threshold_narrow.wgsl",
        &src(include_str!("../../../shaders/threshold_narrow.wgsl")),
    )?;
    let m_wide = ctx.shader(
        "threshold_wide.wgsl",
        &src(include_str!("../../../shaders/threshold_wide.wgsl")),
    )?;
    let m_sliced = ctx.shader(
        "threshold_sliced.wgsl",
        &src(include_str!("../../../shaders/threshold_sliced.wgsl")),
    )?;
    let m_count = ctx.shader(
        "threshold_count.wgsl",
        &src(include_str!("../../../shaders/threshold_count.wgsl")),
    )?;
    let m_gather = ctx.shader(
        "gather.wgsl",
        &src(include_str!("../../../shaders/gather.wgsl")),
    )?;
    let m_fused = if with_fused {
        Some(ctx.shader(
            "fused.wgsl",
            &src(include_str!("../../../shaders/fused.wgsl")),
        )?)
    } else {
        None
    };
    let d = &ctx.device;
    ctx.scoped("pipelines", || {
        let mut e0 = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: wgpu::BufferSize::new(PARAMS_SIZE),
            },
            count: None,
        }];
        for b in 0..VALUE_BINDINGS {
            e0.push(storage_entry(b + 1, false));
        }
        let layout0 = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("values"),
            entries: &e0,
        });
        let layout_logic = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("logic"),
            entries: &[storage_entry(0, true), storage_entry(1, true)],
        });
        let layout_form = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forms"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, true),
                storage_entry(2, true),
            ],
        });
        let layout_gather = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gather"),
            entries: &[storage_entry(0, true), storage_entry(1, false)],
        });
        let pipe = |name: &str, m: &wgpu::ShaderModule, l1: &wgpu::BindGroupLayout| {
            let layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(&layout0), Some(l1)],
                immediate_size: 0,
            });
            d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&layout),
                module: m,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Pipelines {
            logic: pipe("logic", &m_logic, &layout_logic),
            narrow: pipe("narrow", &m_narrow, &layout_form),
            wide: pipe("wide", &m_wide, &layout_form),
            sliced: pipe("sliced", &m_sliced, &layout_form),
            count: pipe("count", &m_count, &layout_form),
            gather: pipe("gather", &m_gather, &layout_gather),
            fused: m_fused.as_ref().map(|m| {
                let entries: Vec<_> = (0..FUSED_BINDINGS)
                    .map(|b| storage_entry(b, true))
                    .collect();
                let layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("fused"),
                    entries: &entries,
                });
                (pipe("fused", m, &layout), layout)
            }),
            layout0,
            layout_logic,
            layout_form,
            layout_gather,
        }
    })
}
