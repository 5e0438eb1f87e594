//! Adapter and device selection, limits, and error capture for the GPU evaluator.
//!
//! A [`GpuContext`] owns one wgpu device and queue created with the adapter's *real* limits
//! (not the WebGPU defaults), remembers which adapter it runs on, and turns every wgpu failure
//! (validation, out of memory, internal, device lost) into an [`EvalError`]: the default wgpu
//! behaviour of panicking on an uncaptured error is replaced by a handler that records it.

use std::sync::{mpsc, Arc, Mutex};

use crate::eval::EvalError;

/// Environment variable: a case-insensitive substring of the adapter name to use.
pub const ENV_ADAPTER: &str = "TCVAR_GPU_ADAPTER";
/// Environment variable: the backend to use (`vulkan`, `gl`, `metal` or `dx12`).
pub const ENV_BACKEND: &str = "TCVAR_GPU_BACKEND";
/// Environment variable: when `1`, GPU tests fail instead of skipping without an adapter.
pub const ENV_REQUIRE_GPU: &str = "TCVAR_REQUIRE_GPU";

/// Hint printed with every "no adapter" error.
const NO_ADAPTER_HINT: &str = "install a GPU driver, or Mesa's software Vulkan driver \
     (`apt-get install mesa-vulkan-drivers`, which provides the llvmpipe adapter)";

/// A graphics backend wgpu can drive.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum GpuBackend {
    /// Vulkan (Linux, Windows, Android; Mesa's lavapipe is a software Vulkan driver).
    Vulkan,
    /// OpenGL / OpenGL ES.
    Gl,
    /// Metal (Apple).
    Metal,
    /// Direct3D 12 (Windows).
    Dx12,
}

impl GpuBackend {
    /// Parse `vulkan`, `gl` (or `gles`, `opengl`), `metal`, `dx12` (case-insensitive).
    pub fn parse(s: &str) -> Result<GpuBackend, EvalError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(GpuBackend::Vulkan),
            "gl" | "gles" | "opengl" => Ok(GpuBackend::Gl),
            "metal" | "mtl" => Ok(GpuBackend::Metal),
            "dx12" | "d3d12" => Ok(GpuBackend::Dx12),
            other => Err(EvalError::NoAdapter(format!(
                "unknown backend {other:?} (expected vulkan, gl, metal or dx12)"
            ))),
        }
    }

    fn backends(self) -> wgpu::Backends {
        match self {
            GpuBackend::Vulkan => wgpu::Backends::VULKAN,
            GpuBackend::Gl => wgpu::Backends::GL,
            GpuBackend::Metal => wgpu::Backends::METAL,
            GpuBackend::Dx12 => wgpu::Backends::DX12,
        }
    }
}

/// Options for creating a [`GpuContext`] and a GPU evaluator.
///
/// Fields left `None` fall back to the environment variables [`ENV_BACKEND`] and
/// [`ENV_ADAPTER`], then to "all backends, best adapter" (discrete GPU first when
/// `high_performance`, software adapters last).
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use only this backend.
    pub backend: Option<GpuBackend>,
    /// Use only adapters whose name contains this substring (case-insensitive).
    pub adapter_name: Option<String>,
    /// Prefer discrete over integrated GPUs (default `true`).
    pub high_performance: bool,
    /// An artificial cap on the bytes of any one buffer binding (and buffer), below the
    /// adapter's real `max_storage_buffer_binding_size` and `max_buffer_size`. Tests set it
    /// small to force the evaluator to split its buffers; `None` uses the real limits.
    pub max_binding_bytes: Option<u64>,
    /// Which kernel evaluates threshold banks (default: chosen per form).
    pub form_kernel: crate::eval::gpu::plan::FormKernel,
    /// How consecutive levels are fused into one dispatch (default: as far as the loop
    /// budget allows; docs/gpu.md).
    pub fusion: crate::eval::gpu::plan::Fusion,
    /// Take the adapter at this index (modulo their count) among the equally preferred ones
    /// (same device type and backend as the best) that the other options allow: processes
    /// sharing a node pick distinct GPUs by their local rank. `None`: the preferred one.
    pub adapter_index: Option<usize>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            backend: None,
            adapter_name: None,
            high_performance: true,
            max_binding_bytes: None,
            form_kernel: Default::default(),
            fusion: Default::default(),
            adapter_index: None,
        }
    }
}

