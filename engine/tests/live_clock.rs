//! The live media clock starts with the media, not with the session, and
//! media that comes too late is counted, not silently expired (sans-IO:
//! the sender core on a virtual clock).

use std::time::Duration;

use isochron_codecs::{Encoding, Rate, StreamFormat};
use isochron_engine::handshake;
use isochron_engine::wire::control::{Accept, Control};
use isochron_engine::{
    FrameRead, FrameSource, MediaStart, ReceiverConfig, SenderConfig, SenderCore, SubstreamDesc,
    Time,
};

/// A live source whose media starts at `start` (unknown before) and whose
/// frame `n` is available from `available(n)`.
struct Capture {
    start: Time,
    available: Box<dyn Fn(u64) -> Time>,
    now: Time,
}

impl FrameSource for Capture {
    fn read_frame(&mut self, _index: usize, frame: u64, out: &mut [u8]) -> FrameRead {
        if self.now < self.start || self.now < (self.available)(frame) {
            return FrameRead::NotReady;
        }
        out.fill(1);
        FrameRead::Ready(out.len() / 4)
    }

    fn media_start(&mut self) -> MediaStart {
        if self.now >= self.start {
            MediaStart::At(self.start)
        } else {
            MediaStart::NotYet
        }
    }
}

fn t(ms: u64) -> Time {
    Time::from_micros(ms * 1000)
}

fn accepted() -> (SenderCore, Accept) {
    let format = StreamFormat::new(Encoding::L16, 2, Rate::hz(48_000).unwrap()).unwrap();
    let core = SenderCore::new(
        "t",
        vec![SubstreamDesc::audio(0, "a", format)],
        &SenderConfig::default(),
    )
    .unwrap();
    let Control::Hello(hello) = core.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&ReceiverConfig::default(), &hello, 1).unwrap();
    (core, accept)
}

/// Run the core from `from` to `to` in 1 ms steps; datagrams sent (and
/// when), expiring what is late as the drivers do.
fn run(core: &mut SenderCore, src: &mut Capture, from: u64, to: u64) -> Vec<Time> {
    let mut sent = Vec::new();
    for ms in from..to {
        src.now = t(ms);
        core.poll(src.now, src).unwrap();
        core.expire(src.now);
        while core.poll_transmit().is_some() {
            sent.push(src.now);
        }
    }
    sent
}

#[test]
fn the_media_clock_starts_with_the_first_sample_not_the_accept() {
    let (mut core, accept) = accepted();
    core.on_accept(t(1_000), &accept).unwrap();
    // The application starts capturing 300 ms after the accept, on time
    // from then on.
    let start = t(1_300);
    let mut src = Capture {
        start,
        available: Box::new(move |n| start + Duration::from_millis(10 * (n + 1))),
        now: t(0),
    };
    let sent = run(&mut core, &mut src, 1_000, 1_300);
    assert!(sent.is_empty() && !core.clock_started(), "no media yet");
    let sent = run(&mut core, &mut src, 1_300, 2_400);
    assert_eq!(
        core.started_at(),
        start,
        "media time zero is the first sample"
    );
    assert!(
        sent.iter().all(|&at| at >= t(1_310)),
        "nothing before frame 0 is complete"
    );
    let s = core.stats();
    assert!(s.frames(0) >= 100, "{s:?}");
    assert_eq!((s.late_frames, s.dropped_expired), (0, 0), "{s:?}");
    assert!(s.repair_packets > 0, "FEC stays on: {s:?}");
    assert!(s.max_source_lag_us < 2_000, "{s:?}");
}

#[test]
fn media_that_comes_too_late_is_counted_as_late() {
    let (mut core, accept) = accepted();
    core.on_accept(t(1_000), &accept).unwrap();
    let start = t(1_000);
    // On time, except that frames 50..80 arrive together 400 ms late (an
    // application stalled), far beyond the 80 ms latency.
    let mut src = Capture {
        start,
        available: Box::new(move |n| {
            let due = start + Duration::from_millis(10 * (n + 1));
            if (50..80).contains(&n) {
                t(1_000 + 800 + 400)
            } else {
                due
            }
        }),
        now: t(0),
    };
    run(&mut core, &mut src, 1_000, 2_500);
    let s = core.stats();
    // Frames 50..80 wait for the stall, and the on-time frames behind them
    // (a substream's frames leave in order) until the stall ends.
    assert!(s.late_frames >= 30, "{s:?}");
    assert!(s.max_source_lag_us >= 390_000, "{s:?}");
}
