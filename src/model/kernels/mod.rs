//! Matrix products for CPU training and evaluation whose results depend only on the shapes.
//!
//! # Why
//!
//! The `gemm` crate (what candle's CPU matmul uses) chooses its inner-dimension block from the
//! CPU's cache geometry and from the register tile of the instruction set it picked at run
//! time, so the order in which a long dot product is summed — and with it the last bits of
//! every convolution output and gradient — depended on the CPU model. Eight epochs of SGD grew
//! those bits into points of accuracy: a leaderboard made on an AVX-512 EPYC did not reproduce
//! on an AVX2 EPYC.
//!
//! # The contract
//!
//! Every product here computes each output element as ONE fixed chain of fused multiply-adds
//! over the reduction index in increasing order, starting from `+0.0`:
//! `acc = a[i,0]·b[0,j] + 0; acc = fma(a[i,p], b[p,j], acc)` for `p = 1, 2, …` —
//! exactly [`f32::mul_add`], which is also what one lane of `vfmadd…ps` computes. The SIMD
//! paths vectorise ACROSS output columns (8 or 16 independent chains side by side), never along
//! the reduction, so no path reassociates anything. Remainder columns use masked loads (lanes
//! that are not stored do not matter), remainder rows reuse a valid row whose result is
//! discarded.
//!
//! Long reductions ([`matmul_chunked`], the weight gradient over batch × pixels) are cut into
//! chunks of the fixed size [`CHUNK`] rows of the reduction; each chunk is one chain as above,
//! and the chunk results are added in chunk order: `total = ((0 + c₀) + c₁) + …`. Threads split
//! the work over output tiles and chunks, but nothing about the combination depends on how many
//! threads there are or which thread ran what.
//!
//! Hence the scalar, AVX2+FMA and AVX-512 paths give identical bits on every x86-64 CPU (Intel
//! or AMD, any cache sizes, any core count), and the scalar path gives the same bits on any
//! other IEEE-754 machine with a correct `fmaf` (the tests in this module and in
//! `tests/kernels.rs` check the SIMD paths against plain-loop references bit for bit, and the
//! quick-profile leaderboard snapshot of `tests/e2e.rs` was checked under each forced path).
//!
//! # Which CPUs give identical leaderboards
//!
//! The products no longer vary at all. A whole training run (and so the leaderboard bytes)
//! additionally goes through the items below; together they give identical bytes on every
//! x86-64 CPU with AVX2 and FMA running Linux with glibc — every Intel since Haswell, every AMD
//! since Zen 1 (Excavator too), whatever the cache sizes, core count or AVX-512 support. On an
//! x86-64 without AVX2/FMA, on ARM, or with another libm, the products still agree but the
//! first two items below may not.
//!
//! # Choosing a path
//!
//! By default the best path the CPU has is used: AVX-512 (needs `avx512f`), else AVX2 (needs
//! `avx2` and `fma`), else scalar. `SHIFTBENCH_KERNELS=scalar|avx2|avx512` forces one; asking
//! for a path this CPU lacks, or for an unknown name, is an error reported by the first
//! operation that needs a product (the first training or evaluation step), not a silent
//! fallback. Tests and benchmarks choose per thread with [`with_isa`].
//!
//! Since the paths agree bit for bit, the choice only changes speed.
//!
//! # Remaining sources of variation (outside these products)
//!
//! * `exp` and `ln` in the loss (candle's `log_softmax`) are Rust's `f32::exp`/`f32::ln`, i.e.
//!   the platform libm. glibc picks an FMA-compiled variant of `expf`/`logf` on CPUs with FMA,
//!   so every CPU that can run the AVX2 path gets the same library code, but an x86-64 without
//!   FMA, or another libm (musl, macOS), may differ in the last bit.
//! * candle sums contiguous rows of 32 or more values with 8-wide AVX accumulators when the CPU
//!   has AVX2 and sequentially otherwise (`candle_core::cpu::vec_sum`, chosen at run time).
//!   On the training path this reaches the sums over classes in the loss (10 classes: below
//!   32, so the same order either way), the batch-mean loss value (reported, but its gradient
//!   does not depend on it) and the gradient norm when clipping is on. Any AVX2 CPU agrees with
//!   any other; a CPU without AVX2 would not.
//! * Our batch-norm reductions are f64 sums over fixed row blocks and scalar Rust (no explicit
//!   SIMD; Rust neither reassociates nor contracts float arithmetic), so they are the same
//!   everywhere; so are im2col/col2im, pooling and the classifier head's sums (fixed loops).
//! * Image rendering: tiny-skia's SIMD is chosen at compile time (the baseline x86-64 target),
//!   and ab_glyph_rasterizer's run-time AVX2/SSE4.2 choice recompiles the same scalar code,
//!   which without contraction or reassociation cannot change a result.
//! * Stable Diffusion goes through candle's own matmul (the `gemm` crate) and stays
//!   CPU-model dependent, as does the non-CPU (`forward_primitives`) path.
//!
//! # Speed
//!
//! Measured on a 2-core AMD EPYC (Zen 5) with `cargo bench --bench training -- kernels`: over
//! the reference model's convolution passes (time-weighted) the AVX-512 path ran at 1.6–2.3×
//! the `gemm` crate's GFLOP/s and AVX2 at 1.0–1.3× (five runs on a machine shared with other
//! builds; the spread is that noise). The narrow stage-1 forward pass (n = 32) stays
//! below the others because it streams the 9×-activation column matrix from memory (16 flops
//! per byte of it); a direct convolution that reads the activation itself is the next step.

