//! Sound devices through cpal (ALSA on Linux), behind the `device` feature.
//!
//! - [`playback::DeviceSink`]: a [`super::sink::Sink`] that plays one audio
//!   substream on a card, kept at its target latency against the card's
//!   own clock by the drift loop ([`crate::playout::drift`]).
//! - [`capture::open_capture`]: a card's input as a substream whose media
//!   clock is the card's sample count.
//! - [`list`]: the cards there are.
//!
//! A machine without a sound card gets a [`DeviceError`] that says so,
//! never a panic. Each stream lives on a thread of its own that owns the
//! cpal stream (not every platform lets one move between threads).

pub mod capture;
pub mod playback;

use cpal::traits::{DeviceTrait, HostTrait};

/// Why a sound device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No device of that name (or no default one).
    #[error("no {dir} sound device {what}{hint}")]
    NotFound {
        /// "playback" or "capture".
        dir: &'static str,
        /// `named 'x'`, or `(no default device)`.
        what: String,
        /// What there is instead.
        hint: String,
    },
    /// The device refused to open or run.
    #[error("{dir} device '{name}': {detail}")]
    Open {
        /// "playback" or "capture".
        dir: &'static str,
        /// The device's name.
        name: String,
        /// cpal's (ALSA's) reason.
        detail: String,
    },
    /// Listing the devices failed.
    #[error("listing sound devices: {0}")]
    List(String),
    /// The stream cannot be played (format, resampler...).
    #[error("{0}")]
    Unsupported(String),
}

/// One device as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name to pass to `--device` / `--play`.
    pub name: String,
    /// It can capture.
    pub input: bool,
    /// It can play.
    pub output: bool,
    /// The default for its direction(s).
    pub default: bool,
    /// Default channels and rate, when the device says.
    pub config: Option<(u16, u32)>,
}

/// Every device the default host (ALSA) knows, playback and capture.
pub fn list() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal::default_host();
    let def_out = host.default_output_device().and_then(|d| d.name().ok());
    let def_in = host.default_input_device().and_then(|d| d.name().ok());
    let mut out: Vec<DeviceInfo> = Vec::new();
    let devices = host
        .devices()
        .map_err(|e| DeviceError::List(e.to_string()))?;
    for d in devices {
        let Ok(name) = d.name() else { continue };
        let input = d.default_input_config().ok();
        let output = d.default_output_config().ok();
        let config = output
            .as_ref()
            .or(input.as_ref())
            .map(|c| (c.channels(), c.sample_rate().0));
        out.push(DeviceInfo {
            default: Some(&name) == def_out.as_ref() || Some(&name) == def_in.as_ref(),
            input: input.is_some(),
            output: output.is_some(),
            name,
            config,
        });
    }
    Ok(out)
}

/// The device called `name` (`None`: the default one) for playback
/// (`output`) or capture.
pub(crate) fn find(name: Option<&str>, output: bool) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let dir = if output { "playback" } else { "capture" };
    let found = match name {
        None | Some("") => {
            if output {
                host.default_output_device()
            } else {
                host.default_input_device()
            }
        }
        Some(want) => {
            let devices = if output {
                host.output_devices().map(|d| d.collect::<Vec<_>>())
            } else {
                host.input_devices().map(|d| d.collect::<Vec<_>>())
            }
            .map_err(|e| DeviceError::List(e.to_string()))?;
            devices
                .into_iter()
                .find(|d| d.name().is_ok_and(|n| n == want))
        }
    };
    found.ok_or_else(|| {
        let names: Vec<String> = list()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| if output { d.output } else { d.input })
            .map(|d| d.name)
            .collect();
        DeviceError::NotFound {
            dir,
            what: match name {
                Some(n) if !n.is_empty() => format!("named '{n}'"),
                _ => "(no default device: is there a sound card?)".into(),
            },
            hint: if names.is_empty() {
                "; this machine has none (no sound card, no ALSA PCM defined)".into()
            } else {
                format!("; there are: {}", names.join(", "))
            },
        }
    })
}

/// The name of a device, for messages.
pub(crate) fn name_of(d: &cpal::Device) -> String {
    d.name().unwrap_or_else(|_| "?".into())
}

/// Check that the device called `name` (`None`: the default) can play
/// (`output`) or capture, before anything depends on it; returns its name.
pub fn probe(name: Option<&str>, output: bool) -> Result<String, DeviceError> {
    let d = find(name, output)?;
    let n = name_of(&d);
    let cfg = if output {
        d.default_output_config().map(|_| ())
    } else {
        d.default_input_config().map(|_| ())
    };
    cfg.map_err(|e| DeviceError::Open {
        dir: if output { "playback" } else { "capture" },
        name: n.clone(),
        detail: format!("{e} (is there a sound card?)"),
    })?;
    Ok(n)
}
