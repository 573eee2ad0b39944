//! Configuration of both ends, and the checks that refuse a session whose
//! latency cannot cover its FEC window, interleaving and framing.

use std::time::Duration;

use thiserror::Error;

use crate::playout::flow::FlowParams;
pub use crate::playout::latency::LatencyBounds;
use crate::time::micros;
use crate::wire::control::{FecParams, Mode, Recovery, SessionDesc};

/// Receiver settings (the receiver decides latency and water marks).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// Target latency added to the fastest path (live mode).
    pub latency: Duration,
    /// Playback starts (file mode) or the sender is resumed at this level.
    pub low_water: Duration,
    /// File mode: the sender is paused before the buffer reaches this level.
    /// Live: it only widens the buffer's horizon (frames beyond about 1.5 x
    /// `max(latency, high_water)` are dropped as overruns).
    pub high_water: Duration,
    /// Smallest round trip file-mode flow control allows for (from a
    /// credit leaving the receiver to the media it allows arriving). The
    /// QUIC driver raises it to the round trip measured at the hello, and
    /// the playout follows the transport's estimate during the session.
    pub loop_delay: Duration,
    /// File mode: the water marks adapt to the path up to this much
    /// buffered media (or the high-water mark, if higher); a path that
    /// needs more is refused at the hello, saying what to raise. Buffers
    /// are sized for it.
    pub max_buffer: Duration,
    /// Fastest rate the live playout clock may slew to follow the sender
    /// (fraction of real time: 0.005 moves the anchor at most 5 ms a second).
    pub max_slew: f64,
    /// Window of the minimum-delay clock offset estimate (live mode).
    pub clock_window: Duration,
    /// Open FEC blocks kept at once (bounds decoder memory).
    pub max_fec_blocks: usize,
    /// Shared secret senders must present, if any.
    pub token: Option<String>,
    /// Adaptive latency within these bounds (live): the target follows the
    /// measured delay. `latency` should then be the upper bound (buffers
    /// and the sender's deadlines are sized from it); the FEC window is
    /// chosen from the lower one.
    pub adaptive: Option<LatencyBounds>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(80),
            low_water: Duration::from_millis(40),
            high_water: Duration::from_millis(160),
            loop_delay: Duration::from_millis(10),
            max_buffer: Duration::from_secs(1),
            max_slew: 0.005,
            clock_window: Duration::from_secs(8),
            max_fec_blocks: 128,
            token: None,
            adaptive: None,
        }
    }
}

/// Sender settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderConfig {
    /// Live (paced by real time) or file (read ahead under flow control);
    /// default live, for an application that pushes what it captures (the
    /// mode follows the source: see [`Mode`]).
    pub mode: Mode,
    /// FEC code and interleaving proposed to the receiver (`m` 0: FEC off;
    /// `window_us` 0: the receiver picks the block time budget;
    /// `auto_depth`: adaptive FEC picks the depth, up to `depth` or what
    /// the receiver grants, from the bursts it measures; needs `fec_target`).
    pub fec: FecParams,
    /// Largest datagram to build (quinn's `max_datagram_size()`).
    pub max_datagram: usize,
    /// Datagrams the sender queues before the network (bounded).
    pub queue: usize,
    /// Speed factor both ends scale their clocks by (1.0: real time); for
    /// tests and benchmarks.
    pub speed: f64,
    /// Adapt the repair shards to the measured loss, aiming for this
    /// residual loss (never below the configured `m` without
    /// retransmission); `None`: fixed code.
    pub fec_target: Option<f64>,
    /// How losses are recovered: FEC, retransmission, or both (hybrid, the
    /// default; without FEC it is retransmission alone).
    pub recovery: Recovery,
    /// Most repair per source adaptive FEC spends (1.0: 100 % overhead),
    /// whatever loss the receiver reports; `fec_capped` in the stats says
    /// when it held.
    pub max_fec_overhead: f64,
    /// A receiver that pauses the sender (file mode) and does not resume
    /// it within this long is given up on: the session ends with an error.
    pub max_pause: Duration,
    /// Live mode: what paces the frames (file mode ignores it).
    pub pacing: Pacing,
}

/// What decides when a live frame may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// The sender's clock: frame `n` leaves once `(n + 1) x F` has passed
    /// since the session started (media pushed ahead waits for it).
    #[default]
    Clock,
    /// The source's own arrival: its media clock is its sample count, so a
    /// frame leaves as soon as its samples are in. For sources with a clock
    /// of their own (a pipe from a recorder, a sound card): they are never
    /// held back or dropped for running a few ppm off the system clock.
    /// Media time zero is the first frame's arrival.
    Arrival,
}