mod avx2;
mod avx512;
pub mod scalar;

use rayon::prelude::*;
use std::cell::Cell;
use std::sync::OnceLock;

/// Rows of the reduction per chunk of [`matmul_chunked`]. A constant so that the summation
/// order depends only on the shapes; 256 keeps a chunk's slices of both operands in L2 (for
/// the reference model's widest weight gradient, 256 rows × 288 values of the column matrix is
/// 288 KiB) while the per-chunk additions stay negligible (one per output per 256 FMAs).
pub const CHUNK: usize = 256;

/// Names the arithmetic of these products in cache keys: weights trained before them (with the
/// `gemm` crate's CPU-dependent order) or with another summation contract are other weights.
/// Bump it whenever a change here changes any output bit.
pub const ARITHMETIC: &str = "fixed-order-fma-v1";

/// The environment variable forcing a path: `scalar`, `avx2` or `avx512`.
pub const ENV: &str = "SHIFTBENCH_KERNELS";

/// An implementation of the products. All give identical results; they differ in speed and in
/// the CPUs that can run them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain loops with `f32::mul_add`: runs everywhere (slowly where FMA is a library call).
    Scalar,
    /// 256-bit vectors, needs AVX2 and FMA.
    Avx2,
    /// 512-bit vectors with masked remainders, needs AVX-512F.
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    pub fn parse(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name.trim().to_ascii_lowercase())
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU can run, scalar first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    /// The fastest path this CPU can run.
    pub fn best() -> Isa {
        *Isa::available().last().expect("the scalar path is always available")
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The process-wide path: `$SHIFTBENCH_KERNELS` if set, else the best available. Read once.
pub fn from_env() -> Result<Isa, String> {
    static CHOSEN: OnceLock<Result<Isa, String>> = OnceLock::new();
    CHOSEN.get_or_init(|| resolve(std::env::var(ENV).ok().as_deref())).clone()
}

/// The path a value of `$SHIFTBENCH_KERNELS` selects (`None`/empty: the best available).
pub fn resolve(setting: Option<&str>) -> Result<Isa, String> {
    let Some(name) = setting.filter(|s| !s.trim().is_empty()) else { return Ok(Isa::best()) };
    let isa = Isa::parse(name).ok_or_else(|| format!("{ENV}={name:?} names no kernel path; use scalar, avx2 or avx512"))?;
    if !isa.is_available() {
        let have: Vec<&str> = Isa::available().into_iter().map(Isa::name).collect();
        return Err(format!("{ENV}={name} asks for the {isa} kernels, which this CPU cannot run (it can run: {})", have.join(", ")));
    }
    Ok(isa)
}

thread_local! {
    static FORCED: Cell<Option<Isa>> = const { Cell::new(None) };
}

/// Runs `f` with the products issued from this thread (including the work they hand to rayon)
/// on `isa`; an error if the CPU cannot run it.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Result<R, String> {
    if !isa.is_available() {
        return Err(format!("this CPU cannot run the {isa} kernels"));
    }
    struct Restore(Option<Isa>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(Some(isa))));
    Ok(f())
}

