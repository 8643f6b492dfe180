//! The research-question suite end to end: the quick profile of `suites/shapes-rq.toml`. Its RQ3
//! sweep (the amount of generated data) trains one regime per value and seed, and the
//! leaderboard, summary, records, plots and generated sets say which value each row is; its RQ2
//! regimes' sets and records say how they were conditioned; its RQ4 diffusion models are trained,
//! fine-tuned and sampled, and their sets and records say which variant made them; and
//! `shiftbench paper` lays the folder out by question.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn column(csv: &str, name: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let index = reader.headers().unwrap().iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    reader.records().map(|r| r.unwrap()[index].to_string()).collect()
}

fn manifest_rows(work: &Path, prefix: &str) -> Vec<String> {
    let generated = work.join("generated");
    let dir = std::fs::read_dir(&generated)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // `<set>-<16 hex digits>`: the set's own folder, not a longer set name.
            name.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('-')).is_some_and(|h| h.len() == 16 && !h.contains('-'))
        })
        .unwrap_or_else(|| panic!("no generated folder for {prefix}"));
    std::fs::read_to_string(dir.join("manifest.csv")).unwrap().lines().skip(1).map(String::from).collect()
}

#[test]
fn the_research_question_suite_runs_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_shiftbench"))
        .args(["run", repo().join("suites/shapes-rq.toml").to_str().unwrap(), "--quick", "--out"])
        .arg(out.path())
        .output()
        .expect("run shiftbench");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let csv = std::fs::read_to_string(out.path().join("leaderboard.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.ends_with(",sweep,sweep_value"), "{header}");
    let regimes = column(&csv, "regime");
    let values = column(&csv, "sweep_value");
    let sweeps = column(&csv, "sweep");
    for v in ["0", "1250", "2500", "5000", "10000"] {
        let rows: Vec<usize> = (0..regimes.len()).filter(|&i| regimes[i] == format!("real+generated.amount-{v}")).collect();
        assert_eq!(rows.len(), 3, "three seeds of value {v}");
        assert!(rows.iter().all(|&i| values[i] == v && sweeps[i] == "amount"));
    }
    for (i, r) in regimes.iter().enumerate() {
        if r == "real" || r == "real+generated" {
            assert_eq!((sweeps[i].as_str(), values[i].as_str()), ("", ""), "a row outside the sweep has no value");
        }
    }
    // Training images: 200 real (quick) plus the scaled generated amount; 0 adds none.
    let images = column(&csv, "train_images");
    let real = (0..regimes.len()).find(|&i| regimes[i] == "real").unwrap();
    let none = (0..regimes.len()).find(|&i| regimes[i] == "real+generated.amount-0").unwrap();
    let double = (0..regimes.len()).find(|&i| regimes[i] == "real+generated.amount-10000").unwrap();
    assert_eq!(images[none], images[real]);
    assert_eq!(images[double], "600");

    // The record says which value; records outside sweeps carry no sweep key at all.
    let record = std::fs::read_to_string(out.path().join("records/entry/resnet-w16/real+generated.amount-2500/seed-1/val.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(json["sweep"], serde_json::json!({"sweep": "amount", "key": "generated.gen-train.size", "value": 2500.0}));
    let plain = std::fs::read_to_string(out.path().join("records/entry/resnet-w16/real/seed-0/val.json")).unwrap();
    assert!(!plain.contains("\"sweep\""));

    // Swept sizes are prefixes of one set: the same requests, image for image.
    let work = out.path().join("work");
    let base = manifest_rows(&work, "gen-train");
    let small = manifest_rows(&work, "gen-train.amount-1250");
    let large = manifest_rows(&work, "gen-train.amount-10000");
    assert_eq!((small.len(), base.len(), large.len()), (50, 200, 400));
    assert_eq!(small[..], base[..50]);
    assert_eq!(base[..], large[..200]);

    // Each value's gain over `real`, paired over the three seeds.
    let summary = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
    let line = summary.lines().find(|l| l.starts_with("resnet-w16,real+generated.amount-5000,acc_sketch,")).expect("summary row");
    assert!(line.split(',').nth(3) == Some("3") && line.split(',').nth(8) == Some("3"), "{line}");

    for ext in ["svg", "png"] {
        assert!(out.path().join(format!("plots/sweep-amount-resnet-w16-real+generated.{ext}")).is_file());
    }

    // RQ2: each conditioning strategy's set records where its images came from, and so do the
    // records of the classifiers trained on them.
    let image = manifest_rows(&work, "gen-image");
    assert_eq!(image.len(), 200);
    assert!(image[7].ends_with(",image,,domain/train/7"), "{}", image[7]);
    assert!(image[7].contains(",,0,"), "image conditioning reads no prompt: {}", image[7]);
    let img2img = manifest_rows(&work, "gen-img2img-0.5");
    assert!(img2img[3].ends_with(",text+image,0.5,domain/train/3"), "{}", img2img[3]);
    assert!(!manifest_rows(&work, "gen-photo-of")[0].contains("domain/"), "text sets keep the eight base columns");
    let record = std::fs::read_to_string(out.path().join("records/entry/resnet-w16/real+generated-img2img-1/seed-2/sketch.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(json["train"]["sources"][1], serde_json::json!({
        "set": "gen-img2img-1", "kind": "generated", "images": 200, "generator": "procedural",
        "templates": "clip-imagenet-80", "conditioning": "text+image", "strength": 1.0, "source": "train",
    }));
    assert_eq!(json["train"]["sources"][0], serde_json::json!({"set": "train", "kind": "real", "images": 200}));

    // `shiftbench paper` lays the folder out by research question.
    let paper = Command::new(env!("CARGO_BIN_EXE_shiftbench")).args(["paper"]).arg(out.path()).output().expect("run shiftbench paper");
    assert!(paper.status.success(), "{}", String::from_utf8_lossy(&paper.stderr));
    let md = std::fs::read_to_string(out.path().join("paper.md")).unwrap();
    let rq2 = &md[md.find("## RQ2").unwrap()..md.find("## RQ3").unwrap()];
    assert_eq!(rq2.lines().filter(|l| l.starts_with("| resnet-w16 |")).count(), 5, "{rq2}");
    assert!(md[md.find("## RQ3").unwrap()..md.find("## RQ4").unwrap()].contains("| 10000 | 3 |"));

    // RQ4: the fine-tuned model trained from the base's weights on the real images; both
    // generated 200 images (quick) whose manifest names the weights, and the records name the variant.
    let diffusion: Vec<String> = std::fs::read_dir(work.join("diffusion")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(diffusion.len(), 2, "{diffusion:?}");
    let base_rows = manifest_rows(&work, "gen-diffusion-base");
    let tuned_rows = manifest_rows(&work, "gen-diffusion-fine-tuned");
    assert_eq!((base_rows.len(), tuned_rows.len()), (200, 200));
    assert!(base_rows[5].contains(",diffusion-v3/base,") && tuned_rows[5].contains(",diffusion-v3/fine-tuned,"), "{}", base_rows[5]);
    let weights = |row: &str| row.split(',').nth(8).unwrap().to_string();
    assert_eq!(weights(&base_rows[5]).len(), 64);
    assert_ne!(weights(&base_rows[5]), weights(&tuned_rows[5]), "fine-tuning changed the weights");
    let image_hash = |row: &str| row.split(',').nth(7).unwrap().to_string();
    assert_ne!(image_hash(&base_rows[5]), image_hash(&tuned_rows[5]));
    let record = std::fs::read_to_string(out.path().join("records/entry/resnet-w16/real+diffusion-fine-tuned/seed-0/val.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(json["train"]["sources"][1], serde_json::json!({
        "set": "gen-diffusion-fine-tuned", "kind": "generated", "images": 200, "generator": "diffusion",
        "conditioning": "class", "variant": "fine-tuned",
    }));
    let rq4 = &md[md.find("## RQ4").unwrap()..md.find("## RQ5").unwrap()];
    assert!(rq4.contains("base") && rq4.contains("fine-tuned"), "{rq4}");
    assert_eq!(rq4.lines().filter(|l| l.starts_with("| resnet-w16 |")).count(), 2, "{rq4}");
}
