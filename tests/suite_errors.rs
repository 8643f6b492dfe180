//! A bad suite file gets one clear error naming the file, the position and the key.

use shiftbench::config_error::ConfigError;
use shiftbench::suite::Suite;
use std::path::Path;

const SHAPES: &str = include_str!("../suites/shapes.toml");

/// The shipped suite with the first occurrence of `from` (after `anchor`) replaced by `to`,
/// and the 1-based line where the replacement starts.
fn edited(anchor: &str, from: &str, to: &str) -> (String, usize) {
    let start = SHAPES.find(anchor).unwrap_or_else(|| panic!("anchor {anchor:?} not in shapes.toml"));
    let at = start + SHAPES[start..].find(from).unwrap_or_else(|| panic!("{from:?} not after {anchor:?}"));
    let text = format!("{}{}{}", &SHAPES[..at], to, &SHAPES[at + from.len()..]);
    let line = SHAPES[..at].matches('\n').count() + 1;
    (text, line)
}

fn error_of(text: &str) -> ConfigError {
    match Suite::parse(text, Path::new("suites/broken.toml")) {
        Ok(_) => panic!("the broken suite was accepted"),
        Err(e) => e,
    }
}

fn assert_error(e: &ConfigError, line: usize, key: &str, words: &[&str]) {
    let shown = e.to_string();
    assert_eq!(e.file, Path::new("suites/broken.toml"), "{shown}");
    assert_eq!(e.line, line, "{shown}");
    assert!(e.column >= 1, "{shown}");
    assert_eq!(e.key, key, "{shown}");
    assert!(shown.starts_with(&format!("suites/broken.toml:{line}:")), "{shown}");
    for w in words {
        assert!(shown.contains(w), "{shown:?} should mention {w:?}");
    }
}

#[test]
fn the_shipped_suite_is_valid() {
    let suite = Suite::parse(SHAPES, Path::new("suites/shapes.toml")).expect("shapes.toml parses");
    assert_eq!(suite.name(), "shapes");
    assert_eq!(suite.config.testbed.members.len(), 6);
    assert!(SHAPES.starts_with("# shapes"), "a suite starts with a comment block that explains it");
}

#[test]
fn unknown_key_is_named_with_its_table() {
    let (text, line) = edited("name = \"val\"", "size = 1000", "sise = 1000");
    let e = error_of(&text);
    assert_error(&e, line, "domains.sise", &["unknown field `sise`", "size"]);
}

#[test]
fn wrong_type_names_the_key() {
    let (text, line) = edited("[training]", "epochs = 8", "epochs = \"eight\"");
    let e = error_of(&text);
    assert_error(&e, line, "training.epochs", &["invalid type", "string"]);
}

#[test]
fn regime_naming_an_undefined_domain() {
    let (text, line) = edited("name = \"real\"", "train_on = [\"train\"]", "train_on = [\"trian\"]");
    let e = error_of(&text);
    assert_error(&e, line, "regimes.train_on", &["`trian`", "`train`", "`gen-train`"]);
}

#[test]
fn testbed_member_naming_an_undefined_model() {
    let (text, line) = edited("name = \"tb-w16-e4\"", "model = \"resnet-w16\"", "model = \"resnet-w99\"");
    let e = error_of(&text);
    assert_error(&e, line, "testbed.members.model", &["`resnet-w99`", "[[models]]", "`resnet-w8`"]);
}

#[test]
fn shift_that_is_not_a_shift_domain() {
    let (text, line) = edited("[metrics]", "\"objectnet\"]", "\"train\"]");
    let e = error_of(&text);
    assert_error(&e, line, "metrics.shifts", &["`train`", "split = \"shift\"", "`objectnet`"]);
}

#[test]
fn missing_required_key_is_named() {
    let (text, _) = edited("[suite]", "seed = 0\n", "");
    let e = error_of(&text);
    assert_eq!(e.key, "suite.seed", "{e}");
    assert!(e.to_string().contains("missing field `seed`"), "{e}");
}

