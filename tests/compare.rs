//! `shiftbench compare` end to end on a fixture ImageNet-vocabulary suite whose sets mimic the
//! real layouts (a flat val folder with `LOC_val_solution.csv`, ImageNetV2's class-index folders,
//! ImageNet-R's wnid folders, ObjectNet's `images/` + `mappings/`), with the committed tiny
//! torchvision-layout ResNet (fixtures/onnx/tiny-resnet.safetensors) and a second classifier
//! made from it. Every protocol's counts are recomputed here by hand from the logits
//! `shiftbench predict` writes for the same files — plain loops over the rules as the
//! imagenet-testbed and generative-robustness code state them — and must equal the records.

use shiftbench::data::imageset::{objectnet_genrob, ClassSubset, Vocabulary};
use shiftbench::data::RgbImage;
use shiftbench::record::RunRecord;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_shiftbench");

/// The fixture suite's eval transform: torchvision's, scaled from 256/224 to 73/64 so the test
/// runs in seconds (the network is global-pooled, so it takes any size).
const EVAL: &str = "imagenet:resize=73,crop=64";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// A small image whose content depends on `seed` (so classifiers disagree between images),
/// at a size that the eval transform enlarges (as ImageNet's small images are).
fn image(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let mut img = RgbImage::new(w, h);
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    for p in img.pixels.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *p = (x >> 24) as u8;
    }
    img.to_png()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The fixture's ObjectNet: every genrob label with its wnid's class, every tenth also with
/// one more (unused elsewhere) class, as ObjectNet maps some classes to two or three.
struct Objectnet {
    /// Label (sorted) → torchvision indices it maps to.
    mapped: Vec<(String, Vec<u32>)>,
}

fn objectnet(vocab: &Vocabulary) -> Objectnet {
    let index = vocab.index();
    let genrob = objectnet_genrob();
    let used: BTreeSet<u32> = genrob.iter().map(|(_, w)| index[w]).collect();
    let mut spare = (0..1000u32).filter(|c| !used.contains(c));
    let mapped = genrob
        .iter()
        .enumerate()
        .map(|(k, (label, wnid))| {
            let mut classes = vec![index[wnid]];
            if k % 10 == 0 {
                classes.push(spare.next().unwrap());
            }
            classes.sort();
            (label.to_string(), classes)
        })
        .collect();
    Objectnet { mapped }
}