/// Packet interleaving depth [`SenderConfig::file`] proposes: file mode's
/// buffer adapts to the span (FEC window x depth), and spreading a loss
/// burst over two blocks cuts the residual loss of bursty links several
/// times at the same overhead.
pub const FILE_INTERLEAVE: u8 = 2;

impl SenderConfig {
    /// File mode at `fill` times real time, with file mode's interleaving
    /// depth ([`FILE_INTERLEAVE`]); the rest as [`Default`].
    pub fn file(fill: f64) -> Self {
        let mut c = Self {
            mode: Mode::file(fill),
            ..Self::default()
        };
        c.fec.depth = FILE_INTERLEAVE;
        c
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Live,
            fec: FecParams {
                k: 16,
                m: 4,
                depth: 1,
                window_us: 0,
                auto_depth: false,
            },
            max_datagram: 1162,
            queue: 4096,
            speed: 1.0,
            fec_target: Some(1e-4),
            // FEC for what a round trip cannot recover, retransmission for
            // the rest: far less redundancy at the same residual loss, and
            // FEC alone where no round trip fits (README, "Recovery").
            recovery: Recovery::Hybrid,
            max_fec_overhead: 1.0,
            max_pause: Duration::from_secs(60),
            pacing: Pacing::Clock,
        }
    }
}

