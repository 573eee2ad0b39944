//! How inputs become a stream: what `send` and `publish` share. Files and
//! standard input (`-`: a WAV stream, CSV rows, or raw PCM described by
//! --format, --rate, --channels) become substreams ([`InputArgs`]); frames,
//! FEC and interleaving say how they travel ([`MediaArgs`], `publish`'s;
//! `send` picks its interleave default by mode).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use isochron_codecs::opus::{FRAME_US, OpusConfig};
use isochron_codecs::{Encoding, Rate};
use isochron_engine::catalog::{MediaKind, SubstreamDesc};
use isochron_engine::codec::WireCodec;
use isochron_engine::files::{FileInput, InputOptions, open_input};
use isochron_engine::pipe::{PipeFormat, RawSample, open_pipe};
use isochron_engine::wire::control::FecParams;

use crate::{args, exit};

/// The inputs' options: framing, encoding, and what standard input carries.
#[derive(Args, Clone)]
pub struct InputArgs {
    /// Frame duration: media per packet unit and per playout tick (e.g. 10ms, 2.5ms)
    #[arg(long, default_value = "10ms", value_parser = args::duration)]
    pub frame: Duration,
    /// Sample interleaving group G: a lost packet costs every G-th sample over G frames
    #[arg(long = "sample-interleave", default_value_t = 1, value_name = "G")]
    pub sample_interleave: u8,
    /// Wire encoding for audio instead of lossless PCM: mulaw or alaw (2:1), l16, f32, or
    /// opus (lossy, --bitrate; --frame 2.5ms, 5ms, 10ms or 20ms; the output keeps the input's
    /// rate, layout and sample count). Sensor substreams are never coded
    #[arg(long, value_parser = audio_encoding)]
    pub encoding: Option<WireEncoding>,
    /// With --encoding opus: bitrate of each audio substream, all channels together (kbit/s,
    /// e.g. 96k; a bare number is bit/s: 96000) [default: 96k]
    #[arg(long, value_name = "KBIT/S", value_parser = bitrate)]
    pub bitrate: Option<u32>,
    /// Rate of sensor CSVs that have no time column (Hz)
    #[arg(long = "sensor-rate", value_name = "HZ")]
    pub sensor_rate: Option<u32>,
    /// What standard input (`-`) carries: raw PCM s16le, s24le, s32le, f32le or u8 (with
    /// --rate and --channels), or wav or csv [default: WAV if it starts with a RIFF header,
    /// CSV rows otherwise]
    #[arg(long, value_name = "FORMAT", value_parser = pipe_format)]
    pub format: Option<StdinFormat>,
    /// Sample rate of raw PCM on standard input, or of `send --device` (Hz)
    #[arg(long, value_name = "HZ")]
    pub rate: Option<u32>,
    /// Channels of raw PCM on standard input, or of `send --device`
    #[arg(long, value_name = "N")]
    pub channels: Option<u16>,
}

/// `--format`: a raw PCM layout, or a container on standard input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StdinFormat {
    Raw(RawSample),
    Wav,
    Csv,
}

fn pipe_format(s: &str) -> Result<StdinFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "wav" => Ok(StdinFormat::Wav),
        "csv" => Ok(StdinFormat::Csv),
        _ => s
            .parse::<RawSample>()
            .map(StdinFormat::Raw)
            .map_err(|e| format!("{e}, wav or csv")),
    }
}

/// `--encoding`: how audio travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireEncoding {
    /// Samples in this encoding (the receiver writes the input's back).
    Pcm(Encoding),
    /// Opus packets, one a frame (libopus; 48 kHz inside).
    Opus,
}

pub fn audio_encoding(s: &str) -> Result<WireEncoding, String> {
    match s.to_ascii_lowercase().as_str() {
        "mulaw" | "ulaw" | "pcmu" => Ok(WireEncoding::Pcm(Encoding::MuLaw)),
        "alaw" | "pcma" => Ok(WireEncoding::Pcm(Encoding::ALaw)),
        "l16" => Ok(WireEncoding::Pcm(Encoding::L16)),
        "f32" => Ok(WireEncoding::Pcm(Encoding::F32)),
        "opus" => Ok(WireEncoding::Opus),
        _ => Err(format!("'{s}': use mulaw, alaw, l16, f32 or opus")),
    }
}

