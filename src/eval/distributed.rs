//! Distributed evaluation over MPI (cargo feature `mpi`; docs/program.md for the program
//! evaluator it drives).
//!
//! The ranks of an MPI job share work in one of two ways:
//!
//! - **by batch**: rank `r` evaluates the batch instances [`share`]`(batch, size, r)` on its own
//!   and nothing is exchanged until the results are gathered;
//! - **by instance**: every rank runs the whole program over the whole batch, but each large
//!   application ([`MpiInstanceSplit`]) is evaluated by its [`share`] of the template instances
//!   on each rank, and the output tensors are all-gathered before the next step, so that every
//!   rank holds every tensor value.
//!
//! No rank may wait for a collective another rank never reaches. Every collective here is
//! preceded by [`Cluster::agree`], an all-reduce of a status flag that every rank reaches
//! whatever happened locally: a rank that failed calls it with `false` (from
//! [`Cluster::settle`] or from [`InstanceSplit::complete`], whose all-reduces have the same
//! signature and so pair with each other), the others learn of the failure there and skip the
//! data exchange; the error messages are then gathered ([`Cluster::first_error`]).

use std::ops::Range;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::gpu::GpuOptions;
use super::program::{InstanceSplit, TensorData};
use super::EvalError;

/// Words exchanged by one all-gather round of [`MpiInstanceSplit::complete`] (1 GiB): MPI counts
/// and displacements are C `int`s, and the round's receive buffer is allocated once.
const ROUND_WORDS: u64 = 1 << 27;