/// 2012 id of a torchvision index in the fixture's mapping chain (a permutation, so a harness
/// that skipped `pytorch_to_imagenet_2012_id.json` would score wrong classes).
fn id_2012(torchvision: u32) -> u32 {
    (torchvision * 7 + 3) % 1000
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    suite: PathBuf,
    vocab: Vocabulary,
    objectnet: Objectnet,
    /// Val images (path, torchvision label), in listing order.
    val: Vec<(PathBuf, u32)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let vocab = Vocabulary::imagenet_1k();
    let on = objectnet(&vocab);
    let r_classes = ClassSubset::ImagenetR.labels(&vocab).unwrap();

    // Val: 10 images of R classes, 10 of ObjectNet-mapped classes (some of the extra ones), 10 others.
    let mut val_labels: Vec<u32> = r_classes.iter().step_by(20).copied().collect();
    val_labels.extend(on.mapped.iter().step_by(11).map(|(_, c)| *c.last().unwrap()));
    val_labels.extend([0u32, 5, 9, 100, 300, 500, 640, 720, 880, 999].iter().filter(|c| !r_classes.contains(c)).take(10));
    let mut loc = String::from("ImageId,PredictionString\n");
    let mut val = Vec::new();
    for (i, &l) in val_labels.iter().enumerate() {
        let stem = format!("ILSVRC2012_val_{:08}", i + 1);
        let path = root.join("val").join(format!("{stem}.png"));
        write(&path, &image(i as u32, 40 + i as u32 % 7, 30 + i as u32 % 5));
        loc.push_str(&format!("{stem},{} 1 2 3 4\n", vocab.ids[l as usize]));
        val.push((path, l));
    }
    write(&root.join("LOC_val_solution.csv"), loc.as_bytes());

    // ImageNetV2: class-index folders (not wnids), one image in each of the 1000 (a complete
    // set; a string sort of the names would mislabel `10`..`99`).
    for c in 0..1000u32 {
        write(&root.join(format!("v2/{c}/0.png")), &image(10_000 + c, 20, 24));
    }
    // ImageNet-R: one image in each of its 200 wnid folders.
    for (j, &c) in r_classes.iter().enumerate() {
        write(&root.join(format!("imagenet-r/{}/art_{j}.png", vocab.ids[c as usize])), &image(2000 + j as u32, 33, 40));
    }
    // ObjectNet 1.0: images/<folder>/ and mappings/.
    let on_root = root.join("objectnet-1.0");
    let mut folder_to_label = BTreeMap::new();
    let mut to_imagenet = BTreeMap::new();
    for (k, (label, classes)) in on.mapped.iter().enumerate() {
        let folder = format!("folder_{k:03}");
        folder_to_label.insert(folder.clone(), label.clone());
        let names: Vec<String> = classes.iter().map(|&c| format!("class-{}", id_2012(c))).collect();
        to_imagenet.insert(label.clone(), names.join("; "));
        write(&on_root.join(format!("images/{folder}/{k}.png")), &image(3000 + k as u32, 48, 40));
    }
    // Two of ObjectNet's 313 folders that overlap no ImageNet class: never scored.
    for extra in ["zz_not_imagenet", "zz_other"] {
        folder_to_label.insert(extra.into(), format!("{extra} label"));
        write(&on_root.join(format!("images/{extra}/x.png")), &image(4000, 40, 40));
    }
    let torch_to_2012: BTreeMap<String, u32> = (0..1000u32).map(|t| (t.to_string(), id_2012(t))).collect();
    let names_2012: String = (0..1000).map(|i| format!("class-{i}\n")).collect();
    write(&on_root.join("mappings/folder_to_objectnet_label.json"), serde_json::to_string(&folder_to_label).unwrap().as_bytes());
    write(&on_root.join("mappings/objectnet_to_imagenet_1k.json"), serde_json::to_string(&to_imagenet).unwrap().as_bytes());
    write(&on_root.join("mappings/pytorch_to_imagenet_2012_id.json"), serde_json::to_string(&torch_to_2012).unwrap().as_bytes());
    write(&on_root.join("mappings/imagenet_to_label_2012_v2"), names_2012.as_bytes());

    // Fixed fits whose columns are the fixture's domains.
    let fits = r#"
[[reference_fits]]
shift = "imagenetv2"
id_column = "val"
shift_column = "imagenetv2"
transform = "logit"
slope = 0.9232
intercept = -0.4977
n = 85
provenance = "imagenet-testbed V2 fit, copied for the fixture"

[[reference_fits]]
shift = "imagenet-r"
id_column = "val-on-imagenet-r-classes"
shift_column = "imagenet-r"
transform = "logit"
slope = 0.6368
intercept = -2.1077
n = 80
provenance = "imagenet-testbed R fit, copied for the fixture"

[[reference_fits]]
shift = "objectnet"
id_column = "val-on-objectnet-classes"
shift_column = "objectnet"
transform = "logit"
slope = 0.9809
intercept = -1.9283
n = 85
provenance = "imagenet-testbed ObjectNet fit, copied for the fixture"
"#;
    write(&root.join("fits.toml"), fits.as_bytes());
    let suite = r#"# A fixture ImageNet evaluation suite (tests/compare.rs).
[suite]
name = "compare-fixture"
seed = 0
image_size = 64
vocabulary = "imagenet-1k"

[[domains]]
name = "val"
source = "folder:val"
split = "val"
layout = "imagenet-val"
preprocess = "imagenet:resize=73,crop=64"
labels = "LOC_val_solution.csv"

[[domains]]
name = "val-on-imagenet-r-classes"
source = "folder:val"
split = "val"
layout = "imagenet-val"
preprocess = "imagenet:resize=73,crop=64"
labels = "LOC_val_solution.csv"
protocol = "imagenet-r-classes"

[[domains]]
name = "val-on-objectnet-classes"
source = "folder:val"
split = "val"
layout = "imagenet-val"
preprocess = "imagenet:resize=73,crop=64"
labels = "LOC_val_solution.csv"
protocol = "objectnet-classes"
objectnet_from = "objectnet"

[[domains]]
name = "imagenetv2"
source = "folder:v2"
split = "shift"
layout = "class-index-folders"
preprocess = "imagenet:resize=73,crop=64"

[[domains]]
name = "imagenet-r"
source = "folder:imagenet-r"
split = "shift"
layout = "wnid-folders"
preprocess = "imagenet:resize=73,crop=64"
protocol = "imagenet-r"

[[domains]]
name = "objectnet"
source = "folder:objectnet-1.0"
split = "shift"
layout = "objectnet"
preprocess = "imagenet:resize=73,crop=64"
protocol = "objectnet-testbed"

[[domains]]
name = "objectnet-genrob"
source = "folder:objectnet-1.0"
split = "shift"
layout = "objectnet"
preprocess = "imagenet:resize=73,crop=64"
protocol = "objectnet-genrob"

[metrics]
id_domain = "val"
id_axes = ["val-on-imagenet-r-classes", "val-on-objectnet-classes"]
shifts = ["imagenetv2", "imagenet-r", "objectnet", "objectnet-genrob"]
reference_fits = "fits.toml"
"#;
    let suite_path = root.join("compare-fixture.toml");
    write(&suite_path, suite.as_bytes());
    Fixture { _dir: dir, root, suite: suite_path, vocab, objectnet: on, val }
}

