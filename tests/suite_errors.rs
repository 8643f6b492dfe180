//! A bad suite file gets one clear error naming the file, the position and the key.

use shiftbench::suite::{Suite, SuiteError};
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

fn error_of(text: &str) -> SuiteError {
    match Suite::parse(text, Path::new("suites/broken.toml")) {
        Ok(_) => panic!("the broken suite was accepted"),
        Err(e) => e,
    }
}

fn assert_error(e: &SuiteError, line: usize, key: &str, words: &[&str]) {
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
    assert_eq!(suite.spec.testbed.members.len(), 6);
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