#[test]
fn duplicate_names_are_rejected_at_the_second_definition() {
    let (text, line) = edited("style = \"v2\"", "", "");
    let _ = line;
    let (text, line) = {
        let anchor = "name = \"sketch\"";
        let at = text.find(anchor).expect("sketch domain");
        let fixed = format!("{}name = \"v2\"{}", &text[..at], &text[at + anchor.len()..]);
        (fixed, text[..at].matches('\n').count() + 1)
    };
    let e = error_of(&text);
    assert_error(&e, line, "domains.name", &["`v2` is defined twice"]);
}

#[test]
fn out_of_range_values_are_explained() {
    let (text, line) = edited("[training]", "momentum = 0.9", "momentum = 1.5");
    assert_error(&error_of(&text), line, "training.momentum", &["[0, 1)"]);
    let (text, line) = edited("name = \"tb-w8-e2-f25\"", "train_fraction = 0.25", "train_fraction = 0.0");
    assert_error(&error_of(&text), line, "testbed.members.train_fraction", &["(0, 1]"]);
    let (text, line) = edited("[suite]", "\"umbrella\"]", "\"unicorn\"]");
    assert_error(&error_of(&text), line, "suite.classes", &["unknown class `unicorn`", "`airplane`"]);
}

#[test]
fn toml_syntax_error_has_a_position() {
    let (text, line) = edited("[leaderboard]", "seeds = [0]", "seeds = [0");
    let e = error_of(&text);
    assert!(e.line >= line, "{e}");
    assert!(e.to_string().starts_with("suites/broken.toml:"), "{e}");
}

#[test]
fn a_missing_file_says_what_to_pass() {
    let err = Suite::load(Path::new("suites/does-not-exist.toml")).unwrap_err().to_string();
    assert!(err.contains("suites/does-not-exist.toml") && err.contains("suites/shapes.toml"), "{err}");
}

#[test]
fn bad_model_architecture_values_are_named() {
    // An unknown stem: serde's list of the valid ones, at the `stem` line.
    let (text, line) = edited("name = \"resnet-w16\"", "stages = 3", "stages = 3\nstem = \"imagnet\"");
    assert_error(&error_of(&text), line + 1, "models.stem", &["unknown variant `imagnet`", "`imagenet`", "`cifar`", "`small`"]);
    // A named architecture fixes the depth: `blocks` beside `arch` is refused.
    let (text, line) = edited("name = \"resnet-w16\"", "width = 16", "arch = \"resnet18\"");
    assert_error(&error_of(&text), line + 1, "models.blocks", &["`arch = \"resnet18\"` fixes the depth"]);
    // `layers` and `stages` say the same thing twice.
    let (text, line) = edited("name = \"resnet-w16\"", "blocks = 1", "layers = [1, 1, 1]");
    assert_error(&error_of(&text), line + 1, "models.layers", &["either `layers` or `blocks` and `stages`"]);
    let (text, line) = edited("name = \"resnet-w8\"", "blocks = 1\nstages = 3", "layers = [2, 0]");
    assert_error(&error_of(&text), line, "models.layers", &["positive block count per stage"]);
}

#[test]
fn model_architecture_keys_build_the_network_they_name() {
    use shiftbench::model::{BlockKind, Stem};
    let (text, _) = edited("name = \"resnet-w16\"", "width = 16\nblocks = 1\nstages = 3", "arch = \"resnet50\"\nstem = \"cifar\"\nwidth_multiplier = 0.25");
    let suite = Suite::parse(&text, Path::new("suites/zoo.toml")).unwrap_or_else(|e| panic!("{e}"));
    let arch = suite.config.model("resnet-w16").unwrap().arch.clone();
    assert_eq!((arch.stem, arch.block, arch.layers.clone(), arch.width), (Stem::Cifar, BlockKind::Bottleneck, vec![3, 4, 6, 3], 16));
    // The shipped models are the suite model, unchanged.
    let shipped = Suite::parse(SHAPES, Path::new("suites/shapes.toml")).unwrap();
    assert_eq!(shipped.config.model("resnet-w8").unwrap().arch.describe(), "resnet-w8-b1-s3");
}

