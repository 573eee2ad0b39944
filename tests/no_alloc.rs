//! After warm-up, sending and receiving a packet performs no heap
//! allocation: packetizer, FEC encode, queue, ingress, FEC rebuild, jitter
//! buffer, playout. Counted with a global allocator in this test binary.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{ms, sensor200, stereo48k};
use isochron::engine::config::{ReceiverConfig, SenderConfig};
use isochron::engine::sim::PatternSource;
use isochron::engine::wire::control::{Control, FecParams};
use isochron::engine::{ReceiverCore, SenderCore, Time, handshake};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
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

#[test]
fn steady_state_send_and_receive_do_not_allocate() {
    let mut interleaved = stereo48k(2, ms(5));
    interleaved.sample_interleave = 4;
    let subs = vec![stereo48k(0, ms(10)), sensor200(1, ms(10)), interleaved];
    let scfg = SenderConfig {
        fec: FecParams {
            k: 16,
            m: 4,
            depth: 2,
            window_us: 20_000,
            auto_depth: false,
        },
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        latency: ms(100),
        ..Default::default()
    };
    let mut tx = SenderCore::new("alloc", subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = tx.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
    let mut rx = ReceiverCore::new(&rcfg, &hello.session, &accept);
    let mut source = PatternSource::new(&subs, None);
    let mut now = Time::from_micros(1_000_000);
    tx.on_accept(now, &accept).unwrap();

    let (mut sent, mut played) = (0u64, 0u64);
    let mut step = |now: Time, sent: &mut u64, played: &mut u64| {
        tx.poll(now, &mut source).unwrap();
        while let Some(d) = tx.poll_transmit() {
            *sent += 1;
            // Lose one datagram in 23: FEC rebuilds it (same patterns recur,
            // as they do on a real link, so the decoder's caches are warm).
            if *sent % 23 != 0 {
                rx.on_datagram(now, d);
            }
        }
        rx.poll(now, &mut |_| *played += 1);
        while rx.poll_control(now).is_some() {}
    };
    for _ in 0..5_000 {
        now += Duration::from_millis(1);
        step(now, &mut sent, &mut played);
    }
    let (sent0, played0) = (sent, played);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..5_000 {
        now += Duration::from_millis(1);
        step(now, &mut sent, &mut played);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let stats = rx.stats();
    assert!(sent - sent0 > 1500, "packets flowed: {}", sent - sent0);
    assert!(
        played - played0 > 1000,
        "frames played: {}",
        played - played0
    );
    assert!(
        stats.fec.packets_rebuilt > 50,
        "FEC rebuilt: {:?}",
        stats.fec
    );
    assert_eq!(stats.packets.unrecovered, 0);
    assert_eq!(allocs, 0, "heap allocations in steady state");
}
