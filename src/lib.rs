//! isochron: real-time media streaming over QUIC with Reed-Solomon FEC,
//! interleaving and isochronous playout.
//!
//! This umbrella crate is the one dependency an application adds. It
//! re-exports the engine (the sans-IO pipeline and its QUIC transport) and
//! the codecs (WAV, sensor CSV, wire sample encodings, concealment), and the
//! types most applications need at the top level.
//!
//! # Sending
//!
//! A [`Sender`] connects to a [`Receiver`], pins its [`Fingerprint`] (or
//! trusts a CA, see [`Trust`]), presents its own [`Identity`] (one per
//! user, [`Identity::load_or_create`] in [`Identity::default_dir`]) and
//! proposes a catalog of substreams
//! ([`SubstreamDesc::audio`], [`SubstreamDesc::sensor`]), all on one media
//! clock. Media comes from [`Sender::push`] (an application pushing what it
//! captures: [`Mode::Live`], the default) or from reader threads
//! ([`Sender::feed_from`], files: [`Mode::file`]). The mode follows the
//! source; see [`Mode`]. [`Sender::finish`] ends the stream and returns a
//! [`SenderReport`] once the receiver has played it out.
//!
//! # Receiving
//!
//! A [`Receiver`] listens, admits only the senders its [`Admission`] lists
//! (by the fingerprint of the identity they present; others are refused
//! with the command that would admit them), answers each sender's hello
//! with an [`Accept`] (or refuses it), and plays every session out on its own thread into a
//! [`Sink`]: a [`FileSink`] (WAV and CSV files), a [`PullSink`] (frames in
//! a channel the application reads: [`pull_channel`]), or the
//! application's own. [`Receiver::events`] says when sessions start
//! ([`SessionInfo`]) and end ([`SessionEnd`], with the final
//! [`ReceiverStats`]); sinks see each [`PlayedFrame`] at its instant.
//!
//! # Fan-out
//!
//! A [`Publisher`] announces a stream by name (`studio/a/mix`) through
//! zenoh routers ([`Router`], `isochron router`, or a stock `zenohd`) and
//! any number of [`Subscriber`]s play it, each with its own jitter buffer,
//! joining whenever they like (from the next whole FEC group). The
//! publisher signs the catalog with its [`Identity`]; subscribers pin its
//! fingerprint; every datagram is sealed end to end, so routers carry what
//! they cannot read; the key goes only to listeners the publisher allows
//! ([`PublisherOptions::allow`]) or who know its passphrase.
//! [`list_streams`] says what is on air. `examples/fanout.rs` runs a
//! router, a publisher and two listeners in one program.
//!
//! A receiver and a sender in one process, pulling what arrives after the
//! sender has finished (a [`PullSink`] never blocks playout: frames the
//! application does not take in time are dropped and counted):
//!
//! ```
//! use isochron::{
//!     Admission, Encoding, Frame, Identity, Pulled, Rate, Receiver, ReceiverOptions, Sender, SenderOptions,
//!     StreamFormat, SubstreamDesc, Trust, pull_channel,
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
//! let audio = SubstreamDesc::audio(0, "tone.wav", format).with_length(4_800);
//! let trust = Trust::Pinned(vec![rx.fingerprint()]);
//! let opts = SenderOptions::new(rx.local_addr(), trust, sender_id);
//! let tx = Sender::connect(opts, vec![audio])?;
//! let tone: Vec<f32> = (0..9_600).map(|i| (i as f32 * 0.06).sin() * 0.2).collect();
//! tx.push(0, Frame::from_f32(format, &tone)?.into_bytes())?;
//! let report = tx.finish()?;
//! assert!(report.completed);
//!
//! // Every sample arrived, at its playout instant.
//! let mut samples = 0;
//! for pulled in frames.iter() {
//!     match pulled {
//!         Pulled::Frame(f) => samples += f.data.len() / format.stride(),
//!         Pulled::End(end) => assert!(!end.truncated && end.sink_dropped == 0),
//!     }
//! }
//! assert_eq!(samples, 4_800);
//! # Ok(())
//! # }
//! ```
//!
//! # Build profile
//!
//! FEC and playout must run in real time. In a debug build of an
//! application, Cargo compiles its dependencies unoptimised unless told
//! otherwise, and isochron then falls behind (it logs a warning at start
//! when it was built so). Add this to the application's `Cargo.toml`
//! (debug builds of the application's own code are unaffected):
//!
//! ```toml
//! [profile.dev.package."*"]
//! opt-level = 3
//! ```

#![warn(missing_docs)]

pub use isochron_codecs as codecs;
pub use isochron_engine as engine;

pub use codecs::{Encoding, Frame, Method, Origin, Rate, StreamFormat};
pub use engine::catalog::{MediaKind, SubstreamDesc};
pub use engine::net::zenoh::{
    FanoutError, Publisher, PublisherOptions, PublisherReport, PublisherStats, RefusedReason,
    Router, StreamInfo, StreamListing, Subscriber, SubscriberOptions, ZenohOptions, list_streams,
};
pub use engine::net::{
    Admission, FileSink, Fingerprint, Identity, PullReceiver, PullSink, Pulled, ReceivedFrame,
    Receiver, ReceiverEvent, ReceiverOptions, Sender, SenderOptions, SenderReport, SessionEnd,
    SessionInfo, Sink, TransportError, Trust, pull_channel,
};
pub use engine::playout::PlayedFrame;
pub use engine::stats::{FrameCounts, PacketCounts, Percentiles, SubstreamStats};
pub use engine::wire::control::{
    Accept, EndOfStream, FecParams, Mode, Recovery, Report, SessionDesc,
};
pub use engine::{ConfigError, ReceiverConfig, ReceiverStats, SenderConfig, SenderStats};

/// The README's code blocks, compiled and run by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
