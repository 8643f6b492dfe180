//! Reading a prompt the way a text-to-image model would: which words ask for which look.
//!
//! The procedural generator conditions on the prompt *text*, never on a template id, so any
//! prompt (a custom template, a hand-written caption) gets a sensible image.

/// The medium a prompt asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Medium {
    /// A photograph (the default when no other medium is named).
    #[default]
    Photo,
    LineArt(LineArt),
    Rendition(Rendition),
}

/// Kinds of line art.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LineArt {
    Sketch,
    Drawing,
    Doodle,
}

/// Kinds of non-photographic rendition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rendition {
    Painting,
    Cartoon,
    Rendering,
    Origami,
    Toy,
    Plastic,
    Plushie,
    VideoGame,
    Tattoo,
    Embroidery,
    Graffiti,
    Sculpture,
    /// "rendition" names no particular medium: one of the others is chosen per image.
    Assorted,
}

impl Rendition {
    /// The concrete kinds `Assorted` chooses from.
    pub const CONCRETE: [Rendition; 12] = [
        Rendition::Painting,
        Rendition::Cartoon,
        Rendition::Rendering,
        Rendition::Origami,
        Rendition::Toy,
        Rendition::Plastic,
        Rendition::Plushie,
        Rendition::VideoGame,
        Rendition::Tattoo,
        Rendition::Embroidery,
        Rendition::Graffiti,
        Rendition::Sculpture,
    ];
}

/// Photographic defects and framings a prompt can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Degradation {
    /// "bad photo": tilted, off-centre, slightly shaken.
    Bad,
    Blurry,
    Pixelated,
    JpegCorrupted,
    Dark,
    Bright,
    BlackAndWhite,
    Cropped,
    CloseUp,
    LowResolution,
    HardToSee,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SizeHint {
    #[default]
    Normal,
    Small,
    Large,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Condition {
    #[default]
    Normal,
    Clean,
    Dirty,
}

/// Everything the generator takes from a prompt.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PromptStyle {
    pub medium: Medium,
    /// In the order the prompt mentions them.
    pub degradations: Vec<Degradation>,
    pub size: SizeHint,
    /// "many": several instances in one image.
    pub many: bool,
    pub condition: Condition,
    /// "weird": odd colours and proportions.
    pub weird: bool,
}

/// What one phrase contributes.
#[derive(Clone, Copy)]
enum Effect {
    Medium(Medium),
    Degrade(Degradation),
    Size(SizeHint),
    Many,
    Condition(Condition),
    Weird,
}

/// Phrases (as lowercase word sequences) and their effects. Longer phrases come first so that
/// "black and white" or "video game" win over any single word they contain.
const PHRASES: &[(&[&str], Effect)] = &[
    (&["black", "and", "white"], Effect::Degrade(Degradation::BlackAndWhite)),
    (&["jpeg", "corrupted"], Effect::Degrade(Degradation::JpegCorrupted)),
    (&["low", "resolution"], Effect::Degrade(Degradation::LowResolution)),
    (&["hard", "to", "see"], Effect::Degrade(Degradation::HardToSee)),
    (&["close", "up"], Effect::Degrade(Degradation::CloseUp)),
    (&["video", "game"], Effect::Medium(Medium::Rendition(Rendition::VideoGame))),
    (&["sketch"], Effect::Medium(Medium::LineArt(LineArt::Sketch))),
    (&["drawing"], Effect::Medium(Medium::LineArt(LineArt::Drawing))),
    (&["doodle"], Effect::Medium(Medium::LineArt(LineArt::Doodle))),
    (&["painting"], Effect::Medium(Medium::Rendition(Rendition::Painting))),
    (&["art"], Effect::Medium(Medium::Rendition(Rendition::Painting))),
    (&["cartoon"], Effect::Medium(Medium::Rendition(Rendition::Cartoon))),
    (&["rendering"], Effect::Medium(Medium::Rendition(Rendition::Rendering))),
    (&["rendition"], Effect::Medium(Medium::Rendition(Rendition::Assorted))),
    (&["origami"], Effect::Medium(Medium::Rendition(Rendition::Origami))),
    (&["toy"], Effect::Medium(Medium::Rendition(Rendition::Toy))),
    (&["plastic"], Effect::Medium(Medium::Rendition(Rendition::Plastic))),
    (&["plushie"], Effect::Medium(Medium::Rendition(Rendition::Plushie))),
    (&["tattoo"], Effect::Medium(Medium::Rendition(Rendition::Tattoo))),
    (&["embroidered"], Effect::Medium(Medium::Rendition(Rendition::Embroidery))),
    (&["graffiti"], Effect::Medium(Medium::Rendition(Rendition::Graffiti))),
    (&["sculpture"], Effect::Medium(Medium::Rendition(Rendition::Sculpture))),
    (&["bad"], Effect::Degrade(Degradation::Bad)),
    (&["blurry"], Effect::Degrade(Degradation::Blurry)),
    (&["pixelated"], Effect::Degrade(Degradation::Pixelated)),
    (&["dark"], Effect::Degrade(Degradation::Dark)),
    (&["bright"], Effect::Degrade(Degradation::Bright)),
    (&["cropped"], Effect::Degrade(Degradation::Cropped)),
    (&["small"], Effect::Size(SizeHint::Small)),
    (&["large"], Effect::Size(SizeHint::Large)),
    (&["many"], Effect::Many),
    (&["clean"], Effect::Condition(Condition::Clean)),
    (&["dirty"], Effect::Condition(Condition::Dirty)),
    (&["weird"], Effect::Weird),
];

