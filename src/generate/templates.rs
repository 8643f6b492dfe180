//! Prompt templates. `{}` stands for the class name.

/// The 80 prompt templates CLIP used for zero-shot ImageNet classification, in their published
/// order; the paper draws one uniformly per generated image.
pub const CLIP_IMAGENET_TEMPLATES: [&str; 80] = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
];

/// The single template of the paper's "no prompt diversity" ablation.
pub const PHOTO_OF_TEMPLATE: &str = "a photo of a {}.";

/// A template with the class name filled in.
pub fn fill(template: &str, class_name: &str) -> String {
    template.replacen("{}", class_name, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighty_distinct_templates_each_with_one_slot() {
        assert_eq!(CLIP_IMAGENET_TEMPLATES.len(), 80);
        let distinct: std::collections::HashSet<&str> = CLIP_IMAGENET_TEMPLATES.iter().copied().collect();
        assert_eq!(distinct.len(), 80);
        for t in CLIP_IMAGENET_TEMPLATES.iter().chain([&PHOTO_OF_TEMPLATE]) {
            assert_eq!(t.matches("{}").count(), 1, "{t}");
        }
        assert_eq!(CLIP_IMAGENET_TEMPLATES[0], "a bad photo of a {}.");
        assert_eq!(CLIP_IMAGENET_TEMPLATES[35], "a {} in a video game.");
        assert_eq!(CLIP_IMAGENET_TEMPLATES[79], "a tattoo of the {}.");
        assert!(CLIP_IMAGENET_TEMPLATES.contains(&PHOTO_OF_TEMPLATE));
    }

    #[test]
    fn fill_substitutes_the_class() {
        assert_eq!(fill("a {} in a video game.", "boat"), "a boat in a video game.");
    }
}
