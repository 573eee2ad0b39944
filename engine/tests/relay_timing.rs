//! When the relay delivers: fixed delay, jitter, and how precisely it keeps
//! the model's instants, over real UDP on 127.0.0.1. These tests measure
//! time, so they run one at a time.

mod relay_support;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use isochron_engine::sim::Impairment;
use relay_support::*;

const GUARD: Duration = Duration::from_secs(20);

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn delay(d: Duration) -> Impairment {
    Impairment {
        delay: d,
        ..Default::default()
    }
}

/// Send `n` probes one every `every` through `addr`; all must come back.
fn probe_all(addr: std::net::SocketAddr, n: u64, every: Duration) -> Vec<Echoed> {
    let probe = Probe::new(addr);
    let sender = probe.send_paced(n, every, 64);
    let got = probe.collect(GUARD, |got| got.len() as u64 == n);
    sender.join().unwrap();
    got
}

/// Never early: the relay's clock starts no earlier than the client's
/// stamp and rounds down by under a microsecond per hop.
const EARLY: Duration = Duration::from_micros(10);
/// Room for a machine busy with other work: with every core taken, the
/// scheduler alone adds milliseconds to the tail of the test's own threads.
const BUSY: Duration = Duration::from_millis(5);

#[test]
fn clean_relay_echoes_everything_in_order_after_twice_the_delay() {
    let _serial = one_at_a_time();
    let echo = Echo::start();
    let relay = relay(echo.addr, delay(ms(10)), delay(ms(10)));
    let n = 300;
    let got = probe_all(relay.local_addr(), n, ms(1));
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "all, in order");
    let rtts: Vec<Duration> = got.iter().map(Echoed::rtt).collect();
    let min = *rtts.iter().min().unwrap();
    assert!(min + EARLY >= ms(20), "early: {min:?}");
    // Upper bounds leave room for a busy machine; idle, p50 is ~20.1 ms.
    let p50 = quantile(rtts, 0.5);
    assert!(p50 < ms(20) + BUSY, "p50 round trip {p50:?}");
    let s = relay.stop();
    assert_eq!(s.lateness.samples, 2 * n, "{s}");
}

#[test]
fn jitter_spreads_the_delay_over_its_range() {
    let _serial = one_at_a_time();
    let echo = Echo::start();
    let jittery = Impairment {
        delay: ms(20),
        jitter: ms(10),
        ..Default::default()
    };
    let relay = relay(echo.addr, jittery, Impairment::default());
    let got = probe_all(relay.local_addr(), 1000, Duration::from_micros(500));
    let rtts: Vec<Duration> = got.iter().map(Echoed::rtt).collect();
    let (min, max) = (*rtts.iter().min().unwrap(), *rtts.iter().max().unwrap());
    // Within [delay - jitter, delay + jitter], plus loopback and precision.
    assert!(min + EARLY >= ms(10), "min {min:?}");
    let p95 = quantile(rtts.clone(), 0.95);
    assert!(p95 <= ms(29) + BUSY, "p95 {p95:?}");
    // Spread over the whole range, evenly: uniform over 20 ms has an
    // interquartile range of 10 ms (which a busy machine hardly shifts).
    assert!(min < ms(11) && max > ms(29), "range {min:?}..{max:?}");
    let iqr = quantile(rtts.clone(), 0.75) - quantile(rtts, 0.25);
    assert!(
        iqr.abs_diff(ms(10)) < Duration::from_micros(1500),
        "IQR {iqr:?}"
    );
    // Jitter reorders, as on a real link.
    assert!(got.windows(2).any(|w| w[1].seq < w[0].seq));
}

/// The figure for the docs: how late the relay sends, measured inside
/// (actual minus scheduled send time) and outside (round trip beyond twice
/// the delay, minus a direct round trip without the relay).
#[test]
fn delivery_precision() {
    let _serial = one_at_a_time();
    let n = 1000;
    let echo = Echo::start();
    let direct: Vec<Duration> = probe_all(echo.addr, n, ms(1))
        .iter()
        .map(Echoed::rtt)
        .collect();
    let relay = relay(echo.addr, delay(ms(5)), delay(ms(5)));
    let through: Vec<Duration> = probe_all(relay.local_addr(), n, ms(1))
        .iter()
        .map(|e| e.rtt().saturating_sub(ms(10)))
        .collect();
    let s = relay.stop();
    let l = s.lateness;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    eprintln!(
        "relay lateness over {} sends: p50 {:.0} us, p99 {:.0} us, max {:.0} us (precise timer: {})",
        l.samples,
        us(l.p50),
        us(l.p99),
        us(l.max),
        l.precise_timer
    );
    let (dp50, dp99) = (quantile(direct.clone(), 0.5), quantile(direct, 0.99));
    let (tp50, tp99) = (quantile(through.clone(), 0.5), quantile(through, 0.99));
    eprintln!(
        "round trip beyond 2 x 5 ms: p50 {:.0} us, p99 {:.0} us; direct round trip: p50 {:.0} us, p99 {:.0} us",
        us(tp50),
        us(tp99),
        us(dp50),
        us(dp99)
    );
    assert_eq!(l.samples, 2 * n);
    if l.precise_timer {
        // tokio's 1 ms timer would put p50 near 500 us. The tail is only
        // reported: on a busy machine it is the scheduler's, not ours.
        assert!(l.p50 < Duration::from_micros(250), "{s}");
    }
}