/// The shipped suite with its `[training]` schedule lines replaced by `lines`, and the line
/// number of the first replacement line.
fn with_schedule(lines: &str) -> (String, usize) {
    edited("[training]", "schedule = \"triangular\"\npeak_epoch = 2.0", lines)
}

#[test]
fn the_new_training_options_are_accepted_when_consistent() {
    for lines in [
        "schedule = \"step\"\nmilestones = [4, 6]\ngamma = 0.2\nwarmup_epochs = 1.0\nclip_grad_norm = 5.0\ncheckpoint_every_steps = 10",
        "schedule = \"cosine\"\nwarmup_epochs = 1.5",
        "schedule = \"cosine\"\npeak_epoch = 1.5",
        "schedule = \"constant\"",
    ] {
        let (text, _) = with_schedule(lines);
        Suite::parse(&text, Path::new("suites/ok.toml")).unwrap_or_else(|e| panic!("{lines:?} rejected: {e}"));
    }
    let (text, _) = edited(
        "name = \"real+standard-aug\"",
        "train_on = [\"train\"]\naugment = \"standard\"",
        "train_on = [\"train\", \"gen-train\"]\naugment = \"augmix\"\nmix = { generated_fraction = 0.5 }",
    );
    let text = format!("{text}\n[evaluation]\nflip_tta = true\n");
    let suite = Suite::parse(&text, Path::new("suites/ok.toml")).expect("augmix + per-batch mixing + flip TTA");
    assert!(suite.config.flip_tta);
}

#[test]
fn schedule_keys_that_would_be_ignored_are_errors() {
    let (text, line) = with_schedule("schedule = \"step\"\npeak_epoch = 2.0");
    assert_error(&error_of(&text), line + 1, "training.peak_epoch", &["schedule = \"step\"", "warmup_epochs"]);
    let (text, line) = with_schedule("schedule = \"triangular\"\npeak_epoch = 2.0\nwarmup_epochs = 1.0");
    assert_error(&error_of(&text), line + 2, "training.warmup_epochs", &["triangular", "peak_epoch"]);
    let (text, line) = with_schedule("schedule = \"triangular\"");
    assert_error(&error_of(&text), line, "training.peak_epoch", &["needs `peak_epoch`"]);
    let (text, line) = with_schedule("schedule = \"cosine\"\npeak_epoch = 1.0\nwarmup_epochs = 1.0");
    assert_error(&error_of(&text), line + 2, "training.warmup_epochs", &["not both"]);
    let (text, line) = with_schedule("schedule = \"cosine\"\nmilestones = [3]");
    assert_error(&error_of(&text), line + 1, "training.milestones", &["schedule = \"step\""]);
    let (text, line) = with_schedule("schedule = \"constant\"\ngamma = 0.5");
    assert_error(&error_of(&text), line + 1, "training.gamma", &["schedule = \"step\""]);
}

#[test]
fn bad_step_schedules_are_explained() {
    let (text, line) = with_schedule("schedule = \"step\"");
    assert_error(&error_of(&text), line, "training.milestones", &["needs `milestones`"]);
    let (text, line) = with_schedule("schedule = \"step\"\nmilestones = [6, 4]");
    assert_error(&error_of(&text), line + 1, "training.milestones", &["increasing"]);
    let (text, line) = with_schedule("schedule = \"step\"\nwarmup_epochs = 2.0\nmilestones = [1, 4]");
    assert_error(&error_of(&text), line + 2, "training.milestones", &["after the warm-up (2 epochs)"]);
    let (text, line) = with_schedule("schedule = \"step\"\nmilestones = [4]\ngamma = 1.5");
    assert_error(&error_of(&text), line + 2, "training.gamma", &["(0, 1)"]);
}

