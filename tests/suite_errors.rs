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
    let (text, line) = edited("[leaderboard]", "seeds = [0, 1, 2]", "seeds = [0, 1, 2");
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
    // `img2img_source`/`img2img_strength` are the older spellings of `source`/`strength`.
    assert_error(&error_of(&text), line + 2, "generators.strength", &["(0, 1]"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nimg2img_source = \"trian\"\nimg2img_strength = 0.5");
    assert_error(&error_of(&text), line + 1, "generators.source", &["`trian`", "`train`"]);
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"stable-diffusion\"\nscheduler = \"pndm\"");
    assert_error(&error_of(&text), line + 1, "generators.scheduler", &["unknown variant `pndm`", "ddim", "euler-ancestral"]);
}

#[test]
fn stable_diffusion_keys_on_a_procedural_generator_are_refused() {
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"", "kind = \"procedural\"\nsteps = 50");
    assert_error(&error_of(&text), line + 1, "generators.steps", &["stable-diffusion"]);
}

/// The shipped suite's procedural generator with `keys` added after its `kind` line, and that line.
/// (`templates` goes too: image conditioning has none; the other cases give it last.)
fn conditioned(keys: &str) -> (String, usize) {
    edited("name = \"procedural\"", "kind = \"procedural\"\ntemplates = \"clip-imagenet-80\"", &format!("kind = \"procedural\"\n{keys}"))
}

#[test]
fn conditioning_mistakes_are_positioned_and_say_what_to_do() {
    // A source without real-image conditioning.
    let (text, line) = conditioned("conditioning = \"text\"\nsource = \"train\"\ntemplates = \"clip-imagenet-80\"");
    assert_error(&error_of(&text), line + 2, "generators.source", &["text conditioning", "conditioning = \"image\""]);
    // Image conditioning without a source, and with a strength it would ignore.
    let (text, line) = conditioned("conditioning = \"image\"");
    assert_error(&error_of(&text), line + 1, "generators.source", &["image conditioning needs a real domain", "source = \"train\""]);
    let (text, line) = conditioned("conditioning = \"image\"\nsource = \"train\"\nstrength = 0.5");
    assert_error(&error_of(&text), line + 3, "generators.strength", &["text+image", "remove it"]);
    // Text + image without a strength, out of range, or from a domain that does not exist.
    let (text, line) = conditioned("conditioning = \"text+image\"\nsource = \"train\"\ntemplates = \"clip-imagenet-80\"");
    assert_error(&error_of(&text), line + 1, "generators.strength", &["strength in (0, 1]", "strength = 0.5"]);
    let (text, line) = conditioned("conditioning = \"text+image\"\nsource = \"train\"\nstrength = 0.0\ntemplates = \"clip-imagenet-80\"");
    assert_error(&error_of(&text), line + 3, "generators.strength", &["(0, 1]"]);
    let (text, line) = conditioned("conditioning = \"image\"\nsource = \"trian\"");
    assert_error(&error_of(&text), line + 2, "generators.source", &["`trian`", "not a procedural domain", "`train`"]);
    // Image conditioning reads no prompt; the others need templates.
    let (text, line) = edited("name = \"procedural\"", "templates = \"clip-imagenet-80\"", "conditioning = \"image\"\nsource = \"train\"\ntemplates = \"photo-of\"");
    assert_error(&error_of(&text), line + 2, "generators.templates", &["reads no prompt", "remove `templates`"]);
    let (text, _) = edited("name = \"procedural\"", "templates = \"clip-imagenet-80\"", "");
    let name_line = text[..text.find("name = \"procedural\"").unwrap()].matches('\n').count() + 1;
    assert_error(&error_of(&text), name_line, "generators.templates", &["missing `templates`", "photo-of"]);
    // An unknown strategy lists the known ones.
    let (text, line) = conditioned("conditioning = \"img2img\"");
    assert_error(&error_of(&text), line + 1, "generators.conditioning", &["unknown variant `img2img`", "text+image"]);
    // A training set made from evaluation images.
    let (text, _) = conditioned("conditioning = \"image\"\nsource = \"sketch\"");
    let e = error_of(&text);
    let generated = text[..text.find("name = \"gen-train\"").unwrap()].matches('\n').count() + 2;
    assert_error(&e, generated, "generated.generator", &["`sketch`", "not a training domain", "split = \"train\""]);
    // Stable Diffusion has no image-variation model here.
    let (text, line) = edited("name = \"procedural\"", "kind = \"procedural\"\ntemplates = \"clip-imagenet-80\"", "kind = \"stable-diffusion\"\nconditioning = \"image\"\nsource = \"train\"");
    assert_error(&error_of(&text), line + 1, "generators.conditioning", &["image variations", "text+image"]);
}