/// The path for products issued from this thread: [`with_isa`]'s, else [`from_env`]'s.
pub fn current() -> Result<Isa, String> {
    match FORCED.with(Cell::get) {
        Some(isa) => Ok(isa),
        None => from_env(),
    }
}

/// A read-only matrix operand with arbitrary strides: element `(i, p)` is
/// `data[i * rs + p * cs]`, so a transpose is a swap of strides.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major `(rows, cols)` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self { data, rs: 1, cs: cols }
    }
    fn check(&self, m: usize, k: usize, what: &str) {
        if m > 0 && k > 0 {
            let last = (m - 1) * self.rs + (k - 1) * self.cs;
            assert!(last < self.data.len(), "{what}: a ({m}, {k}) view with strides ({}, {}) reaches index {last} of {}", self.rs, self.cs, self.data.len());
        }
    }
}

/// One register tile of a product: `rows × cols` outputs (at most the kernel's MR × NR) over a
/// reduction of length `k`. Pointers are raw because tiles of one output are written from
/// several threads; the drivers below check every bound first.
pub(crate) struct Tile {
    /// Element (0, 0) of the A block; element (i, p) is at `a + i·rsa + p·csa`.
    pub a: *const f32,
    pub rsa: usize,
    pub csa: usize,
    /// Row 0 of the B block; element (p, j) is at `b + p·ldb + j`.
    pub b: *const f32,
    pub ldb: usize,
    /// Output (0, 0); element (i, j) is at `c + i·ldc + j`.
    pub c: *mut f32,
    pub ldc: usize,
    pub rows: usize,
    pub cols: usize,
    pub k: usize,
    /// Store `c + acc` instead of `acc` (adding one chunk's chain to the earlier chunks').
    pub accumulate: bool,
}

/// A register tile shape of one path, and the function computing such a tile.
#[derive(Clone, Copy)]
pub(crate) struct Plan {
    pub mr: usize,
    pub nr: usize,
    /// SAFETY contract: every element the tile's fields address must be in bounds, `rows` in
    /// `1..=mr`, `cols` in `1..=nr`, and the CPU must support the path.
    pub tile: unsafe fn(&Tile),
}

fn plan(isa: Isa, n: usize) -> Plan {
    assert!(isa.is_available(), "the {isa} kernels cannot run on this CPU");
    match isa {
        Isa::Scalar => scalar::plan(),
        Isa::Avx2 => avx2::plan(n),
        Isa::Avx512 => avx512::plan(n),
    }
}

/// Raw output pointer shared across the worker threads; each task writes disjoint tiles.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint elements (distinct tiles) and the buffer outlives the scope.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The element `offset` past the start (a method, so that closures capture the whole
    /// `Sync` wrapper rather than its raw-pointer field).
    ///
    /// # Safety
    /// `offset` must be inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: forwarded to the caller.
        unsafe { self.0.add(offset) }
    }
}

/// Output rows per parallel task of [`matmul`]: enough tiles to amortise scheduling, few
/// enough that 16 threads still share the reference model's smallest product (2048 rows).
const ROWS_PER_TASK: usize = 96;

/// `a · b` as a new `(m, n)` row-major matrix, for `a` `(m, k)` (any strides) and `b` `(k, n)`
/// row-major with row stride `ldb`, on path `isa`: each output one FMA chain over `p = 0..k`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(isa: Isa, m: usize, n: usize, k: usize, a: View, b: &[f32], ldb: usize) -> Vec<f32> {
    check_b(k, n, b, ldb);
    a.check(m, k, "matmul lhs");
    if k == 0 || m == 0 || n == 0 {
        return vec![0f32; m * n]; // the empty sum
    }
    let p = plan(isa, n);
    let mut c = Vec::<f32>::with_capacity(m * n);
    let out = OutPtr(c.as_mut_ptr());
    let rows_per_task = ROWS_PER_TASK.div_ceil(p.mr) * p.mr;
    (0..m.div_ceil(rows_per_task)).into_par_iter().for_each(|task| {
        let (r0, r1) = (task * rows_per_task, ((task + 1) * rows_per_task).min(m));
        // Column panels outside, row tiles inside: one k × nr panel of B is reused from cache
        // by every row tile of the task.
        for j0 in (0..n).step_by(p.nr) {
            for i0 in (r0..r1).step_by(p.mr) {
                let t = Tile {
                    a: a.data[i0 * a.rs..].as_ptr(),
                    rsa: a.rs,
                    csa: a.cs,
                    b: b[j0..].as_ptr(),
                    ldb,
                    // SAFETY: i0 < m and j0 < n, so the offset is inside the m·n allocation.
                    c: unsafe { out.at(i0 * n + j0) },
                    ldc: n,
                    rows: p.mr.min(r1 - i0),
                    cols: p.nr.min(n - j0),
                    k,
                    accumulate: false,
                };
                // SAFETY: bounds checked above (a's last element, b's last row, c's capacity);
                // `plan` checked the CPU; tasks own disjoint row ranges of c.
                unsafe { (p.tile)(&t) };
            }
        }
    });
    // SAFETY: the tiles cover all m·n outputs (row tiles over 0..m, column tiles over 0..n),
    // and a tile with `accumulate: false` writes every element it covers without reading it.
    unsafe { c.set_len(m * n) };
    c
}