#[test]
fn bad_clipping_checkpointing_mixing_and_evaluation_values_are_explained() {
    let (text, line) = edited("[training]", "label_smoothing = 0.1", "label_smoothing = 0.1\nclip_grad_norm = 0.0");
    assert_error(&error_of(&text), line + 1, "training.clip_grad_norm", &["positive"]);
    let (text, line) = edited("[training]", "label_smoothing = 0.1", "label_smoothing = 0.1\ncheckpoint_every_steps = 0");
    assert_error(&error_of(&text), line + 1, "training.checkpoint_every_steps", &["positive"]);
    let (text, line) = edited("name = \"real+generated\"", "train_on = [\"train\", \"gen-train\"]", "train_on = [\"train\", \"gen-train\"]\nmix = { generated_fraction = 1.0 }");
    assert_error(&error_of(&text), line + 1, "regimes.mix.generated_fraction", &["(0, 1)"]);
    let (text, line) = edited("name = \"generated\"", "train_on = [\"gen-train\"]", "train_on = [\"gen-train\"]\nmix = { generated_fraction = 0.5 }");
    assert_error(&error_of(&text), line + 1, "regimes.mix", &["`generated`", "at least one real domain and one generated set"]);
    let (text, line) = edited("name = \"real+generated\"", "train_on = [\"train\", \"gen-train\"]", "train_on = [\"train\", \"gen-train\"]\nmix = { ratio = 0.5 }");
    let e = error_of(&text);
    assert_eq!(e.line, line + 1, "{e}");
    assert!(e.to_string().contains("unknown field `ratio`"), "{e}");
    let text = format!("{SHAPES}\n[evaluation]\nflip_tta = \"yes\"\n");
    let e = error_of(&text);
    assert_eq!(e.key, "evaluation.flip_tta", "{e}");
    let text = format!("{SHAPES}\n[evaluation]\nflip = true\n");
    assert!(error_of(&text).to_string().contains("unknown field `flip`"));
    let (text, line) = edited("name = \"real+standard-aug\"", "augment = \"standard\"", "augment = \"autoaugment\"");
    let e = error_of(&text);
    assert_eq!((e.line, e.key.as_str()), (line, "regimes.augment"), "{e}");
    assert!(e.to_string().contains("augmix") && e.to_string().contains("augmix-jsd"), "the message lists the accepted values: {e}");
    let (text, _) = edited("name = \"real+standard-aug\"", "augment = \"standard\"", "augment = \"augmix-jsd\"");
    let suite = shiftbench::suite::Suite::parse(&text, Path::new("jsd.toml")).unwrap();
    assert!(suite.config.regimes.iter().any(|r| r.augment == shiftbench::train::Augment::AugmixJsd));
}

#[test]
fn unknown_stable_diffusion_preset_is_named() {
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\npreset = \"v3\"");
    let e = error_of(&text);
    assert_error(&e, line + 1, "generators.preset", &["unknown variant `v3`", "v1-5", "sd-turbo", "sdxl-turbo"]);
}

