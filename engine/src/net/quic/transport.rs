//! QUIC transport settings, and congestion control for media.
//!
//! quinn's default (Cubic) treats every loss as congestion. At 5 % random
//! loss and a 40 ms round trip its window sustains about 1.3 Mbit/s, below a
//! stereo 48 kHz stream with FEC: loss-based control starves exactly the
//! links FEC is for. The sender here is application-limited at the media
//! rate, so [`MediaController`] keeps a window sized for that rate, leaves
//! random loss to FEC, and backs off only on persistent congestion (every
//! packet over several probe timeouts lost), regrowing as acks return.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::congestion::{Controller, ControllerFactory};
use quinn::{AckFrequencyConfig, IdleTimeout, TransportConfig, VarInt};

/// The media congestion controller's settings.
#[derive(Debug, Clone, Copy)]
pub struct MediaCongestion {
    /// Bytes in flight allowed normally (and at start).
    pub window: u64,
    /// Floor after repeated persistent congestion.
    pub min_window: u64,
}

impl Default for MediaCongestion {
    fn default() -> Self {
        Self {
            window: 1024 * 1024,
            min_window: 32 * 1024,
        }
    }
}

impl ControllerFactory for MediaCongestion {
    fn build(self: Arc<Self>, _now: Instant, _mtu: u16) -> Box<dyn Controller> {
        Box::new(MediaController {
            cfg: *self,
            window: self.window,
        })
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct MediaController {
    cfg: MediaCongestion,
    window: u64,
}

impl Controller for MediaController {
    fn on_ack(
        &mut self,
        _now: Instant,
        _sent: Instant,
        bytes: u64,
        _app_limited: bool,
        _rtt: &quinn_proto::RttEstimator,
    ) {
        self.window = (self.window + bytes).min(self.cfg.window);
    }

    fn on_congestion_event(
        &mut self,
        _now: Instant,
        _sent: Instant,
        is_persistent_congestion: bool,
        _lost_bytes: u64,
    ) {
        if is_persistent_congestion {
            self.window = (self.window / 2).max(self.cfg.min_window);
        }
    }

    fn on_mtu_update(&mut self, _new_mtu: u16) {}

    fn window(&self) -> u64 {
        self.window
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }

    fn initial_window(&self) -> u64 {
        self.cfg.window
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// ACK-eliciting packets the peer may take before it must acknowledge (it
/// still does within its `max_ack_delay`, 25 ms). Media datagrams are never
/// retransmitted, so acknowledging every other one (QUIC's default) only
/// feeds the congestion controller and RTT estimate, which a few ACKs a
/// round trip serve as well; at hundreds of sessions, ACKs were a large part
/// of the receiver's per-datagram cost.
pub const ACK_ELICITING_THRESHOLD: u32 = 15;

/// Transport settings for an isochron connection: idle timeout with
/// keep-alives, datagram buffers, the MTU floor (packets are planned at the
/// 1200-byte floor and re-planned only if the path shrinks), media
/// congestion control, fewer ACKs (the ACK frequency extension, which quinn
/// peers support; others ignore the request).
pub fn config(idle_timeout: Duration) -> TransportConfig {
    let mut t = TransportConfig::default();
    let mut acks = AckFrequencyConfig::default();
    // Reordering (jittery links) must not bring back an ACK per packet.
    acks.ack_eliciting_threshold(VarInt::from_u32(ACK_ELICITING_THRESHOLD))
        .reordering_threshold(VarInt::from_u32(0));
    let idle = IdleTimeout::try_from(idle_timeout)
        .unwrap_or_else(|_| IdleTimeout::from(VarInt::from_u32(30_000)));
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(Some((idle_timeout / 4).max(Duration::from_millis(50))))
        .datagram_receive_buffer_size(Some(4 * 1024 * 1024))
        .datagram_send_buffer_size(256 * 1024)
        .initial_mtu(1200)
        .mtu_discovery_config(None)
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .congestion_controller_factory(Arc::new(MediaCongestion::default()))
        .ack_frequency_config(Some(acks));
    t
}
