//! File-backed image sets end to end, offline: layout-mimicking archives made here from real
//! PNG files (the `png` crate) and the committed Pillow-made JPEG fixtures, packed as tar,
//! tar.gz and zip, extracted by the real fetch/extract code, then listed, labelled, counted and
//! decoded. Every expected label below is computed by hand from the paths.

use candle_core::Device;
use sha2::{Digest, Sha256};
use shiftbench::data::image::Preprocess;
use shiftbench::data::imageset::{for_each_batch, ClassSubset, FileImageSet, Layout, Loader, SetSpec, Vocabulary};
use shiftbench::data::{ImageSource, RgbImage};
use shiftbench::fetch::extract::{extract, Limits};
use shiftbench::fetch::lock::{Expect, Format, Lock};
use shiftbench::fetch::{self, FetchOptions};
use shiftbench::model::{ArchConfig, BlockKind, ResNet, Stem};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A small PNG whose pixels depend on `seed`, so every file differs.
fn png(seed: u32, w: u32, h: u32) -> Vec<u8> {
    let mut img = RgbImage::new(w, h);
    for (i, p) in img.pixels.iter_mut().enumerate() {
        *p = ((i as u32).wrapping_mul(31).wrapping_add(seed.wrapping_mul(97)) % 251) as u8;
    }
    img.to_png()
}

/// The committed JPEG fixtures (Pillow-made, see fixtures/preprocess/README.md).
fn jpegs() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/preprocess/jpeg");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

type Tree = Vec<(String, Vec<u8>)>;

fn pack(tree: &Tree, format: Format) -> Vec<u8> {
    match format {
        Format::Tar | Format::TarGz => {
            let mut b = tar::Builder::new(Vec::new());
            for (path, bytes) in tree {
                let mut h = tar::Header::new_gnu();
                h.set_size(bytes.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, path, bytes.as_slice()).unwrap();
            }
            let tar = b.into_inner().unwrap();
            if format == Format::Tar {
                return tar;
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&tar).unwrap();
            gz.finish().unwrap()
        }
        Format::Zip => {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for (path, bytes) in tree {
                z.start_file(path.as_str(), opts).unwrap();
                z.write_all(bytes).unwrap();
            }
            z.finish().unwrap().into_inner()
        }
        Format::File => unreachable!(),
    }
}

/// Packs `tree`, extracts it with the fetcher's extractor into `dir/x`, returns that folder.
fn extracted(dir: &Path, tree: &Tree, format: Format, expect: Option<&Expect>) -> anyhow::Result<PathBuf> {
    let archive = dir.join(format!("a.{format}"));
    std::fs::write(&archive, pack(tree, format)).unwrap();
    let dest = dir.join("x");
    extract(&archive, format, &dest, &Limits::default(), expect)?;
    Ok(dest)
}

fn small() -> Preprocess {
    Preprocess::parse("imagenet:resize=16,crop=16").unwrap()
}

fn classes(n: usize) -> Vocabulary {
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    Vocabulary::named(&names.iter().map(String::as_str).collect::<Vec<_>>())
}

/// ImageNetV2-like: folders `0..11`, two images each (a PNG and a JPEG).
fn v2_tree() -> Tree {
    let j = jpegs();
    let mut t = Tree::new();
    for c in 0..12u32 {
        t.push((format!("imagenetv2-matched-frequency-format-val/{c}/a{c}.png"), png(c, 9, 7)));
        t.push((format!("imagenetv2-matched-frequency-format-val/{c}/b{c}.jpeg"), j[c as usize % j.len()].clone()));
    }
    t.push(("imagenetv2-matched-frequency-format-val/README.txt".into(), b"not an image".to_vec()));
    t
}