/// The part of `n` items that rank `r` of `size` takes: contiguous, in rank order, sizes
/// differing by at most one (the first `n % size` ranks take one more).
pub fn share(n: u64, size: usize, r: usize) -> Range<u64> {
    let (size, r) = (size.max(1) as u64, r as u64);
    let (q, rem) = (n / size, n % size);
    let start = r * q + r.min(rem);
    start..start + q + u64::from(r < rem)
}

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`): the
/// launchers of Open MPI, MPICH/Hydra, PMIx and Slurm set one of these variables.
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMIX_RANK",
        "PMI_RANK",
        "PMI_SIZE",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// An initialised MPI environment: the world communicator and this process's place in it.
/// Dropping it finalises MPI.
pub struct Cluster {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    local_rank: usize,
    local_size: usize,
    // Declared last: dropped (MPI_Finalize) after the communicators above.
    _universe: Universe,
}

impl Cluster {
    /// Initialise MPI (funneled: only the calling thread makes MPI calls; rayon's workers do
    /// not). The local rank is the rank within the node's shared-memory communicator.
    pub fn init() -> Result<Cluster, EvalError> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| EvalError::Unsupported("MPI was already initialised".into()))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        let node = world.split_shared(world.rank());
        let (local_rank, local_size) = (node.rank() as usize, node.size() as usize);
        Ok(Cluster {
            world,
            rank,
            size,
            local_rank,
            local_size,
            _universe: universe,
        })
    }

    /// This process's rank in the world.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The rank among the processes of this node.
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The number of processes on this node.
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// Whether this is rank 0, the one that reports.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// GPU options that give each rank of a node its own adapter (by local rank, modulo the
    /// number of equally good adapters).
    pub fn gpu_options(&self) -> GpuOptions {
        GpuOptions {
            adapter_index: Some(self.local_rank),
            ..GpuOptions::default()
        }
    }

    /// Whether every rank is `ok`. Every rank must call it (or a [`MpiInstanceSplit`] that is
    /// completing an application) at the same point.
    pub fn agree(&self, ok: bool) -> bool {
        let mine = i32::from(ok);
        let mut all = 0i32;
        self.world
            .all_reduce_into(&mine, &mut all, SystemOperation::min());
        all == 1
    }

    /// Every rank's message (empty: nothing to say), on every rank.
    pub fn all_messages(&self, msg: &str) -> Vec<String> {
        let mine = msg.as_bytes();
        let len = mine.len() as i32;
        let mut lens = vec![0i32; self.size];
        self.world.all_gather_into(&len, &mut lens[..]);
        let displs: Vec<i32> = lens
            .iter()
            .scan(0i32, |acc, &l| {
                let d = *acc;
                *acc += l;
                Some(d)
            })
            .collect();
        let mut buf = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
        {
            let mut part = PartitionMut::new(&mut buf[..], &lens[..], &displs[..]);
            self.world.all_gather_varcount_into(mine, &mut part);
        }
        (0..self.size)
            .map(|r| {
                let (d, l) = (displs[r] as usize, lens[r] as usize);
                String::from_utf8_lossy(&buf[d..d + l]).into_owned()
            })
            .collect()
    }

    /// The first rank's non-empty message, as `(rank, message)`, on every rank.
    pub fn first_error(&self, msg: &str) -> Option<(usize, String)> {
        self.all_messages(msg)
            .into_iter()
            .enumerate()
            .find(|(_, m)| !m.is_empty())
    }

    /// Agree on a local outcome: `Ok` on every rank when every rank succeeded; otherwise, on
    /// every rank, the first failing rank's error (`E` rebuilt by `from_msg` from its text).
    /// `agreed_failure`: this rank already learnt, in a [`MpiInstanceSplit`]'s agreement,
    /// that some rank failed (its own all-reduce then pairs with this one on the other ranks).
    pub fn settle<T, E: std::fmt::Display>(
        &self,
        local: Result<T, E>,
        agreed_failure: bool,
        from_msg: impl Fn(usize, String) -> E,
    ) -> Result<T, E> {
        let all_ok = if agreed_failure {
            false
        } else {
            self.agree(local.is_ok())
        };
        if all_ok {
            return local;
        }
        let msg = match &local {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        let (r, m) = self
            .first_error(&msg)
            .unwrap_or((0, "a rank failed without a message".into()));
        Err(from_msg(r, m))
    }

    /// `values` of every rank, on rank 0 (`None` elsewhere); every rank gives the same count.
    pub fn gather_f64(&self, values: &[f64]) -> Option<Vec<Vec<f64>>> {
        self.gather(values)
    }

    /// `values` of every rank, on rank 0 (`None` elsewhere); every rank gives the same count.
    pub fn gather_u64(&self, values: &[u64]) -> Option<Vec<Vec<u64>>> {
        self.gather(values)
    }

    fn gather<T: Equivalence + Copy + Default>(&self, values: &[T]) -> Option<Vec<Vec<T>>> {
        let root = self.world.process_at_rank(0);
        if self.is_root() {
            let mut all = vec![T::default(); values.len() * self.size];
            root.gather_into_root(values, &mut all[..]);
            Some(all.chunks(values.len().max(1)).map(<[T]>::to_vec).collect())
        } else {
            root.gather_into(values);
            None
        }
    }

    /// End the whole job now (`MPI_Abort`), for a failure after which the ranks cannot meet
    /// at the same collective any more.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

/// Shares every application of at least `min_instances` instances (and at least one per rank)
/// among the ranks by instance ([`share`]), and all-gathers its output tensors.
pub struct MpiInstanceSplit<'c> {
    cluster: &'c Cluster,
    min_instances: u64,
    /// Applications shared so far.
    pub split_applications: u64,
    /// Words received from other ranks so far.
    pub words_received: u64,
    /// Seconds in the agreements and all-gathers.
    pub exchange_seconds: f64,
    /// Set when an agreement found that some rank failed.
    pub agreed_failure: bool,
    /// Set when that failure was another rank's only (this rank's share succeeded).
    pub remote_failure: bool,
}

impl<'c> MpiInstanceSplit<'c> {
    /// A split over `cluster`'s ranks of the applications with at least `min_instances`
    /// instances (smaller ones are evaluated whole on every rank).
    pub fn new(cluster: &'c Cluster, min_instances: u64) -> Self {
        MpiInstanceSplit {
            cluster,
            min_instances,
            split_applications: 0,
            words_received: 0,
            exchange_seconds: 0.0,
            agreed_failure: false,
            remote_failure: false,
        }
    }

    fn shared(&self, n: u64) -> bool {
        let size = self.cluster.size as u64;
        size > 1 && n >= size.max(self.min_instances)
    }

    /// All-gather instance ranges of one output tensor (`per` words an instance) in rounds of
    /// at most [`ROUND_WORDS`] words.
    fn gather_tensor(&mut self, n: u64, per: u64, words: &mut [u64]) -> Result<(), EvalError> {
        let size = self.cluster.size;
        if per.saturating_mul(size as u64) > ROUND_WORDS {
            return Err(EvalError::LimitExceeded {
                what: "words of one instance's outputs times ranks, in one all-gather".into(),
                needed: per.saturating_mul(size as u64),
                limit: ROUND_WORDS,
            });
        }
        // Each round moves up to `m` instances of every rank's share.
        let m = (ROUND_WORDS / (per * size as u64)).max(1);
        let shares: Vec<Range<u64>> = (0..size).map(|r| share(n, size, r)).collect();
        let rounds = shares.iter().map(|s| s.end - s.start).max().unwrap_or(0);
        let mut t = 0u64;
        while t < rounds {
            let part: Vec<Range<u64>> = shares
                .iter()
                .map(|s| (s.start + t).min(s.end)..(s.start + t + m).min(s.end))
                .collect();
            let counts: Vec<i32> = part
                .iter()
                .map(|p| ((p.end - p.start) * per) as i32)
                .collect();
            let displs: Vec<i32> = counts
                .iter()
                .scan(0i32, |acc, &c| {
                    let d = *acc;
                    *acc += c;
                    Some(d)
                })
                .collect();
            let mine = &part[self.cluster.rank];
            let send = words[(mine.start * per) as usize..(mine.end * per) as usize].to_vec();
            let mut recv = vec![0u64; counts.iter().map(|&c| c as usize).sum()];
            {
                let mut p = PartitionMut::new(&mut recv[..], &counts[..], &displs[..]);
                self.cluster
                    .world
                    .all_gather_varcount_into(&send[..], &mut p);
            }
            for (r, p) in part.iter().enumerate() {
                if r != self.cluster.rank && p.end > p.start {
                    let d = displs[r] as usize;
                    let len = counts[r] as usize;
                    words[(p.start * per) as usize..(p.end * per) as usize]
                        .copy_from_slice(&recv[d..d + len]);
                    self.words_received += len as u64;
                }
            }
            t += m;
        }
        Ok(())
    }
}

impl InstanceSplit for MpiInstanceSplit<'_> {
    fn range(&mut self, n: u64) -> Range<u64> {
        if self.shared(n) {
            share(n, self.cluster.size, self.cluster.rank)
        } else {
            0..n
        }
    }

    fn complete(
        &mut self,
        n: u64,
        outs: &mut [TensorData],
        local: Result<(), EvalError>,
    ) -> Result<(), EvalError> {
        if !self.shared(n) {
            // Evaluated whole on every rank: nothing to exchange, and a failure is reported
            // through the caller's own agreement.
            return local;
        }
        let t = std::time::Instant::now();
        if !self.cluster.agree(local.is_ok()) {
            self.agreed_failure = true;
            self.remote_failure = local.is_ok();
            self.exchange_seconds += t.elapsed().as_secs_f64();
            return Err(local.err().unwrap_or_else(|| {
                EvalError::Device("another MPI rank failed in this application".into())
            }));
        }
        for td in outs.iter_mut() {
            // Element j of every output tensor belongs to instance j (same count on every
            // rank: the program is the same).
            if td.len() != n {
                return Err(EvalError::Unsupported(format!(
                    "an output tensor of {} elements for {n} instances",
                    td.len()
                )));
            }
            let per = td.words().len() as u64 / n.max(1);
            self.gather_tensor(n, per, td.words_mut())?;
        }
        self.split_applications += 1;
        self.exchange_seconds += t.elapsed().as_secs_f64();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_cover_every_item_once_in_order() {
        for n in [0u64, 1, 2, 5, 63, 64, 65, 1000] {
            for size in 1..=9usize {
                let mut next = 0;
                let (mut lo, mut hi) = (u64::MAX, 0);
                for r in 0..size {
                    let s = share(n, size, r);
                    assert_eq!(s.start, next, "n {n} size {size} rank {r}");
                    next = s.end;
                    lo = lo.min(s.end - s.start);
                    hi = hi.max(s.end - s.start);
                }
                assert_eq!(next, n);
                assert!(hi - lo <= 1);
            }
        }
    }
}
