//! Feeding the sender from other threads.
//!
//! Each substream has a bounded channel of sample chunks (any length, whole
//! samples). Applications push into it; file readers run on their own
//! threads and push into it; the network thread's [`ChannelSource`] cuts
//! the chunks into the frames the core asks for. A full channel blocks the
//! producer (back-pressure), never the network.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

use bytes::Bytes;
use crossbeam_channel as cb;
use tokio::sync::Notify;

use super::clock::Clock;
use crate::sender::{FrameRead, FrameSource, MediaStart};
use crate::time::Time;

/// A live session's media time zero, shared by its producers and the
/// network thread: set by the first push (or end) on any substream, or by
/// the application beforehand; never moved once set.
#[derive(Debug, Clone)]
pub struct MediaClock {
    clock: Clock,
    /// Microseconds of the session clock; 0: not started.
    start: Arc<AtomicU64>,
}

impl MediaClock {
    /// A clock not started yet, on the session's `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            start: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Media time zero is `at` unless it was set already; returns media time
    /// zero.
    pub fn start_at(&self, at: Time) -> Time {
        let at = at.as_micros().max(1);
        match self
            .start
            .compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Time::from_micros(at),
            Err(already) => Time::from_micros(already),
        }
    }

    /// Media time zero is now unless it was set already.
    pub fn start_now(&self) -> Time {
        self.start_at(self.clock.now())
    }

    /// Media time zero, once set.
    pub fn started(&self) -> Option<Time> {
        match self.start.load(Ordering::Acquire) {
            0 => None,
            t => Some(Time::from_micros(t)),
        }
    }

    /// The session clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// What producers send.
pub enum Chunk {
    /// Wire-encoded samples, whole samples, any count.
    Samples(Bytes),
    /// The substream has no more samples.
    End,
}

/// The producer side of one substream.
#[derive(Clone)]
pub struct Feed {
    tx: cb::Sender<Chunk>,
    wake: Arc<Notify>,
    /// Set by the network side when it found no samples (or no media start)
    /// and waits to be woken for them; see [`ChannelSource`].
    starved: Arc<AtomicBool>,
    media: MediaClock,
}

impl Feed {
    /// Queue samples; blocks while the substream's buffer is full. `false`
    /// if the session is gone. The session's first samples start its media
    /// clock (live), at the instant they are pushed.
    ///
    /// The network thread is woken only if it is waiting for samples: a
    /// producer ahead of the pace (a file read ahead, an application pushing
    /// early) finds it not starved, and its pushes cost the network thread
    /// nothing (they woke it once a chunk for a poll with nothing to do).
    pub fn push(&self, samples: Bytes) -> bool {
        self.media.start_now();
        let ok = self.tx.send(Chunk::Samples(samples)).is_ok();
        // Pairs with the fence in `ChannelSource::starve`: either the
        // network side sees these samples when it looks again, or we see
        // its flag and wake it.
        fence(Ordering::SeqCst);
        if self.starved.swap(false, Ordering::SeqCst) {
            self.wake.notify_one();
        }
        ok
    }

    /// The substream has no more samples (a stream that ends before any
    /// sample starts its clock too, so it can end).
    pub fn end(&self) {
        let _ = self.tx.send(Chunk::End);
        self.media.start_now();
        self.wake.notify_one();
    }
}

struct Staging {
    rx: cb::Receiver<Chunk>,
    stride: usize,
    chunks: VecDeque<Bytes>,
    /// Bytes already taken from the front chunk.
    offset: usize,
    queued: usize,
    ended: bool,
}

/// The network side: serves frames from the chunks that have arrived.
///
/// When it finds a substream short of a frame's samples (or the live clock
/// not started) it raises `starved` and looks once more before saying so:
/// a producer's push after that look sees the flag and wakes the network
/// thread; one before it is found by the second look.
pub struct ChannelSource {
    subs: Vec<Staging>,
    media: MediaClock,
    starved: Arc<AtomicBool>,
}

impl ChannelSource {
    /// Ask to be woken by the next push (then look again).
    fn starve(&self) {
        self.starved.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }
}

/// Move what has arrived on `s`'s channel into its staging, until a frame
/// of `want` bytes is there (or the end).
fn take_chunks(s: &mut Staging, want: usize) {
    while s.queued < want && !s.ended {
        match s.rx.try_recv() {
            Ok(Chunk::Samples(b)) => {
                s.queued += b.len();
                s.chunks.push_back(b);
            }
            Ok(Chunk::End) | Err(cb::TryRecvError::Disconnected) => s.ended = true,
            Err(cb::TryRecvError::Empty) => break,
        }
    }
}