#[test]
fn class_index_folders_from_a_tar_put_10_after_9_and_label_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let expect = Expect { root: Some("imagenetv2-matched-frequency-format-val".into()), classes: Some(12), files: Some(24), per_class: Some(2) };
    let root = extracted(dir.path(), &v2_tree(), Format::Tar, Some(&expect)).unwrap().join("imagenetv2-matched-frequency-format-val");
    let mut spec = SetSpec::new(Layout::ClassIndexFolders, &root);
    spec.expect = Some(expect);
    let set = FileImageSet::open(&spec, &classes(12), small()).unwrap();
    // Listing order is by path (0, 1, 10, 11, 2, ...); labels are the folder numbers.
    let order = [0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9];
    let hand: Vec<u32> = order.iter().flat_map(|&c| [c, c]).collect();
    assert_eq!(set.labels(), hand.as_slice());
    assert_eq!(set.path(4), root.join("10/a10.png"));
    assert_eq!(set.path(5), root.join("10/b10.jpeg"));
    // A vocabulary of 10 classes cannot hold folders 10 and 11.
    let e = FileImageSet::open(&SetSpec::new(Layout::ClassIndexFolders, &root), &classes(10), small()).unwrap_err().to_string();
    assert!(e.contains("folder `10` is out of range"), "{e}");
}

#[test]
fn wnid_folders_from_a_zip_label_by_the_imagenet_index() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let tree: Tree = vec![
        ("sketch/n15075141/x.JPEG".into(), j[0].clone()),
        ("sketch/n01440764/a.png".into(), png(1, 5, 5)),
        ("sketch/n01440764/b.jpg".into(), j[1].clone()),
        ("sketch/n01443537/c.png".into(), png(2, 4, 6)),
    ];
    let expect = Expect { root: Some("sketch".into()), classes: Some(3), files: Some(4), per_class: None };
    let root = extracted(dir.path(), &tree, Format::Zip, Some(&expect)).unwrap().join("sketch");
    let vocab = Vocabulary::imagenet_1k();
    let mut spec = SetSpec::new(Layout::WnidFolders, &root);
    spec.required = Some(vec![0, 1, 999]);
    spec.expect = Some(expect);
    let set = FileImageSet::open(&spec, &vocab, small()).unwrap();
    assert_eq!(set.labels(), &[0, 0, 1, 999], "tench is 0, goldfish 1, toilet tissue 999");
    // Every class of the 1000 must have a folder when the set claims all of them.
    let e = FileImageSet::open(&SetSpec::new(Layout::WnidFolders, &root), &vocab, small()).unwrap_err().to_string();
    assert!(e.contains("997 of 1000 class folders are missing") && e.contains("n01484850"), "{e}");
}

/// ImageNet-R-like: one PNG in each of the 200 R class folders.
fn r_tree(skip: Option<usize>) -> Tree {
    ClassSubset::ImagenetR.wnids().unwrap().iter().enumerate().filter(|(i, _)| Some(*i) != skip).map(|(i, w)| (format!("imagenet-r/{w}/art_{i}.png"), png(i as u32, 3, 3))).collect()
}

fn lock_with(name: &str, bytes: &[u8], format: Format, expect: &str) -> Lock {
    let text = format!(
        "version = 1\n\n[[artifact]]\nname = \"{name}\"\nfile = \"{name}.{format}\"\nurls = [\"http://127.0.0.1:9/none\"]\nsha256 = \"{}\"\nbytes = {}\nformat = \"{format}\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\nexpect = {expect}\n",
        hex::encode(Sha256::digest(bytes)),
        bytes.len()
    );
    Lock::parse(&text, Path::new("test.lock")).unwrap()
}

