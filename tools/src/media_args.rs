//! How files become a stream: the frame, FEC, interleave and encoding
//! options `publish` takes (the same as `send`'s).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use isochron_codecs::Encoding;
use isochron_engine::files::{FileInput, InputOptions, open_input};
use isochron_engine::wire::control::FecParams;

use crate::args;

#[derive(Args, Clone)]
pub struct MediaArgs {
    /// Frame duration: media per packet unit and per playout tick (e.g. 10ms, 2.5ms)
    #[arg(long, default_value = "10ms", value_parser = args::duration)]
    pub frame: Duration,
    /// FEC code: K source + M repair packets a block (e.g. 16+4), or off
    #[arg(long, default_value = "16+4", value_parser = args::fec)]
    pub fec: args::Fec,
    /// FEC block time budget (default: from the listeners' latency, --latency)
    #[arg(long = "fec-window", value_parser = args::duration)]
    pub fec_window: Option<Duration>,
    /// Packet interleaving depth D: FEC blocks sent column by column (spreads bursts)
    #[arg(long, default_value_t = 1, value_name = "D")]
    pub interleave: u8,
    /// Sample interleaving group G: a lost packet costs every G-th sample over G frames
    #[arg(long = "sample-interleave", default_value_t = 1, value_name = "G")]
    pub sample_interleave: u8,
    /// Wire encoding for audio instead of lossless PCM: mulaw or alaw (2:1)
    #[arg(long, value_parser = audio_encoding)]
    pub encoding: Option<Encoding>,
    /// Rate of sensor CSVs that have no time column (Hz)
    #[arg(long = "sensor-rate", value_name = "HZ")]
    pub sensor_rate: Option<u32>,
}

pub fn audio_encoding(s: &str) -> Result<Encoding, String> {
    match s.to_ascii_lowercase().as_str() {
        "mulaw" | "ulaw" | "pcmu" => Ok(Encoding::MuLaw),
        "alaw" | "pcma" => Ok(Encoding::ALaw),
        "l16" => Ok(Encoding::L16),
        "f32" => Ok(Encoding::F32),
        _ => Err(format!("'{s}': use mulaw, alaw, l16 or f32")),
    }
}

impl MediaArgs {
    /// Open each file as a substream (ids in order).
    pub fn open(&self, files: &[PathBuf]) -> Result<Vec<FileInput>> {
        let frame_us = u32::try_from(self.frame.as_micros()).context("--frame is too long")?;
        let input = InputOptions {
            frame_us,
            sample_interleave: self.sample_interleave,
            audio_encoding: self.encoding,
            sensor_rate: self
                .sensor_rate
                .map(isochron_codecs::Rate::hz)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--sensor-rate: {e}"))?,
            ..Default::default()
        };
        files
            .iter()
            .enumerate()
            .map(|(i, path)| {
                open_input(path, i as u16, &input).with_context(|| format!("{}", path.display()))
            })
            .collect()
    }

    /// The FEC and interleaving parameters asked for.
    pub fn fec_params(&self) -> FecParams {
        let window_us = self.fec_window.map_or(0, |w| w.as_micros() as u32);
        match self.fec.0 {
            Some((k, m)) => FecParams {
                k,
                m,
                depth: self.interleave.max(1),
                window_us,
            },
            None => FecParams {
                depth: self.interleave.max(1),
                ..FecParams::OFF
            },
        }
    }
}
