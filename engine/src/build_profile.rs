//! How this engine was compiled, and the warning for a build too slow for
//! real time.
//!
//! Cargo compiles an application's dependencies with the application's
//! profile: in a debug build, unoptimised unless the application overrides
//! it. FEC and playout then fall behind real time. A library cannot choose
//! its own optimisation, so the engine says so once, at start, with the
//! override to add.

use std::sync::Once;

/// The optimisation level the engine was compiled with (Cargo's
/// `OPT_LEVEL`: "0", "1", "2", "3", "s" or "z").
pub const OPT_LEVEL: &str = env!("ISOCHRON_OPT_LEVEL");

/// What an application puts in its `Cargo.toml` so debug builds optimise
/// their dependencies (the README and the crate documentation say the same).
pub const PROFILE_OVERRIDE: &str = "[profile.dev.package.\"*\"]\nopt-level = 3";

/// The warning for an engine built at `opt_level`, if it is too slow for
/// real time.
pub fn warning(opt_level: &str) -> Option<String> {
    (opt_level == "0").then(|| {
        format!(
            "isochron-engine was built without optimisation (a debug build): FEC and playout \
             may fall behind real time. Add to your application's Cargo.toml:\n{PROFILE_OVERRIDE}"
        )
    })
}

/// Log [`warning`] for this build, once per process.
pub fn warn_if_unoptimised() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(w) = warning(OPT_LEVEL) {
            tracing::warn!("{w}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unoptimised_build_is_told_the_override() {
        let w = warning("0").expect("opt-level 0 warns");
        assert!(w.contains(PROFILE_OVERRIDE), "{w}");
        for level in ["1", "2", "3", "s", "z"] {
            assert_eq!(warning(level), None, "{level}");
        }
        // Cargo told the build script (this workspace's dev profile
        // optimises at level 1).
        assert!(
            ["0", "1", "2", "3", "s", "z"].contains(&OPT_LEVEL),
            "{OPT_LEVEL:?}"
        );
    }
}