/// `--bitrate`: `96k`, `96kbit`, `128kbps` or bit/s (`96000`), within what
/// Opus codes (6 to 2000 kbit/s).
pub fn bitrate(s: &str) -> Result<u32, String> {
    let bps = args::rate(s)?;
    if !(6_000..=2_000_000).contains(&bps) {
        return Err(format!(
            "'{s}' is {} kbit/s: Opus codes 6k to 2000k (e.g. 96k)",
            bps as f64 / 1e3
        ));
    }
    Ok(bps as u32)
}

/// One line per coded substream: what travels instead of its samples.
pub fn say_codecs(catalog: &[SubstreamDesc]) {
    for d in catalog {
        if let Some(WireCodec::Opus(p)) = &d.codec {
            eprintln!(
                "{}: Opus at {} kbit/s, {} ms frames, in-band FEC for {} % loss ({} Hz {} ch in and out)",
                d.name,
                p.bitrate as f64 / 1e3,
                p.header.frame_us as f64 / 1e3,
                p.fec_loss_percent,
                d.format.rate.as_f64(),
                d.format.channels
            );
        }
    }
}

/// `-` among the inputs: standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

impl InputArgs {
    /// How every input is framed and encoded.
    pub fn options(&self) -> Result<InputOptions> {
        let frame_us = u32::try_from(self.frame.as_micros()).context("--frame is too long")?;
        self.opus()?;
        Ok(InputOptions {
            frame_us,
            sample_interleave: self.sample_interleave,
            audio_encoding: match self.encoding {
                Some(WireEncoding::Pcm(e)) => Some(e),
                // Opus codes the input's own samples.
                Some(WireEncoding::Opus) | None => None,
            },
            sensor_rate: self
                .sensor_rate
                .map(Rate::hz)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--sensor-rate: {e}"))?,
            ..Default::default()
        })
    }

    /// The Opus settings asked for (None: not Opus), refusing what Opus
    /// cannot code as usage errors.
    pub fn opus(&self) -> Result<Option<OpusConfig>> {
        if self.encoding != Some(WireEncoding::Opus) {
            if self.bitrate.is_some() {
                return Err(exit::usage("--bitrate is for --encoding opus"));
            }
            return Ok(None);
        }
        let frame_us = self.frame.as_micros();
        let Some(&frame_us) = FRAME_US.iter().find(|&&f| f as u128 == frame_us) else {
            return Err(exit::usage(format!(
                "--frame {} ms: Opus codes frames of 2.5, 5, 10 or 20 ms (e.g. --frame 10ms)",
                frame_us as f64 / 1e3
            )));
        };
        if self.sample_interleave > 1 {
            return Err(exit::usage(
                "--sample-interleave deals PCM samples: Opus codes whole frames, use 1 (or --fec / --interleave)",
            ));
        }
        let cfg = OpusConfig {
            frame_us,
            bitrate: self.bitrate.unwrap_or(OpusConfig::default().bitrate),
            ..OpusConfig::default()
        };
        cfg.check().map_err(|e| exit::usage(e.to_string()))?;
        Ok(Some(cfg))
    }

    /// Code `input` with the wire codec asked for (--encoding opus) if it
    /// is audio; sensor substreams, and everything without Opus, pass as
    /// they are.
    pub fn apply_codec(&self, mut input: FileInput) -> Result<FileInput> {
        let Some(cfg) = self.opus()? else {
            return Ok(input);
        };
        if input.desc.kind != MediaKind::Audio {
            return Ok(input);
        }
        let refused = |e: String| {
            exit::input(anyhow::anyhow!(
                "{}: cannot be coded as Opus: {e}",
                input.desc.name
            ))
        };
        let codec = WireCodec::opus(input.desc.format, &cfg).map_err(refused)?;
        // What the receiver will check (e.g. the rate), refused here first.
        let desc = input.desc.clone().with_codec(codec.clone());
        codec.check(&desc).map_err(refused)?;
        input.desc = desc;
        Ok(input)
    }

