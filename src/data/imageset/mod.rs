//! Labelled image sets read from files: an extracted artifact or a local folder, in one of the
//! ImageNet family's layouts, streamed through worker threads in batches.
//!
//! - [`listing`]: the images under a folder, sorted ([`list_images`]), one order everywhere;
//! - [`vocab`]: class vocabularies (ImageNet's 1000 wnids with names; the R and A subsets);
//! - [`layout`]: which class a path is, per layout, with completeness checks (pure);
//! - [`objectnet`]: ObjectNet's overlap with ImageNet from the archive's own mapping files;
//! - [`source`]: [`FileImageSet`], the file-backed [`crate::data::ImageSource`], its counts check
//!   and its fingerprint;
//! - [`prefetch`]: [`for_each_batch`], bounded look-ahead decoding by worker threads.

pub mod layout;
pub mod listing;
pub mod objectnet;
pub mod prefetch;
pub mod source;
pub mod vocab;

pub use layout::Layout;
pub use listing::{is_image_name, list_image_files, list_images, ImageFile, IMAGE_EXTENSIONS};
pub use objectnet::ObjectnetClasses;
pub use prefetch::{for_each_batch, Loader};
pub use source::{check_counts, FileImageSet, SetSpec};
pub use vocab::{objectnet_genrob, ClassSubset, Vocabulary};
