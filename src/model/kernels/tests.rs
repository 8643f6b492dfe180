//! Every path this CPU can run against the plain-loop references, bit for bit.

use super::scalar::{reference_matmul, reference_matmul_chunked};
use super::*;
use proptest::prelude::*;

/// Values spread over six binades, so that a different summation order shows in the bits.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = crate::rng::Stream::new(seed, "test/kernels", 0);
    (0..len).map(|_| (s.uniform(-1.0, 1.0) * 2f64.powi((s.uniform(0.0, 6.0)) as i32 - 3)) as f32).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// An `(m, k)` operand stored row-major, transposed, or row-major with padded rows.
fn operand(m: usize, k: usize, layout: u8, seed: u64) -> (Vec<f32>, usize, usize) {
    match layout {
        0 => (data(m * k, seed), k, 1),
        1 => (data(m * k, seed), 1, m.max(1)),
        _ => (data(m * (k + 3), seed), k + 3, 1),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_all_paths(m: usize, n: usize, k: usize, layout: u8, pad_b: usize, threads: usize, seed: u64) {
    let (a, rs, cs) = operand(m, k, layout, seed);
    let a = View { data: &a, rs, cs };
    let ldb = n + pad_b;
    let b = data(k * ldb, seed + 1);
    let want = bits(&reference_matmul(m, n, k, a, &b, ldb));
    let want_chunked = bits(&reference_matmul_chunked(m, n, k, a, &b, ldb));
    for isa in Isa::available() {
        let (got, got_chunked) = in_pool(threads, || {
            (matmul(isa, m, n, k, a, &b, ldb), matmul_chunked(isa, m, n, k, a, &b, ldb))
        });
        assert_eq!(bits(&got), want, "{isa} matmul m={m} n={n} k={k} layout={layout} ldb={ldb} threads={threads}");
        assert_eq!(bits(&got_chunked), want_chunked, "{isa} chunked m={m} n={n} k={k} layout={layout} ldb={ldb} threads={threads}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_path_equals_the_reference_bit_for_bit(
        m in 0usize..30, n in 0usize..75, k in 0usize..(2 * CHUNK + 40),
        layout in 0u8..3, pad_b in 0usize..3, threads in 1usize..4, seed in 0u64..1000,
    ) {
        check_all_paths(m, n, k, layout, pad_b, threads, seed);
    }
}

#[test]
fn edge_shapes_equal_the_reference() {
    // k = 0 and 1, single rows and columns, widths around every vector and tile boundary,
    // reductions just under, at and over a chunk.
    for &(m, n, k) in &[(1, 1, 0), (3, 5, 0), (1, 1, 1), (13, 17, 1), (7, 8, 2), (12, 32, 5), (13, 33, 9), (6, 64, 3), (7, 65, 4),
        (25, 96, 7), (5, 15, 16), (2, 288, 11), (4, 576, 3), (20, 27, CHUNK - 1), (20, 31, CHUNK), (9, 63, CHUNK + 1), (3, 129, 3 * CHUNK + 5)]
    {
        for layout in 0..3 {
            for threads in [1, 2, 3] {
                check_all_paths(m, n, k, layout, 1, threads, (m * 1000 + n * 10 + k) as u64);
            }
        }
    }
}

#[test]
fn the_data_detects_a_different_summation_order() {
    // The tests above could not fail if these values summed alike in any order: summing the
    // second half of each chain first must change some bits.
    let (m, n, k) = (8, 16, 200);
    let a = data(m * k, 1);
    let b = data(k * n, 2);
    let want = reference_matmul(m, n, k, View::rows(&a, k), &b, n);
    let mut differs = 0;
    for i in 0..m {
        for j in 0..n {
            let chain = |ps: std::ops::Range<usize>| ps.fold(0f32, |acc, p| a[i * k + p].mul_add(b[p * n + j], acc));
            let split = chain(k / 2..k) + chain(0..k / 2);
            differs += usize::from(split.to_bits() != want[i * n + j].to_bits());
        }
    }
    assert!(differs > m * n / 4, "only {differs} of {} outputs changed", m * n);
}

#[test]
fn chunked_sums_whole_chunks_in_order() {
    // Ones times values: each chunk's chain is an exact sequential sum, so the expected value
    // can be written down independently of the reference function.
    let k = 2 * CHUNK + 7;
    let a = vec![1f32; k];
    let b = data(k, 3);
    let chunk = |r: std::ops::Range<usize>| b[r].iter().fold(0f32, |s, &v| 1f32.mul_add(v, s));
    let want = ((0f32 + chunk(0..CHUNK)) + chunk(CHUNK..2 * CHUNK)) + chunk(2 * CHUNK..k);
    for isa in Isa::available() {
        let c = matmul_chunked(isa, 1, 1, k, View::rows(&a, k), &b, 1);
        assert_eq!(c[0].to_bits(), want.to_bits(), "{isa}");
    }
}

#[test]
fn kernel_names_parse_and_unavailable_paths_are_errors() {
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()), Some(isa));
    }
    assert_eq!(Isa::parse(" AVX2 "), Some(Isa::Avx2));
    assert_eq!(resolve(None), Ok(Isa::best()));
    assert_eq!(resolve(Some("")), Ok(Isa::best()));
    assert!(resolve(Some("sse9")).unwrap_err().contains("names no kernel path"));
    for isa in Isa::ALL {
        match resolve(Some(isa.name())) {
            Ok(got) => assert!(got == isa && isa.is_available()),
            Err(e) => assert!(!isa.is_available() && e.contains("cannot run"), "{e}"),
        }
    }
    assert_eq!(with_isa(Isa::Scalar, current), Ok(Ok(Isa::Scalar)));
}

#[test]
fn this_x86_machine_runs_the_simd_paths_it_has() {
    // On x86-64 with AVX2 the bit-identity tests above must actually exercise a SIMD path.
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        assert!(Isa::available().contains(&Isa::Avx2));
    }
    assert_eq!(Isa::available()[0], Isa::Scalar);
}