/// The shipped suite with a `[[sweeps]]` section appended; errors point into that section.
fn with_sweep(sweep: &str) -> (String, usize) {
    let text = format!("{SHAPES}\n[[sweeps]]\n{sweep}\n");
    let line = SHAPES.matches('\n').count() + 3;
    (text, line)
}

/// Line of the appended sweep's `key` (offset 0), `values` (1) or `name` line.
fn sweep_error(sweep: &str, offset: usize, key: &str, words: &[&str]) {
    let (text, first) = with_sweep(sweep);
    assert_error(&error_of(&text), first + offset, key, words);
}

#[test]
fn sweep_mistakes_are_positioned_and_say_what_to_do() {
    // Layout of each sweep below: line 0 name, line 1 key, line 2 values.
    let sweep = |key: &str, values: &str| format!("name = \"amount\"\nkey = \"{key}\"\nvalues = {values}");
    sweep_error(&sweep("training.lr", "[0.1]"), 1, "sweeps.key", &["not a key a sweep can vary", "generated.<set>.size"]);
    sweep_error(&sweep("generated.gen-trian.size", "[100]"), 1, "sweeps.key", &["`gen-trian` is not a generated set", "gen-train"]);
    sweep_error(&sweep("generated.gen-val.size", "[100]"), 1, "sweeps.key", &["evaluation set"]);
    sweep_error(&sweep("generated.gen-train.size", "[]"), 2, "sweeps.values", &["at least one value"]);
    sweep_error(&sweep("generated.gen-train.size", "[100, 2.5]"), 2, "sweeps.values", &["2.5 is not a set size", "whole numbers"]);
    sweep_error(&sweep("generated.gen-train.size", "[-1]"), 2, "sweeps.values", &["-1 is not a set size"]);
    sweep_error(&sweep("generated.gen-train.size", "[100, 100]"), 2, "sweeps.values", &["100 is listed twice"]);
    // The `generated` regime trains on gen-train alone: 0 images would leave it nothing.
    sweep_error(&sweep("generated.gen-train.size", "[0, 100]"), 2, "sweeps.values", &["regime `generated`", "no training images"]);
    sweep_error(&sweep("regimes.real+generated.mix.generated_fraction", "[0.5]"), 1, "sweeps.key", &["does not mix per batch", "mix = {"]);
    sweep_error(&sweep("regimes.real+gen.mix.generated_fraction", "[0.5]"), 1, "sweeps.key", &["`real+gen` is not a regime"]);
    sweep_error("name = \"a/b\"\nkey = \"generated.gen-train.size\"\nvalues = [100]", 0, "sweeps.name", &["letters, digits"]);
}

