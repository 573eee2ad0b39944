//! Tells the engine how it was optimised, so an application that builds it
//! unoptimised (a debug build without a profile override) is warned at run
//! time instead of silently falling behind real time.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=ISOCHRON_OPT_LEVEL={level}");
}