#[test]
fn an_r_like_tar_gz_through_the_fetcher_labels_200_classes_and_an_incomplete_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    let bytes = pack(&r_tree(None), Format::TarGz);
    std::fs::write(mirror.join("imagenet-r.tar.gz"), &bytes).unwrap();
    let lock = lock_with("imagenet-r", &bytes, Format::TarGz, "{ root = \"imagenet-r\", classes = 200, files = 200 }");
    let a = lock.get("imagenet-r").unwrap();
    let mut opts = FetchOptions::new(dir.path().join("cache"));
    opts.mirrors = vec![mirror.clone()];
    opts.offline = true;
    let fetched = fetch::fetch(a, &opts).unwrap();
    let root = fetched.extracted.unwrap().join("imagenet-r");
    let vocab = Vocabulary::imagenet_1k();
    let mut spec = SetSpec::new(Layout::WnidFolders, &root);
    spec.required = Some(ClassSubset::ImagenetR.labels(&vocab).unwrap());
    spec.expect = a.expect.clone();
    spec.artifact_sha256 = a.sha256().map(str::to_string);
    let set = FileImageSet::open(&spec, &vocab, small()).unwrap();
    assert_eq!(set.labels(), ClassSubset::ImagenetR.labels(&vocab).unwrap().as_slice(), "one image per R class, in wnid order");
    assert_eq!(set.labels()[..3], [1, 2, 4]);

    // The same folder with one class removed: refused, naming the class.
    let wnid = ClassSubset::ImagenetR.wnids().unwrap()[7];
    std::fs::remove_dir_all(root.join(wnid)).unwrap();
    let e = FileImageSet::open(&spec, &vocab, small()).unwrap_err().to_string();
    assert!(e.contains("1 of 200 class folders are missing") && e.contains(wnid), "{e}");

    // An archive with a class missing never extracts: the lock's `expect` refuses it.
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    let e = format!("{:#}", extracted(&short, &r_tree(Some(7)), Format::TarGz, a.expect.as_ref()).unwrap_err());
    assert!(e.contains("expected 200 class folders under `imagenet-r`, found 199"), "{e}");
}

#[test]
fn fewer_files_than_expected_is_an_error_not_a_smaller_denominator() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = v2_tree();
    tree.retain(|(p, _)| !p.ends_with("/b3.jpeg"));
    let root = extracted(dir.path(), &tree, Format::Zip, None).unwrap().join("imagenetv2-matched-frequency-format-val");
    let mut spec = SetSpec::new(Layout::ClassIndexFolders, &root);
    spec.expect = Some(Expect { root: None, classes: Some(12), files: Some(24), per_class: Some(2) });
    let e = FileImageSet::open(&spec, &classes(12), small()).unwrap_err().to_string();
    assert!(e.contains("expected 24 images, found 23 (1 images are missing)"), "{e}");
    spec.expect = Some(Expect { root: None, classes: None, files: None, per_class: Some(2) });
    let e = FileImageSet::open(&spec, &classes(12), small()).unwrap_err().to_string();
    assert!(e.contains("class 3 has 1"), "{e}");
}

#[test]
fn imagenet_val_flat_with_either_label_file_and_a_missing_image_refused() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let tree: Tree = (1..=4).map(|k| (format!("ILSVRC2012_val_{k:08}.JPEG"), j[k % j.len()].clone())).collect();
    let root = extracted(dir.path(), &tree, Format::Tar, None).unwrap();
    let vocab = Vocabulary::imagenet_1k();
    // LOC_val_solution.csv: rows in any order, first wnid of the prediction string.
    let loc = dir.path().join("LOC_val_solution.csv");
    std::fs::write(&loc, "ImageId,PredictionString\nILSVRC2012_val_00000003,n15075141 1 2 3 4\nILSVRC2012_val_00000001,n01443537 0 0 5 5 n01443537 1 1 4 4\nILSVRC2012_val_00000004,n01440764 1 1 2 2\nILSVRC2012_val_00000002,n01440764 3 3 4 4\n").unwrap();
    let mut spec = SetSpec::new(Layout::ImagenetVal, &root);
    spec.val_labels = Some(loc.clone());
    assert_eq!(FileImageSet::open(&spec, &vocab, small()).unwrap().labels(), &[1, 0, 999, 0]);
    // Devkit ground truth: 1-based ILSVRC2012 ids through an id → wnid map (here id 1 = tench,
    // 2 = goldfish, 3 = toilet tissue: the devkit's own ids are in another order than torchvision's).
    let gt = dir.path().join("ILSVRC2012_validation_ground_truth.txt");
    std::fs::write(&gt, "2\n1\n3\n1\n").unwrap();
    let map = dir.path().join("ilsvrc2012_id_to_wnid.txt");
    std::fs::write(&map, "n01440764\nn01443537\nn15075141\n").unwrap();
    spec.val_labels = Some(gt);
    spec.id_map = Some(map);
    assert_eq!(FileImageSet::open(&spec, &vocab, small()).unwrap().labels(), &[1, 0, 999, 0]);
    // An image the label file lists but the folder lacks.
    std::fs::remove_file(root.join("ILSVRC2012_val_00000002.JPEG")).unwrap();
    let e = FileImageSet::open(&spec, &vocab, small()).unwrap_err().to_string();
    assert!(e.contains("1 of the label file's 4 images are missing: ILSVRC2012_val_00000002"), "{e}");
}