/// The second classifier: the tiny ResNet with its classifier's weights negated (every ranking
/// reversed), written next to the fixture.
fn negated_weights(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(repo("fixtures/onnx/tiny-resnet.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in tensors.tensors() {
        let mut data = view.data().to_vec();
        if name == "fc.weight" || name == "fc.bias" {
            assert_eq!(view.dtype(), safetensors::Dtype::F16);
            // Flip the sign bit of every float16.
            for pair in data.chunks_exact_mut(2) {
                pair[1] ^= 0x80;
            }
        }
        owned.push((name, view.dtype(), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        owned.iter().map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let out = dir.join("negated.safetensors");
    std::fs::write(&out, safetensors::serialize(views, None).unwrap()).unwrap();
    out
}

fn shiftbench(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(BIN).args(args).current_dir(cwd).env("RAYON_NUM_THREADS", "2").output().unwrap()
}

/// Logits `(images, 1000)` that `predict` gives for `paths`, with `preprocess`.
fn logits(weights: &Path, paths: &[PathBuf], preprocess: &str, tmp: &Path) -> Vec<Vec<f32>> {
    let list = tmp.join("list");
    let mut args: Vec<String> = ["predict", "--arch", "resnet-imagenet-basic-w8-l1.1.1.1", "--weights"].map(String::from).to_vec();
    args.push(weights.display().to_string());
    args.extend(["--preprocess".to_string(), preprocess.to_string(), "--out".into(), list.join("p.csv").display().to_string()]);
    args.extend(["--logits".to_string(), list.join("l.npy").display().to_string()]);
    args.extend(paths.iter().map(|p| p.display().to_string()));
    std::fs::create_dir_all(&list).unwrap();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = shiftbench(&refs, tmp);
    assert!(out.status.success(), "predict: {}", String::from_utf8_lossy(&out.stderr));
    let npy = std::fs::read(list.join("l.npy")).unwrap();
    let header = u16::from_le_bytes([npy[8], npy[9]]) as usize + 10;
    let values: Vec<f32> = npy[header..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    values.chunks_exact(1000).map(<[f32]>::to_vec).collect()
}

/// The classes of `candidates` ranked by logit, best first; ties by the lower class (stable).
fn ranked(row: &[f32], candidates: &[u32]) -> Vec<u32> {
    let mut c = candidates.to_vec();
    c.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(a.cmp(&b)));
    c
}

/// Top-1 and top-5 correct counts of images scored against `candidates`, an image counting as
/// correct when the prediction is in its `truth` set; top-5 over distinct labels of `label_of`.
fn tally(rows: &[Vec<f32>], truths: &[u32], candidates: &[u32], label_of: impl Fn(u32) -> u32) -> (u64, u64, u64) {
    let (mut top1, mut top5) = (0, 0);
    for (row, &t) in rows.iter().zip(truths) {
        let order = ranked(row, candidates);
        if label_of(order[0]) == t {
            top1 += 1;
        }
        let mut labels: Vec<u32> = Vec::new();
        for c in order {
            let l = label_of(c);
            if !labels.contains(&l) {
                labels.push(l);
            }
            if labels.len() == 5 {
                break;
            }
        }
        if labels.contains(&t) {
            top5 += 1;
        }
    }
    (rows.len() as u64, top1, top5)
}

fn record(out: &Path, name: &str, domain: &str) -> RunRecord {
    let path = out.join(format!("records/compared/{name}/external/seed-0/{domain}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn without_columns(csv_text: &str, drop: &[&str]) -> String {
    let mut r = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len()).filter(|&i| !drop.contains(&&headers[i])).collect();
    let mut lines = vec![keep.iter().map(|&i| headers[i].to_string()).collect::<Vec<_>>().join(",")];
    for rec in r.records() {
        let rec = rec.unwrap();
        lines.push(keep.iter().map(|&i| rec[i].to_string()).collect::<Vec<_>>().join(","));
    }
    lines.join("\n") + "\n"
}

#[test]
fn compare_scores_two_outside_classifiers_by_every_protocol_side_by_side() {
    let f = fixture();
    let out = f.root.join("results");
    let tiny = repo("fixtures/onnx/tiny-resnet.safetensors");
    let negated = negated_weights(&f.root);
    let suite = f.suite.display().to_string();
    let out_s = out.display().to_string();
    let arch = "resnet-imagenet-basic-w8-l1.1.1.1";

    let check = shiftbench(&["check", &suite], &f.root);
    assert!(check.status.success(), "check: {}", String::from_utf8_lossy(&check.stderr));

    for (name, weights) in [("tiny", &tiny), ("tiny-negated", &negated)] {
        let w = weights.display().to_string();
        let run = shiftbench(&["compare", &suite, "--name", name, "--arch", arch, "--weights", &w, "--out", &out_s], &f.root);
        assert!(run.status.success(), "compare {name}: {}", String::from_utf8_lossy(&run.stderr));
    }
    // Re-running skips every set.
    let again = shiftbench(&["compare", &suite, "--name", "tiny", "--arch", arch, "--weights", &tiny.display().to_string(), "--out", &out_s], &f.root);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success() && stdout.contains("0 evaluation sets scored, 7 already done"), "{stdout}");

    let index = f.vocab.index();
    let r_classes = ClassSubset::ImagenetR.labels(&f.vocab).unwrap();
    let genrob: Vec<u32> = objectnet_genrob().iter().map(|(_, w)| index[w]).collect();
    let mapped_union: Vec<u32> = f.objectnet.mapped.iter().flat_map(|(_, c)| c.clone()).collect();
    let group_of = |c: u32| f.objectnet.mapped.iter().position(|(_, cs)| cs.contains(&c)).unwrap() as u32;

    for (name, weights) in [("tiny", &tiny), ("tiny-negated", &negated)] {
        let val_paths: Vec<PathBuf> = f.val.iter().map(|(p, _)| p.clone()).collect();
        let val_logits = logits(weights, &val_paths, EVAL, &f.root);
        let val_truth: Vec<u32> = f.val.iter().map(|(_, l)| *l).collect();
        let all: Vec<u32> = (0..1000).collect();
        let check_record = |domain: &str, expect: (u64, u64, u64)| {
            let r = record(&out, name, domain);
            assert_eq!((r.n, r.correct, r.correct_top5.unwrap()), expect, "{name} on {domain}");
        };
        check_record("val", tally(&val_logits, &val_truth, &all, |c| c));

        // val-on-imagenet-r-classes: only val images of R's classes, argmax over R's 200 logits.
        let keep: Vec<usize> = (0..f.val.len()).filter(|&i| r_classes.contains(&val_truth[i])).collect();
        let rows: Vec<Vec<f32>> = keep.iter().map(|&i| val_logits[i].clone()).collect();
        let truths: Vec<u32> = keep.iter().map(|&i| val_truth[i]).collect();
        check_record("val-on-imagenet-r-classes", tally(&rows, &truths, &r_classes, |c| c));
        assert_eq!(record(&out, name, "val-on-imagenet-r-classes").scoring.unwrap().logits, 200);

        // val-on-objectnet-classes: val images of the mapped classes, logits max-collapsed to groups.
        let keep: Vec<usize> = (0..f.val.len()).filter(|&i| mapped_union.contains(&val_truth[i])).collect();
        let rows: Vec<Vec<f32>> = keep.iter().map(|&i| val_logits[i].clone()).collect();
        let truths: Vec<u32> = keep.iter().map(|&i| group_of(val_truth[i])).collect();
        check_record("val-on-objectnet-classes", tally(&rows, &truths, &mapped_union, group_of));

        // ImageNetV2: class-index folders, every logit.
        let v2: Vec<(PathBuf, u32)> = (0..1000u32).map(|c| (f.root.join(format!("v2/{c}/0.png")), c)).collect();
        let rows = logits(weights, &v2.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(), EVAL, &f.root);
        check_record("imagenetv2", tally(&rows, &v2.iter().map(|(_, c)| *c).collect::<Vec<_>>(), &all, |c| c));

        // ImageNet-R: its 200 logits only.
        let r_paths: Vec<PathBuf> = r_classes.iter().enumerate().map(|(j, &c)| f.root.join(format!("imagenet-r/{}/art_{j}.png", f.vocab.ids[c as usize]))).collect();
        let rows = logits(weights, &r_paths, EVAL, &f.root);
        check_record("imagenet-r", tally(&rows, &r_classes, &r_classes, |c| c));

        // ObjectNet, testbed: 2-pixel border cropped, argmax over the mapped classes, correct
        // when in the image's class; the non-overlapping folders are not scored.
        let on_paths: Vec<PathBuf> = (0..f.objectnet.mapped.len()).map(|k| f.root.join(format!("objectnet-1.0/images/folder_{k:03}/{k}.png"))).collect();
        let truths: Vec<u32> = (0..on_paths.len() as u32).collect();
        let cropped = logits(weights, &on_paths, "imagenet:resize=73,crop=64,border=2", &f.root);
        check_record("objectnet", tally(&cropped, &truths, &mapped_union, group_of));
        // ObjectNet, generative-robustness: no crop, one wnid per class.
        let whole = logits(weights, &on_paths, EVAL, &f.root);
        let genrob_label = |c: u32| genrob.iter().position(|&g| g == c).unwrap() as u32;
        check_record("objectnet-genrob", tally(&whole, &truths, &genrob, genrob_label));
        let (testbed, gen) = (record(&out, name, "objectnet"), record(&out, name, "objectnet-genrob"));
        assert_eq!((testbed.scoring.unwrap().logits, gen.scoring.unwrap().logits), (mapped_union.len() as u64, 113));
        assert_eq!(testbed.n, 113, "the two folders outside ImageNet are not scored");
    }

    let leaderboard = std::fs::read_to_string(out.join("leaderboard.csv")).unwrap();
    assert_eq!(leaderboard.lines().count(), 3, "{leaderboard}");
    assert!(leaderboard.lines().skip(1).all(|l| l.starts_with("compared,tiny")), "{leaderboard}");
    insta::assert_snapshot!("compare_fixture_leaderboard_csv", without_columns(&leaderboard, &["git_revision", "harness_version"]));
    let fits = std::fs::read_to_string(out.join("fits.csv")).unwrap();
    assert!(fits.contains("imagenet-r,val-on-imagenet-r-classes,logit,80,0.6368,-2.1077"), "{fits}");
}

#[test]
fn compare_refuses_a_classifier_of_another_label_space_and_bad_names() {
    let f = fixture();
    let out = f.root.join("results").display().to_string();
    let suite = f.suite.display().to_string();
    // The procedural suite's 10 classes against a 1000-class classifier.
    let shapes = repo("suites/shapes.toml").display().to_string();
    let tiny = repo("fixtures/onnx/tiny-resnet.safetensors").display().to_string();
    let e = shiftbench(&["compare", &shapes, "--name", "x", "--arch", "resnet-imagenet-basic-w8-l1.1.1.1", "--weights", &tiny, "--out", &out], &f.root);
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && stderr.contains("1000 outputs") && stderr.contains("10 classes"), "{stderr}");
    let e = shiftbench(&["compare", &suite, "--name", "../up", "--arch", "resnet18", "--weights", &tiny, "--out", &out], &f.root);
    assert!(!e.status.success() && String::from_utf8_lossy(&e.stderr).contains("--name"), "{}", String::from_utf8_lossy(&e.stderr));
    let e = shiftbench(&["compare", &suite, "--name", "x", "--arch", "resnet18", "--weights", &tiny, "--out", &out], &f.root);
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && stderr.contains("do not fit --arch resnet18"), "{stderr}");
    let e = shiftbench(&["compare", &suite, "--name", "x", "--out", &out], &f.root);
    assert_eq!(e.status.code(), Some(2), "a missing classifier is a usage error");
    let e = shiftbench(&["run", &suite, "--out", &out], &f.root);
    let stderr = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && stderr.contains("evaluation-only") && stderr.contains("shiftbench compare"), "{stderr}");
}

#[test]
fn a_torchvision_resnet_and_its_onnx_export_give_the_same_records() {
    // At the ONNX graph's own 224 px: the val set and ObjectNet (testbed protocol, border crop).
    let f = fixture();
    let suite = f.root.join("onnx-fixture.toml");
    write(&suite, br#"[suite]
name = "onnx-fixture"
seed = 0
image_size = 224
vocabulary = "imagenet-1k"

[[domains]]
name = "val"
source = "folder:val"
split = "val"
layout = "imagenet-val"
labels = "LOC_val_solution.csv"

[[domains]]
name = "objectnet"
source = "folder:objectnet-1.0"
split = "shift"
layout = "objectnet"
protocol = "objectnet-testbed"

[metrics]
id_domain = "val"
shifts = ["objectnet"]
"#);
    let (suite_s, out) = (suite.display().to_string(), f.root.join("results"));
    let out_s = out.display().to_string();
    let weights = repo("fixtures/onnx/tiny-resnet.safetensors").display().to_string();
    let onnx = repo("fixtures/onnx/tiny-resnet.onnx").display().to_string();
    let a = shiftbench(&["compare", &suite_s, "--name", "torchvision", "--arch", "resnet-imagenet-basic-w8-l1.1.1.1", "--weights", &weights, "--out", &out_s], &f.root);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = shiftbench(&["compare", &suite_s, "--name", "onnx", "--onnx", &onnx, "--out", &out_s], &f.root);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    for domain in ["val", "objectnet"] {
        let (t, o) = (record(&out, "torchvision", domain), record(&out, "onnx", domain));
        assert_eq!((t.n, t.correct, t.correct_top5, &t.per_class_total, &t.per_class_correct), (o.n, o.correct, o.correct_top5, &o.per_class_total, &o.per_class_correct), "{domain}");
        assert_eq!(t.scoring, o.scoring);
        assert!(o.train.arch.starts_with("onnx:"), "{}", o.train.arch);
    }
}

/// The fixture's accuracy table: every column `shiftbench er --preset imagenet-testbed` pairs,
/// nine models chosen so that each part of the testbed's baseline rule decides one of them.
/// Columns: val, V2, Sketch, val on R's classes, R, val on ObjectNet's classes, ObjectNet.
const TABLE: &str = "model,val,imagenetv2-matched-frequency-format-val,imagenet-sketch,val-on-imagenet-r-classes,imagenet-r,val-on-objectnet-classes,objectnet-1.0-beta,unused\n\
std-a,60,48,20,70,30,62,30,1\n\
std-b,70,58,25,80,38,72,38,1\n\
std-c,76,64,30,86,45,78,44,1\n\
std-d,80,69,33,90,52,83,50,1\n\
std-e-aws,78,70,35,88,60,80,55,1\n\
robust-f,75,65,40,85,60,77,50,1\n\
more-g,79,70,40,89,65,81,52,1\n\
low-h,40,30,10,50,15,45,15,1\n\
missing-i,72,60,27,82,40,74,,1\n";

/// The same models' types in the testbed's `plotting/model_types.py` format. The fixture's
/// `mapper` sends MORE_DATA to the natural-shift STANDARD (the testbed's does not), so the two
/// type columns pick different baselines and the test sees which column each shift reads.
const TYPES_PY: &str = "from enum import Enum\n\nmodel_types_map = {\n'std-a': ModelTypes.STANDARD,\n'std-b': ModelTypes.STANDARD,\n'std-c': ModelTypes.STANDARD,\n'std-d': ModelTypes.STANDARD,\n'std-e-aws': ModelTypes.STANDARD,\n'robust-f': ModelTypes.ROBUST_INTV,\n'more-g': ModelTypes.MORE_DATA,\n'low-h': ModelTypes.STANDARD,\n'missing-i': ModelTypes.STANDARD\n}\n\nfor i in range(2):\n    model_types_map[f\"loop_{i}_epochs\"] =  ModelTypes.LOW_ACCURACY_CNN\n\nmapper = {\n\tModelTypes.STANDARD: NatModelTypes.STANDARD,\n\tModelTypes.ROBUST_INTV: NatModelTypes.ROBUST_INTV,\n\tModelTypes.MORE_DATA: NatModelTypes.STANDARD,\n\tModelTypes.LOW_ACCURACY_CNN : NatModelTypes.LOW_ACCURACY_CNN\n}\n";

/// `TYPES_PY` as the CSV `shiftbench er --types` is given in the independent computation.
const TYPES_CSV: &str = "model,model_type,natural_shift_model_type\nstd-a,STANDARD,STANDARD\nstd-b,STANDARD,STANDARD\nstd-c,STANDARD,STANDARD\nstd-d,STANDARD,STANDARD\nstd-e-aws,STANDARD,STANDARD\nrobust-f,ROBUST_INTV,ROBUST_INTV\nmore-g,MORE_DATA,STANDARD\nlow-h,STANDARD,STANDARD\nmissing-i,STANDARD,STANDARD\n";

/// A lock pinning `files` (name, file name, bytes) as plain-file artifacts, with each file placed
/// where the fetch cache `cache` keeps it.
fn lock_with(root: &Path, cache: &Path, files: &[(&str, &str, &[u8])]) {
    let mut lock = String::from("version = 1\n");
    for (name, file, bytes) in files {
        let sha = shiftbench::fsutil::sha256_hex(bytes);
        lock.push_str(&format!(
            "\n[[artifact]]\nname = \"{name}\"\nurls = [\"https://example.invalid/fixture/{file}\"]\nsha256 = \"{sha}\"\nbytes = {}\nformat = \"file\"\nlicense = \"MIT\"\nhomepage = \"https://example.invalid\"\n",
            bytes.len()
        ));
        write(&cache.join(format!("files/{sha}/{file}")), bytes);
    }
    write(&root.join("datasets.lock"), lock.as_bytes());
}

/// The fixture's val, ImageNet-R and ObjectNet sets, their domains named as the testbed table's
/// columns (as suites/imagenet-eval.toml names them), with `[metrics.baseline_table]`.
fn table_suite(f: &Fixture) -> PathBuf {
    let suite = f.root.join("table-fixture.toml");
    let val = |name: &str, extra: &str| {
        format!("[[domains]]\nname = \"{name}\"\nsource = \"folder:val\"\nsplit = \"val\"\nlayout = \"imagenet-val\"\npreprocess = \"{EVAL}\"\nlabels = \"LOC_val_solution.csv\"\n{extra}\n")
    };
    let text = format!(
        "[suite]\nname = \"table-fixture\"\nseed = 0\nimage_size = 64\nvocabulary = \"imagenet-1k\"\nartifacts = [\"fixture-top1s\", \"fixture-types\"]\n\n{}{}{}\
         [[domains]]\nname = \"imagenet-r\"\nsource = \"folder:imagenet-r\"\nsplit = \"shift\"\nlayout = \"wnid-folders\"\npreprocess = \"{EVAL}\"\nprotocol = \"imagenet-r\"\n\n\
         [[domains]]\nname = \"objectnet-1.0-beta\"\nsource = \"folder:objectnet-1.0\"\nsplit = \"shift\"\nlayout = \"objectnet\"\npreprocess = \"{EVAL}\"\nprotocol = \"objectnet-testbed\"\n\n\
         [metrics]\nid_domain = \"val\"\nid_axes = [\"val-on-imagenet-r-classes\", \"val-on-objectnet-classes\"]\nshifts = [\"imagenet-r\", \"objectnet-1.0-beta\"]\nreference_fits = \"fits.toml\"\n\n\
         [metrics.baseline_table]\ntable = \"artifact:fixture-top1s\"\ntypes = \"artifact:fixture-types\"\npreset = \"imagenet-testbed\"\n",
        val("val", ""),
        val("val-on-imagenet-r-classes", "protocol = \"imagenet-r-classes\""),
        val("val-on-objectnet-classes", "protocol = \"objectnet-classes\"\nobjectnet_from = \"objectnet-1.0-beta\"")
    );
    write(&suite, text.as_bytes());
    suite
}

fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records().map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()).collect()
}

