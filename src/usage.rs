//! Usage errors: a command line that asks for something impossible (flags that exclude each
//! other, a value out of range). The binary exits with status 2 for them, as clap does for the
//! errors it catches itself, and 1 for everything else (a file that does not verify, a failed run).

/// An error in how a command was called; its message says which flags to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A usage error with `message`, as an `anyhow::Error` the binary maps to exit status 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Whether `e` (or an error it wraps) is a usage error.
pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<UsageError>())
}