#[test]
fn objectnet_like_zip_reads_its_own_mappings_and_keeps_the_overlapping_folders() {
    let dir = tempfile::tempdir().unwrap();
    let j = jpegs();
    let mut tree: Tree = vec![
        ("objectnet-1.0/mappings/folder_to_objectnet_label.json".into(), br#"{"alarm_clock": "Alarm clock", "banana": "Banana", "bench": "Bench"}"#.to_vec()),
        ("objectnet-1.0/mappings/objectnet_to_imagenet_1k.json".into(), br#"{"Alarm clock": "analog clock; digital clock", "Banana": "banana"}"#.to_vec()),
        // torchvision index -> 2012 id (line of imagenet_to_label_2012_v2), deliberately not the identity.
        ("objectnet-1.0/mappings/pytorch_to_imagenet_2012_id.json".into(), br#"{"409": 0, "530": 1, "954": 2}"#.to_vec()),
        ("objectnet-1.0/mappings/imagenet_to_label_2012_v2".into(), b"digital clock\nanalog clock\nbanana\n".to_vec()),
    ];
    for (i, f) in ["banana/1.png", "alarm_clock/2.png", "alarm_clock/3.png", "bench/4.png"].iter().enumerate() {
        tree.push((format!("objectnet-1.0/images/{f}"), png(i as u32, 6, 6)));
    }
    tree.push(("objectnet-1.0/images/banana/5.jpg".into(), j[2].clone()));
    let root = extracted(dir.path(), &tree, Format::Zip, None).unwrap().join("objectnet-1.0");
    let mut spec = SetSpec::new(Layout::Objectnet, &root);
    spec.expect = Some(Expect { root: None, classes: Some(2), files: Some(4), per_class: None });
    let border = Preprocess::parse("imagenet:resize=16,crop=16,border=2").unwrap();
    let set = FileImageSet::open(&spec, &Vocabulary::imagenet_1k(), border).unwrap();
    // Labels are ObjectNet classes sorted by name (Alarm clock 0, Banana 1); bench is not ImageNet.
    assert_eq!(set.labels(), &[0, 0, 1, 1]);
    let c = set.objectnet_classes().unwrap();
    assert_eq!(c.imagenet, vec![vec![409, 530], vec![954]], "analog clock 409, digital clock 530, banana 954");
    assert_eq!(set.image(0, 16).unwrap().width, 16);
    // A mapped folder without images is an incomplete set.
    std::fs::remove_dir_all(root.join("images/banana")).unwrap();
    let e = FileImageSet::open(&spec, &Vocabulary::imagenet_1k(), small()).unwrap_err().to_string();
    assert!(e.contains("images/banana"), "{e}");
    std::fs::remove_file(root.join("mappings/objectnet_to_imagenet_1k.json")).unwrap();
    let e = FileImageSet::open(&spec, &Vocabulary::imagenet_1k(), small()).unwrap_err().to_string();
    assert!(e.contains("objectnet_to_imagenet_1k.json"), "{e}");
}

#[test]
fn the_fingerprint_follows_files_sizes_and_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let root = extracted(dir.path(), &v2_tree(), Format::TarGz, None).unwrap().join("imagenetv2-matched-frequency-format-val");
    let open = |sha: Option<&str>| {
        let mut s = SetSpec::new(Layout::ClassIndexFolders, &root);
        s.artifact_sha256 = sha.map(str::to_string);
        FileImageSet::open(&s, &classes(12), small()).unwrap().fingerprint().to_string()
    };
    let a = open(None);
    assert_eq!(a, open(None));
    assert_ne!(a, open(Some("ab")));
    std::fs::write(root.join("5/a5.png"), png(99, 9, 8)).unwrap();
    assert_ne!(a, open(None), "a file of another size is another set");
}

fn tiny_model() -> ResNet {
    let arch = ArchConfig { stem: Stem::Small, block: BlockKind::Basic, layers: vec![1], width: 4, num_classes: 12, image_size: 16 };
    ResNet::new(arch, 7, &Device::Cpu).unwrap()
}

#[test]
fn images_and_predictions_do_not_depend_on_batch_size_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    let root = extracted(dir.path(), &v2_tree(), Format::Tar, None).unwrap().join("imagenetv2-matched-frequency-format-val");
    let set = FileImageSet::open(&SetSpec::new(Layout::ClassIndexFolders, &root), &classes(12), small()).unwrap();
    let loaders = [Loader { batch: 24, workers: 0, depth: 1 }, Loader { batch: 1, workers: 4, depth: 2 }, Loader { batch: 5, workers: 2, depth: 1 }, Loader::with_batch(250)];
    let decoded = |l: &Loader| {
        let mut all = Vec::new();
        for_each_batch(&set, 16, l, &indicatif::ProgressBar::hidden(), |_, images| {
            all.extend(images);
            Ok(())
        })
        .unwrap();
        all
    };
    let reference = decoded(&loaders[0]);
    assert_eq!(reference.len(), 24);
    let mut model = tiny_model();
    let scoring = shiftbench::eval::Scoring::full(12);
    let first = shiftbench::eval::predict_with(&mut model, &set, true, &scoring, &loaders[0], &indicatif::ProgressBar::hidden()).unwrap();
    for l in &loaders[1..] {
        assert!(decoded(l) == reference, "{l:?}");
        let p = shiftbench::eval::predict_with(&mut model, &set, true, &scoring, l, &indicatif::ProgressBar::hidden()).unwrap();
        assert_eq!(p, first, "{l:?}");
    }
}

#[test]
fn a_file_that_does_not_decode_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = v2_tree();
    tree.push(("imagenetv2-matched-frequency-format-val/4/broken.jpg".into(), b"\xff\xd8\xffnot really".to_vec()));
    let root = extracted(dir.path(), &tree, Format::Tar, None).unwrap().join("imagenetv2-matched-frequency-format-val");
    let set = FileImageSet::open(&SetSpec::new(Layout::ClassIndexFolders, &root), &classes(12), small()).unwrap();
    let e = format!("{:#}", shiftbench::eval::predict(&mut tiny_model(), &set, false, &shiftbench::eval::Scoring::full(12)).unwrap_err());
    assert!(e.contains("4/broken.jpg") && e.contains("JPEG"), "{e}");
    let e = set.image(0, 32).unwrap_err().to_string();
    assert!(e.contains("crop to 32"), "{e}");
}