#[test]
fn compare_measures_er_against_the_suites_baseline_table_as_er_does() {
    let f = fixture();
    let suite = table_suite(&f).display().to_string();
    let (out, cache) = (f.root.join("results"), f.root.join("cache"));
    let negated = negated_weights(&f.root).display().to_string();
    let args = ["compare", &suite, "--name", "tiny-negated", "--arch", "resnet-imagenet-basic-w8-l1.1.1.1", "--weights", &negated, "--out", out.to_str().unwrap()];
    let compare = |cache: &Path| Command::new(BIN).args(args).current_dir(&f.root).env("RAYON_NUM_THREADS", "2").env("SHIFTBENCH_CACHE", cache).output().unwrap();

    // The lock pins the table, but nothing is fetched yet: refused before any evaluation.
    lock_with(&f.root, &f.root.join("elsewhere"), &[("fixture-top1s", "top1s.csv", TABLE.as_bytes()), ("fixture-types", "model_types.py", TYPES_PY.as_bytes())]);
    let refused = compare(&cache);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("run `shiftbench fetch fixture-top1s` first"), "{stderr}");
    assert!(!out.join("records").exists(), "nothing is evaluated without the table");

    lock_with(&f.root, &cache, &[("fixture-top1s", "top1s.csv", TABLE.as_bytes()), ("fixture-types", "model_types.py", TYPES_PY.as_bytes())]);
    let check = shiftbench(&["check", &suite], &f.root);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && stdout.contains("baseline table: artifact `fixture-top1s`"), "{stdout}{}", String::from_utf8_lossy(&check.stderr));
    let run = compare(&cache);
    assert!(run.status.success(), "compare: {}", String::from_utf8_lossy(&run.stderr));

    // The baselines by hand from the rule: STANDARD models not named *aws*, with both
    // accuracies, ID ≥ 75 on R's classes (model_type) and ≥ 55 on ObjectNet's (natural type).
    let r = record(&out, "tiny-negated", "imagenet-r");
    let table = r.protocol.baseline_table.as_ref().expect("the records carry the table's baselines");
    assert_eq!((table.table.as_str(), table.preset.as_str(), table.resamples, table.seed), ("fixture-top1s", "imagenet-testbed", 1000, 0));
    assert_eq!(table.table_sha256, shiftbench::fsutil::sha256_hex(TABLE.as_bytes()));
    let baseline: Vec<(&str, &str, Vec<&str>)> =
        table.fits.iter().map(|f| (f.shift.as_str(), f.pairing.as_str(), f.points.iter().map(|p| p.model.as_str()).collect())).collect();
    assert_eq!(
        baseline,
        [
            ("imagenet-r", "imagenet-r", vec!["std-b", "std-c", "std-d", "missing-i"]),
            ("objectnet-1.0-beta", "objectnet", vec!["std-a", "std-b", "std-c", "std-d", "more-g"]),
        ]
    );

    // The independent computation: `shiftbench er` on the same table with this classifier's
    // accuracies (from its records, at full precision) added as one more row.
    let acc = |domain: &str| {
        let r = record(&out, "tiny-negated", domain);
        shiftbench::metrics::accuracy(r.correct, r.n)
    };
    let mut with_model = TABLE.to_string();
    with_model.push_str(&format!(
        "tiny-negated,{},,,{},{},{},{},\n",
        acc("val"),
        acc("val-on-imagenet-r-classes"),
        acc("imagenet-r"),
        acc("val-on-objectnet-classes"),
        acc("objectnet-1.0-beta")
    ));
    write(&f.root.join("er/table.csv"), with_model.as_bytes());
    write(&f.root.join("er/types.csv"), TYPES_CSV.as_bytes());
    let er = shiftbench(&["er", "--table", "er/table.csv", "--types", "er/types.csv", "--preset", "imagenet-testbed", "--out", "er/out"], &f.root);
    assert!(er.status.success(), "er: {}", String::from_utf8_lossy(&er.stderr));
    let er_rows = csv_rows(&std::fs::read_to_string(f.root.join("er/out/effective_robustness.csv")).unwrap());
    let leaderboard = csv_rows(&std::fs::read_to_string(out.join("leaderboard.csv")).unwrap());
    let row = &leaderboard[0];
    for (shift, pairing) in [("imagenet-r", "imagenet-r"), ("objectnet-1.0-beta", "objectnet")] {
        let want = er_rows.iter().find(|r| r["model"] == "tiny-negated" && r["shift"] == pairing).unwrap_or_else(|| panic!("no er row for {pairing}"));
        for (ours, theirs) in [("", "er"), ("_lo", "er_lo"), ("_hi", "er_hi")] {
            assert_eq!(row[&format!("er_table_{shift}{ours}")], want[theirs], "{shift}{ours}");
        }
        assert!(!want["er_lo"].is_empty(), "{want:?}");
    }
    // On ObjectNet's classes the classifier is above 0 %, where the refitted lines disagree: a
    // real interval (on R's it is at 0 %, which every line maps to 0 %).
    let objectnet = er_rows.iter().find(|r| r["model"] == "tiny-negated" && r["shift"] == "objectnet").unwrap();
    assert!(objectnet["id_acc"] != "0.00" && objectnet["er_lo"] != objectnet["er_hi"], "{objectnet:?}");
    // The reference-fit ER stays beside it, without an interval (a published line has no models).
    assert!(!row["er_imagenet-r"].is_empty() && row["er_imagenet-r_lo"].is_empty() && !row["er_table_imagenet-r_lo"].is_empty(), "{row:?}");
    // table_fits.csv is `er`'s fits.csv, restricted to the suite's shifts.
    let er_fits = std::fs::read_to_string(f.root.join("er/out/fits.csv")).unwrap();
    let ours = std::fs::read_to_string(out.join("table_fits.csv")).unwrap();
    let wanted: Vec<&str> = er_fits.lines().filter(|l| l.starts_with("shift,") || l.starts_with("imagenet-r,") || l.starts_with("objectnet,")).collect();
    assert_eq!(ours.lines().collect::<Vec<_>>(), wanted);
}

