//! Real image files to model inputs exactly as the field's published numbers were made: decoded
//! as `PIL.Image.open(path).convert("RGB")`, resized with Pillow's resampler and transformed as
//! torchvision's or timm's eval transform does on a PIL image.
//!
//! - [`decode`]: PNG and JPEG files to 8-bit RGB ([`open_rgb`], [`decode_rgb`], [`DecodeError`]).
//!   PNG is bit-identical to Pillow; JPEG is within the bounds documented there.
//! - [`resample`]: Pillow's `Image.resize` ([`resize`], [`Filter`]), bit-identical.
//! - [`transform`]: `Resize`, `CenterCrop`, `ToTensor`, `Normalize` ([`Preprocess`],
//!   [`ImageTensor`]), and ObjectNet's border crop.
//!
//! `fixtures/preprocess/` holds Pillow's outputs (and the script that makes them) that
//! `tests/preprocess.rs` compares against.

pub mod decode;
pub mod resample;
pub mod transform;

pub use decode::{decode_rgb, open_rgb, DecodeError};
pub use resample::{resize, resize_in_order, Filter, PassOrder};
pub use transform::{center_crop, crop_border, normalize, resize_short_side, ImageTensor, Preprocess};
