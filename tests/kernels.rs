//! The fixed-order kernels end to end: the fused convolution and the whole network give the
//! same bits on every kernel path this CPU can run, and the convolution equals plain loops
//! written from its definition (one FMA chain per output, chunked weight-gradient reduction).

use candle_core::{Device, Tensor, Var};
use proptest::prelude::*;
use shiftbench::model::fused::Conv;
use shiftbench::model::kernels::{self, Isa, CHUNK};
use shiftbench::model::{ArchConfig, BlockKind, NamedArch, ResNet, ResNetConfig, Stem};
use shiftbench::rng::Stream;

fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut s = Stream::new(seed, "test/kernels-conv", 0);
    (0..len).map(|_| (s.uniform(-1.0, 1.0) * 2f64.powi(s.uniform(0.0, 5.0) as i32 - 2)) as f32).collect()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

/// A convolution's shape: NHWC input, `k×k` kernel, stride, padding `k / 2`.
#[derive(Clone, Copy, Debug)]
struct Shape {
    batch: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
}

impl Shape {
    fn out(&self) -> (usize, usize) {
        let p = self.k / 2;
        ((self.h + 2 * p - self.k) / self.stride + 1, (self.w + 2 * p - self.k) / self.stride + 1)
    }
    fn depth(&self) -> usize {
        self.k * self.k * self.cin
    }
    /// Input pixel read by output (oy, ox) at kernel offset (dy, dx), if inside the image.
    fn source(&self, oy: usize, ox: usize, dy: usize, dx: usize) -> Option<(usize, usize)> {
        let p = self.k / 2;
        let iy = (oy * self.stride + dy).checked_sub(p)?;
        let ix = (ox * self.stride + dx).checked_sub(p)?;
        (iy < self.h && ix < self.w).then_some((iy, ix))
    }
    /// The input value multiplying weight row (dy, dx, ci) at output row r; 0 in the padding.
    fn tap(&self, x: &[f32], r: usize, d: usize) -> f32 {
        let (ho, wo) = self.out();
        let (b, oy, ox) = (r / (ho * wo), r / wo % ho, r % wo);
        let (dy, dx, ci) = (d / (self.k * self.cin), d / self.cin % self.k, d % self.cin);
        match self.source(oy, ox, dy, dx) {
            Some((iy, ix)) => x[((b * self.h + iy) * self.w + ix) * self.cin + ci],
            None => 0.0,
        }
    }
}

/// The convolution, its weight gradient and its input gradient for upstream gradient `g`, from
/// the definitions: y[r, co] = chain over d of tap·w; dW[d, co] = chunks of CHUNK rows, each a
/// chain over r of tap·g, added in chunk order; dX = for each image, outputs in (oy, ox, dy, dx)
/// order adding the chain over co of g·w.
fn reference(s: Shape, x: &[f32], wt: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (ho, wo) = s.out();
    let (rows, depth, cout) = (s.batch * ho * wo, s.depth(), s.cout);
    let mut y = vec![0f32; rows * cout];
    for r in 0..rows {
        for co in 0..cout {
            y[r * cout + co] = (0..depth).fold(0f32, |acc, d| s.tap(x, r, d).mul_add(wt[d * cout + co], acc));
        }
    }
    let mut dw = vec![0f32; depth * cout];
    for d in 0..depth {
        for co in 0..cout {
            let mut total = 0f32;
            for r0 in (0..rows).step_by(CHUNK) {
                total += (r0..(r0 + CHUNK).min(rows)).fold(0f32, |acc, r| s.tap(x, r, d).mul_add(g[r * cout + co], acc));
            }
            dw[d * cout + co] = total;
        }
    }
    let mut dx = vec![0f32; s.batch * s.h * s.w * s.cin];
    for b in 0..s.batch {
        for oy in 0..ho {
            for ox in 0..wo {
                let r = (b * ho + oy) * wo + ox;
                for dy in 0..s.k {
                    for dxx in 0..s.k {
                        let Some((iy, ix)) = s.source(oy, ox, dy, dxx) else { continue };
                        for ci in 0..s.cin {
                            let d = (dy * s.k + dxx) * s.cin + ci;
                            let v = (0..cout).fold(0f32, |acc, co| g[r * cout + co].mul_add(wt[d * cout + co], acc));
                            dx[((b * s.h + iy) * s.w + ix) * s.cin + ci] += v;
                        }
                    }
                }
            }
        }
    }
    (y, dw, dx)
}

/// The fused op's output and gradients on `isa` with `threads` threads.
fn fused(s: Shape, x: &[f32], wt: &[f32], g: &[f32], isa: Isa, threads: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let dev = Device::Cpu;
    let (ho, wo) = s.out();
    let xv = Var::from_tensor(&Tensor::from_vec(x.to_vec(), (s.batch * s.h * s.w, s.cin), &dev).unwrap()).unwrap();
    let wv = Var::from_tensor(&Tensor::from_vec(wt.to_vec(), (s.depth(), s.cout), &dev).unwrap()).unwrap();
    let probe = Tensor::from_vec(g.to_vec(), (s.batch * ho * wo, s.cout), &dev).unwrap();
    in_pool(threads, || {
        kernels::with_isa(isa, || {
            let y = xv.as_tensor().apply_op2(wv.as_tensor(), Conv::new(s.k, s.stride, (s.batch, s.h, s.w))).unwrap();
            // d(Σ y·probe)/dy = probe exactly, so the op's backward sees `g` as its gradient.
            let grads = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
            (bits(&y), bits(grads.get(wv.as_tensor()).unwrap()), bits(grads.get(xv.as_tensor()).unwrap()))
        })
        .unwrap()
    })
}

