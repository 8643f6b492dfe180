//! Progress bars that stay out of the way: drawn only when stdout is a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A bar of `len` steps labelled `what`; hidden (but still countable) when stdout is not a
/// terminal, so logs and CI output stay clean.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12.bold} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
            .expect("static progress template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// A download bar counting bytes, with rate and ETA (a spinner with bytes and rate when the size
/// is unknown); hidden when stdout is not a terminal.
pub fn bytes_bar(total: Option<u64>, what: &str) -> ProgressBar {
    if !is_terminal() {
        return ProgressBar::hidden();
    }
    let (pb, template) = match total {
        Some(t) => (ProgressBar::new(t), "{prefix:>12.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}"),
        None => (ProgressBar::new_spinner(), "{prefix:>12.bold} {spinner} {bytes} {bytes_per_sec}"),
    };
    pb.set_style(ProgressStyle::with_template(template).expect("static progress template").progress_chars("=> "));
    pb.set_prefix(what.to_string());
    pb
}

/// Whether progress output should be drawn at all.
pub fn is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Prints a one-line status message, only when stdout is a terminal.
pub fn say(msg: impl AsRef<str>) {
    if is_terminal() {
        println!("{}", msg.as_ref());
    }
}

/// Prints a one-line warning on stderr, terminal or not: something on disk did not match and was
/// set aside, which a log must show.
pub fn warn(msg: impl AsRef<str>) {
    eprintln!("warning: {}", msg.as_ref());
}