// ---- Suites: file-backed domains evaluated by `run` ----

const SHAPES: &str = include_str!("../suites/shapes.toml");

/// shapes.toml with one more shifted domain, `extra` (a `[[domains]]` body), scored as a shift.
fn shapes_with(extra: &str) -> String {
    let text = SHAPES.replace("shifts = [\"v2\", \"sketch\", \"rendition\", \"objectnet\"]", "shifts = [\"v2\", \"sketch\", \"rendition\", \"objectnet\", \"files\"]");
    text.replace("# Generators turn", &format!("[[domains]]\nname = \"files\"\nsplit = \"shift\"\n{extra}\n\n# Generators turn"))
}

/// The quick profile's `val` images, written as PNG files in class-index folders.
fn write_val_folder(dir: &Path) -> usize {
    let suite = shiftbench::suite::Suite::parse(SHAPES, Path::new("suites/shapes.toml")).unwrap();
    let plan = shiftbench::plan::Plan::new(&suite.config, suite.config.seed, true);
    let val = plan.domains.iter().find(|d| d.name == "val").unwrap();
    let set = shiftbench::data::procedural::render_domain(plan.seed, "val", val.style, &plan.classes, val.count, plan.image_size, &indicatif::ProgressBar::hidden());
    for i in 0..set.len() {
        let f = dir.join(format!("{}/img{i:04}.png", set.labels[i]));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, set.image(i).to_png()).unwrap();
    }
    set.len()
}

