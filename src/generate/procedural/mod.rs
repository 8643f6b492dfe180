//! The procedural generator's own painters. They share the object geometry and the rasteriser
//! with the `shapes` world but none of its style code or parameter ranges; see the module
//! documentation of `crate::generate` for how each look differs from the shift domains.

mod condition;
mod line_art;
mod photo;
mod rendition;

use condition::{apply_condition, degrade};
use line_art::line_art;
use photo::studio_photo;
use rendition::rendition;
use crate::generate::prompt::{Degradation, Medium, PromptStyle, Rendition, SizeHint};
use crate::data::procedural::objects::{self, Object};
use crate::data::procedural::paint::{sym, uf, Pose};
use crate::data::procedural::raster::{pt, Canvas};
use crate::rng::Stream;
/// One object placed in the picture.
struct Item {
    object: Object,
    pose: Pose,
}

/// Paints `first` (and, for "many", more of its class) the way `style` asks.
pub fn paint(first: Object, style: &PromptStyle, rng: &mut Stream, size: u32) -> Canvas {
    let medium = concrete_medium(style, rng);
    let scene = layout(first, style, rng, size);
    paint_scene(&scene, medium, style, rng, size)
}

/// Paints a real image's `object` where its domain put it (`pose`), the way `style` asks: the
/// source fixes the composition, so framing words (small, large, many, cropped, close-up, the
/// proportions of "weird") change nothing, as an img2img source fixes the layout.
pub fn paint_from(object: Object, pose: Pose, style: &PromptStyle, rng: &mut Stream, size: u32) -> Canvas {
    let medium = concrete_medium(style, rng);
    paint_scene(&[Item { object, pose }], medium, style, rng, size)
}

fn concrete_medium(style: &PromptStyle, rng: &mut Stream) -> Medium {
    match style.medium {
        Medium::Rendition(Rendition::Assorted) => Medium::Rendition(*rng.pick(&Rendition::CONCRETE)),
        m => m,
    }
}

fn paint_scene(scene: &[Item], medium: Medium, style: &PromptStyle, rng: &mut Stream, size: u32) -> Canvas {
    let mut canvas = match medium {
        Medium::Photo => studio_photo(scene, rng, size),
        Medium::LineArt(kind) => line_art(kind, scene, rng, size),
        Medium::Rendition(kind) => rendition(kind, scene, rng, size),
    };
    apply_condition(&mut canvas, style, rng, size);
    for &d in &style.degradations {
        degrade(&mut canvas, d, rng, size);
    }
    canvas
}

/// Framing. Generated pictures are centred and large by default (the model's favourite
/// composition); prompt words move the camera.
fn layout(first: Object, style: &PromptStyle, rng: &mut Stream, size: u32) -> Vec<Item> {
    let half = size as f32 * 0.5;
    if style.many {
        return crowd(first, rng, size);
    }
    let (mut scale, mut offset) = match style.size {
        SizeHint::Normal => (uf(rng, 0.74, 0.9), 0.04),
        SizeHint::Small => (uf(rng, 0.38, 0.52), 0.25),
        SizeHint::Large => (uf(rng, 0.95, 1.1), 0.05),
    };
    let mut rotation = sym(rng, 0.06);
    let mut aspect = 1.0;
    for d in &style.degradations {
        match d {
            Degradation::Cropped => {
                scale *= uf(rng, 1.3, 1.6);
                offset = 0.35;
            }
            Degradation::CloseUp => {
                scale *= uf(rng, 1.4, 1.8);
                offset = 0.12;
            }
            Degradation::HardToSee => {
                scale *= 0.65;
                offset = 0.3;
            }
            Degradation::Bad => {
                rotation = sym(rng, 0.35);
                offset = 0.2;
            }
            _ => {}
        }
    }
    if style.weird {
        aspect = sym(rng, 0.6).exp();
        rotation += sym(rng, 0.5);
    }
    let pose = Pose {
        centre: pt(half + sym(rng, offset) * half, half + sym(rng, offset) * half),
        scale: scale * half,
        rotation,
        aspect,
        shear: 0.0,
        mirror: rng.chance(0.5),
    };
    vec![Item { object: first, pose }]
}

/// "many": two to four instances in distinct cells of a 3×3 grid.
fn crowd(first: Object, rng: &mut Stream, size: u32) -> Vec<Item> {
    let cell = size as f32 / 3.0;
    let mut cells: Vec<usize> = (0..9).collect();
    rng.shuffle(&mut cells);
    let count = 2 + rng.below(3) as usize;
    let class = first.class;
    let mut objects = vec![first];
    while objects.len() < count {
        objects.push(objects::sample(class, rng));
    }
    objects
        .into_iter()
        .zip(cells)
        .map(|(object, c)| {
            let centre = pt(((c % 3) as f32 + 0.5 + sym(rng, 0.15)) * cell, ((c / 3) as f32 + 0.5 + sym(rng, 0.15)) * cell);
            let pose = Pose {
                centre,
                scale: cell * uf(rng, 0.45, 0.62),
                rotation: sym(rng, 0.1),
                aspect: 1.0,
                shear: 0.0,
                mirror: rng.chance(0.5),
            };
            Item { object, pose }
        })
        .collect()
}