/// Chunks computed side by side before their results are folded into the output, in
/// [`matmul_chunked`]; bounds the scratch memory to `WINDOW · m · n` values. The fold order is
/// chunk order whatever this is, so it is a memory/parallelism trade-off only.
const WINDOW: usize = 32;

/// `c = a · b` like [`matmul`], but the reduction is cut into chunks of [`CHUNK`] and the
/// chunks' chains are added in chunk order: for the weight gradient, where `k` is batch ×
/// pixels, so that the work can be parallel over the reduction too (and a chain never runs over
/// more than [`CHUNK`] terms).
#[allow(clippy::too_many_arguments)]
pub fn matmul_chunked(isa: Isa, m: usize, n: usize, k: usize, a: View, b: &[f32], ldb: usize) -> Vec<f32> {
    check_b(k, n, b, ldb);
    a.check(m, k, "matmul_chunked lhs");
    let mut c = vec![0f32; m * n];
    if m == 0 || n == 0 || k == 0 {
        return c;
    }
    let p = plan(isa, n);
    let chunks = k.div_ceil(CHUNK);
    let tiles_m = m.div_ceil(p.mr);
    let mut scratch = vec![0f32; WINDOW.min(chunks) * m * n];
    for w0 in (0..chunks).step_by(WINDOW) {
        let w1 = (w0 + WINDOW).min(chunks);
        let out = OutPtr(scratch.as_mut_ptr());
        // One task per (chunk, row tile): each writes its own tile of its own chunk's buffer.
        (0..(w1 - w0) * tiles_m).into_par_iter().for_each(|task| {
                let (q, ti) = (w0 + task / tiles_m, task % tiles_m);
            let (k0, k1) = (q * CHUNK, ((q + 1) * CHUNK).min(k));
            let i0 = ti * p.mr;
            for j0 in (0..n).step_by(p.nr) {
                let t = Tile {
                    a: a.data[i0 * a.rs + k0 * a.cs..].as_ptr(),
                    rsa: a.rs,
                    csa: a.cs,
                    b: b[k0 * ldb + j0..].as_ptr(),
                    ldb,
                    // SAFETY: (q − w0) < WINDOW, i0 < m, j0 < n: inside the scratch buffer.
                    c: unsafe { out.at((q - w0) * m * n + i0 * n + j0) },
                    ldc: n,
                    rows: p.mr.min(m - i0),
                    cols: p.nr.min(n - j0),
                    k: k1 - k0,
                    accumulate: false,
                };
                // SAFETY: as in `matmul`; rows k0..k1 of the reduction are inside both operands.
                unsafe { (p.tile)(&t) };
            }
        });
        // Fold this window's chunks into the output in chunk order (elementwise, so it may be
        // split across threads freely).
        let used = &scratch[..(w1 - w0) * m * n];
        c.par_chunks_mut(4096).enumerate().for_each(|(blk, dst)| {
            let (off, len) = (blk * 4096, dst.len());
            for part in used.chunks_exact(m * n) {
                for (d, &s) in dst.iter_mut().zip(&part[off..off + len]) {
                    *d += s;
                }
            }
        });
    }
    c
}

fn check_b(k: usize, n: usize, b: &[f32], ldb: usize) {
    if k > 0 && n > 0 {
        assert!(ldb >= n, "rhs row stride {ldb} is shorter than its {n} columns");
        assert!((k - 1) * ldb + n <= b.len(), "rhs of {} values is smaller than ({k}, {n}) with row stride {ldb}", b.len());
    }
}

#[cfg(test)]
mod tests;
