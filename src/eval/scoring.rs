//! Scoring rules: how a row of logits becomes a ranked list of classes of a label space, for the
//! ImageNet evaluation protocols of the imagenet-testbed and of the generative-robustness code.
//!
//! Every rule is one table, `groups`: label *k* of the rule's label space is scored by the
//! highest of the logits `groups[k]`. That single form covers them all:
//!
//! | rule | label space | groups | images |
//! |---|---|---|---|
//! | `full` | the model's classes | `[c]` per class | all |
//! | `imagenet-r`, `imagenet-a` | the subset's 200 classes (sorted wnids) | `[c]` per subset class | all (each must be in the subset) |
//! | `imagenet-r-classes`, `imagenet-a-classes` | the same 200 | the same | only images of those classes (the testbed's `val-on-imagenet-r-classes`) |
//! | `objectnet-testbed` | ObjectNet's 113 overlapping classes (sorted names) | the 1–3 ImageNet classes each maps to (125 in all) | all; a 2-pixel border is cropped first |
//! | `objectnet-classes` | the same 113 | the same | only images of the 125 classes (`val-on-objectnet-classes`) |
//! | `objectnet-genrob` | the same 113 | one wnid per class (the generative-robustness list) | all; no border crop |
//! | `objectnet-genrob-classes` | the same 113 | the same | only images of those 113 wnids |
//!
//! For the testbed's ObjectNet rule this is exactly its "argmax over the 125 mapped logits,
//! correct when the class is any mapped to the image's folder": the 125 classes belong to one
//! ObjectNet class each, so the best group holds the best of the 125. Ranking: higher score
//! first, equal scores by the lower label (a stable sort, as `predict`'s top-k), NaN last.

use crate::data::imageset::{ClassSubset, ObjectnetClasses, Vocabulary};
use anyhow::{bail, ensure, Context, Result};

/// Predictions kept per image: the five best labels.
pub const TOP: usize = 5;

/// Which protocol a domain is scored by (the suite's `protocol` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoringRule {
    Full,
    ImagenetR,
    ImagenetA,
    ImagenetRClasses,
    ImagenetAClasses,
    ObjectnetTestbed,
    ObjectnetClasses,
    ObjectnetGenrob,
    ObjectnetGenrobClasses,
}

impl ScoringRule {
    pub const ALL: [ScoringRule; 9] = [
        ScoringRule::Full,
        ScoringRule::ImagenetR,
        ScoringRule::ImagenetA,
        ScoringRule::ImagenetRClasses,
        ScoringRule::ImagenetAClasses,
        ScoringRule::ObjectnetTestbed,
        ScoringRule::ObjectnetClasses,
        ScoringRule::ObjectnetGenrob,
        ScoringRule::ObjectnetGenrobClasses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScoringRule::Full => "full",
            ScoringRule::ImagenetR => "imagenet-r",
            ScoringRule::ImagenetA => "imagenet-a",
            ScoringRule::ImagenetRClasses => "imagenet-r-classes",
            ScoringRule::ImagenetAClasses => "imagenet-a-classes",
            ScoringRule::ObjectnetTestbed => "objectnet-testbed",
            ScoringRule::ObjectnetClasses => "objectnet-classes",
            ScoringRule::ObjectnetGenrob => "objectnet-genrob",
            ScoringRule::ObjectnetGenrobClasses => "objectnet-genrob-classes",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Rules whose images are ImageNet val images filtered to the label space's classes (an ID
    /// axis), rather than a set whose every image must be scored.
    pub fn filters_images(self) -> bool {
        matches!(self, ScoringRule::ImagenetRClasses | ScoringRule::ImagenetAClasses | ScoringRule::ObjectnetClasses | ScoringRule::ObjectnetGenrobClasses)
    }

    /// Rules that read ObjectNet's class list (the `objectnet` layout's mapping files).
    pub fn needs_objectnet(self) -> bool {
        matches!(self, ScoringRule::ObjectnetTestbed | ScoringRule::ObjectnetClasses | ScoringRule::ObjectnetGenrob | ScoringRule::ObjectnetGenrobClasses)
    }

    /// Rules applied to the ObjectNet images themselves (labels already in ObjectNet's label space).
    pub fn reads_objectnet_images(self) -> bool {
        matches!(self, ScoringRule::ObjectnetTestbed | ScoringRule::ObjectnetGenrob)
    }

    /// Pixels cropped from every side before the eval transform: the testbed's ObjectNet
    /// protocol removes the images' 2-pixel red border (`ImageOps.crop(border=2)`); the
    /// generative-robustness code does not.
    pub fn border(self) -> u32 {
        if self == ScoringRule::ObjectnetTestbed {
            2
        } else {
            0
        }
    }
}

/// A scoring rule made concrete for one vocabulary: the logits behind each label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoring {
    pub rule: ScoringRule,
    /// `groups[k]`: the logits (class indices of the model) that score label `k`.
    pub groups: Vec<Vec<u32>>,
    /// How many logits the model must have.
    pub model_classes: usize,
}

