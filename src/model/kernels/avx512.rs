//! The AVX-512 path: 16 output columns per vector, one `vfmadd231ps` lane per output chain.
//!
//! Register tiles: 12 rows × 2 vectors (32 columns) when the output is narrow, as the
//! reference model's 32-channel layers are, else 6 rows × 4 vectors (64 columns); either is
//! 24 accumulators plus the B row and a broadcast in the 32 vector registers. Remainder
//! columns use masked loads and stores (`maskz` loads never touch masked-off memory).

#[cfg(target_arch = "x86_64")]
use super::Tile;
use super::Plan;

#[cfg(target_arch = "x86_64")]
pub(crate) fn plan(n: usize) -> Plan {
    // 32-wide tiles when a 64-wide one would be at most half used at the edge (288 = 9 × 32).
    if n <= 32 || (!n.is_multiple_of(64) && n % 64 <= 32) {
        Plan { mr: 12, nr: 32, tile: tile::<12, 2> }
    } else {
        Plan { mr: 6, nr: 64, tile: tile::<6, 4> }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn plan(_n: usize) -> Plan {
    unreachable!("the AVX-512 path is never available off x86-64")
}

/// # Safety
/// The CPU must support AVX-512F and `t` must satisfy [`Plan::tile`]'s contract.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const MR: usize, const NV: usize>(t: &Tile) {
    // Specialised on the two common cases the addressing can exploit: full-width tiles (plain
    // loads) and A rows adjacent in memory (the weight gradient's transposed column matrix),
    // where every broadcast is one base pointer plus a constant offset instead of one pointer
    // register per row (12 of them do not fit in the 16 general registers).
    let adjacent = t.rsa == 1 && t.rows == MR;
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match (t.cols == NV * 16, adjacent) {
            (true, true) => tile_impl::<MR, NV, false, true>(t),
            (true, false) => tile_impl::<MR, NV, false, false>(t),
            (false, true) => tile_impl::<MR, NV, true, true>(t),
            (false, false) => tile_impl::<MR, NV, true, false>(t),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_impl<const MR: usize, const NV: usize, const MASKED: bool, const ADJACENT: bool>(t: &Tile) {
    use std::arch::x86_64::*;
    let mut masks = [0u16; NV];
    for (v, m) in masks.iter_mut().enumerate() {
        let have = t.cols.saturating_sub(v * 16).min(16);
        *m = ((1u32 << have) - 1) as u16;
    }
    // Rows past the tile's end repeat the last valid row (in bounds); their results are
    // computed but never stored.
    let mut rows = [t.a; MR];
    for (i, r) in rows.iter_mut().enumerate() {
        // SAFETY: row min(i, rows − 1) is inside the A block.
        *r = unsafe { t.a.add(i.min(t.rows - 1) * t.rsa) };
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let mut b = t.b;
    let mut off = 0usize;
    for _ in 0..t.k {
        let mut bv = [_mm512_setzero_ps(); NV];
        for v in 0..NV {
            // SAFETY: row p of B holds `cols` values from `b`; masked lanes are not read.
            bv[v] = unsafe { if MASKED { _mm512_maskz_loadu_ps(masks[v], b.add(v * 16)) } else { _mm512_loadu_ps(b.add(v * 16)) } };
        }
        for i in 0..MR {
            // SAFETY: element (i, p) of A (or of the repeated last row) is in bounds; with
            // ADJACENT, row i starts at a + i.
            let x = _mm512_set1_ps(unsafe { if ADJACENT { *t.a.add(off + i) } else { *rows[i].add(off) } });
            for v in 0..NV {
                acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
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
            if masks[v] == 0 {
                continue;
            }
            unsafe {
                let mut r = acc[v];
                if t.accumulate {
                    r = _mm512_add_ps(_mm512_maskz_loadu_ps(masks[v], c.add(v * 16)), r);
                }
                if MASKED {
                    _mm512_mask_storeu_ps(c.add(v * 16), masks[v], r);
                } else {
                    _mm512_storeu_ps(c.add(v * 16), r);
                }
            }
        }
    }
}