#[test]
fn bad_stable_diffusion_values_are_named() {
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nsize = 500");
    assert_error(&error_of(&text), line + 1, "generators.size", &["multiple of 8"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nguidance = -1.0");
    assert_error(&error_of(&text), line + 1, "generators.guidance", &["positive"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nimg2img_source = \"train\"\nimg2img_strength = 1.5");
    assert_error(&error_of(&text), line + 2, "generators.img2img_strength", &["(0, 1]"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nimg2img_source = \"trian\"\nimg2img_strength = 0.5");
    assert_error(&error_of(&text), line + 1, "generators.img2img_source", &["`trian`", "`train`"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nscheduler = \"pndm\"");
    assert_error(&error_of(&text), line + 1, "generators.scheduler", &["unknown variant `pndm`", "ddim", "euler-ancestral"]);
}

#[test]
fn stable_diffusion_keys_on_a_procedural_generator_are_refused() {
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"procedural\"\nsteps = 50");
    assert_error(&error_of(&text), line + 1, "generators.steps", &["stable-diffusion"]);
}

#[test]
fn sizes_beyond_what_the_types_or_a_run_can_hold_are_positioned_errors() {
    let (text, line) = edited("name = \"train\"", "size = 5000", "size = 9223372036854775807");
    assert_error(&error_of(&text), line, "domains.size", &["at most 10000000 images"]);
    let (text, line) = edited("name = \"train\"", "size = 5000", "size = 18446744073709551616");
    assert_error(&error_of(&text), line, "domains.size", &["expected usize"]);
    let (text, line) = edited("name = \"train\"", "size = 5000", "size = 1e12");
    assert_error(&error_of(&text), line, "domains.size", &["floating point", "expected usize"]);
    let (text, line) = edited("[[models]]", "width = 16", "width = 100000");
    assert_error(&error_of(&text), line, "models.width", &["at most 4096 channels"]);
    let (text, line) = edited("[training]", "epochs = 8", "epochs = 4000000000");
    assert_error(&error_of(&text), line, "training.epochs", &["at most 10000 epochs"]);
    let (text, line) = edited("[training]", "batch_size = 64", "batch_size = 1000000");
    assert_error(&error_of(&text), line, "training.batch_size", &["at most 65536"]);
}

#[test]
fn duplicates_in_shifts_seeds_train_on_and_rows_are_errors_at_the_second() {
    let (text, line) = edited("[metrics]", "\"rendition\", \"objectnet\"]", "\"rendition\", \"v2\"]");
    assert_error(&error_of(&text), line, "metrics.shifts", &["shift `v2` is listed twice"]);
    let (text, line) = edited("[leaderboard]", "seeds = [0]", "seeds = [0, 0]");
    assert_error(&error_of(&text), line, "leaderboard.seeds", &["seed `0` is listed twice"]);
    let (text, line) = edited("[[regimes]]", "train_on = [\"train\"]", "train_on = [\"train\", \"train\"]");
    assert_error(&error_of(&text), line, "regimes.train_on", &["training set `train` is listed twice"]);
    let (text, line) = edited("[leaderboard]", "\"real+standard-aug\"]", "\"real+standard-aug\", \"real\"]");
    assert_error(&error_of(&text), line, "leaderboard.regimes", &["regime `real` is listed twice"]);
}

#[test]
fn check_refuses_a_suite_the_machine_cannot_hold_and_unknown_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_shiftbench")).arg("check").arg(&path).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // 512-pixel images, 10 million of them: 7.9 TB of pixels.
    let (text, _) = edited("[suite]", "image_size = 32", "image_size = 512");
    let text = text.replacen("size = 5000", "size = 10000000", 1);
    let (code, err) = check(&text);
    assert!(code == Some(1) && err.contains("GiB of memory") && err.contains("`domains.size` = 10000000 of `train`") && err.lines().count() == 1, "{err}");
    // 65536 channels: terabytes of weights.
    let (text, _) = edited("[[models]]", "width = 16", "width = 4096\nwidth_multiplier = 16.0");
    let (code, err) = check(&text);
    assert!(code == Some(1) && err.contains("`models.width` (width 65536 after multipliers) of `resnet-w16`"), "{err}");
    let (text, line) = edited("[suite]", "classes = [", "artifacts = [\"no-such-artifact\"]\nclasses = [");
    let (code, err) = check(&text);
    assert!(code == Some(1) && err.contains(&format!("s.toml:{line}:")) && err.contains("`no-such-artifact` is not an artifact of datasets.lock"), "{err}");
}

#[test]
fn names_too_long_for_a_file_system_are_errors() {
    let long = "d".repeat(300);
    let (text, line) = edited("[[domains]]", "name = \"train\"", &format!("name = \"{long}\""));
    assert_error(&error_of(&text), line, "domains.name", &["1 to 100 letters"]);
    let (text, line) = edited("[suite]", "name = \"shapes\"", &format!("name = \"{long}\""));
    assert_error(&error_of(&text), line, "suite.name", &["1 to 100 letters"]);
}
