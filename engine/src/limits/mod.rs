//! What a peer may make the receiver spend, in one place.

mod attempts;

pub use attempts::{AttemptPolicy, Attempts};

/// Everything a peer may make a receiver spend, per session and in total.
/// A hello asking for more is refused with the limit named.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// How wrong tokens are throttled, per source address.
    pub token_attempts: AttemptPolicy,
}
