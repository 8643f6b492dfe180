//! Sweeps: one numeric key of a generated set or regime, several values (the paper's RQ3, "how
//! much generated data"). Validation here; expansion turns each value into a generated set and
//! regimes of its own, so planning, keys, training and records need nothing sweep-specific beyond
//! the [`SweepPoint`] each derived regime carries into its records.
//!
//! A derived name is `<base>.<sweep>-<value>` (`real+generated.amount-2500`): a plain name that
//! sorts next to its base and says which value it is. A swept generated set draws its images from
//! the base set's random streams, so the sizes of one sweep are nested prefixes of one another
//! and differ only in how many images there are, not in which.

use super::resolve::SuiteConfig;
use super::validate::SuiteValidator;
use super::{GeneratedUse, SuiteFile, SweepSpec};
use crate::config_error::ConfigError;
use crate::fsutil::MAX_NAME_BYTES;
use crate::record::SweepPoint;
use crate::train::Mix;
use std::collections::BTreeSet;

/// What a sweep's `key` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `generated.<set>.size`: images in a generated training set.
    GeneratedSize(&'a str),
    /// `regimes.<regime>.mix.generated_fraction`: share of each batch drawn from generated sets.
    GeneratedFraction(&'a str),
}

/// The key forms a sweep accepts, for the error that lists them.
const KEY_FORMS: &str = "`generated.<set>.size` or `regimes.<regime>.mix.generated_fraction`";

/// Largest swept set size: the bound on every set's size.
const MAX_SWEPT_SIZE: f64 = super::validate::MAX_SET_IMAGES as f64;

/// Names may contain dots, so the key is split at its fixed prefix and suffix only.
fn target(key: &str) -> Option<Target<'_>> {
    if let Some(set) = key.strip_prefix("generated.").and_then(|k| k.strip_suffix(".size")) {
        return Some(Target::GeneratedSize(set));
    }
    key.strip_prefix("regimes.").and_then(|k| k.strip_suffix(".mix.generated_fraction")).map(Target::GeneratedFraction)
}

/// A value as it appears in derived names and in messages: `2500`, `0.25`.
pub fn value_label(v: f64) -> String {
    format!("{v}")
}

fn derived_name(base: &str, sweep: &str, value: f64) -> String {
    format!("{base}.{sweep}-{}", value_label(value))
}

/// The leaderboard regimes that train on generated set `set`.
fn regimes_on<'s>(s: &'s SuiteFile, set: &str) -> Vec<&'s str> {
    s.leaderboard
        .iter()
        .flat_map(|l| &l.regimes)
        .map(|r| r.get_ref().as_str())
        .filter(|r| s.regimes.iter().any(|x| x.name.get_ref() == r && x.train_on.iter().any(|t| t.get_ref() == set)))
        .collect()
}