/// A configuration that cannot work, with the value to change.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// Live mode: the receiver's latency does not cover FEC window x depth
    /// plus the frame hold.
    #[error(
        "latency {latency_ms} ms is below what this stream needs: FEC window {window_ms} ms x interleave depth {depth} + frame hold {hold_ms} ms = {need_ms} ms; raise the receiver's latency to at least {need_ms} ms, or lower the interleave depth, the FEC window or the frame duration"
    )]
    LatencyTooSmall {
        /// The receiver's target latency.
        latency_ms: f64,
        /// FEC block time budget (0 when FEC is off).
        window_ms: f64,
        /// Packet interleaving depth D.
        depth: u8,
        /// Longest a substream's packetizer holds a frame (group or aggregate).
        hold_ms: f64,
        /// The latency needed: `window_ms x depth + hold_ms`.
        need_ms: f64,
    },
    /// The sender left the FEC window open, and the window the receiver would
    /// pick, `(latency - hold) / (2 x depth)`, is under 1 ms.
    #[error(
        "latency {latency_ms} ms leaves no time for FEC after the {hold_ms} ms frame hold; raise the latency or shorten frames"
    )]
    NoRoomForFec {
        /// The receiver's target latency.
        latency_ms: f64,
        /// Longest a substream's packetizer holds a frame.
        hold_ms: f64,
    },
    /// File mode: the path needs more buffer than the receiver allows.
    #[error(
        "file mode on this path needs {need_ms} ms of buffer (FEC window {window_ms} ms x interleave depth {depth} + frame hold {hold_ms} ms + delay spread {spread_ms} ms + round trip {rtt_ms} ms + margins), more than this receiver's limit of {max_ms} ms; raise the receiver's high-water mark to at least {need_ms} ms, or lower the FEC window, the interleave depth or the frame duration"
    )]
    BufferTooSmall {
        /// The lead the path needs.
        need_ms: f64,
        /// The receiver's buffer limit.
        max_ms: f64,
        /// FEC block time budget (0 when FEC is off).
        window_ms: f64,
        /// Packet interleaving depth D.
        depth: u8,
        /// Longest a substream's packetizer holds a frame.
        hold_ms: f64,
        /// One-way delay spread assumed (half the round trip before media).
        spread_ms: f64,
        /// The round trip measured at the hello.
        rtt_ms: f64,
    },
    /// The low-water mark is not below the high-water mark.
    #[error("low-water mark {low_ms} ms must be below the high-water mark {high_ms} ms")]
    Marks {
        /// The low-water mark.
        low_ms: f64,
        /// The high-water mark.
        high_ms: f64,
    },
    /// The receiver's latency is zero.
    #[error("latency must be positive")]
    ZeroLatency,
    /// The sender asked for a FEC window longer than the receiver holds
    /// media (in either mode: file mode skips the latency check).
    #[error(
        "FEC window {window_ms} ms is longer than this receiver holds media ({max_ms} ms, the largest of its latency, high-water mark and buffer limit); use a shorter FEC window"
    )]
    FecWindowTooLong {
        /// The window asked for.
        window_ms: f64,
        /// The longest accepted.
        max_ms: f64,
    },
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl ReceiverConfig {
    /// Check the settings on their own: latency positive, low mark below
    /// the high mark.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.latency.is_zero() {
            return Err(ConfigError::ZeroLatency);
        }
        if self.low_water >= self.high_water {
            return Err(ConfigError::Marks {
                low_ms: ms(self.low_water),
                high_ms: ms(self.high_water),
            });
        }
        Ok(())
    }

    /// [`check_session`](Self::check_session), and the deepest packet
    /// interleaving granted ([`Accept::max_depth`](crate::wire::control::Accept::max_depth)).
    /// A fixed depth is granted as proposed (or refused). Automatic depth
    /// ([`FecParams::auto_depth`]) is granted as deep as asked while the
    /// session still fits: live, while each block of the deepest group
    /// still has a frame's time (the group's budget, window x depth, is
    /// half the latency after the frame hold whatever the depth, so deeper
    /// only divides it finer); file mode, while the marks the span needs fit
    /// the buffer limit. Down to 1, which is checked as a fixed depth 1.
    pub fn grant(&self, s: &SessionDesc) -> Result<(Duration, u8), ConfigError> {
        if !(s.fec.auto_depth && s.fec.enabled()) {
            return Ok((self.check_session(s)?, s.fec.depth.max(1)));
        }
        let frame = s
            .substreams
            .iter()
            .map(|d| Duration::from_micros(d.frame_us as u64))
            .max()
            .unwrap_or_default();
        let mut t = s.clone();
        for d in (2..=s.fec.depth).rev() {
            t.fec.depth = d;
            match self.check_session(&t) {
                Ok(w) if !matches!(s.mode, Mode::Live) || w >= frame => return Ok((w, d)),
                _ => {}
            }
        }
        t.fec.depth = 1;
        Ok((self.check_session(&t)?, 1))
    }

    /// Check a proposed session against this receiver's latency, and pick
    /// the FEC window if the sender left it open. Returns the window.
    pub fn check_session(&self, s: &SessionDesc) -> Result<Duration, ConfigError> {
        // Adaptive: what must fit is the lowest latency it may go to.
        let latency = self.adaptive.map_or(self.latency, |b| b.min);
        let hold = s
            .substreams
            .iter()
            .map(|d| d.unit_delay())
            .max()
            .unwrap_or_default();
        if !s.fec.enabled() {
            if matches!(s.mode, Mode::File { .. }) {
                self.check_buffer(s, Duration::ZERO)?;
            }
            return if latency >= hold || !matches!(s.mode, Mode::Live) {
                Ok(Duration::ZERO)
            } else {
                Err(ConfigError::LatencyTooSmall {
                    latency_ms: ms(latency),
                    window_ms: 0.0,
                    depth: s.fec.depth,
                    hold_ms: ms(hold),
                    need_ms: ms(hold),
                })
            };
        }
        let depth = s.fec.depth.max(1) as u32;
        let window = if s.fec.window_us == 0 {
            // Half of what is left after the frame hold goes to FEC, the
            // other half to network jitter. Live, the blocks of all D
            // interleaved groups share that half; file mode's buffer adapts
            // to the span (its marks cover window x depth and the measured
            // jitter), so each block gets all of it.
            let room = latency.checked_sub(hold).unwrap_or_default();
            let w = match s.mode {
                Mode::Live => room / (2 * depth),
                Mode::File { .. } => room / 2,
            };
            if w < Duration::from_millis(1) {
                return Err(ConfigError::NoRoomForFec {
                    latency_ms: ms(latency),
                    hold_ms: ms(hold),
                });
            }
            w
        } else {
            Duration::from_micros(s.fec.window_us as u64)
        };
        let max = self.latency.max(self.high_water).max(self.max_buffer);
        if window > max {
            return Err(ConfigError::FecWindowTooLong {
                window_ms: ms(window),
                max_ms: ms(max),
            });
        }
        let need = window * depth + hold;
        if matches!(s.mode, Mode::File { .. }) {
            self.check_buffer(s, window)?;
        }
        if matches!(s.mode, Mode::Live) && latency < need {
            return Err(ConfigError::LatencyTooSmall {
                latency_ms: ms(latency),
                window_ms: ms(window),
                depth: s.fec.depth,
                hold_ms: ms(hold),
                need_ms: ms(need),
            });
        }
        Ok(window)
    }
}