    /// Open each input as a substream (ids in order; `-` is standard
    /// input), coded as --encoding says. `device`: a capture device takes
    /// --rate and --channels when standard input does not need them.
    pub fn open(&self, files: &[PathBuf], device: bool) -> Result<Vec<FileInput>> {
        let opts = self.options()?;
        let pipe = self.stdin_format(files, device)?;
        files
            .iter()
            .enumerate()
            .map(|(i, path)| match pipe {
                Some(fmt) if is_stdin(path) => {
                    open_pipe(std::io::stdin(), "stdin", i as u16, fmt, &opts)
                        .map_err(|e| exit::input(anyhow::anyhow!("standard input: {e}")))
                }
                _ => {
                    open_input(path, i as u16, &opts).with_context(|| format!("{}", path.display()))
                }
            })
            .map(|input| input.and_then(|f| self.apply_codec(f)))
            .collect()
    }

    /// How standard input becomes a substream (`None`: it is not an input),
    /// from --format, --rate and --channels.
    fn stdin_format(&self, files: &[PathBuf], device: bool) -> Result<Option<PipeFormat>> {
        let stdin = files.iter().filter(|p| is_stdin(p)).count();
        if stdin > 1 {
            return Err(exit::usage("standard input (-) can be read only once"));
        }
        let described = self.rate.is_some() || self.channels.is_some();
        if stdin == 0 {
            if !device && (self.format.is_some() || described) {
                return Err(exit::usage(
                    "--format, --rate and --channels describe standard input: name it as `-`",
                ));
            }
            return Ok(None);
        }
        if device && described {
            return Err(exit::usage(
                "--rate and --channels cannot describe both standard input and --device",
            ));
        }
        let sensor_rate = self.sensor_rate.map(Rate::hz).transpose()?;
        Ok(Some(match self.format {
            Some(StdinFormat::Raw(sample)) => {
                let (Some(rate), Some(channels)) = (self.rate, self.channels) else {
                    return Err(exit::usage(format!(
                        "raw PCM on standard input needs --rate HZ and --channels N (e.g. --format {} --rate 48000 --channels 2)",
                        sample.name()
                    )));
                };
                PipeFormat::Raw {
                    sample,
                    rate: Rate::hz(rate).map_err(|e| exit::usage(format!("--rate: {e}")))?,
                    channels,
                }
            }
            Some(StdinFormat::Wav) => PipeFormat::Wav,
            Some(StdinFormat::Csv) => PipeFormat::Csv {
                rate: self.rate.map(Rate::hz).transpose()?.or(sensor_rate),
            },
            None if described => {
                return Err(exit::usage(
                    "--rate and --channels describe raw PCM: say which with --format s16le|s24le|s32le|f32le|u8",
                ));
            }
            None => match sensor_rate {
                Some(r) => PipeFormat::Csv { rate: Some(r) },
                None => PipeFormat::Auto,
            },
        }))
    }
}

/// How the substreams travel: `publish`'s frame, FEC and interleave options.
#[derive(Args, Clone)]
pub struct MediaArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// FEC code: K source + M repair packets a block (e.g. 16+4), or off
    #[arg(long, default_value = "16+4", value_parser = args::fec)]
    pub fec: args::Fec,
    /// FEC block time budget (default: from the listeners' latency, --latency)
    #[arg(long = "fec-window", value_parser = args::duration)]
    pub fec_window: Option<Duration>,
    /// Packet interleaving depth D: FEC blocks sent column by column (spreads bursts)
    #[arg(long, default_value_t = 1, value_name = "D")]
    pub interleave: u8,
}

impl MediaArgs {
    /// The FEC and interleaving parameters asked for.
    pub fn fec_params(&self) -> FecParams {
        fec_params(&self.fec, self.fec_window, self.interleave)
    }
}

/// FEC `fec` with a block window (zero: the receiver's choice) at depth
/// `interleave`.
pub fn fec_params(fec: &args::Fec, window: Option<Duration>, interleave: u8) -> FecParams {
    let window_us = window.map_or(0, |w| w.as_micros() as u32);
    let depth = interleave.max(1);
    match fec.0 {
        Some((k, m)) => FecParams {
            k,
            m,
            depth,
            window_us,
            auto_depth: false,
        },
        None => FecParams {
            depth,
            ..FecParams::OFF
        },
    }
}
