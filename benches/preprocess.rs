//! Decoding and eval preprocessing throughput, shiftbench against Pillow, side by side.
//!
//! Run with `cargo bench --bench preprocess`. Each image goes file → RGB → `Resize(256)`
//! (bilinear) → `CenterCrop(224)` → normalised `f32`, torchvision's ImageNet eval transform; the
//! Pillow side (`benches/preprocess_pillow.py`) does the same with `Image.open().convert("RGB")`,
//! `resize`, `crop` and numpy. Both read the same files, first on one core each (one thread; one
//! process), then on every core (a rayon pool of that many threads; a multiprocessing pool of
//! that many processes, as DataLoader workers). Runs alternate between the two so that a busy
//! machine slows both alike; each figure is the median of `$SHIFTBENCH_BENCH_RUNS` runs
//! (default 3).
//!
//! The images are `$SHIFTBENCH_BENCH_IMAGES` (a folder of JPEG and PNG files, e.g. a slice of
//! ImageNet's validation set) or else 200 synthetic ImageNet-like JPEGs (500×375 and 375×500,
//! 4:2:0, quality 90) that the Python script makes in a temporary folder. Python is
//! `$SHIFTBENCH_PILLOW_PYTHON` (default `python3`) and needs Pillow and numpy; without them only
//! shiftbench is timed, on the fixture JPEGs.
//!
//! Measured on the 2-core development machine while other builds ran (load 5–10), with
//! `cargo bench --profile dev --bench preprocess` (no release build needed: dependencies are at
//! opt-level 3 in that profile, our code at 1, so this understates shiftbench) on the 200
//! synthetic images, Pillow 13.0.0: 1 core 125.7 against 89.6 images/s (1.40×), 2 cores 151.4
//! against 114.8 images/s (1.32×).

use rayon::prelude::*;
use shiftbench::data::image::{open_rgb, Preprocess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/preprocess_pillow.py")
}

/// Seconds for shiftbench to preprocess every file on `threads` threads.
fn ours(paths: &[PathBuf], threads: usize) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let p = Preprocess::imagenet();
    let t = Instant::now();
    let sum: f64 = pool.install(|| {
        paths
            .par_iter()
            .map(|path| {
                let img = open_rgb(path).unwrap_or_else(|e| panic!("{e}"));
                p.apply(&img).unwrap().data[0] as f64
            })
            .sum()
    });
    std::hint::black_box(sum);
    t.elapsed().as_secs_f64()
}

/// Seconds for Pillow to preprocess every file listed in `list` with `procs` processes.
fn pillow(python: &str, list: &Path, procs: usize) -> f64 {
    let out = Command::new(python).arg(script()).arg("run").arg(list).arg(procs.to_string()).output().expect("running the Pillow side");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the Pillow side's JSON line");
    v["seconds"].as_f64().unwrap()
}

fn main() {
    let python = std::env::var("SHIFTBENCH_PILLOW_PYTHON").unwrap_or_else(|_| "python3".into());
    let runs: usize = std::env::var("SHIFTBENCH_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let have_pillow = Command::new(&python).args(["-c", "import PIL, numpy"]).output().is_ok_and(|o| o.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("SHIFTBENCH_BENCH_IMAGES") {
        Some(d) => PathBuf::from(d),
        None if have_pillow => {
            let d = tmp.path().join("images");
            let ok = Command::new(&python).arg(script()).arg("make").arg(&d).arg("200").status().is_ok_and(|s| s.success());
            assert!(ok, "making the synthetic images failed");
            d
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/preprocess/jpeg"),
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| ["jpg", "jpeg", "png", "JPEG"].contains(&&*x.to_string_lossy())))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no JPEG or PNG files in {}", dir.display());
    let list = tmp.path().join("list.txt");
    std::fs::write(&list, paths.iter().map(|p| format!("{}\n", p.display())).collect::<String>()).unwrap();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("{} images from {}; median of {runs} runs", paths.len(), dir.display());
    if !have_pillow {
        println!("({python} cannot import PIL and numpy: timing shiftbench only)");
    }
    // Warm the page cache and both sides' code paths once.
    ours(&paths, cores);
    if have_pillow {
        pillow(&python, &list, 1);
    }
    let mut levels = vec![1];
    if cores > 1 {
        levels.push(cores);
    }
    for n in levels {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            a.push(ours(&paths, n));
            if have_pillow {
                b.push(pillow(&python, &list, n));
            }
        }
        let ours_rate = paths.len() as f64 / median(a);
        if have_pillow {
            let pillow_rate = paths.len() as f64 / median(b);
            println!("{n} core(s): shiftbench {ours_rate:7.1} images/s, Pillow {pillow_rate:7.1} images/s, ratio {:.2}×", ours_rate / pillow_rate);
        } else {
            println!("{n} core(s): shiftbench {ours_rate:7.1} images/s");
        }
    }
}