impl ReceiverConfig {
    /// File mode: the marks the path needs (from the round trip in
    /// `loop_delay`, as measured at the hello) must fit the buffer limit.
    fn check_buffer(&self, s: &SessionDesc, window: Duration) -> Result<(), ConfigError> {
        let p = FlowParams::for_session(self, s, window);
        let m = p.initial_marks(self.loop_delay);
        let max = self.max_buffer.max(self.high_water);
        if m.need_us <= micros(max) {
            return Ok(());
        }
        let hold = s.substreams.iter().map(|d| d.unit_delay()).max();
        Err(ConfigError::BufferTooSmall {
            need_ms: m.need_us.div_ceil(1000) as f64,
            max_ms: ms(max),
            window_ms: ms(window),
            depth: s.fec.depth,
            hold_ms: ms(hold.unwrap_or_default()),
            spread_ms: ms(self.loop_delay / 2),
            rtt_ms: ms(self.loop_delay),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::stereo48k;

    fn session(window_ms: u32, depth: u8) -> SessionDesc {
        SessionDesc {
            name: "t".into(),
            mode: Mode::Live,
            speed: 1.0,
            fec: FecParams {
                k: 16,
                m: 4,
                depth,
                window_us: window_ms * 1000,
                auto_depth: false,
            },
            substreams: vec![stereo48k(0, 10_000)],
            recovery: Recovery::Fec,
        }
    }

    #[test]
    fn refuses_latency_below_window_times_depth_plus_frame() {
        let cfg = ReceiverConfig {
            latency: Duration::from_millis(80),
            ..Default::default()
        };
        assert_eq!(
            cfg.check_session(&session(10, 4)).unwrap(),
            Duration::from_millis(10)
        );
        let e = cfg.check_session(&session(20, 4)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("at least 90 ms"), "{msg}");
        assert!(msg.contains("raise the receiver's latency"), "{msg}");
    }

    #[test]
    fn file_mode_refuses_a_path_its_buffer_cannot_cover_and_says_what_to_raise() {
        let mut s = session(0, 1);
        s.mode = Mode::File { fill_percent: 200 };
        let mut cfg = ReceiverConfig {
            loop_delay: Duration::from_millis(600),
            ..Default::default()
        };
        // Window 35 ms + hold 10 + spread 300 + frame 10 + 5, + rtt 600 +
        // spread 300 + frame 10 = 1270 ms.
        let e = cfg.check_session(&s).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("needs 1270 ms"), "{msg}");
        assert!(
            msg.contains("raise the receiver's high-water mark to at least 1270 ms"),
            "{msg}"
        );
        cfg.high_water = Duration::from_millis(1300);
        assert!(cfg.check_session(&s).is_ok());
    }

    #[test]
    fn picks_a_window_from_the_latency() {
        let cfg = ReceiverConfig::default();
        let w = cfg.check_session(&session(0, 2)).unwrap();
        assert_eq!(w, Duration::from_micros(17_500), "(80 - 10) / (2 * 2)");
        let tight = ReceiverConfig {
            latency: Duration::from_millis(10),
            ..Default::default()
        };
        assert!(matches!(
            tight.check_session(&session(0, 1)),
            Err(ConfigError::NoRoomForFec { .. })
        ));
    }

    #[test]
    fn grants_automatic_depth_as_far_as_the_budget_allows() {
        let auto = |latency_ms: u64, depth: u8, mode: Mode| {
            let mut s = session(0, depth);
            s.fec.auto_depth = true;
            s.mode = mode;
            let cfg = ReceiverConfig {
                latency: Duration::from_millis(latency_ms),
                ..Default::default()
            };
            cfg.grant(&s).unwrap()
        };
        // Live 250 ms, 10 ms frames: (250 - 10) / 2 = 120 ms a group, a
        // frame's time a block at most 12 deep; 8 asked, 8 granted.
        assert_eq!(auto(250, 8, Mode::Live), (Duration::from_millis(15), 8));
        assert_eq!(auto(250, 16, Mode::Live), (Duration::from_millis(10), 12));
        // 80 ms: 35 ms a group, 3 deep.
        let (w, d) = auto(80, 8, Mode::Live);
        assert_eq!(d, 3);
        assert!(w >= Duration::from_millis(10), "{w:?}");
        // 30 ms: 10 ms a group: depth 1, the window as if fixed.
        assert_eq!(auto(30, 8, Mode::Live), (Duration::from_millis(10), 1));
        // File mode: as deep as the buffer limit holds the span (window
        // 35 ms x depth + the path's margins within 1 s).
        let (w, d) = auto(80, 64, Mode::File { fill_percent: 200 });
        assert_eq!(w, Duration::from_millis(35));
        assert!((2..64).contains(&d), "{d}");
        // A fixed depth is granted as proposed.
        let cfg = ReceiverConfig::default();
        assert_eq!(cfg.grant(&session(10, 4)).unwrap().1, 4);
    }
}
