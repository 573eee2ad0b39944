//! The sender changes its FEC code mid-stream; the receiver follows from the
//! k and m every packet carries and keeps rebuilding.

mod common;

use std::time::Duration;

use common::{ms, stereo48k};
use isochron::engine::config::{ReceiverConfig, SenderConfig};
use isochron::engine::sim::{PatternCheck, PatternSource};
use isochron::engine::wire::control::{Control, EndOfStream, FecParams};
use isochron::engine::{ReceiverCore, SenderCore, Time, handshake};

#[test]
fn receiver_follows_k_and_m_changes() {
    let mut subs = vec![stereo48k(0, ms(10))];
    subs[0].length = Some(48_000 * 9);
    let scfg = SenderConfig {
        fec: FecParams {
            k: 16,
            m: 4,
            depth: 1,
            window_us: 60_000,
            auto_depth: false,
        },
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        latency: ms(200),
        high_water: ms(400),
        ..Default::default()
    };
    let mut tx = SenderCore::new("changes", subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = tx.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
    let mut rx = ReceiverCore::new(&rcfg, &hello.session, &accept);
    let mut src = PatternSource::new(&subs, None);
    let mut check = PatternCheck::new(&subs);
    let mut now = Time::from_micros(1_000_000);
    tx.on_accept(now, &accept).unwrap();
    let (mut sent, mut rebuilt_at) = (0u64, Vec::new());
    // Within the proposed code: k up to 16, m up to 16 (the receiver
    // sizes its slots for no more, so a larger code is refused).
    assert!(tx.set_fec(now, 40, 10).is_err());
    assert!(tx.set_fec(now, 16, 17).is_err());
    let codes = [(16u8, 4u8), (4, 4), (12, 12)];
    for step in 0..12_000u32 {
        if step % 3000 == 0 && (step / 3000) < 3 {
            let (k, m) = codes[(step / 3000) as usize];
            if step > 0 {
                tx.set_fec(now, k, m).unwrap();
            }
            rebuilt_at.push(rx.stats().fec.packets_rebuilt);
        }
        now += Duration::from_millis(1);
        tx.poll(now, &mut src).unwrap();
        while let Some(d) = tx.poll_transmit() {
            sent += 1;
            if sent % 7 != 0 {
                rx.on_datagram(now, d);
            }
        }
        if tx.is_finished() && step % 100 == 0 {
            let eos: EndOfStream = tx.end_of_stream();
            rx.on_control(&Control::EndOfStream(eos));
        }
        rx.poll(now, &mut |f| check.on_frame(&f));
    }
    rebuilt_at.push(rx.stats().fec.packets_rebuilt);
    assert!(rx.is_finished());
    let s = rx.stats();
    // Every phase rebuilt packets: the decoder followed each code.
    for w in rebuilt_at.windows(2) {
        assert!(w[1] > w[0] + 20, "rebuilt per phase: {rebuilt_at:?}");
    }
    assert_eq!(s.packets.unrecovered, 0, "{:?}", s.packets);
    let c = check.counts(0);
    assert_eq!(
        (c.samples, c.missing_samples, c.corrupt_frames),
        (48_000 * 9, 0, 0)
    );
}

/// Live at the clock's pace, a group whose time budget runs out between two
/// frames closes at the frame before (no source could join it in between):
/// the sender wakes once a frame, not once more a group for its repairs.
#[test]
fn a_group_out_of_time_between_frames_closes_at_the_frame_before() {
    let subs = vec![stereo48k(0, ms(10))];
    let scfg = SenderConfig {
        fec: FecParams {
            k: 16,
            m: 4,
            depth: 1,
            // 25 ms: the budget of a group opened by a frame runs out
            // halfway between two later frames.
            window_us: 25_000,
            auto_depth: false,
        },
        fec_target: None,
        ..Default::default()
    };
    let rcfg = ReceiverConfig {
        latency: ms(200),
        ..Default::default()
    };
    let mut tx = SenderCore::new("budget", subs.clone(), &scfg).unwrap();
    let Control::Hello(hello) = tx.hello(None) else {
        unreachable!()
    };
    let accept = handshake::answer(&rcfg, &hello, 1).unwrap();
    let mut rx = ReceiverCore::new(&rcfg, &hello.session, &accept);
    let mut src = PatternSource::new(&subs, None);
    let start = Time::from_micros(1_000_000);
    tx.on_accept(start, &accept).unwrap();
    let mut now = start;
    let mut wakes = 0u64;
    while now < start + Duration::from_secs(2) {
        tx.poll(now, &mut src).unwrap();
        while let Some(d) = tx.poll_transmit() {
            rx.on_datagram(now, d);
        }
        wakes += 1;
        now = tx.next_timeout().expect("live: the next frame is due");
    }
    let s = tx.stats();
    let frames: u64 = s.substreams.iter().map(|d| d.frames).sum();
    assert!(s.repair_packets > 0 && s.fec_blocks > frames / 4, "{s:?}");
    // One wake-up a frame (and the first poll).
    assert!(wakes <= frames + 2, "{wakes} wake-ups for {frames} frames");
    assert_eq!(rx.stats().invalid, Default::default());
}