fn check_conv(s: Shape, threads: usize, seed: u64) {
    let (ho, wo) = s.out();
    let x = data(s.batch * s.h * s.w * s.cin, seed);
    let wt = data(s.depth() * s.cout, seed + 1);
    let g = data(s.batch * ho * wo * s.cout, seed + 2);
    let to_bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let (y, dw, dx) = reference(s, &x, &wt, &g);
    let want = (to_bits(y), to_bits(dw), to_bits(dx));
    for isa in Isa::available() {
        let got = fused(s, &x, &wt, &g, isa, threads);
        assert!(got.0 == want.0, "{isa} forward differs: {s:?} threads={threads}");
        assert!(got.1 == want.1, "{isa} weight gradient differs: {s:?} threads={threads}");
        assert!(got.2 == want.2, "{isa} input gradient differs: {s:?} threads={threads}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fused_convolution_equals_its_definition_on_every_path(
        batch in 1usize..4, h in 1usize..10, w in 1usize..10, cin in 1usize..6, cout in 1usize..40,
        k in prop::sample::select(vec![1usize, 3, 7]), stride in 1usize..3, threads in 1usize..4, seed in 0u64..1000,
    ) {
        check_conv(Shape { batch, h, w, cin, cout, k, stride }, threads, seed);
    }
}

#[test]
fn fused_convolution_with_long_reductions_and_wide_outputs() {
    // More rows than two chunks (the weight gradient's chunk boundaries), output widths that
    // are not multiples of 16 and ones that are, as in the reference model's layers.
    for s in [
        Shape { batch: 4, h: 12, w: 12, cin: 3, cout: 32, k: 3, stride: 1 },
        Shape { batch: 3, h: 16, w: 11, cin: 5, cout: 17, k: 3, stride: 2 },
        Shape { batch: 2, h: 20, w: 15, cin: 8, cout: 64, k: 1, stride: 1 },
        Shape { batch: 2, h: 9, w: 9, cin: 16, cout: 33, k: 7, stride: 2 },
        Shape { batch: 1, h: 6, w: 6, cin: 36, cout: 128, k: 3, stride: 1 },
    ] {
        for threads in [1, 2, 3] {
            check_conv(s, threads, s.cout as u64);
        }
    }
}

/// Logits, every parameter gradient and the running statistics after one training step, then
/// evaluation logits, as bits.
fn model_step(config: &ArchConfig, x: &Tensor) -> Vec<Vec<u32>> {
    let mut model = ResNet::new(config.clone(), 3, &Device::Cpu).unwrap();
    let logits = model.forward(x, true).unwrap();
    let loss = (logits.sqr().unwrap().sum_all().unwrap() + logits.sum_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let mut out = vec![bits(&logits)];
    for p in model.params() {
        out.push(bits(grads.get(p.var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {}", p.name))));
    }
    out.push(bits(&model.forward(x, false).unwrap()));
    out
}

#[test]
fn network_logits_and_gradients_are_identical_on_every_path() {
    let configs = [
        ArchConfig::from(ResNetConfig { width: 8, blocks: 1, stages: 3, num_classes: 10, image_size: 32 }),
        ArchConfig { stem: Stem::Imagenet, block: BlockKind::Bottleneck, ..NamedArch::Resnet50.config(5, 32).scaled(0.125, 0.34) },
    ];
    let mut s = Stream::new(9, "test/kernels-model", 0);
    let x: Vec<f32> = (0..6 * 32 * 32 * 3).map(|_| s.normal() as f32).collect();
    let x = Tensor::from_vec(x, (6, 32, 32, 3), &Device::Cpu).unwrap();
    for config in &configs {
        let want = kernels::with_isa(Isa::Scalar, || model_step(config, &x)).unwrap();
        for isa in Isa::available() {
            for threads in [1, 3] {
                let got = in_pool(threads, || kernels::with_isa(isa, || model_step(config, &x)).unwrap());
                assert_eq!(got.len(), want.len());
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(g == w, "{isa} ({threads} threads), {config:?}: output {i} differs from the scalar path");
                }
            }
        }
    }
}

/// Run by [`environment_variable_selects_or_rejects_a_path`] in a child process (the variable
/// is read once per process); does nothing otherwise.
#[test]
fn child_reports_the_environment_path() {
    let Ok(expect) = std::env::var("SHIFTBENCH_KERNELS_EXPECT") else { return };
    let x = Tensor::ones((4 * 4, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((18, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let result = x.apply_op2(&w, Conv::new(3, 1, (1, 4, 4)));
    match expect.strip_prefix("error:") {
        Some(needle) => {
            let err = result.expect_err("a convolution under a bad SHIFTBENCH_KERNELS must fail").to_string();
            assert!(err.contains(needle), "{err}");
        }
        None => {
            result.unwrap();
            assert_eq!(kernels::current().unwrap().name(), expect);
        }
    }
}

#[test]
fn environment_variable_selects_or_rejects_a_path() {
    let run = |value: &str, expect: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_reports_the_environment_path", "--test-threads=1"])
            .env(kernels::ENV, value)
            .env("SHIFTBENCH_KERNELS_EXPECT", expect)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}={value}: {}", kernels::ENV, String::from_utf8_lossy(&out.stdout));
    };
    for isa in Isa::ALL {
        if isa.is_available() {
            run(isa.name(), isa.name());
        } else {
            run(isa.name(), "error:cannot run");
        }
    }
    run("", Isa::best().name());
    run("neon9", "error:names no kernel path");
}
