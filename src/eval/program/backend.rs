//! Template backends: where a program's templates are evaluated over lane batches.
//!
//! A backend compiles each template the first time it is applied and keeps the compiled form
//! until the program evaluator says the template is not applied again
//! ([`TemplateBackend::release`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::circuit::program::{Template, TemplateId};
use crate::eval::cpu::{CpuEvaluator, CpuOptions};
use crate::eval::gpu::{GpuContext, GpuEvaluator, GpuOptions};
use crate::eval::{Batch, EvalError, Evaluator};

/// Evaluates templates over bit-sliced lane batches.
pub trait TemplateBackend {
    /// A short name for reports ("cpu", "gpu: <adapter>").
    fn name(&self) -> String;
    /// Evaluate template `id` (whose circuit is `tp`) over `inputs` (one row per template
    /// input bit); returns one row per template output bit.
    fn evaluate(
        &mut self,
        id: TemplateId,
        tp: &Template,
        inputs: &Batch,
    ) -> Result<Batch, EvalError>;
    /// Drop the compiled form of template `id` (it is not applied again).
    fn release(&mut self, id: TemplateId);
    /// Bytes held (compiled templates, scratch).
    fn bytes(&self) -> u64;
}

/// Templates on the bit-sliced CPU evaluator ([`CpuEvaluator`]).
#[derive(Debug, Default)]
pub struct CpuTemplates {
    opts: CpuOptions,
    compiled: HashMap<TemplateId, CpuEvaluator>,
}

impl CpuTemplates {
    /// A CPU backend with the evaluator options `opts`.
    pub fn new(opts: CpuOptions) -> Self {
        CpuTemplates {
            opts,
            compiled: HashMap::new(),
        }
    }
}

impl TemplateBackend for CpuTemplates {
    fn name(&self) -> String {
        "cpu".into()
    }

    fn evaluate(
        &mut self,
        id: TemplateId,
        tp: &Template,
        inputs: &Batch,
    ) -> Result<Batch, EvalError> {
        let ev = match self.compiled.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(CpuEvaluator::with_options(&tp.circuit, self.opts)?)
            }
        };
        ev.evaluate(inputs)
    }

    fn release(&mut self, id: TemplateId) {
        self.compiled.remove(&id);
    }

    fn bytes(&self) -> u64 {
        self.compiled.values().map(|e| e.bytes()).sum()
    }
}

/// Templates on the wgpu evaluator ([`GpuEvaluator`]), all on one device. The lane batches are
/// gathered on the host and uploaded per chunk.
pub struct GpuTemplates {
    ctx: Arc<GpuContext>,
    opts: GpuOptions,
    compiled: HashMap<TemplateId, GpuEvaluator>,
}

impl GpuTemplates {
    /// A GPU backend on a new context (errors with [`EvalError::NoAdapter`] without one).
    pub fn new(opts: &GpuOptions) -> Result<Self, EvalError> {
        Ok(Self::with_context(Arc::new(GpuContext::new(opts)?), opts))
    }

    /// A GPU backend on an existing context.
    pub fn with_context(ctx: Arc<GpuContext>, opts: &GpuOptions) -> Self {
        GpuTemplates {
            ctx,
            opts: opts.clone(),
            compiled: HashMap::new(),
        }
    }

    /// The device context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl TemplateBackend for GpuTemplates {
    fn name(&self) -> String {
        format!("gpu: {}", self.ctx.adapter().name)
    }

    fn evaluate(
        &mut self,
        id: TemplateId,
        tp: &Template,
        inputs: &Batch,
    ) -> Result<Batch, EvalError> {
        let ev =
            match self.compiled.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    GpuEvaluator::with_context(self.ctx.clone(), &tp.circuit, &self.opts)?,
                ),
            };
        ev.evaluate(inputs)
    }

    fn release(&mut self, id: TemplateId) {
        self.compiled.remove(&id);
    }

    fn bytes(&self) -> u64 {
        self.compiled.values().map(|e| e.memory().total()).sum()
    }
}

impl super::CpuProgramEvaluator {
    /// A program evaluator on the CPU with default CPU evaluator options.
    pub fn new(opts: super::ProgramOptions) -> Self {
        Self::with_backend(CpuTemplates::new(CpuOptions::default()), opts)
    }
}

impl super::GpuProgramEvaluator {
    /// A program evaluator on a new GPU context.
    pub fn new(gpu: &GpuOptions, opts: super::ProgramOptions) -> Result<Self, EvalError> {
        Ok(Self::with_backend(GpuTemplates::new(gpu)?, opts))
    }

    /// A program evaluator on an existing GPU context.
    pub fn with_context(
        ctx: Arc<GpuContext>,
        gpu: &GpuOptions,
        opts: super::ProgramOptions,
    ) -> Self {
        Self::with_backend(GpuTemplates::with_context(ctx, gpu), opts)
    }
}