/// Lowercase words of a prompt (letters and digits; everything else separates words).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect()
}

/// Reads the style words of a prompt. The first medium named wins; degradations accumulate in
/// order; unknown words are ignored, so "a photo of my car." is a plain photo.
pub fn parse_prompt(prompt: &str) -> PromptStyle {
    let tokens = words(prompt);
    let mut style = PromptStyle::default();
    let mut medium_set = false;
    let mut i = 0;
    while i < tokens.len() {
        let matched =
            PHRASES.iter().find(|(phrase, _)| tokens[i..].len() >= phrase.len() && phrase.iter().zip(&tokens[i..]).all(|(p, t)| p == t));
        let Some(&(phrase, effect)) = matched else {
            i += 1;
            continue;
        };
        match effect {
            Effect::Medium(m) if !medium_set => {
                style.medium = m;
                medium_set = true;
            }
            Effect::Medium(_) => {}
            Effect::Degrade(d) if !style.degradations.contains(&d) => style.degradations.push(d),
            Effect::Degrade(_) => {}
            Effect::Size(s) => style.size = s,
            Effect::Many => style.many = true,
            Effect::Condition(c) => style.condition = c,
            Effect::Weird => style.weird = true,
        }
        i += phrase.len();
    }
    style
}

/// Parses a prompt after removing the class name from it, so a class called, say, "toy poodle"
/// or "drawing pin" does not change the medium.
pub fn parse_prompt_for_class(prompt: &str, class_name: &str) -> PromptStyle {
    let name = words(class_name);
    let tokens = words(prompt);
    let mut kept: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if !name.is_empty() && tokens[i..].starts_with(&name) {
            i += name.len();
            kept.push("|");
        } else {
            kept.push(&tokens[i]);
            i += 1;
        }
    }
    parse_prompt(&kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::templates::{fill, CLIP_IMAGENET_TEMPLATES};

    #[test]
    fn plain_photos_have_no_style() {
        for p in ["a photo of a car.", "itap of my boat.", "a good photo of the fish.", "a photo of the cool key."] {
            assert_eq!(parse_prompt(p), PromptStyle::default(), "{p}");
        }
    }

    #[test]
    fn media_are_recognised() {
        assert_eq!(parse_prompt("a sketch of a tree.").medium, Medium::LineArt(LineArt::Sketch));
        assert_eq!(parse_prompt("a doodle of the cup.").medium, Medium::LineArt(LineArt::Doodle));
        assert_eq!(parse_prompt("art of the house.").medium, Medium::Rendition(Rendition::Painting));
        assert_eq!(parse_prompt("the car in a video game.").medium, Medium::Rendition(Rendition::VideoGame));
        assert_eq!(parse_prompt("a embroidered fish.").medium, Medium::Rendition(Rendition::Embroidery));
        assert_eq!(parse_prompt("a rendition of the key.").medium, Medium::Rendition(Rendition::Assorted));
        assert_eq!(parse_prompt("graffiti of a boat.").medium, Medium::Rendition(Rendition::Graffiti));
    }

    #[test]
    fn degradations_and_hints_are_recognised() {
        let s = parse_prompt("a black and white photo of the umbrella.");
        assert_eq!((s.medium, s.degradations.as_slice()), (Medium::Photo, &[Degradation::BlackAndWhite][..]));
        assert_eq!(parse_prompt("a jpeg corrupted photo of a car.").degradations, vec![Degradation::JpegCorrupted]);
        assert_eq!(parse_prompt("a close-up photo of a fish.").degradations, vec![Degradation::CloseUp]);
        assert_eq!(parse_prompt("a photo of the hard to see key.").degradations, vec![Degradation::HardToSee]);
        assert_eq!(parse_prompt("a low resolution photo of a cup.").degradations, vec![Degradation::LowResolution]);
        assert_eq!(parse_prompt("a blurry, dark photo.").degradations, vec![Degradation::Blurry, Degradation::Dark]);
        assert!(parse_prompt("a photo of many flower.").many);
        assert_eq!(parse_prompt("a photo of the small tree.").size, SizeHint::Small);
        assert_eq!(parse_prompt("a photo of a dirty car.").condition, Condition::Dirty);
        assert!(parse_prompt("a photo of the weird fish.").weird);
    }

    #[test]
    fn words_match_whole_not_inside_other_words() {
        // "art" must not fire inside "cartoon" or "party"; "toy" not inside "toyota".
        assert_eq!(parse_prompt("a cartoon cup.").medium, Medium::Rendition(Rendition::Cartoon));
        assert_eq!(parse_prompt("a photo of a party.").medium, Medium::Photo);
        assert_eq!(parse_prompt("a photo of a toyota.").medium, Medium::Photo);
    }

    #[test]
    fn class_names_do_not_leak_into_the_style() {
        assert_eq!(parse_prompt("a photo of a toy poodle.").medium, Medium::Rendition(Rendition::Toy));
        assert_eq!(parse_prompt_for_class("a photo of a toy poodle.", "toy poodle").medium, Medium::Photo);
        assert_eq!(parse_prompt_for_class("the toy toy poodle.", "toy poodle").medium, Medium::Rendition(Rendition::Toy));
    }

    #[test]
    fn every_clip_template_parses_and_most_carry_a_style() {
        let styled = CLIP_IMAGENET_TEMPLATES.iter().filter(|t| parse_prompt(&fill(t, "boat")) != PromptStyle::default()).count();
        // Plain ones: "photo of my/the/a/one/nice/cool/good", "itap of ...".
        assert!((55..=70).contains(&styled), "{styled} styled templates");
    }
}
