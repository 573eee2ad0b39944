//! `isochron devices`: the sound cards `send --device` and `recv --play` can use.

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct DevicesArgs {}

#[cfg(feature = "device")]
pub fn run(_a: DevicesArgs) -> Result<u8> {
    use crate::say;
    let devices = match isochron_engine::net::device::list() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::exit::ERROR);
        }
    };
    if devices.is_empty() {
        eprintln!("no sound devices (no sound card, and no ALSA PCM defined)");
        return Ok(crate::exit::ERROR);
    }
    for d in devices {
        let dir = match (d.input, d.output) {
            (true, true) => "capture+playback",
            (true, false) => "capture",
            (false, true) => "playback",
            (false, false) => "unusable",
        };
        let cfg = d
            .config
            .map(|(c, r)| format!(" ({c} ch, {r} Hz)"))
            .unwrap_or_default();
        let def = if d.default { " [default]" } else { "" };
        say(format!("{}\t{dir}{cfg}{def}", d.name));
    }
    Ok(0)
}

#[cfg(not(feature = "device"))]
pub fn run(_a: DevicesArgs) -> Result<u8> {
    eprintln!("error: this isochron was built without sound devices (feature `device`)");
    Ok(crate::exit::ERROR)
}