#[test]
fn a_sweep_key_twice_and_derived_names_that_collide_are_refused() {
    let (text, _) = with_sweep("name = \"amount\"\nkey = \"generated.gen-train.size\"\nvalues = [100]");
    let text = format!("{text}\n[[sweeps]]\nname = \"more\"\nkey = \"generated.gen-train.size\"\nvalues = [200]\n");
    let e = error_of(&text);
    assert_eq!(e.key, "sweeps.key");
    assert!(e.to_string().contains("swept twice"), "{e}");

    // A regime already named like the one the sweep derives from `generated`.
    let text = format!(
        "{SHAPES}\n[[regimes]]\nname = \"generated.amount-100\"\ntrain_on = [\"gen-train\"]\n\n[[sweeps]]\nname = \"amount\"\nkey = \"generated.gen-train.size\"\nvalues = [100]\n"
    );
    let e = error_of(&text);
    assert_eq!(e.key, "sweeps.name");
    assert!(e.to_string().contains("`generated.amount-100` is already a set or regime name"), "{e}");
}

#[test]
fn a_valid_sweep_expands_into_sets_regimes_and_leaderboard_rows() {
    let (text, _) = with_sweep("name = \"amount\"\nkey = \"generated.gen-train.size\"\nvalues = [100, 5000, 200]");
    let suite = Suite::parse(&text, Path::new("suites/sweep.toml")).unwrap_or_else(|e| panic!("{e}"));
    let c = &suite.config;
    // 5000 is gen-train's own size: the base set serves it, nothing new is generated.
    let sets: Vec<(&str, &str, usize)> = c.generated.iter().map(|g| (g.name.as_str(), g.stream.as_str(), g.size)).collect();
    assert!(sets.contains(&("gen-train.amount-100", "gen-train", 100)) && sets.contains(&("gen-train.amount-200", "gen-train", 200)), "{sets:?}");
    assert!(!sets.iter().any(|s| s.0 == "gen-train.amount-5000"), "{sets:?}");
    let derived = c.regime("real+generated.amount-5000").expect("derived regime");
    assert_eq!(derived.train_on, ["train", "gen-train"]);
    assert_eq!(derived.sweep.as_ref().map(|p| p.value), Some(5000.0));
    assert_eq!(c.regime("generated.amount-100").map(|r| r.train_on.clone()), Some(vec!["gen-train.amount-100".to_string()]));
    assert!(c.leaderboard.regimes.iter().any(|r| r == "real+generated.amount-200"));
    // Regimes that do not train on the swept set are not swept.
    assert!(c.regime("real.amount-100").is_none() && c.regime("real+standard-aug.amount-100").is_none());
}

/// shapes.toml with its `objectnet` domain turned into a file-backed one with `keys`.
fn file_domain(keys: &str) -> (String, usize) {
    edited("name = \"objectnet\"", "source = \"procedural\"\nstyle = \"objectnet\"\nsplit = \"shift\"\nsize = 1000", &format!("split = \"shift\"\n{keys}"))
}

const FOLDER: &str = "source = \"folder:images\"\nlayout = \"class-index-folders\"\npreprocess = \"imagenet:resize=36,crop=32\"";

#[test]
fn a_file_backed_domain_is_valid_and_resolved() {
    let (text, _) = file_domain(&format!("{FOLDER}\nexpect = {{ files = 100 }}"));
    let suite = Suite::parse(&text, Path::new("suites/x/broken.toml")).unwrap();
    let shiftbench::suite::DomainData::Files(f) = &suite.config.domain("objectnet").unwrap().data else { panic!("file domain") };
    assert_eq!(f.source, shiftbench::suite::FileSource::Folder("suites/x/images".into()), "relative to the suite file");
    assert_eq!((f.preprocess.resize, f.preprocess.crop), (36, 32));
    assert_eq!(f.expect.as_ref().unwrap().files, Some(100));
}