fn record(out: &Path, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join(rel)).unwrap()).unwrap()
}

#[test]
fn run_evaluates_a_folder_domain_exactly_as_the_in_memory_set_it_was_written_from() {
    let dir = tempfile::tempdir().unwrap();
    let n = write_val_folder(&dir.path().join("val-png"));
    let suite_path = dir.path().join("suite.toml");
    let extra = "source = \"folder:val-png\"\nlayout = \"class-index-folders\"\npreprocess = \"imagenet:resize=32,crop=32\"\nexpect = { classes = 10, files = 80 }";
    std::fs::write(&suite_path, shapes_with(extra)).unwrap();
    let suite = shiftbench::suite::Suite::load(&suite_path).unwrap();
    let out = dir.path().join("out");
    let opts = shiftbench::run::RunOptions { out: out.clone(), seed: None, quick: true, jobs: 2, weights: None };
    shiftbench::run::run_suite(&suite, &opts).unwrap();
    let mut compared = 0;
    for entry in std::fs::read_dir(out.join("records/entry")).unwrap() {
        let model = entry.unwrap().path();
        for regime in std::fs::read_dir(&model).unwrap() {
            let seed_dir = regime.unwrap().path().join("seed-0");
            let files = record(&seed_dir, "files.json");
            let val = record(&seed_dir, "val.json");
            assert_eq!(files["n"], serde_json::json!(n));
            for k in ["n", "correct", "per_class_total", "per_class_correct"] {
                assert_eq!(files[k], val[k], "{k} of {}", seed_dir.display());
            }
            compared += 1;
        }
    }
    assert!(compared > 0);
    // The folder changes, so the evaluation key does: a re-run re-evaluates, it does not reuse.
    let before = record(&out, "records/entry/resnet-w16/real/seed-0/files.json")["provenance"]["job_hash"].clone();
    std::fs::remove_file(dir.path().join("val-png/3/img0003.png")).unwrap();
    let e = format!("{:#}", shiftbench::run::run_suite(&suite, &opts).unwrap_err());
    assert!(e.contains("domain `files`") && e.contains("expected 80 images, found 79 (1 images are missing)"), "{e}");
    std::fs::write(dir.path().join("val-png/3/img0003.png"), png(5, 32, 32)).unwrap();
    shiftbench::run::run_suite(&suite, &opts).unwrap();
    let after = record(&out, "records/entry/resnet-w16/real/seed-0/files.json")["provenance"]["job_hash"].clone();
    assert_ne!(before, after);
}