/// A source for substreams of these strides (bytes a sample) and the feeds
/// that fill it; `depth` chunks may wait per substream. `wake` is notified
/// on every push; `media` starts with the first push.
pub fn channel_source(
    strides: &[usize],
    depth: usize,
    wake: Arc<Notify>,
    media: MediaClock,
) -> (ChannelSource, Vec<Feed>) {
    let mut subs = Vec::with_capacity(strides.len());
    let mut feeds = Vec::with_capacity(strides.len());
    let starved = Arc::new(AtomicBool::new(false));
    for &stride in strides {
        let (tx, rx) = cb::bounded(depth.max(1));
        subs.push(Staging {
            rx,
            stride: stride.max(1),
            chunks: VecDeque::new(),
            offset: 0,
            queued: 0,
            ended: false,
        });
        feeds.push(Feed {
            tx,
            wake: wake.clone(),
            starved: starved.clone(),
            media: media.clone(),
        });
    }
    (
        ChannelSource {
            subs,
            media,
            starved,
        },
        feeds,
    )
}

impl FrameSource for ChannelSource {
    fn media_start(&mut self) -> MediaStart {
        if let Some(t) = self.media.started() {
            return MediaStart::At(t);
        }
        self.starve();
        self.media
            .started()
            .map_or(MediaStart::NotYet, MediaStart::At)
    }

    fn read_frame(&mut self, index: usize, _frame: u64, out: &mut [u8]) -> FrameRead {
        if index >= self.subs.len() {
            return FrameRead::End;
        }
        take_chunks(&mut self.subs[index], out.len());
        {
            let s = &self.subs[index];
            if s.queued < out.len() && !s.ended {
                self.starve();
                take_chunks(&mut self.subs[index], out.len());
            }
        }
        let s = &mut self.subs[index];
        if out.is_empty() && s.queued == 0 && !s.ended {
            // An empty frame (a sparse sensor between samples) needs no data,
            // but may be where the end shows.
            match s.rx.try_recv() {
                Ok(Chunk::Samples(b)) => {
                    s.queued += b.len();
                    s.chunks.push_back(b);
                }
                Ok(Chunk::End) | Err(cb::TryRecvError::Disconnected) => s.ended = true,
                Err(cb::TryRecvError::Empty) => {}
            }
        }
        if s.queued < out.len() && !s.ended {
            return FrameRead::NotReady;
        }
        if s.queued == 0 && s.ended {
            return FrameRead::End;
        }
        let take = s.queued.min(out.len());
        let mut at = 0;
        while at < take {
            let front = &s.chunks[0][s.offset..];
            let n = front.len().min(take - at);
            out[at..at + n].copy_from_slice(&front[..n]);
            at += n;
            s.offset += n;
            if s.offset == s.chunks[0].len() {
                s.chunks.pop_front();
                s.offset = 0;
            }
        }
        s.queued -= take;
        FrameRead::Ready(take / s.stride)
    }
}