/// What a report needs to know about the adapter a context runs on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AdapterSummary {
    /// Adapter name (e.g. "NVIDIA H200", "llvmpipe (LLVM 19.1.7, 256 bits)").
    pub name: String,
    /// Backend ("vulkan", "gl", ...).
    pub backend: String,
    /// Device type ("DiscreteGpu", "Cpu", ...).
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version / details.
    pub driver_info: String,
    /// The device's `max_storage_buffer_binding_size`, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// The device's `max_buffer_size`, bytes.
    pub max_buffer_size: u64,
    /// The device's `max_compute_workgroups_per_dimension`.
    pub max_compute_workgroups_per_dimension: u32,
    /// The device's `max_storage_buffers_per_shader_stage`.
    pub max_storage_buffers_per_shader_stage: u32,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {} {}; max binding {} MiB, max buffer {} MiB)",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.driver_info,
            self.max_storage_buffer_binding_size >> 20,
            self.max_buffer_size >> 20
        )
    }
}

/// One wgpu device and queue, with error capture.
///
/// Invariant: the device was created with the adapter's own limits; once the device is lost
/// or an uncaptured error has been recorded, every further operation returns an error.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    summary: AdapterSummary,
    lost: Arc<Mutex<Option<String>>>,
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.summary)
            .finish()
    }
}

fn device_type_rank(t: wgpu::DeviceType, high_performance: bool) -> u32 {
    match (t, high_performance) {
        (wgpu::DeviceType::DiscreteGpu, true) => 0,
        (wgpu::DeviceType::IntegratedGpu, true) => 1,
        (wgpu::DeviceType::IntegratedGpu, false) => 0,
        (wgpu::DeviceType::DiscreteGpu, false) => 1,
        (wgpu::DeviceType::VirtualGpu, _) => 2,
        (wgpu::DeviceType::Other, _) => 3,
        (wgpu::DeviceType::Cpu, _) => 4,
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.trim().is_empty())
}