#[test]
fn an_artifact_domain_is_read_from_the_fetch_cache_extraction() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    write_val_folder(&staging.join("val-classes"));
    let mut tree = Tree::new();
    for f in shiftbench::data::imageset::list_image_files(&staging).unwrap() {
        tree.push((f.rel.display().to_string(), std::fs::read(staging.join(&f.rel)).unwrap()));
    }
    let bytes = pack(&tree, Format::Zip);
    let mirror = dir.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::write(mirror.join("val-classes.zip"), &bytes).unwrap();
    let lock_path = dir.path().join("datasets.lock");
    let lock = lock_with("val-classes", &bytes, Format::Zip, "{ root = \"val-classes\", classes = 10, files = 80, per_class = 8 }");
    std::fs::write(&lock_path, format!(
        "version = 1\n\n[[artifact]]\nname = \"val-classes\"\nfile = \"val-classes.zip\"\nurls = [\"http://127.0.0.1:9/none\"]\nsha256 = \"{}\"\nbytes = {}\nformat = \"zip\"\nlicense = \"test\"\nhomepage = \"http://127.0.0.1/\"\nexpect = {{ root = \"val-classes\", classes = 10, files = 80, per_class = 8 }}\n",
        lock.get("val-classes").unwrap().sha256().unwrap(), bytes.len())).unwrap();
    let cache = dir.path().join("cache");
    // The only test of this binary that reads the default cache folder.
    std::env::set_var("SHIFTBENCH_CACHE", &cache);
    let text = shapes_with("source = \"artifact:val-classes\"\nlayout = \"class-index-folders\"\npreprocess = \"imagenet:resize=32,crop=32\"")
        .replace("classes = [\"airplane\"", "artifacts = [\"val-classes\"]\nclasses = [\"airplane\"");
    let suite = shiftbench::suite::Suite::parse(&text, &dir.path().join("suite.toml")).unwrap();
    let shiftbench::suite::DomainData::Files(f) = &suite.config.domain("files").unwrap().data else { panic!("a file domain") };
    let e = format!("{:#}", shiftbench::prepare::open_file_domain(&suite.config, "files", f, &lock_path).unwrap_err());
    assert!(e.contains("run `shiftbench fetch val-classes` first"), "{e}");
    let mut opts = FetchOptions::new(cache.clone());
    opts.mirrors = vec![mirror];
    opts.offline = true;
    fetch::fetch(lock.get("val-classes").unwrap(), &opts).unwrap();
    let set = shiftbench::prepare::open_file_domain(&suite.config, "files", f, &lock_path).unwrap();
    assert_eq!(set.len(), 80);
    let by_folder: Vec<u32> = (0..80).map(|i| set.path(i).parent().unwrap().file_name().unwrap().to_str().unwrap().parse().unwrap()).collect();
    assert_eq!(set.labels(), by_folder.as_slice());
    assert!(set.path(0).starts_with(cache.join("extracted")));
}

/// Images/s of the loader, sequential against worker threads, on copies of the photo fixtures
/// at the `imagenet` transform. Timing only: `cargo test --release --test imagesets -- --ignored --nocapture`.
#[test]
#[ignore]
fn loader_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/preprocess");
    let photos: Vec<PathBuf> = ["png/photo_300x225.png", "png/photo_225x300.png"].iter().map(|p| fixtures.join(p)).collect();
    let jpeg: Vec<PathBuf> = std::fs::read_dir(fixtures.join("jpeg")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().contains("96x72")).collect();
    let all: Vec<&PathBuf> = photos.iter().chain(&jpeg).collect();
    for i in 0..400 {
        let src = all[i % all.len()];
        let f = dir.path().join(format!("{}/{i}.{}", i % 10, src.extension().unwrap().to_str().unwrap()));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::copy(src, f).unwrap();
    }
    let set = FileImageSet::open(&SetSpec::new(Layout::ClassIndexFolders, dir.path()), &classes(10), Preprocess::imagenet()).unwrap();
    for loader in [Loader { batch: 50, workers: 0, depth: 1 }, Loader::with_batch(50)] {
        let t = std::time::Instant::now();
        for_each_batch(&set, 224, &loader, &indicatif::ProgressBar::hidden(), |_, _| Ok(())).unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!("{loader:?}: {} images in {s:.2} s = {:.0} images/s", set.len(), set.len() as f64 / s);
    }
}