impl Scoring {
    /// Argmax over all `classes` logits.
    pub fn full(classes: usize) -> Self {
        Self { rule: ScoringRule::Full, groups: (0..classes as u32).map(|c| vec![c]).collect(), model_classes: classes }
    }

    /// `rule` with its groups; checks that every group is non-empty, in range and disjoint from
    /// the others (a class standing for two labels would make top-1 ambiguous).
    pub fn new(rule: ScoringRule, groups: Vec<Vec<u32>>, model_classes: usize) -> Result<Self> {
        ensure!(!groups.is_empty(), "scoring `{}` has no classes", rule.name());
        let mut owner = vec![u32::MAX; model_classes];
        for (k, g) in groups.iter().enumerate() {
            ensure!(!g.is_empty(), "scoring `{}`: label {k} has no logit", rule.name());
            for &c in g {
                ensure!((c as usize) < model_classes, "scoring `{}`: label {k} reads logit {c} of a {model_classes}-class model", rule.name());
                if owner[c as usize] != u32::MAX {
                    bail!("scoring `{}`: logit {c} stands for labels {} and {k}", rule.name(), owner[c as usize]);
                }
                owner[c as usize] = k as u32;
            }
        }
        Ok(Self { rule, groups, model_classes })
    }

    /// `rule` for a suite whose classes are `vocab`; the ObjectNet rules need ObjectNet's own
    /// class list (`objectnet`, from its mapping files) except the genrob ID axis, whose list
    /// ships with the harness.
    pub fn for_rule(rule: ScoringRule, vocab: &Vocabulary, objectnet: Option<&ObjectnetClasses>) -> Result<Self> {
        let singles = |labels: Vec<u32>| labels.into_iter().map(|l| vec![l]).collect::<Vec<_>>();
        let imagenet = || {
            ensure!(vocab.len() == 1000 && vocab.ids.first().map(String::as_str) == Some("n01440764"), "scoring `{}` needs the suite's classes to be ImageNet's 1000 (`[suite] vocabulary = \"imagenet-1k\"`)", rule.name());
            Ok(())
        };
        let groups = match rule {
            ScoringRule::Full => return Ok(Self::full(vocab.len())),
            ScoringRule::ImagenetR | ScoringRule::ImagenetRClasses => {
                imagenet()?;
                singles(ClassSubset::ImagenetR.labels(vocab)?)
            }
            ScoringRule::ImagenetA | ScoringRule::ImagenetAClasses => {
                imagenet()?;
                singles(ClassSubset::ImagenetA.labels(vocab)?)
            }
            ScoringRule::ObjectnetTestbed | ScoringRule::ObjectnetClasses => {
                imagenet()?;
                objectnet.with_context(|| format!("scoring `{}` needs ObjectNet's mapping files (the `objectnet` layout's `mappings/`)", rule.name()))?.imagenet.clone()
            }
            ScoringRule::ObjectnetGenrob | ScoringRule::ObjectnetGenrobClasses => {
                imagenet()?;
                let list = crate::data::imageset::objectnet_genrob();
                if let Some(o) = objectnet {
                    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
                    ensure!(
                        o.names.iter().map(String::as_str).eq(names.iter().copied()),
                        "scoring `{}`: this ObjectNet's overlapping classes are not the 113 of the generative-robustness list; is its mappings/ folder that of ObjectNet 1.0?",
                        rule.name()
                    );
                }
                let index = vocab.index();
                singles(list.iter().map(|(_, w)| index[w]).collect())
            }
        };
        Self::new(rule, groups, vocab.len())
    }