/// RQ5 for outside classifiers: a suite with a generated evaluation set (the built-in procedural
/// generator) scores a compared classifier on it too, and its leaderboard row has the
/// degradation `acc_<id> − acc_<generated>` as a trained entry's would.
#[test]
fn compare_scores_the_generated_evaluation_set_and_fills_the_degradation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let suite = root.join("gen-eval.toml");
    write(&suite, br#"[suite]
name = "gen-eval-fixture"
seed = 0
image_size = 32
classes = ["airplane", "boat", "car", "cup"]

[[domains]]
name = "val"
source = "procedural"
style = "photo"
split = "val"
size = 40

[[domains]]
name = "sketch"
source = "procedural"
style = "sketch"
split = "shift"
size = 40

[[generators]]
name = "procedural"
kind = "procedural"
templates = "clip-imagenet-80"

[[generated]]
name = "gen-val"
generator = "procedural"
use = "eval"
size = 40

[metrics]
id_domain = "val"
shifts = ["sketch"]
generated_eval = "gen-val"
"#);
    // An untrained classifier of the suite's 4 classes: the degradation is defined whatever
    // the accuracies are; what matters is that the row has it.
    let config = shiftbench::model::ArchConfig::from_description("resnet-w4-b1-s1", 4, 32).unwrap();
    let weights = root.join("w4.safetensors");
    shiftbench::model::ResNet::new(config, 7, &candle_core::Device::Cpu).unwrap().save(&weights).unwrap();
    let (suite_s, out) = (suite.display().to_string(), root.join("results"));
    let run = shiftbench(&["compare", &suite_s, "--name", "outside", "--arch", "resnet-w4-b1-s1", "--weights", weights.to_str().unwrap(), "--out", out.to_str().unwrap()], root);
    assert!(run.status.success(), "compare: {}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("3 evaluation sets scored"), "{}", String::from_utf8_lossy(&run.stdout));

    let generated = record(&out, "outside", "gen-val");
    assert_eq!((generated.domain_role, generated.n), (shiftbench::record::DomainRole::Generated, 40));
    let val = record(&out, "outside", "val");
    let acc = |r: &RunRecord| shiftbench::metrics::accuracy(r.correct, r.n);
    let leaderboard = csv_rows(&std::fs::read_to_string(out.join("leaderboard.csv")).unwrap());
    let row = &leaderboard[0];
    assert_eq!((row["role"].as_str(), row["acc_gen-val"].as_str()), ("compared", shiftbench::csvfmt::fixed(Some(acc(&generated)), 2).as_str()));
    assert_eq!(row["gen_degradation"], shiftbench::csvfmt::fixed(Some(acc(&val) - acc(&generated)), 2), "{row:?}");
}
