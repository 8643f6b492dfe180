//! The AVX2 + FMA path: 8 output columns per vector, one `vfmadd231ps` lane per output chain.
//!
//! Register tile: 6 rows × 2 vectors (16 columns), the classic shape for 16 vector registers
//! (12 accumulators, 2 B vectors, 1 broadcast). Remainder columns use `vmaskmovps`, which does
//! not touch masked-off memory.

#[cfg(target_arch = "x86_64")]
use super::Tile;
use super::Plan;

#[cfg(target_arch = "x86_64")]
pub(crate) fn plan(_n: usize) -> Plan {
    Plan { mr: 6, nr: 16, tile: tile::<6, 2> }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn plan(_n: usize) -> Plan {
    unreachable!("the AVX2 path is never available off x86-64")
}

/// # Safety
/// The CPU must support AVX2 and FMA, and `t` must satisfy [`Plan::tile`]'s contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile<const MR: usize, const NV: usize>(t: &Tile) {
    // Specialised on the two common cases the addressing can exploit: full-width tiles (plain
    // loads) and A rows adjacent in memory (the weight gradient's transposed column matrix),
    // where every broadcast is one base pointer plus a constant offset instead of one pointer
    // register per row (12 of them do not fit in the 16 general registers).
    let adjacent = t.rsa == 1 && t.rows == MR;
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match (t.cols == NV * 8, adjacent) {
            (true, true) => tile_impl::<MR, NV, false, true>(t),
            (true, false) => tile_impl::<MR, NV, false, false>(t),
            (false, true) => tile_impl::<MR, NV, true, true>(t),
            (false, false) => tile_impl::<MR, NV, true, false>(t),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_impl<const MR: usize, const NV: usize, const MASKED: bool, const ADJACENT: bool>(t: &Tile) {
    use std::arch::x86_64::*;
    // Lane l of vector v is live when v·8 + l < cols (all ones = live, for vmaskmovps).
    let mut masks = [_mm256_setzero_si256(); NV];
    let mut live = [false; NV];
    for v in 0..NV {
        let have = t.cols.saturating_sub(v * 8).min(8) as i32;
        masks[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(have), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        live[v] = have > 0;
    }
    // Rows past the tile's end repeat the last valid row (in bounds); their results are
    // computed but never stored.
    let mut rows = [t.a; MR];
    for (i, r) in rows.iter_mut().enumerate() {
        // SAFETY: row min(i, rows − 1) is inside the A block.
        *r = unsafe { t.a.add(i.min(t.rows - 1) * t.rsa) };
    }
    let mut acc = [[_mm256_setzero_ps(); NV]; MR];
    let mut b = t.b;
    let mut off = 0usize;
    for _ in 0..t.k {
        let mut bv = [_mm256_setzero_ps(); NV];
        for v in 0..NV {
            // SAFETY: row p of B holds `cols` values from `b`; masked lanes are not read.
            bv[v] = unsafe { if MASKED { _mm256_maskload_ps(b.add(v * 8), masks[v]) } else { _mm256_loadu_ps(b.add(v * 8)) } };
        }
        for i in 0..MR {
            // SAFETY: element (i, p) of A (or of the repeated last row) is in bounds; with
            // ADJACENT, row i starts at a + i.
            let x = _mm256_set1_ps(unsafe { if ADJACENT { *t.a.add(off + i) } else { *rows[i].add(off) } });
            for v in 0..NV {
                acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
            }
        }
        // Wrapping: after the last row the pointer may pass the end; it is not dereferenced.
        b = b.wrapping_add(t.ldb);
        off += t.csa;
    }
    for (i, acc) in acc.iter().enumerate().take(t.rows) {
        // SAFETY: row i < rows of the output tile holds `cols` values; masked lanes untouched.
        let c = unsafe { t.c.add(i * t.ldc) };
        for v in 0..NV {
            if !live[v] {
                continue;
            }
            unsafe {
                let mut r = acc[v];
                if t.accumulate {
                    r = _mm256_add_ps(_mm256_maskload_ps(c.add(v * 8), masks[v]), r);
                }
                if MASKED {
                    _mm256_maskstore_ps(c.add(v * 8), masks[v], r);
                } else {
                    _mm256_storeu_ps(c.add(v * 8), r);
                }
            }
        }
    }
}
