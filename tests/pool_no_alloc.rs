//! The playout pool keeps the real-time discipline: once sessions are
//! attached and warm, its workers do not allocate. Counted with a global
//! allocator on every thread but the test's own, which plays the network
//! side (sender cores and ingress: their discipline is `no_alloc.rs`'s, and
//! a starved test thread may meet a new peak burst).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{ms, stereo48k};
use crossbeam_channel as cb;
use crossbeam_queue::ArrayQueue;
use isochron::engine::config::{ReceiverConfig, SenderConfig};
use isochron::engine::ingress::Ingress;
use isochron::engine::net::clock::Clock;
use isochron::engine::net::playout_pool::{
    INPUT_DEPTH, PAYLOAD_CAP, PacketMsg, PlayoutParts, PlayoutPool, Pool, Shared, ToPlayout,
};
use isochron::engine::net::{SessionEnd, Sink};
use isochron::engine::playout::{PlayedFrame, Playout};
use isochron::engine::receiver::fec_wait;
use isochron::engine::sim::PatternSource;
use isochron::engine::wire::control::Control;
use isochron::engine::{SenderCore, handshake};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread is the network side: not counted.
    static NETWORK_SIDE: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTING.load(Ordering::Relaxed) && !NETWORK_SIDE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Counts frames; allocates nothing.
struct Frames(Arc<AtomicU64>);

impl Sink for Frames {
    fn frame(&mut self, _: PlayedFrame<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn end(&mut self, _: &mut SessionEnd) {}
}

struct Fed {
    core: SenderCore,
    source: PatternSource,
    ingress: Ingress,
    input: isochron::engine::net::playout_pool::PlayoutInput,
    clock: Clock,
    bufs: Pool,
    ctl: cb::Receiver<Control>,
}

const SPEED: f64 = 4.0;

#[test]
fn steady_state_playout_on_the_pool_does_not_allocate() {
    NETWORK_SIDE.with(|n| n.set(true));
    let pool = PlayoutPool::new(2).unwrap();
    let played = Arc::new(AtomicU64::new(0));
    let rcfg = ReceiverConfig {
        latency: ms(100),
        ..Default::default()
    };
    let mut fed: Vec<Fed> = (0..6)
        .map(|i| {
            let subs = vec![stereo48k(0, ms(10))];
            let scfg = SenderConfig {
                speed: SPEED,
                ..Default::default()
            };
            let mut core = SenderCore::new(&format!("s{i}"), subs.clone(), &scfg).unwrap();
            let Control::Hello(hello) = core.hello(None) else {
                unreachable!()
            };
            let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
            let clock = Clock::new(SPEED);
            core.on_accept(clock.now(), &accept).unwrap();
            let window = Duration::from_micros(accept.fec_window_us as u64);
            let (to_net, ctl) = cb::bounded(64);
            let bufs: Pool = Arc::new(ArrayQueue::new(INPUT_DEPTH + 64));
            // Enough for any backlog a loaded machine builds up (a driver's
            // pool grows to its peak once; this test is about steady state).
            for _ in 0..1024 {
                let _ = bufs.push(vec![0u8; PAYLOAD_CAP].into_boxed_slice());
            }
            let (input, _ended) = pool
                .attach(PlayoutParts {
                    name: format!("s{i}"),
                    playout: Playout::new(&rcfg, &hello.session, window),
                    sink: Box::new(Frames(played.clone())),
                    concealers: vec![None],
                    clock,
                    to_net,
                    wake_net: Arc::new(tokio::sync::Notify::new()),
                    pool: bufs.clone(),
                    shared: Arc::new(Shared::default()),
                    input_depth: INPUT_DEPTH,
                })
                .unwrap();
            Fed {
                ingress: Ingress::new(
                    &hello.session,
                    rcfg.max_fec_blocks,
                    fec_wait(&rcfg, &hello.session, window),
                ),
                core,
                source: PatternSource::new(&subs, None),
                input,
                clock,
                bufs,
                ctl,
            }
        })
        .collect();
    let mut sent = 0u64;
    let step = |fed: &mut [Fed], sent: &mut u64| {
        for f in fed.iter_mut() {
            let now = f.clock.now();
            f.core.poll(now, &mut f.source).unwrap();
            let (bufs, input) = (&f.bufs, &f.input);
            while let Some(d) = f.core.poll_transmit() {
                *sent += 1;
                f.ingress.on_datagram(now, d, &mut |meta, payload, via| {
                    let mut buf = bufs
                        .pop()
                        .unwrap_or_else(|| vec![0u8; PAYLOAD_CAP].into_boxed_slice());
                    buf[..payload.len()].copy_from_slice(payload);
                    let m = ToPlayout::Packet(PacketMsg {
                        arrival: now,
                        meta: *meta,
                        via,
                        len: payload.len(),
                        buf,
                    });
                    assert!(input.try_send(m).is_ok());
                });
            }
            while f.ctl.try_recv().is_ok() {}
        }
        // Pacing the live sources (real time, sped up), not synchronisation.
        std::thread::sleep(Duration::from_millis(1));
    };
    // Warm-up: playback starts, buffers and stats structures exist, two
    // reports and many publishes have gone.
    let warm = std::time::Instant::now() + Duration::from_millis(700);
    while std::time::Instant::now() < warm {
        step(&mut fed, &mut sent);
    }
    let (sent0, played0, serves0) = (sent, played.load(Ordering::SeqCst), pool.stats().serves);
    COUNTING.store(true, Ordering::SeqCst);
    let until = std::time::Instant::now() + Duration::from_millis(1000);
    while std::time::Instant::now() < until {
        step(&mut fed, &mut sent);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let frames = played.load(Ordering::SeqCst) - played0;
    assert!(sent - sent0 > 1000, "packets flowed: {}", sent - sent0);
    // 6 sessions at 4x real time: 2400 frames a second.
    assert!(frames > 1000, "frames played: {frames}");
    assert!(pool.stats().serves - serves0 > 1000);
    assert_eq!(allocs, 0, "heap allocations on the playout workers");
}