#[test]
fn file_backed_domain_errors_are_positioned() {
    let cases: [(&str, &str, &str, &[&str]); 9] = [
        ("source = \"folder:images\"\nlayout = \"wnid-folder\"\npreprocess = \"imagenet:resize=36,crop=32\"", "layout = \"wnid-folder\"", "domains.layout", &["unknown layout `wnid-folder`", "`wnid-folders`", "`class-index-folders`"]),
        ("source = \"folder:images\"\npreprocess = \"imagenet:resize=36,crop=32\"", "source = \"folder:images\"", "domains.layout", &["needs a `layout`", "`imagenet-val`"]),
        ("source = \"http://example/x.tar\"\nlayout = \"wnid-folders\"", "source = \"http", "domains.source", &["unknown source", "artifact:NAME", "folder:PATH"]),
        ("source = \"artifact:imagenet-r\"\nlayout = \"wnid-folders\"\npreprocess = \"imagenet:resize=36,crop=32\"", "source = \"artifact:", "domains.source", &["`imagenet-r` is not listed in `[suite] artifacts`"]),
        ("source = \"folder:images\"\nlayout = \"wnid-folders\"", "source = \"folder:images\"", "domains.preprocess", &["crops 224×224", "32×32", "imagenet:resize=36,crop=32"]),
        ("source = \"folder:images\"\nlayout = \"wnid-folders\"\npreprocess = \"timm:size=32\"", "preprocess = \"timm", "domains.preprocess", &["interpolation"]),
        ("source = \"folder:images\"\nlayout = \"wnid-folders\"\npreprocess = \"imagenet:resize=36,crop=32\"\nsize = 10", "size = 10\n", "domains.size", &["procedural", "expect"]),
        ("source = \"folder:images\"\nlayout = \"wnid-folders\"\npreprocess = \"imagenet:resize=36,crop=32\"\nlabels = \"LOC_val_solution.csv\"", "labels = ", "domains.labels", &["imagenet-val"]),
        ("source = \"folder:images\"\nlayout = \"objectnet\"\npreprocess = \"imagenet:resize=36,crop=32\"", "source = \"folder:images\"", "domains.protocol", &["objectnet-testbed", "objectnet-genrob"]),
    ];
    for (keys, at, key, words) in cases {
        let (text, _) = file_domain(keys);
        let line = text[..text.find(at).unwrap()].matches('\n').count() + 1;
        assert_error(&error_of(&text), line, key, words);
    }
    // A procedural domain keeps its own keys only.
    let (text, line) = edited("name = \"sketch\"", "size = 1000", "size = 1000\nlayout = \"wnid-folders\"");
    assert_error(&error_of(&text), line + 1, "domains.layout", &["file-backed domains", "remove it"]);
    // Training reads in-memory sets only.
    let (text, line) = edited("name = \"train\"", "source = \"procedural\"", "source = \"folder:images\"\nlayout = \"wnid-folders\"");
    let text = text.replace("style = \"photo\"\nsplit = \"train\"\nsize = 5000", "split = \"train\"");
    assert_error(&error_of(&text), line, "domains.split", &["ImageNet suites only", "split = \"val\""]);
}

