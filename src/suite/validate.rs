//! Validation of a parsed suite file, section by section: references between sections, value
//! ranges, and keys that would be silently ignored. Every error names the file, position and key.

use super::{ConditioningKind, DomainSpec, GeneratedUse, GeneratorKind, GeneratorSpec, ModelSpec, Split, SuiteFile, TrainingSpec};
use crate::data::image::Preprocess;
use crate::data::imageset::Layout;
use crate::config_error::{error_at, ConfigError};
use crate::data::procedural::CLASS_NAMES;
use crate::train::Schedule;
use std::collections::BTreeSet;
use std::path::Path;
use toml::Spanned;

/// A value, its key, the condition it must meet, and what to say when it does not.
type RangeCheck<'a> = (&'a Spanned<f64>, &'static str, fn(f64) -> bool, &'static str);

/// The most images one domain or generated set may have: ten times ImageNet's training set.
/// Larger values overflow image buffers (or the address space) long before they could run.
pub const MAX_SET_IMAGES: usize = 10_000_000;
/// The most channels a model's first stage may have (torchvision's ResNets have 64).
pub const MAX_WIDTH: usize = 4096;
/// The most residual blocks per stage (torchvision's deepest ResNet has 36).
pub const MAX_BLOCKS: usize = 64;
/// The most epochs, images per batch, and leaderboard seeds a suite may ask for.
pub const MAX_EPOCHS: u32 = 10_000;
pub const MAX_BATCH: usize = 65_536;
pub const MAX_SEEDS: usize = 1000;
/// The most sampling steps and images per batch of a Stable Diffusion generator.
pub const MAX_SD_STEPS: usize = 1000;
pub const MAX_SD_BATCH: usize = 1024;

/// The names each section defines.
struct Names<'s> {
    generators: BTreeSet<&'s str>,
    regimes: BTreeSet<&'s str>,
    models: BTreeSet<&'s str>,
}

