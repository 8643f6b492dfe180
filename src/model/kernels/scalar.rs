//! The portable path, and the plain-loop references every path is tested against.
//!
//! Both compute each output as the chain `acc = fma(a[i,p], b[p,j], acc)` for `p` in order,
//! from `+0.0`; the references say so in the fewest lines possible, the path does it a tile at
//! a time so that it shares the drivers (tiling, threads, chunking) with the SIMD paths.

use super::{Plan, Tile, View, CHUNK};

/// Tile shape of the scalar path; any shape gives the same bits, this one keeps a row of
/// accumulators in registers where `fmaf` is an instruction.
const MR: usize = 4;
const NR: usize = 16;

pub(crate) fn plan() -> Plan {
    Plan { mr: MR, nr: NR, tile }
}

/// # Safety
/// The fields of `t` must address valid memory (see [`Plan::tile`]).
unsafe fn tile(t: &Tile) {
    for i in 0..t.rows {
        let mut acc = [0f32; NR];
        for p in 0..t.k {
            // SAFETY: (i, p) is inside the A block and row p of B holds `cols` values.
            let a = unsafe { *t.a.add(i * t.rsa + p * t.csa) };
            let b = unsafe { std::slice::from_raw_parts(t.b.add(p * t.ldb), t.cols) };
            for (acc, &b) in acc.iter_mut().zip(b) {
                *acc = a.mul_add(b, *acc);
            }
        }
        // SAFETY: row i of the output tile holds `cols` values.
        let c = unsafe { std::slice::from_raw_parts_mut(t.c.add(i * t.ldc), t.cols) };
        for (c, &acc) in c.iter_mut().zip(&acc) {
            *c = if t.accumulate { *c + acc } else { acc };
        }
    }
}

/// The definition of [`super::matmul`]: `(m, n)` row-major, each output one chain over `k`.
pub fn reference_matmul(m: usize, n: usize, k: usize, a: View, b: &[f32], ldb: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f32;
            for p in 0..k {
                acc = a.data[i * a.rs + p * a.cs].mul_add(b[p * ldb + j], acc);
            }
            c[i * n + j] = acc;
        }
    }
    c
}

/// The definition of [`super::matmul_chunked`]: one chain per [`CHUNK`] of the reduction, the
/// chains added in chunk order to `+0.0`.
pub fn reference_matmul_chunked(m: usize, n: usize, k: usize, a: View, b: &[f32], ldb: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut total = 0f32;
            for k0 in (0..k).step_by(CHUNK) {
                let mut acc = 0f32;
                for p in k0..(k0 + CHUNK).min(k) {
                    acc = a.data[i * a.rs + p * a.cs].mul_add(b[p * ldb + j], acc);
                }
                total += acc;
            }
            c[i * n + j] = total;
        }
    }
    c
}