#[test]
fn a_missing_source_and_an_artifact_missing_from_the_lock_are_positioned() {
    let (text, line) = file_domain("layout = \"wnid-folders\"");
    let e = error_of(&text);
    assert!(e.to_string().contains("missing field `source`"), "{e}");
    assert!(e.line <= line, "{e}");
    // Listed in the suite but not pinned in the lock: the fetcher's check names the suite line.
    let (text, _) = file_domain("source = \"artifact:imagenet-q\"\nlayout = \"wnid-folders\"\npreprocess = \"imagenet:resize=36,crop=32\"");
    let text = text.replace("classes = [\"airplane\"", "artifacts = [\"imagenet-q\"]\nclasses = [\"airplane\"");
    let suite = Suite::parse(&text, Path::new("suites/broken.toml")).unwrap();
    let lock = shiftbench::fetch::lock::Lock::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets.lock")).unwrap();
    let e = shiftbench::fetch::artifacts::suite_artifacts(&suite, &lock).unwrap_err().to_string();
    let line = text[..text.find("artifacts = [\"imagenet-q\"]").unwrap()].matches('\n').count() + 1;
    assert!(e.starts_with(&format!("suites/broken.toml:{line}:")) && e.contains("`imagenet-q` is not an artifact"), "{e}");
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
    let (text, line) = edited("[leaderboard]", "seeds = [0, 1, 2]", "seeds = [0, 1, 0]");
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

// ---- kind = "diffusion" (RQ4) ----

const SHAPES_RQ: &str = include_str!("../suites/shapes-rq.toml");

/// shapes-rq.toml with the first `from` after `anchor` replaced, and that line.
fn rq_edited(anchor: &str, from: &str, to: &str) -> (String, usize) {
    let start = SHAPES_RQ.find(anchor).unwrap_or_else(|| panic!("anchor {anchor:?} not in shapes-rq.toml"));
    let at = start + SHAPES_RQ[start..].find(from).unwrap_or_else(|| panic!("{from:?} not after {anchor:?}"));
    let line = SHAPES_RQ[..at].matches('\n').count() + 1;
    (format!("{}{}{}", &SHAPES_RQ[..at], to, &SHAPES_RQ[at + from.len()..]), line)
}

#[test]
fn the_research_question_suite_is_valid_and_resolves_its_diffusion_generators() {
    let suite = Suite::parse(SHAPES_RQ, Path::new("suites/shapes-rq.toml")).expect("shapes-rq.toml parses");
    let tuned = suite.config.generator("diffusion-fine-tuned").unwrap();
    let shiftbench::suite::GeneratorBackend::Diffusion(c) = &tuned.backend else { panic!("a diffusion backend") };
    assert_eq!((c.variant.as_str(), c.base.as_deref(), c.train_on.as_slice()), ("fine-tuned", Some("diffusion-base"), &["train".to_string()][..]));
}

#[test]
fn a_diffusion_generator_needs_a_variant() {
    let (text, line) = rq_edited("name = \"diffusion-base\"", "variant = \"base\"\n", "");
    assert_error(&error_of(&text), line - 2, "generators.variant", &["missing `variant`", "fine-tuned"]);
}

#[test]
fn prompt_keys_do_not_apply_to_a_diffusion_generator() {
    let (text, line) = rq_edited("name = \"diffusion-base\"", "variant = \"base\"", "templates = \"photo-of\"\nvariant = \"base\"");
    assert_error(&error_of(&text), line, "generators.templates", &["does not apply to kind = \"diffusion\"", "class label"]);
}

#[test]
fn diffusion_keys_do_not_apply_to_other_generators() {
    let (text, line) = rq_edited("name = \"procedural-photo-of\"", "templates = \"photo-of\"", "templates = \"photo-of\"\nlr = 0.001");
    assert_error(&error_of(&text), line + 1, "generators.lr", &["applies to kind = \"diffusion\" only"]);
}

#[test]
fn a_diffusion_model_learns_from_training_sets_only() {
    let (text, line) = rq_edited("name = \"diffusion-base\"", "train_on = [\"gen-train\"]", "train_on = [\"gen-val\"]");
    assert_error(&error_of(&text), line, "generators.train_on", &["`gen-val` is not a procedural domain with split = \"train\"", "`train`"]);
    let (text, line) = rq_edited("name = \"diffusion-base\"", "train_on = [\"gen-train\"]", "train_on = [\"gen-diffusion-fine-tuned\"]");
    assert_error(&error_of(&text), line, "generators.train_on", &["made by a diffusion generator", "`base`"]);
    let (text, line) = rq_edited("name = \"diffusion-base\"", "train_on = [\"gen-train\"]", "train_on = []");
    assert_error(&error_of(&text), line - 3, "generators.train_on", &["missing `train_on`"]);
}

#[test]
fn a_base_is_another_diffusion_generator_of_the_same_shape_without_a_base() {
    let cases = [
        ("base = \"procedural\"", "is not a diffusion generator of this suite"),
        ("base = \"diffusion-fine-tuned\"", "cannot start from its own weights"),
    ];
    for (to, words) in cases {
        let (text, line) = rq_edited("name = \"diffusion-fine-tuned\"", "base = \"diffusion-base\"", to);
        assert_error(&error_of(&text), line, "generators.base", &[words]);
    }
    let (text, line) = rq_edited("name = \"diffusion-fine-tuned\"", "width = 16", "width = 32");
    assert_error(&error_of(&text), line - 4, "generators.base", &["another `width`"]);
    // A chain: the base model itself fine-tuned from the fine-tuned one.
    let (text, _) = rq_edited("name = \"diffusion-base\"", "variant = \"base\"", "variant = \"base\"\nbase = \"diffusion-fine-tuned\"");
    assert!(error_of(&text).to_string().contains("fine-tuned from another"));
}

#[test]
fn diffusion_settings_are_range_checked() {
    let cases = [
        ("lr = 1e-3", "lr = 1.5", "generators.lr", "must be in (0, 1)"),
        ("width = 16", "width = 2", "generators.width", "between 4 and 256"),
        ("sample_steps = 20", "sample_steps = 1001", "generators.sample_steps", "at most 1000"),
        ("steps = 3000", "steps = 0", "generators.steps", "positive"),
    ];
    for (from, to, key, words) in cases {
        let (text, line) = rq_edited("name = \"diffusion-base\"", from, to);
        assert_error(&error_of(&text), line, key, &[words]);
    }
}

#[test]
fn a_diffusion_generator_needs_an_image_size_divisible_by_8() {
    let (text, line) = rq_edited("[suite]", "image_size = 32", "image_size = 36");
    assert_error(&error_of(&text), line, "suite.image_size", &["divisible by 8", "diffusion-base"]);
}

const IMAGENET_EVAL: &str = include_str!("../suites/imagenet-eval.toml");

/// suites/imagenet-eval.toml with `from` replaced by `to` (each must occur once), and the 1-based
/// line of the first edit. Parsed as `suites/broken.toml`, so its reference fits still resolve.
fn eval_edited(edits: &[(&str, &str)]) -> (String, usize) {
    let mut text = IMAGENET_EVAL.to_string();
    let at = IMAGENET_EVAL.find(edits[0].0).unwrap_or_else(|| panic!("{:?} not in imagenet-eval.toml", edits[0].0));
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?}");
        text = text.replacen(from, to, 1);
    }
    (text, IMAGENET_EVAL[..at].matches('\n').count() + 1)
}