impl SuiteValidator<'_> {
    pub(super) fn check_sweeps(&self, s: &SuiteFile) -> Result<(), ConfigError> {
        self.unique_names(s.sweeps.iter().map(|w| &w.name), "sweeps.name")?;
        let mut keys = BTreeSet::new();
        let mut taken: BTreeSet<String> = s.generated.iter().map(|g| g.name.get_ref().clone()).chain(s.regimes.iter().map(|r| r.name.get_ref().clone())).collect();
        for w in &s.sweeps {
            if !keys.insert(w.key.get_ref().as_str()) {
                return Err(self.err(&w.key, "sweeps.key", format!("`{}` is swept twice; list every value in one sweep", w.key.get_ref())));
            }
            let values = w.values.get_ref();
            if values.is_empty() {
                return Err(self.err(&w.values, "sweeps.values", "list at least one value, e.g. values = [0, 2500, 5000]"));
            }
            for (i, v) in values.iter().enumerate() {
                if values[..i].contains(v) {
                    return Err(self.err(&w.values, "sweeps.values", format!("{} is listed twice", value_label(*v))));
                }
            }
            let swept = match target(w.key.get_ref()) {
                Some(Target::GeneratedSize(set)) => self.check_size_sweep(s, w, set)?,
                Some(Target::GeneratedFraction(regime)) => self.check_fraction_sweep(s, w, regime)?,
                None => {
                    return Err(self.err(&w.key, "sweeps.key", format!("`{}` is not a key a sweep can vary; use {KEY_FORMS}", w.key.get_ref())))
                }
            };
            for base in swept {
                for &v in values {
                    let name = derived_name(&base, w.name.get_ref(), v);
                    if name.len() > MAX_NAME_BYTES {
                        return Err(self.err(&w.name, "sweeps.name", format!("the derived name `{name}` is longer than {MAX_NAME_BYTES} bytes; use a shorter sweep name")));
                    }
                    if !taken.insert(name.clone()) {
                        return Err(self.err(&w.name, "sweeps.name", format!("the derived name `{name}` is already a set or regime name; rename the sweep")));
                    }
                }
            }
        }
        Ok(())
    }

    /// A size sweep varies a generated training set that leaderboard regimes train on; returns
    /// the names it derives from (the set and those regimes).
    fn check_size_sweep(&self, s: &SuiteFile, w: &SweepSpec, set: &str) -> Result<Vec<String>, ConfigError> {
        let Some(g) = s.generated.iter().find(|g| g.name.get_ref() == set) else {
            return Err(self.err(&w.key, "sweeps.key", format!(
                "`{set}` is not a generated set; defined: {}", super::validate::list(s.generated.iter().map(|g| g.name.get_ref().as_str())))));
        };
        if g.usage != GeneratedUse::Train {
            return Err(self.err(&w.key, "sweeps.key", format!("`{set}` is an evaluation set (use = \"eval\"); sweep a generated training set")));
        }
        let regimes = regimes_on(s, set);
        if regimes.is_empty() {
            return Err(self.err(&w.key, "sweeps.key", format!("no `[leaderboard] regimes` entry trains on `{set}`, so sweeping its size changes nothing")));
        }
        for &v in w.values.get_ref() {
            if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SWEPT_SIZE) {
                return Err(self.err(&w.values, "sweeps.values", format!("{} is not a set size: use whole numbers from 0 to {MAX_SWEPT_SIZE}", value_label(v))));
            }
            if v == 0.0 {
                for r in &regimes {
                    let spec = s.regimes.iter().find(|x| x.name.get_ref() == r).expect("listed above");
                    if spec.train_on.len() == 1 || spec.mix.is_some() {
                        return Err(self.err(&w.values, "sweeps.values", format!(
                            "size 0 leaves regime `{r}` {}; start the sweep above 0 or sweep only regimes that also train on real data",
                            if spec.mix.is_some() { "mixing batches with no generated images" } else { "with no training images" })));
                    }
                }
            }
        }
        Ok(std::iter::once(set.to_string()).chain(regimes.into_iter().map(String::from)).collect())
    }

    /// A fraction sweep varies a leaderboard regime that already mixes per batch.
    fn check_fraction_sweep(&self, s: &SuiteFile, w: &SweepSpec, regime: &str) -> Result<Vec<String>, ConfigError> {
        let Some(r) = s.regimes.iter().find(|r| r.name.get_ref() == regime) else {
            return Err(self.err(&w.key, "sweeps.key", format!(
                "`{regime}` is not a regime; defined: {}", super::validate::list(s.regimes.iter().map(|r| r.name.get_ref().as_str())))));
        };
        if !s.leaderboard.iter().flat_map(|l| &l.regimes).any(|x| x.get_ref() == regime) {
            return Err(self.err(&w.key, "sweeps.key", format!("regime `{regime}` is not in `[leaderboard] regimes`; add it there to sweep it")));
        }
        if r.mix.is_none() {
            return Err(self.err(&w.key, "sweeps.key", format!(
                "regime `{regime}` does not mix per batch; give it `mix = {{ generated_fraction = 0.5 }}` to sweep the fraction")));
        }
        for &v in w.values.get_ref() {
            if !(v > 0.0 && v < 1.0) {
                return Err(self.err(&w.values, "sweeps.values", format!("{} is not a fraction in (0, 1)", value_label(v))));
            }
        }
        Ok(vec![regime.to_string()])
    }
}

/// Adds each sweep's derived generated sets and regimes to `config` (after its own), and the
/// derived regimes to the leaderboard. Runs on a validated file.
pub(super) fn expand(file: &SuiteFile, config: &mut SuiteConfig) {
    for w in &file.sweeps {
        let (sweep, key) = (w.name.get_ref().as_str(), w.key.get_ref().as_str());
        let point = |value: f64| SweepPoint { sweep: sweep.to_string(), key: key.to_string(), value };
        match target(key) {
            Some(Target::GeneratedSize(set)) => {
                let Some(base) = config.generated_set(set).cloned() else { continue };
                let regimes: Vec<_> = regimes_on(file, set).into_iter().filter_map(|r| config.regime(r).cloned()).collect();
                for &v in w.values.get_ref() {
                    // The base size is the base set itself: the same images, made once.
                    let set_name = if v as usize == base.size { base.name.clone() } else { derived_name(set, sweep, v) };
                    if v > 0.0 && set_name != base.name {
                        config.generated.push(super::GeneratedSet { name: set_name.clone(), size: v as usize, ..base.clone() });
                    }
                    for r in &regimes {
                        let train_on = r
                            .train_on
                            .iter()
                            .filter(|t| v > 0.0 || t.as_str() != set)
                            .map(|t| if t == set { set_name.clone() } else { t.clone() })
                            .collect();
                        let name = derived_name(&r.name, sweep, v);
                        config.leaderboard.regimes.push(name.clone());
                        config.regimes.push(super::Regime { name, train_on, sweep: Some(point(v)), ..r.clone() });
                    }
                }
            }
            Some(Target::GeneratedFraction(regime)) => {
                let Some(base) = config.regime(regime).cloned() else { continue };
                for &v in w.values.get_ref() {
                    let name = derived_name(regime, sweep, v);
                    config.leaderboard.regimes.push(name.clone());
                    config.regimes.push(super::Regime { name, mix: Mix::GeneratedFraction(v), sweep: Some(point(v)), ..base.clone() });
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_their_fixed_parts_so_names_may_hold_dots() {
        assert_eq!(target("generated.gen.train.size"), Some(Target::GeneratedSize("gen.train")));
        assert_eq!(target("regimes.real+generated.mix.generated_fraction"), Some(Target::GeneratedFraction("real+generated")));
        assert_eq!(target("generated.gen-train.count"), None);
        assert_eq!(target("training.lr"), None);
    }

    #[test]
    fn derived_names_print_values_as_written() {
        assert_eq!(derived_name("real+generated", "amount", 2500.0), "real+generated.amount-2500");
        assert_eq!(derived_name("mixed", "fraction", 0.25), "mixed.fraction-0.25");
    }
}