pub(super) struct SuiteValidator<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl SuiteValidator<'_> {
    pub(super) fn err<T>(&self, at: &Spanned<T>, key: &str, message: impl Into<String>) -> ConfigError {
        error_at(self.path, self.text, at.span(), key, message.into())
    }

    pub(super) fn validate(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        self.check_header(s)?;
        let names = self.check_names(s)?;
        self.check_data(s, &names)?;
        self.check_regimes(s)?;
        for m in &s.models {
            self.check_model(m)?;
        }
        self.check_training_sections(s)?;
        if let Some(t) = &s.training {
            self.check_training(t)?;
        }
        self.check_rows(s, &names)?;
        self.check_metrics(s)?;
        self.check_sweeps(s)
    }

    /// Names are unique within their section and become folder names; a generated set may not
    /// share a domain's name.
    fn check_names<'s>(&self, s: &'s SuiteFile) -> Result<Names<'s>, ConfigError> {
        let domains = self.unique_names(s.domains.iter().map(|d| &d.name), "domains.name")?;
        let generators = self.unique_names(s.generators.iter().map(|g| &g.name), "generators.name")?;
        let generated = self.unique_names(s.generated.iter().map(|g| &g.name), "generated.name")?;
        let regimes = self.unique_names(s.regimes.iter().map(|r| &r.name), "regimes.name")?;
        let models = self.unique_names(s.models.iter().map(|m| &m.name), "models.name")?;
        if let Some(t) = &s.testbed {
            self.unique_names(t.members.iter().map(|m| &m.name), "testbed.members.name")?;
        }
        for name in generated.iter() {
            if domains.contains(name) {
                let g = s.generated.iter().find(|g| g.name.get_ref() == name).expect("listed");
                return Err(self.err(&g.name, "generated.name", format!("`{name}` is also a domain name; give the generated set its own name")));
            }
        }
        Ok(Names { generators, regimes, models })
    }

    fn check_data(&self, s: &SuiteFile, names: &Names) -> Result<(), ConfigError> {
        let mut procedural = BTreeSet::new();
        for d in &s.domains {
            if d.source.get_ref() == "procedural" {
                self.check_procedural_domain(d)?;
                procedural.insert(d.name.get_ref().as_str());
            } else {
                self.check_file_domain(d, s)?;
            }
        }
        for g in &s.generators {
            if g.kind == GeneratorKind::Diffusion {
                self.check_diffusion(g, s)?;
            } else {
                self.check_generator(g, &procedural)?;
            }
        }
        for g in &s.generated {
            self.positive(&g.size, "generated.size")?;
            self.at_most(&g.size, MAX_SET_IMAGES, "generated.size", "images")?;
            self.reference(&g.generator, &names.generators, "generated.generator", "[[generators]]")?;
            let source = s.generators.iter().find(|x| x.name.get_ref() == g.generator.get_ref()).and_then(|x| x.source.as_ref());
            let source_split = source.and_then(|src| s.domains.iter().find(|d| d.name.get_ref() == src.get_ref())).map(|d| d.split);
            if let (GeneratedUse::Train, Some(src), Some(split)) = (g.usage, source, source_split) {
                if split != Split::Train {
                    return Err(self.err(&g.generator, "generated.generator", format!(
                        "generator `{}` starts from domain `{}`, which is not a training domain: a training set made from it would carry evaluation images into training; give the generator a source with split = \"train\"",
                        g.generator.get_ref(), src.get_ref())));
                }
            }
        }
        Ok(())
    }

    /// Regimes train on existing training sets; per-batch mixing needs both kinds.
    fn check_regimes(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        for r in &s.regimes {
            if r.train_on.is_empty() {
                return Err(self.err(&r.name, "regimes.train_on", "a regime needs at least one training set in `train_on`"));
            }
            self.no_duplicates(r.train_on.iter(), "regimes.train_on", "training set", "its images would be used twice")?;
            for t in &r.train_on {
                let trainable = s.domains.iter().any(|d| d.name.get_ref() == t.get_ref() && d.split == Split::Train)
                    || s.generated.iter().any(|g| g.name.get_ref() == t.get_ref() && g.usage == GeneratedUse::Train);
                if !trainable {
                    return Err(self.err(t, "regimes.train_on", format!(
                        "`{}` is not a domain with split = \"train\" nor a generated set with use = \"train\"; defined training sets: {}",
                        t.get_ref(),
                        list(s.domains.iter().filter(|d| d.split == Split::Train).map(|d| d.name.get_ref().as_str())
                            .chain(s.generated.iter().filter(|g| g.usage == GeneratedUse::Train).map(|g| g.name.get_ref().as_str())))
                    )));
                }
            }
        }
        for r in &s.regimes {
            let Some(mix) = &r.mix else { continue };
            let f = *mix.generated_fraction.get_ref();
            if !(f > 0.0 && f < 1.0) {
                return Err(self.err(&mix.generated_fraction, "regimes.mix.generated_fraction", "must be in (0, 1), the share of each batch drawn from generated sets"));
            }
            let generated = r.train_on.iter().filter(|t| s.generated.iter().any(|g| g.name.get_ref() == t.get_ref())).count();
            if generated == 0 || generated == r.train_on.len() {
                return Err(self.err(&mix.generated_fraction, "regimes.mix", format!(
                    "regime `{}` mixes per batch, so `train_on` needs at least one real domain and one generated set", r.name.get_ref())));
            }
        }
        Ok(())
    }

    /// The testbed and the leaderboard rows name defined regimes and models.
    fn check_rows(&self, s: &SuiteFile, names: &Names) -> Result<(), ConfigError> {
        let (Some(testbed), Some(leaderboard)) = (&s.testbed, &s.leaderboard) else {
            if let Some(t) = &s.testbed {
                return Err(self.err(&t.regime, "leaderboard", "a suite with a [testbed] needs a [leaderboard] of the classifiers it measures"));
            }
            return self.check_leaderboard(s, names);
        };
        self.reference(&testbed.regime, &names.regimes, "testbed.regime", "[[regimes]]")?;
        for m in &testbed.members {
            self.reference(&m.model, &names.models, "testbed.members.model", "[[models]]")?;
            if let Some(e) = &m.epochs {
                self.positive(e, "testbed.members.epochs")?;
            }
            let f = *m.train_fraction.get_ref();
            if !(f > 0.0 && f <= 1.0) {
                return Err(self.err(&m.train_fraction, "testbed.members.train_fraction", "must be in (0, 1]"));
            }
        }
        for m in &testbed.members {
            if let Some(e) = &m.epochs {
                self.at_most(e, MAX_EPOCHS, "testbed.members.epochs", "epochs")?;
            }
        }
        let _ = leaderboard;
        self.check_leaderboard(s, names)
    }

    fn check_leaderboard(&self, s: &SuiteFile, names: &Names) -> Result<(), ConfigError> {
        let Some(leaderboard) = &s.leaderboard else { return Ok(()) };
        for m in &leaderboard.models {
            self.reference(m, &names.models, "leaderboard.models", "[[models]]")?;
        }
        for r in &leaderboard.regimes {
            self.reference(r, &names.regimes, "leaderboard.regimes", "[[regimes]]")?;
        }
        if leaderboard.seeds.is_empty() {
            return Err(self.err(&s.suite.name, "leaderboard.seeds", "list at least one training seed, e.g. seeds = [0]"));
        }
        if leaderboard.seeds.len() > MAX_SEEDS {
            return Err(self.err(&leaderboard.seeds[MAX_SEEDS], "leaderboard.seeds", format!("list at most {MAX_SEEDS} seeds")));
        }
        self.no_duplicates(leaderboard.models.iter(), "leaderboard.models", "model", "it would be one row twice")?;
        self.no_duplicates(leaderboard.regimes.iter(), "leaderboard.regimes", "regime", "it would be one row twice")?;
        self.no_duplicates(leaderboard.seeds.iter(), "leaderboard.seeds", "seed", "a seed trains the same classifier again")?;
        Ok(())
    }

    /// A suite trains (all of [[models]], [[regimes]], [training], [leaderboard]; [testbed]
    /// optional when reference fits give the lines) or is evaluation-only (none of them).
    fn check_training_sections(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        let present = [
            ("[[models]]", !s.models.is_empty()),
            ("[[regimes]]", !s.regimes.is_empty()),
            ("[training]", s.training.is_some()),
            ("[leaderboard]", s.leaderboard.is_some()),
        ];
        let any = present.iter().any(|(_, p)| *p) || s.testbed.is_some();
        if let Some((missing, _)) = present.iter().find(|(_, p)| any && !*p) {
            let have: Vec<&str> = present.iter().filter(|(_, p)| *p).map(|(n, _)| *n).chain(s.testbed.as_ref().map(|_| "[testbed]")).collect();
            return Err(self.err(&s.suite.name, missing.trim_matches(['[', ']']), format!(
                "the suite has {} but no {missing}: a suite that trains needs [[models]], [[regimes]], [training] and [leaderboard]; an evaluation-only suite (for `shiftbench compare`) has none of them",
                have.join(", ")
            )));
        }
        if s.testbed.is_none() && s.leaderboard.is_some() && s.metrics.reference_fits.is_none() {
            return Err(self.err(&s.metrics.id_domain, "testbed", "effective robustness needs a line: give a [testbed] to train, or `[metrics] reference_fits` (fixed fits such as suites/imagenet-testbed-fits.toml)"));
        }
        Ok(())
    }

    /// The fits of `[metrics] reference_fits`, read and checked against the suite's domains.
    pub(super) fn reference_fits(&self, s: &SuiteFile) -> Result<Vec<crate::record::ProtocolFit>, ConfigError> {
        let Some(file) = &s.metrics.reference_fits else { return Ok(Vec::new()) };
        let path = self.path.parent().unwrap_or(Path::new("")).join(file.get_ref());
        let text = crate::fsutil::read_text_file(&path)
            .map_err(|e| self.err(file, "metrics.reference_fits", format!("cannot read {}: {e}; give a path relative to the suite file", path.display())))?;
        let fits = crate::robustness::reference::parse(&text, &path)?;
        let ids: BTreeSet<&str> = std::iter::once(&s.metrics.id_domain).chain(&s.metrics.id_axes).map(|d| d.get_ref().as_str()).collect();
        let shifts: BTreeSet<&str> = s.metrics.shifts.iter().map(|d| d.get_ref().as_str()).collect();
        let mut out = Vec::new();
        for f in fits {
            if !shifts.contains(f.shift_column.as_str()) {
                continue; // a fit of a shift the suite does not measure
            }
            if !ids.contains(f.id_column.as_str()) {
                return Err(self.err(file, "metrics.reference_fits", format!(
                    "the fit of `{}` has its x axis on `{}`, which is neither `id_domain` nor one of `id_axes`; add that domain to `id_axes`",
                    f.shift_column, f.id_column
                )));
            }
            out.push(crate::record::ProtocolFit {
                shift: f.shift_column,
                id_domain: f.id_column,
                transform: f.fit.transform.to_string(),
                slope: f.fit.line.slope,
                intercept: f.fit.line.intercept,
                n: f.fit.line.n as u64,
                provenance: f.provenance,
            });
        }
        if out.is_empty() {
            return Err(self.err(file, "metrics.reference_fits", format!("no fit in {} has a `shift_column` among the suite's shifts ({})", path.display(), list(shifts.iter().copied()))));
        }
        Ok(out)
    }

    /// `[metrics.baseline_table]`, checked against the suite: both files are listed artifacts,
    /// the preset exists, and each of its pairings the suite measures has its ID column among the
    /// suite's ID domains. Whether the artifacts are in the lock is `shiftbench check`'s (it reads
    /// the lock); their contents are read only when records are made.
    pub(super) fn baseline_table(&self, s: &SuiteFile) -> Result<Option<super::BaselineTable>, ConfigError> {
        let Some(spec) = &s.metrics.baseline_table else { return Ok(None) };
        let artifact = |v: &Spanned<String>, key: &str| -> Result<String, ConfigError> {
            let name = v.get_ref().strip_prefix("artifact:").filter(|n| !n.is_empty()).ok_or_else(|| {
                self.err(v, key, format!("`{}` is not `artifact:NAME`; name a file artifact of datasets.lock, e.g. \"artifact:imagenet-testbed-top1s\"", v.get_ref()))
            })?;
            if !s.suite.artifacts.iter().any(|a| a.get_ref() == name) {
                return Err(self.err(v, key, format!("artifact `{name}` is not listed in `[suite] artifacts`; add it there so `shiftbench fetch SUITE` fetches it")));
            }
            Ok(name.to_string())
        };
        let table = artifact(&spec.table, "metrics.baseline_table.table")?;
        let types = artifact(&spec.types, "metrics.baseline_table.types")?;
        let preset: crate::robustness::pairing::ProtocolPreset =
            spec.preset.get_ref().parse().map_err(|e: anyhow::Error| self.err(&spec.preset, "metrics.baseline_table.preset", e.to_string()))?;
        let ids: BTreeSet<&str> = std::iter::once(&s.metrics.id_domain).chain(&s.metrics.id_axes).map(|d| d.get_ref().as_str()).collect();
        let all = preset.pairings();
        let mut pairings = Vec::new();
        for shift in &s.metrics.shifts {
            let Some(p) = all.iter().find(|p| &p.shift_column == shift.get_ref()) else { continue };
            if !ids.contains(p.id_column.as_str()) {
                return Err(self.err(&spec.preset, "metrics.baseline_table.preset", format!(
                    "preset `{}` measures `{}` against `{}`, which is neither `id_domain` nor one of `id_axes`; add a val domain of that name to `id_axes`",
                    spec.preset.get_ref(), p.shift_column, p.id_column
                )));
            }
            pairings.push(p.clone());
        }
        if pairings.is_empty() {
            return Err(self.err(&spec.preset, "metrics.baseline_table.preset", format!(
                "none of the suite's shifts ({}) is a shift column of preset `{}` ({}); name the shift domains as the table's columns",
                list(s.metrics.shifts.iter().map(|d| d.get_ref().as_str())), spec.preset.get_ref(), list(all.iter().map(|p| p.shift_column.as_str()))
            )));
        }
        Ok(Some(super::BaselineTable { table, types, preset, pairings }))
    }

    /// The evaluation sets exist with the right split or use, and the quick profile is a scale-down.
    fn check_metrics(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        let val_domains: BTreeSet<&str> = s.domains.iter().filter(|d| d.split == Split::Val).map(|d| d.name.get_ref().as_str()).collect();
        let shift_domains: BTreeSet<&str> = s.domains.iter().filter(|d| d.split == Split::Shift).map(|d| d.name.get_ref().as_str()).collect();
        if !val_domains.contains(s.metrics.id_domain.get_ref().as_str()) {
            return Err(self.err(&s.metrics.id_domain, "metrics.id_domain", format!(
                "`{}` is not a domain with split = \"val\"; defined: {}", s.metrics.id_domain.get_ref(), list(val_domains.iter().copied()))));
        }
        for a in &s.metrics.id_axes {
            if !val_domains.contains(a.get_ref().as_str()) || a.get_ref() == s.metrics.id_domain.get_ref() {
                return Err(self.err(a, "metrics.id_axes", format!(
                    "`{}` is not a domain with split = \"val\" other than `id_domain`; defined: {}", a.get_ref(), list(val_domains.iter().copied()))));
            }
        }
        self.no_duplicates(s.metrics.id_axes.iter(), "metrics.id_axes", "domain", "it would be two columns of one set")?;
        if s.metrics.shifts.is_empty() {
            return Err(self.err(&s.metrics.id_domain, "metrics.shifts", "list at least one shifted domain"));
        }
        self.no_duplicates(s.metrics.shifts.iter(), "metrics.shifts", "shift", "it would be two columns of one set")?;
        for sh in &s.metrics.shifts {
            if !shift_domains.contains(sh.get_ref().as_str()) {
                return Err(self.err(sh, "metrics.shifts", format!(
                    "`{}` is not a domain with split = \"shift\"; defined: {}", sh.get_ref(), list(shift_domains.iter().copied()))));
            }
        }
        if let Some(g) = &s.metrics.generated_eval {
            let ok = s.generated.iter().any(|x| x.name.get_ref() == g.get_ref() && x.usage == GeneratedUse::Eval);
            if !ok {
                return Err(self.err(g, "metrics.generated_eval", format!(
                    "`{}` is not a generated set with use = \"eval\"; defined: {}", g.get_ref(),
                    list(s.generated.iter().filter(|x| x.usage == GeneratedUse::Eval).map(|x| x.name.get_ref().as_str())))));
            }
        }
        let q = &s.quick;
        for (v, key) in [(&q.size_scale, "quick.size_scale"), (&q.epoch_scale, "quick.epoch_scale")] {
            if !(*v.get_ref() > 0.0 && *v.get_ref() <= 1.0) {
                return Err(self.err(v, key, "must be in (0, 1]"));
            }
        }
        Ok(())
    }

    /// A procedural domain has a style and a size and none of the file-backed keys.
    fn check_procedural_domain(&self, d: &DomainSpec) -> Result<(), ConfigError> {
        let file_keys: [(&str, Option<std::ops::Range<usize>>); 8] = [
            ("layout", d.layout.as_ref().map(|v| v.span())),
            ("protocol", d.protocol.as_ref().map(|v| v.span())),
            ("objectnet_from", d.objectnet_from.as_ref().map(|v| v.span())),
            ("preprocess", d.preprocess.as_ref().map(|v| v.span())),
            ("root", d.root.as_ref().map(|v| v.span())),
            ("labels", d.labels.as_ref().map(|v| v.span())),
            ("id_map", d.id_map.as_ref().map(|v| v.span())),
            ("expect", d.expect.as_ref().map(|v| v.span())),
        ];
        if let Some((key, Some(span))) = file_keys.into_iter().find(|(_, s)| s.is_some()) {
            return Err(error_at(self.path, self.text, span, format!("domains.{key}"), format!("`{key}` applies to file-backed domains (source = \"artifact:NAME\" or \"folder:PATH\") only; remove it")));
        }
        if d.style.is_none() {
            return Err(self.err(&d.source, "domains.style", "a procedural domain needs a `style`, e.g. style = \"photo\""));
        }
        match &d.size {
            Some(size) => {
                self.positive(size, "domains.size")?;
                self.at_most(size, MAX_SET_IMAGES, "domains.size", "images")
            }
            None => Err(self.err(&d.source, "domains.size", "a procedural domain needs a `size` (images to render)")),
        }
    }

    /// A file-backed domain: a known source, a layout, a preprocessing whose crop is the
    /// suite's image size, and only the keys its layout reads.
    fn check_file_domain(&self, d: &DomainSpec, s: &SuiteFile) -> Result<(), ConfigError> {
        let source = d.source.get_ref();
        let (kind, value) = source.split_once(':').unwrap_or(("", ""));
        if !matches!(kind, "artifact" | "folder") || value.is_empty() {
            return Err(self.err(&d.source, "domains.source", format!("unknown source `{source}`: use \"procedural\", \"artifact:NAME\" (an archive of datasets.lock) or \"folder:PATH\"")));
        }
        if kind == "artifact" && !s.suite.artifacts.iter().any(|a| a.get_ref() == value) {
            return Err(self.err(&d.source, "domains.source", format!("artifact `{value}` is not listed in `[suite] artifacts`; add it there so `shiftbench fetch SUITE` fetches it")));
        }
        for (v, key) in [(d.style.as_ref().map(|v| v.span()), "style"), (d.size.as_ref().map(|v| v.span()), "size")] {
            if let Some(span) = v {
                let why = if key == "size" { "a file-backed set has the images it has; check its count with `expect = { files = N }`" } else { "styles belong to the procedural world" };
                return Err(error_at(self.path, self.text, span, format!("domains.{key}"), format!("`{key}` applies to source = \"procedural\" only: {why}")));
            }
        }
        if d.split == Split::Train && s.suite.vocabulary.is_none() {
            return Err(self.err(&d.source, "domains.split", "file-backed training sets are read in ImageNet suites only (`vocabulary = \"imagenet-1k\"`); here use split = \"val\" or \"shift\""));
        }
        let Some(layout) = &d.layout else {
            return Err(self.err(&d.source, "domains.layout", format!("a file-backed domain needs a `layout`: one of {}", list(Layout::ALL.iter().map(|l| l.name())))));
        };
        let Some(kind) = Layout::from_name(layout.get_ref()) else {
            return Err(self.err(layout, "domains.layout", format!("unknown layout `{}`; known: {}", layout.get_ref(), list(Layout::ALL.iter().map(|l| l.name())))));
        };
        self.check_scoring(d, kind, s)?;
        if kind != Layout::ImagenetVal {
            for (v, key) in [(&d.labels, "labels"), (&d.id_map, "id_map")] {
                if let Some(v) = v {
                    return Err(self.err(v, &format!("domains.{key}"), format!("`{key}` applies to layout = \"imagenet-val\" only")));
                }
            }
        }
        if let (Some(m), None) = (&d.id_map, &d.labels) {
            return Err(self.err(m, "domains.id_map", "`id_map` maps the ids of a devkit label file: give `labels` too"));
        }
        let spec = d.preprocess.as_ref().map_or("imagenet", |p| p.get_ref().as_str());
        let at = |msg: String| match &d.preprocess {
            Some(p) => self.err(p, "domains.preprocess", msg),
            None => self.err(&d.source, "domains.preprocess", msg),
        };
        let p = Preprocess::parse(spec).map_err(|e| at(e.to_string()))?;
        let size = *s.suite.image_size.get_ref();
        if p.crop != size {
            return Err(at(format!("preprocessing `{spec}` crops {}×{}, but the suite's classifiers take {size}×{size} (image_size); set e.g. preprocess = \"imagenet:resize={},crop={size}\"", p.crop, p.crop, size * 8 / 7)));
        }
        if let Some(root) = &d.root {
            let r = root.get_ref();
            if r.starts_with('/') || r.split('/').any(|c| c == "..") {
                return Err(self.err(root, "domains.root", "must be a folder inside the source: a relative path without `..`"));
            }
        }
        if let Some(e) = &d.expect {
            if e.get_ref().root.is_some() {
                return Err(self.err(e, "domains.expect", "`root` is the domain's own key here: give `root = \"...\"` next to `expect`"));
            }
        }
        Ok(())
    }

    /// A domain's `protocol` fits its layout and the suite's vocabulary.
    fn check_scoring(&self, d: &DomainSpec, layout: Layout, s: &SuiteFile) -> Result<(), ConfigError> {
        use crate::eval::ScoringRule;
        let rule = match &d.protocol {
            Some(p) => ScoringRule::from_name(p.get_ref()).ok_or_else(|| {
                self.err(p, "domains.protocol", format!("unknown protocol `{}`; known: {}", p.get_ref(), list(ScoringRule::ALL.iter().map(|r| r.name()))))
            })?,
            None => ScoringRule::Full,
        };
        let at = |msg: String| match &d.protocol {
            Some(p) => self.err(p, "domains.protocol", msg),
            None => self.err(&d.source, "domains.protocol", msg),
        };
        if rule != ScoringRule::Full && s.suite.vocabulary.is_none() {
            return Err(at(format!("protocol `{}` scores ImageNet classes: the suite needs `vocabulary = \"imagenet-1k\"`", rule.name())));
        }
        if layout == Layout::Objectnet && !rule.reads_objectnet_images() {
            return Err(at("ObjectNet's images are scored against its own 113 classes: give protocol = \"objectnet-testbed\" (the imagenet-testbed's) or \"objectnet-genrob\" (the generative-robustness code's)".into()));
        }
        if rule.reads_objectnet_images() && layout != Layout::Objectnet {
            return Err(at(format!("protocol `{}` reads ObjectNet's folders and mappings: use layout = \"objectnet\"", rule.name())));
        }
        match (&d.objectnet_from, rule) {
            (None, ScoringRule::ObjectnetClasses) => {
                return Err(at("protocol `objectnet-classes` groups val classes by ObjectNet's mapping files: name the suite's ObjectNet domain with `objectnet_from`".into()));
            }
            (Some(o), ScoringRule::ObjectnetClasses) => {
                let ok = s.domains.iter().any(|x| x.name.get_ref() == o.get_ref() && x.layout.as_ref().map(|l| l.get_ref().as_str()) == Some("objectnet"));
                if !ok {
                    return Err(self.err(o, "domains.objectnet_from", format!("`{}` is not a domain of the suite with layout = \"objectnet\"", o.get_ref())));
                }
            }
            (Some(o), _) => return Err(self.err(o, "domains.objectnet_from", "`objectnet_from` applies to protocol = \"objectnet-classes\" only")),
            (None, _) => {}
        }
        Ok(())
    }

    fn check_header(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        let name = s.suite.name.get_ref();
        if name.is_empty() || name.len() > crate::fsutil::MAX_NAME_BYTES || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(self.err(&s.suite.name, "suite.name", format!("use 1 to {} letters, digits, `-` and `_` only (it names the results folder)", crate::fsutil::MAX_NAME_BYTES)));
        }
        let size = *s.suite.image_size.get_ref();
        if !(16..=512).contains(&size) {
            return Err(self.err(&s.suite.image_size, "suite.image_size", "must be between 16 and 512 pixels"));
        }
        if let Some(v) = &s.suite.vocabulary {
            if v.get_ref() != "imagenet-1k" {
                return Err(self.err(v, "suite.vocabulary", format!("unknown vocabulary `{}`; known: imagenet-1k (or list the procedural world's `classes` instead)", v.get_ref())));
            }
            if let Some(c) = s.suite.classes.first() {
                return Err(self.err(c, "suite.classes", "give `classes` (the procedural world's) or `vocabulary`, not both"));
            }
            if let Some(d) = s.domains.iter().find(|d| d.source.get_ref() == "procedural") {
                return Err(self.err(&d.source, "domains.source", "the procedural world renders its own classes, not ImageNet's: a suite with `vocabulary` reads file-backed domains only"));
            }
            return Ok(());
        }
        if s.suite.classes.len() < 2 {
            return Err(self.err(&s.suite.name, "suite.classes", "list at least two classes (or name a `vocabulary` such as \"imagenet-1k\")"));
        }
        let mut seen = BTreeSet::new();
        for c in &s.suite.classes {
            if !CLASS_NAMES.contains(&c.get_ref().as_str()) {
                return Err(self.err(c, "suite.classes", format!("unknown class `{}`; the procedural world has: {}", c.get_ref(), list(CLASS_NAMES.iter().copied()))));
            }
            if !seen.insert(c.get_ref()) {
                return Err(self.err(c, "suite.classes", format!("class `{}` is listed twice", c.get_ref())));
            }
        }
        Ok(())
    }

    fn check_model(&self, m: &ModelSpec) -> Result<(), ConfigError> {
        const MAX_STAGES: &str = "at most 6 stages (each halves the resolution)";
        if let Some(w) = &m.width {
            self.positive(w, "models.width")?;
            self.at_most(w, MAX_WIDTH, "models.width", "channels")?;
        }
        if let Some(a) = &m.arch {
            let fixed = format!("`arch = \"{}\"` fixes the depth and block; drop `arch` to set it, or use `depth_multiplier`", a.get_ref().name());
            if let Some(l) = &m.layers {
                return Err(self.err(l, "models.layers", fixed));
            }
            if let Some(b) = &m.block {
                return Err(self.err(b, "models.block", fixed));
            }
            for (v, key) in [(&m.blocks, "models.blocks"), (&m.stages, "models.stages")] {
                if let Some(v) = v {
                    return Err(self.err(v, key, fixed));
                }
            }
        } else {
            if m.width.is_none() {
                return Err(self.err(&m.name, "models.width", "give `width` (channels of the first stage) or an `arch` such as \"resnet18\""));
            }
            match (&m.layers, &m.blocks, &m.stages) {
                (Some(l), None, None) => {
                    if l.get_ref().is_empty() || l.get_ref().contains(&0) {
                        return Err(self.err(l, "models.layers", "list a positive block count per stage, e.g. [2, 2, 2, 2]"));
                    }
                    if l.get_ref().len() > 6 {
                        return Err(self.err(l, "models.layers", MAX_STAGES));
                    }
                    if l.get_ref().iter().any(|&b| b > MAX_BLOCKS) {
                        return Err(self.err(l, "models.layers", format!("must be at most {MAX_BLOCKS} blocks per stage")));
                    }
                }
                (Some(_), Some(v), _) | (Some(_), None, Some(v)) => {
                    return Err(self.err(v, "models.layers", "give either `layers` or `blocks` and `stages`, not both"));
                }
                (None, Some(b), Some(st)) => {
                    self.positive(b, "models.blocks")?;
                    self.at_most(b, MAX_BLOCKS, "models.blocks", "blocks per stage")?;
                    self.positive(st, "models.stages")?;
                    if *st.get_ref() > 6 {
                        return Err(self.err(st, "models.stages", MAX_STAGES));
                    }
                }
                (None, b, _) => {
                    let key = if b.is_none() { "models.blocks" } else { "models.stages" };
                    return Err(self.err(&m.name, key, "give `blocks` and `stages`, or `layers` (blocks per stage), or an `arch` such as \"resnet18\""));
                }
            }
        }
        for (v, key) in [(&m.width_multiplier, "models.width_multiplier"), (&m.depth_multiplier, "models.depth_multiplier")] {
            if let Some(v) = v {
                if !(*v.get_ref() > 0.0 && *v.get_ref() <= 16.0) {
                    return Err(self.err(v, key, "must be in (0, 16]"));
                }
            }
        }
        Ok(())
    }

    /// A `kind = "diffusion"` generator: its own keys only, what it learns from, its base.
    fn check_diffusion(&self, g: &GeneratorSpec, s: &SuiteFile) -> Result<(), ConfigError> {
        let foreign: [(&str, Option<std::ops::Range<usize>>); 10] = [
            ("templates", g.templates.as_ref().map(|v| v.span())),
            ("preset", g.preset.as_ref().map(|v| v.span())),
            ("weights", g.weights.as_ref().map(|v| v.span())),
            ("scheduler", g.scheduler.as_ref().map(|v| v.span())),
            ("guidance", g.guidance.as_ref().map(|v| v.span())),
            ("size", g.size.as_ref().map(|v| v.span())),
            ("dtype", g.dtype.as_ref().map(|v| v.span())),
            ("conditioning", g.conditioning.as_ref().map(|v| v.span())),
            ("source", g.source.as_ref().map(|v| v.span())),
            ("strength", g.strength.as_ref().map(|v| v.span())),
        ];
        if let Some((key, Some(span))) = foreign.into_iter().find(|(_, s)| s.is_some()) {
            return Err(error_at(self.path, self.text, span, format!("generators.{key}"), format!(
                "`{key}` does not apply to kind = \"diffusion\": that model is conditioned on the class label alone and trained by the harness on `train_on`; remove it")));
        }
        let Some(variant) = &g.variant else {
            return Err(self.err(&g.name, "generators.variant", "missing `variant`: what the records call these weights, e.g. variant = \"base\" or \"fine-tuned\""));
        };
        if !crate::fsutil::has_name_characters(variant.get_ref()) || variant.get_ref().len() > 40 {
            return Err(self.err(variant, "generators.variant", "use 1 to 40 letters, digits and `-_+.`, not starting with `.`"));
        }
        let train_on = match &g.train_on {
            Some(t) if !t.is_empty() => t,
            _ => return Err(self.err(&g.name, "generators.train_on", "missing `train_on`: the sets the model learns from, e.g. train_on = [\"gen-train\"] (generated images) for a base model or [\"train\"] to fine-tune on the real images")),
        };
        self.no_duplicates(train_on.iter(), "generators.train_on", "training set", "its images would be used twice")?;
        for t in train_on {
            let domain = s.domains.iter().any(|d| d.name.get_ref() == t.get_ref() && d.split == Split::Train && d.source.get_ref() == "procedural");
            let generated = s.generated.iter().find(|x| x.name.get_ref() == t.get_ref() && x.usage == GeneratedUse::Train);
            let by_diffusion = generated.is_some_and(|x| s.generators.iter().any(|k| k.name.get_ref() == x.generator.get_ref() && k.kind == GeneratorKind::Diffusion));
            if by_diffusion {
                return Err(self.err(t, "generators.train_on", format!("`{}` is made by a diffusion generator; a diffusion model learns from real domains and from sets of other generators (to start from another diffusion model, name it in `base`)", t.get_ref())));
            }
            if !domain && generated.is_none() {
                return Err(self.err(t, "generators.train_on", format!(
                    "`{}` is not a procedural domain with split = \"train\" nor a generated set with use = \"train\"; defined: {}",
                    t.get_ref(),
                    list(s.domains.iter().filter(|d| d.split == Split::Train && d.source.get_ref() == "procedural").map(|d| d.name.get_ref().as_str())
                        .chain(s.generated.iter().filter(|x| x.usage == GeneratedUse::Train).map(|x| x.name.get_ref().as_str())))
                )));
            }
        }
        if let Some(base) = &g.base {
            let found = s.generators.iter().find(|k| k.name.get_ref() == base.get_ref());
            match found {
                _ if base.get_ref() == g.name.get_ref() => return Err(self.err(base, "generators.base", "a generator cannot start from its own weights; name another diffusion generator")),
                Some(b) if b.kind == GeneratorKind::Diffusion && b.base.is_none() && b.width.as_ref().map(|w| *w.get_ref()) == g.width.as_ref().map(|w| *w.get_ref()) => {}
                Some(b) if b.kind == GeneratorKind::Diffusion && b.base.is_none() => {
                    return Err(self.err(base, "generators.base", format!("`{}` has another `width`; a fine-tuned model has its base's shape, so give both the same width", base.get_ref())))
                }
                Some(b) if b.kind == GeneratorKind::Diffusion => {
                    return Err(self.err(base, "generators.base", format!("`{}` is itself fine-tuned from another; start from a generator without `base`", base.get_ref())))
                }
                _ => {
                    let defined = s.generators.iter().filter(|k| k.kind == GeneratorKind::Diffusion && k.base.is_none()).map(|k| k.name.get_ref().as_str());
                    return Err(self.err(base, "generators.base", format!("`{}` is not a diffusion generator of this suite; defined: {}", base.get_ref(), list(defined))));
                }
            }
        }
        if let Some(steps) = &g.steps {
            self.positive(steps, "generators.steps")?;
            self.at_most(steps, 1_000_000, "generators.steps", "optimiser steps")?;
        }
        if let Some(b) = &g.batch_size {
            self.positive(b, "generators.batch_size")?;
            self.at_most(b, 1024, "generators.batch_size", "images")?;
        }
        if let Some(w) = &g.width {
            if !(4..=256).contains(w.get_ref()) {
                return Err(self.err(w, "generators.width", "must be between 4 and 256 channels"));
            }
        }
        if let Some(lr) = &g.lr {
            if !(*lr.get_ref() > 0.0 && *lr.get_ref() < 1.0) {
                return Err(self.err(lr, "generators.lr", "must be in (0, 1), Adam's learning rate (e.g. 1e-3; lower for fine-tuning)"));
            }
        }
        if let Some(n) = &g.sample_steps {
            self.positive(n, "generators.sample_steps")?;
            self.at_most(n, crate::generate::diffusion::TIMESTEPS, "generators.sample_steps", "DDIM steps")?;
        }
        if !s.suite.image_size.get_ref().is_multiple_of(8) {
            return Err(self.err(&s.suite.image_size, "suite.image_size", format!("generator `{}` is a diffusion model, which halves its images three times (2×2 patches, then two levels): use an image_size divisible by 8", g.name.get_ref())));
        }
        Ok(())
    }

    fn check_generator(&self, g: &GeneratorSpec, domains: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let diffusion_keys: [(&str, Option<std::ops::Range<usize>>); 6] = [
            ("variant", g.variant.as_ref().map(|v| v.span())),
            ("base", g.base.as_ref().map(|v| v.span())),
            ("train_on", g.train_on.as_ref().and_then(|v| v.first()).map(|v| v.span())),
            ("width", g.width.as_ref().map(|v| v.span())),
            ("lr", g.lr.as_ref().map(|v| v.span())),
            ("sample_steps", g.sample_steps.as_ref().map(|v| v.span())),
        ];
        if let Some((key, Some(span))) = diffusion_keys.into_iter().find(|(_, s)| s.is_some()) {
            return Err(error_at(self.path, self.text, span, format!("generators.{key}"), format!("`{key}` applies to kind = \"diffusion\" only; remove it or change the kind")));
        }
        self.check_conditioning(g, domains)?;
        if g.kind == GeneratorKind::Procedural {
            let sd_keys: [(&str, Option<std::ops::Range<usize>>); 8] = [
                ("preset", g.preset.as_ref().map(|v| v.span())),
                ("weights", g.weights.as_ref().map(|v| v.span())),
                ("scheduler", g.scheduler.as_ref().map(|v| v.span())),
                ("steps", g.steps.as_ref().map(|v| v.span())),
                ("guidance", g.guidance.as_ref().map(|v| v.span())),
                ("size", g.size.as_ref().map(|v| v.span())),
                ("dtype", g.dtype.as_ref().map(|v| v.span())),
                ("batch_size", g.batch_size.as_ref().map(|v| v.span())),
            ];
            if let Some((key, Some(span))) = sd_keys.into_iter().find(|(_, s)| s.is_some()) {
                return Err(error_at(self.path, self.text, span, format!("generators.{key}"), format!("`{key}` applies to kind = \"stable-diffusion\" only; remove it or change the kind")));
            }
            return Ok(());
        }
        if let Some(steps) = &g.steps {
            self.positive(steps, "generators.steps")?;
            self.at_most(steps, MAX_SD_STEPS, "generators.steps", "steps")?;
        }
        if let Some(b) = &g.batch_size {
            self.positive(b, "generators.batch_size")?;
            self.at_most(b, MAX_SD_BATCH, "generators.batch_size", "images")?;
        }
        if let Some(v) = &g.guidance {
            if !(v.get_ref().is_finite() && *v.get_ref() >= 0.0) {
                return Err(self.err(v, "generators.guidance", "must be zero or a positive number (1 or less turns classifier-free guidance off)"));
            }
        }
        if let Some(v) = &g.size {
            let px = *v.get_ref();
            if !(8..=2048).contains(&px) || px % 8 != 0 {
                return Err(self.err(v, "generators.size", "must be a multiple of 8 between 8 and 2048 pixels"));
            }
        }
        Ok(())
    }

    /// `conditioning`, `source` and `strength` (RQ2) agree with each other and the domains.
    fn check_conditioning(&self, g: &GeneratorSpec, domains: &BTreeSet<&str>) -> Result<(), ConfigError> {
        let kind = g.conditioning_kind();
        match (kind, &g.templates) {
            (ConditioningKind::Image, Some(t)) => {
                return Err(self.err(t, "generators.templates", "image conditioning reads no prompt, so it has no templates; remove `templates` (or use conditioning = \"text+image\")"))
            }
            (ConditioningKind::Text | ConditioningKind::TextImage, None) => {
                return Err(self.err(&g.name, "generators.templates", "missing `templates`: \"clip-imagenet-80\" (one of the 80 CLIP ImageNet templates per image) or \"photo-of\""))
            }
            _ => {}
        }
        match (kind, &g.source, &g.strength) {
            (ConditioningKind::Text, Some(src), _) => {
                return Err(self.err(src, "generators.source", "text conditioning starts from no real image; remove `source` or set conditioning = \"image\" or \"text+image\""))
            }
            (ConditioningKind::Text, None, Some(st)) | (ConditioningKind::Image, _, Some(st)) => {
                return Err(self.err(st, "generators.strength", "`strength` applies to conditioning = \"text+image\" only (image conditioning keeps none of the source's pixels); remove it"))
            }
            (ConditioningKind::Image | ConditioningKind::TextImage, None, _) => {
                let example = "e.g. source = \"train\"";
                return Err(match (&g.conditioning, &g.strength) {
                    (Some(c), _) => self.err(c, "generators.source", format!("{} conditioning needs a real domain to start from, {example}", kind_name(kind))),
                    (None, Some(st)) => self.err(st, "generators.source", format!("img2img needs a source domain too, {example}")),
                    (None, None) => unreachable!("inferred text+image has a source or a strength"),
                });
            }
            (ConditioningKind::TextImage, Some(src), None) => {
                let message = "text+image conditioning needs a strength in (0, 1] too, e.g. strength = 0.5";
                return Err(match &g.conditioning {
                    Some(c) => self.err(c, "generators.strength", message),
                    None => self.err(src, "generators.strength", message),
                });
            }
            (ConditioningKind::TextImage, Some(_), Some(st)) => {
                let v = *st.get_ref();
                if !(v > 0.0 && v <= 1.0) {
                    return Err(self.err(st, "generators.strength", "must be in (0, 1]: the share of the picture the prompt repaints (1 = none of the source's pixels survive)"));
                }
            }
            (ConditioningKind::Text, None, None) => {}
            (ConditioningKind::Image, Some(_), None) => {}
        }
        if let Some(src) = &g.source {
            if !domains.contains(src.get_ref().as_str()) {
                return Err(self.err(src, "generators.source", format!("`{}` is not a procedural domain; defined: {}", src.get_ref(), list(domains.iter().copied()))));
            }
        }
        if let (GeneratorKind::StableDiffusion, ConditioningKind::Image, Some(c)) = (g.kind, kind, &g.conditioning) {
            return Err(self.err(c, "generators.conditioning", "image variations need Stable Diffusion's CLIP image encoder, which shiftbench does not run; use conditioning = \"text+image\" (img2img) or kind = \"procedural\""));
        }
        Ok(())
    }

    fn check_training(&self, t: &TrainingSpec) -> Result<(), ConfigError> {
        self.positive(&t.epochs, "training.epochs")?;
        self.at_most(&t.epochs, MAX_EPOCHS, "training.epochs", "epochs")?;
        self.positive(&t.batch_size, "training.batch_size")?;
        self.at_most(&t.batch_size, MAX_BATCH, "training.batch_size", "images")?;
        let checks: [RangeCheck; 4] = [
            (&t.lr, "training.lr", |v| v > 0.0 && v.is_finite(), "must be a positive number"),
            (&t.momentum, "training.momentum", |v| (0.0..1.0).contains(&v), "must be in [0, 1)"),
            (&t.weight_decay, "training.weight_decay", |v| v >= 0.0 && v.is_finite(), "must be zero or positive"),
            (&t.label_smoothing, "training.label_smoothing", |v| (0.0..1.0).contains(&v), "must be in [0, 1)"),
        ];
        let optional: [(&Option<Spanned<f64>>, &'static str, fn(f64) -> bool, &'static str); 4] = [
            (&t.peak_epoch, "training.peak_epoch", |v| v >= 0.0 && v.is_finite(), "must be zero or positive (epochs, fractions allowed)"),
            (&t.warmup_epochs, "training.warmup_epochs", |v| v >= 0.0 && v.is_finite(), "must be zero or positive (epochs, fractions allowed)"),
            (&t.gamma, "training.gamma", |v| v > 0.0 && v < 1.0, "must be in (0, 1), the factor applied at each milestone"),
            (&t.clip_grad_norm, "training.clip_grad_norm", |v| v > 0.0 && v.is_finite(), "must be a positive number (the largest global L2 norm of the gradients)"),
        ];
        let present = optional.iter().filter_map(|(v, key, ok, msg)| v.as_ref().map(|v| (v, *key, *ok, *msg)));
        for (v, key, ok, msg) in checks.into_iter().chain(present) {
            if !ok(*v.get_ref()) {
                return Err(self.err(v, key, msg));
            }
        }
        if let Some(n) = &t.checkpoint_every_steps {
            self.positive(n, "training.checkpoint_every_steps")?;
        }
        self.check_schedule(t)
    }

    /// Which schedule keys go with which schedule: a key that would be silently ignored is an error.
    fn check_schedule(&self, t: &TrainingSpec) -> Result<(), ConfigError> {
        let kind = *t.schedule.get_ref();
        let name = match kind {
            Schedule::Triangular => "triangular",
            Schedule::Cosine => "cosine",
            Schedule::Step => "step",
            Schedule::Constant => "constant",
        };
        let not_for = |what: &str| format!("does not apply to schedule = \"{name}\"; {what}");
        match (kind, &t.peak_epoch, &t.warmup_epochs) {
            (Schedule::Triangular, None, _) => {
                return Err(self.err(&t.schedule, "training.peak_epoch", "schedule = \"triangular\" needs `peak_epoch`, the epoch where the rate peaks"));
            }
            (Schedule::Triangular, Some(_), Some(w)) => {
                return Err(self.err(w, "training.warmup_epochs", not_for("the triangular schedule warms up until `peak_epoch`")));
            }
            (Schedule::Cosine, Some(_), Some(w)) => {
                return Err(self.err(w, "training.warmup_epochs", "give the cosine warm-up once: `peak_epoch` or `warmup_epochs`, not both"));
            }
            (Schedule::Step | Schedule::Constant, Some(p), _) => {
                return Err(self.err(p, "training.peak_epoch", not_for("use `warmup_epochs` for a linear warm-up")));
            }
            _ => {}
        }
        if kind != Schedule::Step {
            if let Some(m) = &t.milestones {
                return Err(self.err(m, "training.milestones", not_for("milestones need schedule = \"step\"")));
            }
            if let Some(g) = &t.gamma {
                return Err(self.err(g, "training.gamma", not_for("gamma needs schedule = \"step\"")));
            }
            return Ok(());
        }
        let Some(milestones) = &t.milestones else {
            return Err(self.err(&t.schedule, "training.milestones", "schedule = \"step\" needs `milestones`, e.g. milestones = [30, 60] (epochs)"));
        };
        let warmup = t.peak_epoch.as_ref().or(t.warmup_epochs.as_ref()).map_or(0.0, |v| *v.get_ref());
        let m = milestones.get_ref();
        let increasing = m.windows(2).all(|w| w[0] < w[1]);
        if m.is_empty() || !increasing || m.iter().any(|&x| !x.is_finite() || x <= warmup) {
            return Err(self.err(milestones, "training.milestones", format!(
                "list epochs in increasing order, each after the warm-up ({warmup} epochs), e.g. milestones = [30, 60]")));
        }
        Ok(())
    }

    fn positive<T: PartialOrd + Default + Copy>(&self, v: &Spanned<T>, key: &str) -> Result<(), ConfigError> {
        if *v.get_ref() > T::default() {
            Ok(())
        } else {
            Err(self.err(v, key, "must be positive"))
        }
    }

    fn at_most<T: PartialOrd + Copy + std::fmt::Display>(&self, v: &Spanned<T>, max: T, key: &str, unit: &str) -> Result<(), ConfigError> {
        if *v.get_ref() <= max {
            Ok(())
        } else {
            Err(self.err(v, key, format!("must be at most {max} {unit} (it is {})", v.get_ref())))
        }
    }

    /// An error at the second occurrence of a value listed twice.
    fn no_duplicates<'s, T: Ord + std::fmt::Display + 's>(&self, values: impl Iterator<Item = &'s Spanned<T>>, key: &str, what: &str, why: &str) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        for v in values {
            if !seen.insert(v.get_ref()) {
                return Err(self.err(v, key, format!("{what} `{}` is listed twice: {why}; list it once", v.get_ref())));
            }
        }
        Ok(())
    }

    pub(super) fn unique_names<'s>(&self, names: impl Iterator<Item = &'s Spanned<String>>, key: &str) -> Result<BTreeSet<&'s str>, ConfigError> {
        let mut seen = BTreeSet::new();
        for n in names {
            if !crate::fsutil::has_name_characters(n.get_ref()) || n.get_ref().len() > crate::fsutil::MAX_NAME_BYTES {
                return Err(self.err(n, key, format!("use 1 to {} letters, digits and `-_+.` only (names become folder names)", crate::fsutil::MAX_NAME_BYTES)));
            }
            if !seen.insert(n.get_ref().as_str()) {
                return Err(self.err(n, key, format!("`{}` is defined twice", n.get_ref())));
            }
        }
        Ok(seen)
    }

    fn reference(&self, r: &Spanned<String>, defined: &BTreeSet<&str>, key: &str, section: &str) -> Result<(), ConfigError> {
        if defined.contains(r.get_ref().as_str()) {
            Ok(())
        } else {
            Err(self.err(r, key, format!("`{}` is not defined in {section}; defined: {}", r.get_ref(), list(defined.iter().copied()))))
        }
    }
}

pub(super) fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn kind_name(kind: ConditioningKind) -> &'static str {
    match kind {
        ConditioningKind::Text => "text",
        ConditioningKind::Image => "image",
        ConditioningKind::TextImage => "text+image",
    }
}