/// Enumerate the adapters and pick one following the options (and the environment).
fn choose_adapter(opts: &GpuOptions) -> Result<wgpu::Adapter, EvalError> {
    let backend = match &opts.backend {
        Some(b) => Some(*b),
        None => env_nonempty(ENV_BACKEND)
            .map(|s| GpuBackend::parse(&s))
            .transpose()?,
    };
    let name = opts
        .adapter_name
        .clone()
        .or_else(|| env_nonempty(ENV_ADAPTER));
    // Without an explicit backend, look at the primary backends (Vulkan, Metal, DX12) first and
    // at OpenGL only when they offer nothing: initialising EGL probes the window system and can
    // print noise on machines without a display.
    let enumerate = |backends: wgpu::Backends| {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        pollster::block_on(instance.enumerate_adapters(backends))
    };
    let (backends, adapters) = match backend {
        Some(b) => (b.backends(), enumerate(b.backends())),
        None => {
            let primary = enumerate(wgpu::Backends::PRIMARY);
            if primary.is_empty() {
                (wgpu::Backends::all(), enumerate(wgpu::Backends::all()))
            } else {
                (wgpu::Backends::PRIMARY, primary)
            }
        }
    };
    if adapters.is_empty() {
        return Err(EvalError::NoAdapter(format!(
            "wgpu found no adapter for backends {backends:?}; {NO_ADAPTER_HINT}"
        )));
    }
    let all: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .into_iter()
        .filter(|a| match &name {
            Some(n) => a.get_info().name.to_lowercase().contains(&n.to_lowercase()),
            None => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(EvalError::NoAdapter(format!(
            "no adapter name contains {:?}; available: {}",
            name.unwrap_or_default(),
            all.join(", ")
        )));
    }
    // Stable sort: device type first, then Vulkan before the other backends on ties.
    candidates.sort_by_key(|a| {
        let i = a.get_info();
        (
            device_type_rank(i.device_type, opts.high_performance),
            (i.backend != wgpu::Backend::Vulkan) as u32,
        )
    });
    // The index counts among the adapters as good as the best (same device type and backend).
    let key = |a: &wgpu::Adapter| {
        let i = a.get_info();
        (
            device_type_rank(i.device_type, opts.high_performance),
            i.backend,
        )
    };
    let best = key(&candidates[0]);
    candidates.retain(|a| key(a) == best);
    let pick = opts.adapter_index.unwrap_or(0) % candidates.len();
    Ok(candidates.swap_remove(pick))
}

fn summarize(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_str().to_string(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
    }
}

/// Find the adapter [`GpuContext::new`] would use with default options and describe it,
/// without creating a device (for the command-line smoke run).
pub fn probe_adapter() -> Result<AdapterSummary, EvalError> {
    let a = choose_adapter(&GpuOptions::default())?;
    Ok(summarize(&a.get_info(), &a.limits()))
}

impl GpuContext {
    /// Choose an adapter (see [`GpuOptions`]) and create a device with its real limits.
    pub fn new(opts: &GpuOptions) -> Result<GpuContext, EvalError> {
        let adapter = choose_adapter(opts)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("tcvar"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| EvalError::Device(format!("request_device on {}: {e}", info.name)))?;
        let lost = Arc::new(Mutex::new(None));
        let lost2 = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut g) = lost2.lock() {
                *g = Some(format!("device lost ({reason:?}): {msg}"));
            }
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let unc2 = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut g) = unc2.lock() {
                if g.is_none() {
                    *g = Some(e.to_string());
                }
            }
        }));
        let limits = device.limits();
        Ok(GpuContext {
            summary: summarize(&info, &limits),
            device,
            queue,
            limits,
            lost,
            uncaptured,
        })
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The device limits (the adapter's real limits).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Fail if the device was lost or an error escaped the error scopes.
    pub(crate) fn check_alive(&self) -> Result<(), EvalError> {
        if let Some(m) = self.lost.lock().ok().and_then(|g| g.clone()) {
            return Err(EvalError::Device(m));
        }
        if let Some(m) = self.uncaptured.lock().ok().and_then(|g| g.clone()) {
            return Err(EvalError::Device(format!("uncaptured GPU error: {m}")));
        }
        Ok(())
    }

    /// Run `f` inside out-of-memory, validation and internal error scopes; any captured error
    /// becomes an [`EvalError`] that names `what`.
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, EvalError> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let int = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let r = f();
        let e_int = pollster::block_on(int.pop());
        let e_val = pollster::block_on(val.pop());
        let e_oom = pollster::block_on(oom.pop());
        if let Some(e) = e_oom {
            return Err(EvalError::OutOfMemory(format!("{what}: {e}")));
        }
        if let Some(e) = e_val.or(e_int) {
            return Err(EvalError::Device(format!("{what}: {e}")));
        }
        self.check_alive()?;
        Ok(r)
    }

    /// Wait for all submitted work.
    pub(crate) fn wait(&self) -> Result<(), EvalError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| EvalError::Device(format!("poll: {e}")))?;
        self.check_alive()
    }

    /// Create a storage buffer filled with `data` (at least 16 bytes; padded with zeros).
    pub(crate) fn storage_init(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer, EvalError> {
        let size = (data.len() as u64).max(16).next_multiple_of(4);
        let buf = self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        if !data.is_empty() {
            let mut padded;
            let bytes = if data.len() % 4 != 0 {
                padded = data.to_vec();
                padded.resize(data.len().next_multiple_of(4), 0);
                &padded[..]
            } else {
                data
            };
            self.scoped(label, || self.queue.write_buffer(&buf, 0, bytes))?;
        }
        Ok(buf)
    }

    /// Create a buffer of `size` bytes with `usage` inside error scopes.
    pub(crate) fn buffer(
        &self,
        label: &str,
        size: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer, EvalError> {
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16).next_multiple_of(4),
                usage,
                mapped_at_creation: false,
            })
        })
    }

    /// Map a `MAP_READ` buffer's first `size` bytes (after all submitted work) and copy them
    /// into `out`.
    pub(crate) fn read_mapped(
        &self,
        buf: &wgpu::Buffer,
        size: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), EvalError> {
        out.clear();
        if size == 0 {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        let slice = buf.slice(0..size);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(EvalError::Device(format!("map_async: {e}"))),
            Err(_) => return Err(EvalError::Device("map_async callback never ran".into())),
        }
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| EvalError::Device(format!("get_mapped_range: {e}")))?;
            out.extend_from_slice(&view);
        }
        buf.unmap();
        Ok(())
    }

    /// Compile a WGSL module inside error scopes.
    pub(crate) fn shader(&self, label: &str, src: &str) -> Result<wgpu::ShaderModule, EvalError> {
        self.scoped(label, || {
            self.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(src.into()),
                })
        })
    }
}