/// Feed a substream from `read` on its own thread: `read` fills a buffer
/// with whole samples and returns how many bytes (0 at the end); chunks are
/// about 20 ms of `desc`'s samples from an open-ended source, 100 ms from a
/// file. The thread ends at the end of the input, on a read error, or when
/// the session is gone.
pub fn spawn_reader<R>(
    feed: Feed,
    index: usize,
    desc: &crate::catalog::SubstreamDesc,
    mut read: R,
) -> std::io::Result<std::thread::JoinHandle<std::io::Result<()>>>
where
    R: FnMut(&mut [u8]) -> std::io::Result<usize> + Send + 'static,
{
    // An open-ended source (a pipe, a capture device) is live: a frame
    // leaves when its samples are in, so this thread's wake-up latency is
    // jitter every frame carries: on a loaded machine it must be scheduled
    // as promptly as the network threads that send the frame on.
    let live = desc.length.is_none();
    // A file is all there already and is read ahead of the pace (the
    // channel full, this thread blocked on it): each chunk taken wakes this
    // thread for one read, so larger chunks mean fewer wake-ups (5 times
    // fewer at 100 ms than at 20 ms, which a pipe keeps: there a chunk is
    // what the frame waits for).
    let per_second = if live { 50.0 } else { 10.0 };
    let per = (desc.format.rate.as_f64() / per_second).ceil().max(1.0) as usize;
    let size = per * desc.format.stride();
    std::thread::Builder::new()
        .name(format!("isochron-read-{index}"))
        .spawn(move || {
            if live {
                crate::net::priority::raise(crate::net::priority::Urgency::Network);
            }
            let mut buf = vec![0u8; size];
            loop {
                let n = read(&mut buf)?;
                if n == 0 {
                    feed.end();
                    return Ok(());
                }
                if !feed.push(Bytes::copy_from_slice(&buf[..n])) {
                    return Ok(()); // session gone
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_any_size_become_frames() {
        let media = MediaClock::new(Clock::new(1.0));
        let (mut src, feeds) = channel_source(&[2], 16, Arc::new(Notify::new()), media.clone());
        assert_eq!(src.media_start(), MediaStart::NotYet);
        let mut out = [0u8; 6];
        assert_eq!(src.read_frame(0, 0, &mut out), FrameRead::NotReady);
        let before = media.clock().now();
        feeds[0].push(Bytes::from_static(&[1, 2, 3, 4]));
        let MediaStart::At(t) = src.media_start() else {
            panic!("the first push starts the clock")
        };
        assert!(t >= before && t <= media.clock().now());
        assert_eq!(media.start_at(Time::from_micros(5)), t, "set once");
        assert_eq!(src.read_frame(0, 0, &mut out), FrameRead::NotReady);
        feeds[0].push(Bytes::from_static(&[5, 6, 7, 8]));
        assert_eq!(src.read_frame(0, 0, &mut out), FrameRead::Ready(3));
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        feeds[0].end();
        assert_eq!(
            src.read_frame(0, 1, &mut out),
            FrameRead::Ready(1),
            "short last frame"
        );
        assert_eq!(&out[..2], &[7, 8]);
        assert_eq!(src.read_frame(0, 2, &mut out), FrameRead::End);
    }

    /// Whether `wake` holds a notification (consumed by looking).
    fn woken(wake: &Notify) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let n = std::pin::pin!(wake.notified());
        std::future::Future::poll(n, &mut cx).is_ready()
    }

    #[test]
    fn pushes_wake_the_network_side_only_when_it_waits_for_them() {
        let media = MediaClock::new(Clock::new(1.0));
        let wake = Arc::new(Notify::new());
        let (mut src, feeds) = channel_source(&[2], 16, wake.clone(), media);
        // Not started: the network side waits for the first push.
        assert_eq!(src.media_start(), MediaStart::NotYet);
        feeds[0].push(Bytes::from_static(&[1, 2]));
        assert!(woken(&wake), "the first push starts the clock: wake");
        // Ahead of the pace: nobody waits, nobody is woken.
        feeds[0].push(Bytes::from_static(&[3, 4]));
        assert!(!woken(&wake), "a push ahead of the reads wakes no one");
        let mut out = [0u8; 4];
        assert_eq!(src.read_frame(0, 0, &mut out), FrameRead::Ready(2));
        assert!(!woken(&wake));
        // Short of a frame: the next push wakes, once.
        assert_eq!(src.read_frame(0, 1, &mut out), FrameRead::NotReady);
        feeds[0].push(Bytes::from_static(&[5, 6]));
        assert!(woken(&wake), "a push the network side waits for wakes it");
        feeds[0].push(Bytes::from_static(&[7, 8]));
        assert!(!woken(&wake), "one wake for one wait");
        assert_eq!(src.read_frame(0, 1, &mut out), FrameRead::Ready(2));
        assert_eq!(out, [5, 6, 7, 8]);
        // The end always wakes (the session may be finishing).
        feeds[0].end();
        assert!(woken(&wake));
    }

    #[test]
    fn an_empty_frame_before_the_data_is_not_the_end() {
        // A 50 Hz sensor in 10 ms frames: every other frame has no sample.
        let media = MediaClock::new(Clock::new(1.0));
        let (mut src, feeds) = channel_source(&[8], 16, Arc::new(Notify::new()), media);
        assert_eq!(src.read_frame(0, 1, &mut []), FrameRead::Ready(0));
        feeds[0].push(Bytes::from_static(&[1; 8]));
        let mut one = [0u8; 8];
        assert_eq!(src.read_frame(0, 2, &mut one), FrameRead::Ready(1));
        feeds[0].end();
        assert_eq!(src.read_frame(0, 3, &mut []), FrameRead::End);
    }
}