#[test]
fn the_imagenet_eval_suite_fits_baselines_from_the_pinned_testbed_table() {
    let suite = Suite::parse(IMAGENET_EVAL, Path::new("suites/imagenet-eval.toml")).expect("imagenet-eval.toml parses");
    let t = suite.config.metrics.baseline_table.as_ref().expect("a baseline table");
    assert_eq!((t.table.as_str(), t.types.as_str()), ("imagenet-testbed-top1s", "imagenet-testbed-model-types"));
    let pairs: Vec<(&str, &str, &str)> = t.pairings.iter().map(|p| (p.shift_column.as_str(), p.id_column.as_str(), p.type_column.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("imagenetv2-matched-frequency-format-val", "val", "natural_shift_model_type"),
            ("imagenet-sketch", "val", "model_type"),
            ("imagenet-r", "val-on-imagenet-r-classes", "model_type"),
            ("objectnet-1.0-beta", "val-on-objectnet-classes", "natural_shift_model_type"),
        ]
    );
    // Both files are pinned plain files of the real lock (`shiftbench fetch SUITE` fetches them).
    let lock = shiftbench::fetch::lock::Lock::load(Path::new("datasets.lock")).unwrap();
    let names: Vec<&str> = shiftbench::fetch::artifacts::suite_artifacts(&suite, &lock).unwrap().iter().map(|a| a.name.as_str()).collect();
    assert!(names.contains(&"imagenet-testbed-top1s") && names.contains(&"imagenet-testbed-model-types"), "{names:?}");
}