/// The shared rule of every GPU test: a context, or a loud skip.
///
/// Returns `Ok(Some(ctx))` when an adapter is available; when none is, returns an error if the
/// environment variable [`ENV_REQUIRE_GPU`] is `1` (the test must fail), and otherwise prints a
/// loud skip message naming `test` and the reason, and returns `Ok(None)`.
pub fn context_for_tests(test: &str, opts: &GpuOptions) -> Result<Option<GpuContext>, EvalError> {
    match GpuContext::new(opts) {
        Ok(c) => Ok(Some(c)),
        Err(e @ EvalError::NoAdapter(_)) => {
            if std::env::var(ENV_REQUIRE_GPU).is_ok_and(|v| v.trim() == "1") {
                Err(e)
            } else {
                eprintln!(
                    "\n*** SKIPPED GPU TEST {test}: {e}\n*** (set {ENV_REQUIRE_GPU}=1 to make this a failure)\n"
                );
                Ok(None)
            }
        }
        Err(e) => Err(e),
    }
}

/// Run the smoke kernel (`shaders/smoke.wgsl`) over `input` and return its output: for each
/// `x = input[i]`, `((x * 2654435761) ^ (x >> 7)) + countOneBits(x) + i` (wrapping u32
/// arithmetic). Used by the smoke test and the command-line smoke run, which check it
/// against the same formula computed on the CPU.
pub fn smoke_compute(ctx: &GpuContext, input: &[u32]) -> Result<Vec<u32>, EvalError> {
    let n = input.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let bytes = (n * 4) as u64;
    if bytes > ctx.limits.max_storage_buffer_binding_size {
        return Err(EvalError::LimitExceeded {
            what: "smoke input".into(),
            needed: bytes,
            limit: ctx.limits.max_storage_buffer_binding_size,
        });
    }
    let groups = (n as u64).div_ceil(64);
    if groups > ctx.limits.max_compute_workgroups_per_dimension as u64 {
        return Err(EvalError::LimitExceeded {
            what: "smoke workgroups".into(),
            needed: groups,
            limit: ctx.limits.max_compute_workgroups_per_dimension as u64,
        });
    }
    let module = ctx.shader("smoke.wgsl", include_str!("../../../shaders/smoke.wgsl"))?;
    let src = ctx.storage_init("smoke src", bytemuck::cast_slice(input))?;
    let dst = ctx.buffer(
        "smoke dst",
        bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    )?;
    let rb = ctx.buffer(
        "smoke readback",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    let d = &ctx.device;
    let cmd = ctx.scoped("smoke dispatch", || {
        let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("smoke"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bg = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("smoke"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &src,
                        offset: 0,
                        size: wgpu::BufferSize::new(bytes),
                    }),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &dst,
                        offset: 0,
                        size: wgpu::BufferSize::new(bytes),
                    }),
                },
            ],
        });
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("smoke"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("smoke"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups as u32, 1, 1);
        }
        enc.copy_buffer_to_buffer(&dst, 0, &rb, 0, bytes);
        enc.finish()
    })?;
    ctx.scoped("smoke submit", || {
        ctx.queue.submit([cmd]);
    })?;
    let mut out = Vec::new();
    ctx.read_mapped(&rb, bytes, &mut out)?;
    Ok(bytemuck::cast_slice::<u8, u32>(&out).to_vec())
}