    /// The label of each image in this rule's label space, from its label in the set (the
    /// suite's classes, or ObjectNet's for the rules that read ObjectNet's images); `None`
    /// drops the image, which only the ID-axis rules do (val images of other classes). An image
    /// of a class the rule does not score, in a set that must be scored whole, is an error.
    pub fn relabel(&self, labels: &[u32]) -> Result<Vec<Option<u32>>> {
        if self.rule == ScoringRule::Full || self.rule.reads_objectnet_images() {
            if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= self.classes()) {
                bail!("image {i} has label {l}, outside scoring `{}`'s {} classes", self.rule.name(), self.classes());
            }
            return Ok(labels.iter().map(|&l| Some(l)).collect());
        }
        let of_class = self.label_of_class();
        labels
            .iter()
            .enumerate()
            .map(|(i, &l)| match of_class.get(l as usize).copied().flatten() {
                Some(k) => Ok(Some(k)),
                None if self.rule.filters_images() => Ok(None),
                None => bail!("image {i} is of class {l}, which scoring `{}` does not score: the set holds classes outside its {}", self.rule.name(), self.classes()),
            })
            .collect()
    }

    /// Size of the label space.
    pub fn classes(&self) -> usize {
        self.groups.len()
    }

    /// Logits read, all groups together.
    pub fn logits_read(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// Model class → label, for the classes some label reads.
    pub fn label_of_class(&self) -> Vec<Option<u32>> {
        let mut out = vec![None; self.model_classes];
        for (k, g) in self.groups.iter().enumerate() {
            for &c in g {
                out[c as usize] = Some(k as u32);
            }
        }
        out
    }

    /// The [`TOP`] best labels of one row of logits, best first (fewer when the label space
    /// is smaller).
    pub fn rank(&self, logits: &[f32]) -> Vec<u32> {
        let score = |k: usize| self.groups[k].iter().map(|&c| logits[c as usize]).fold(f32::NAN, |a, b| if a.is_nan() || b > a { b } else { a });
        let scores: Vec<f32> = (0..self.groups.len()).map(score).collect();
        crate::predict::top_k(&scores, TOP)
    }
}

/// Top-1 and top-5 counts of one evaluation, overall and per true label (top-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub n: u64,
    pub correct: u64,
    pub correct_top5: u64,
    pub per_class_total: Vec<u64>,
    pub per_class_correct: Vec<u64>,
}