#[test]
fn baseline_table_mistakes_are_named_at_their_key() {
    let table_line = IMAGENET_EVAL.lines().position(|l| l.starts_with("table = ")).unwrap() + 1;
    let (text, _) = eval_edited(&[("table = \"artifact:imagenet-testbed-top1s\"", "table = \"imagenet-testbed-top1s\"")]);
    assert_error(&error_of(&text), table_line, "metrics.baseline_table.table", &["`imagenet-testbed-top1s` is not `artifact:NAME`"]);

    let (text, _) = eval_edited(&[("types = \"artifact:imagenet-testbed-model-types\"", "types = \"artifact:model-types\"")]);
    assert_error(&error_of(&text), table_line + 1, "metrics.baseline_table.types", &["artifact `model-types` is not listed in `[suite] artifacts`"]);

    let (text, _) = eval_edited(&[("preset = \"imagenet-testbed\"", "preset = \"testbed\"")]);
    assert_error(&error_of(&text), table_line + 2, "metrics.baseline_table.preset", &["unknown preset `testbed`", "imagenet-testbed"]);

    let (text, line) = eval_edited(&[("preset = \"imagenet-testbed\"", "preset = \"imagenet-testbed\"\nresamples = 10")]);
    assert_error(&error_of(&text), line + 1, "metrics.baseline_table.resamples", &["unknown field `resamples`"]);

    // The preset measures ImageNet-R against val on R's classes, which the suite must evaluate.
    let (text, _) = eval_edited(&[
        ("id_axes = [\"val-on-imagenet-r-classes\", ", "id_axes = ["),
        ("reference_fits = \"imagenet-testbed-fits.toml\"\n", ""),
    ]);
    assert_error(&error_of(&text), table_line + 1, "metrics.baseline_table.preset", &["measures `imagenet-r` against `val-on-imagenet-r-classes`", "id_axes"]);

    // No shift the preset pairs.
    let (text, _) = eval_edited(&[
        ("shifts = [\"imagenetv2-matched-frequency-format-val\", \"imagenet-sketch\", \"imagenet-r\", \"imagenet-a\", \"objectnet-1.0-beta\", \"objectnet-genrob\"]", "shifts = [\"imagenet-a\"]"),
        ("reference_fits = \"imagenet-testbed-fits.toml\"\n", ""),
    ]);
    assert_error(&error_of(&text), table_line + 1, "metrics.baseline_table.preset", &["none of the suite's shifts (`imagenet-a`)", "imagenet-testbed"]);
}

#[test]
fn a_baseline_table_that_is_an_archive_or_not_in_the_lock_is_refused_at_its_artifact() {
    let lock = shiftbench::fetch::lock::Lock::load(Path::new("datasets.lock")).unwrap();
    let artifacts_line = IMAGENET_EVAL.lines().position(|l| l.starts_with("artifacts = ")).unwrap() + 1;
    // An archive of the lock (ImageNet-R's tar) named as the table.
    let (text, _) = eval_edited(&[("table = \"artifact:imagenet-testbed-top1s\"", "table = \"artifact:imagenet-r\"")]);
    let suite = Suite::parse(&text, Path::new("suites/broken.toml")).unwrap();
    let err = shiftbench::fetch::artifacts::suite_artifacts(&suite, &lock).unwrap_err().to_string();
    assert!(err.starts_with(&format!("suites/broken.toml:{artifacts_line}:")) && err.contains("`imagenet-r` is a tar archive") && err.contains("format = \"file\""), "{err}");
    // A name the lock does not know.
    let (text, _) = eval_edited(&[
        ("\"imagenet-testbed-model-types\"]", "\"imagenet-testbed-types\"]"),
        ("types = \"artifact:imagenet-testbed-model-types\"", "types = \"artifact:imagenet-testbed-types\""),
    ]);
    let suite = Suite::parse(&text, Path::new("suites/broken.toml")).unwrap();
    let err = shiftbench::fetch::artifacts::suite_artifacts(&suite, &lock).unwrap_err().to_string();
    assert!(err.starts_with(&format!("suites/broken.toml:{artifacts_line}:")) && err.contains("`imagenet-testbed-types` is not an artifact of datasets.lock"), "{err}");
}
