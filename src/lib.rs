//! isochron: real-time media streaming over QUIC with Reed-Solomon FEC,
//! interleaving and isochronous playout.
//!
//! This umbrella crate is the one dependency an application adds. It
//! re-exports the engine (the sans-IO pipeline and its QUIC transport) and
//! the codecs (WAV, sensor CSV, wire sample encodings, concealment), and the
//! types most applications need at the top level.
//!
//! A receiver and a sender in one process, pulling what arrives:
//!
//! ```
//! use isochron::{
//!     Admission, Encoding, Frame, Identity, MediaKind, Origin, Pulled, Rate, Receiver, ReceiverOptions,
//!     Sender, SenderOptions, StreamFormat, SubstreamDesc, Trust, pull_channel,
//! };
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Each end has an identity (an application keeps one per user with
//! // `Identity::load_or_create(&Identity::default_dir())`). Pairing: the
//! // receiver admits the sender's fingerprint, the sender pins the receiver's.
//! let (receiver_id, sender_id) = (Identity::ephemeral()?, Identity::ephemeral()?);
//! let admission = Admission::only([sender_id.fingerprint()]);
//! let (sink, frames) = pull_channel(1024);
//! let mut sink = Some(sink);
//! let opts = ReceiverOptions::new("127.0.0.1:0".parse()?, admission);
//! let rx = Receiver::start(opts, &receiver_id, move |_| {
//!     Ok(Box::new(sink.take().ok_or("this example takes one session")?))
//! })?;
//!
//! // The sender: a catalog of one stereo 48 kHz substream, 100 ms long.
//! let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000)?)?;
//! let audio = SubstreamDesc {
//!     id: 0,
//!     name: "tone.wav".into(),
//!     kind: MediaKind::Audio,
//!     format,
//!     frame_us: 10_000,
//!     sample_interleave: 1,
//!     frames_per_packet: 1,
//!     origin: Origin::Raw,
//!     length: Some(4_800),
//! };
//! let trust = Trust::Pinned(vec![rx.fingerprint()]);
//! let opts = SenderOptions::new(rx.local_addr(), trust, sender_id);
//! let tx = Sender::connect(opts, vec![audio])?;
//! let tone: Vec<f32> = (0..9_600).map(|i| (i as f32 * 0.06).sin() * 0.2).collect();
//! tx.push(0, Frame::from_f32(format, &tone)?.into_bytes())?;
//! let report = tx.finish()?;
//! assert!(report.completed);
//!
//! // Every sample arrives, at its playout instant.
//! let mut samples = 0;
//! for pulled in frames.iter() {
//!     match pulled {
//!         Pulled::Frame(f) => samples += f.data.len() / format.stride(),
//!         Pulled::End(end) => {
//!             assert!(!end.truncated);
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(samples, 4_800);
//! # Ok(())
//! # }
//! ```

pub use isochron_codecs as codecs;
pub use isochron_engine as engine;

pub use codecs::{Encoding, Frame, Origin, Rate, StreamFormat};
pub use engine::catalog::{MediaKind, SubstreamDesc};
pub use engine::net::{
    Admission, FileSink, Identity, PullSink, Pulled, Receiver, ReceiverEvent, ReceiverOptions,
    Sender, SenderOptions, SessionEnd, Sink, TransportError, Trust, pull_channel,
};
pub use engine::{ReceiverConfig, ReceiverStats, SenderConfig, SenderStats};