/// Counts ranked predictions (best first, as [`Scoring::rank`] gives) against `labels` over a
/// label space of `classes`.
pub fn count(ranked: &[Vec<u32>], labels: &[u32], classes: usize) -> Result<Counts> {
    ensure!(ranked.len() == labels.len(), "{} predictions for {} images", ranked.len(), labels.len());
    let mut per_class_total = vec![0u64; classes];
    let mut per_class_correct = vec![0u64; classes];
    let mut correct_top5 = 0;
    for (r, &l) in ranked.iter().zip(labels) {
        ensure!((l as usize) < classes, "label {l} outside the {classes} classes");
        per_class_total[l as usize] += 1;
        if r.first() == Some(&l) {
            per_class_correct[l as usize] += 1;
        }
        if r.iter().take(TOP).any(|&p| p == l) {
            correct_top5 += 1;
        }
    }
    Ok(Counts { n: labels.len() as u64, correct: per_class_correct.iter().sum(), correct_top5, per_class_total, per_class_correct })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_score_by_their_best_logit_and_ties_go_to_the_lower_label() {
        // Label 0 reads logits {0, 3}, label 1 reads {1}, label 2 reads {2}; logit 4 is unread.
        let s = Scoring::new(ScoringRule::ObjectnetTestbed, vec![vec![0, 3], vec![1], vec![2]], 5).unwrap();
        assert_eq!(s.rank(&[0.1, 0.5, 0.2, 0.9, 9.0]), [0, 1, 2]);
        assert_eq!(s.rank(&[0.1, 0.5, 0.5, 0.2, 9.0]), [1, 2, 0]);
        assert_eq!(s.rank(&[f32::NAN, 0.5, 0.1, f32::NAN, 9.0]), [1, 2, 0]);
        assert_eq!(s.label_of_class(), [Some(0), Some(1), Some(2), Some(0), None]);
        assert_eq!(s.logits_read(), 4);
    }

    #[test]
    fn overlapping_empty_or_out_of_range_groups_are_refused() {
        assert!(Scoring::new(ScoringRule::ImagenetR, vec![vec![0], vec![0]], 3).is_err());
        assert!(Scoring::new(ScoringRule::ImagenetR, vec![vec![]], 3).is_err());
        assert!(Scoring::new(ScoringRule::ImagenetR, vec![vec![3]], 3).is_err());
    }

    #[test]
    fn counts_top1_per_class_and_top5() {
        let ranked = vec![vec![0, 1, 2, 3, 4], vec![2, 1, 0, 3, 4], vec![5, 4, 3, 2, 1], vec![1]];
        let c = count(&ranked, &[0, 1, 0, 1], 6).unwrap();
        assert_eq!((c.n, c.correct, c.correct_top5), (4, 2, 3));
        assert_eq!(c.per_class_total, [2, 2, 0, 0, 0, 0]);
        assert_eq!(c.per_class_correct, [1, 1, 0, 0, 0, 0]);
        assert!(count(&ranked, &[0, 1, 0, 6], 6).is_err());
    }

    #[test]
    fn subsets_keep_their_classes_and_id_axes_drop_the_others() {
        let v = Vocabulary::imagenet_1k();
        let r = Scoring::for_rule(ScoringRule::ImagenetR, &v, None).unwrap();
        assert_eq!((r.classes(), r.logits_read()), (200, 200));
        // Torchvision classes 1 and 2 are ImageNet-R's first two; 0 (tench) is not one of them.
        assert_eq!(r.relabel(&[1, 2]).unwrap(), [Some(0), Some(1)]);
        assert!(r.relabel(&[0]).is_err(), "an ImageNet-R set must not hold other classes");
        let axis = Scoring::for_rule(ScoringRule::ImagenetRClasses, &v, None).unwrap();
        assert_eq!(axis.relabel(&[0, 2]).unwrap(), [None, Some(1)]);
        let genrob = Scoring::for_rule(ScoringRule::ObjectnetGenrobClasses, &v, None).unwrap();
        assert_eq!((genrob.classes(), genrob.logits_read()), (113, 113));
        assert!(Scoring::for_rule(ScoringRule::ObjectnetTestbed, &v, None).is_err(), "needs ObjectNet's mappings");
        let ten = Vocabulary::named(&["a", "b"]);
        assert!(Scoring::for_rule(ScoringRule::ImagenetR, &ten, None).is_err());
    }

    #[test]
    fn rule_names_round_trip() {
        for r in ScoringRule::ALL {
            assert_eq!(ScoringRule::from_name(r.name()), Some(r));
        }
    }
}
