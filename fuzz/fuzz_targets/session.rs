//! A whole hostile session into the receiver core: a hello (validated and
//! answered as the receiver would), then datagrams, control messages and
//! time, down to the playout buffers. Records: `[tag][len lo][len hi][bytes]`;
//! tag 0 the hello body, 1 a datagram, 2 a control body, 3 a time step (ms
//! in the first byte) with a playout poll.
#![no_main]

use std::time::Duration;

use isochron_engine::config::ReceiverConfig;
use isochron_engine::limits::Limits;
use isochron_engine::wire::control::Control;
use isochron_engine::{ReceiverCore, Time, handshake};
use libfuzzer_sys::fuzz_target;

#[path = "common/records.rs"]
mod records;
use records::records;

fuzz_target!(|data: &[u8]| {
    let mut recs = records(data);
    let Some((0, body)) = recs.next() else { return };
    let Ok(Control::Hello(hello)) = Control::decode_body(body) else {
        return;
    };
    let cfg = ReceiverConfig::default();
    let Ok(accept) = handshake::answer(&cfg, &hello, 1) else {
        return;
    };
    // The receiver's own limits, as the driver applies them.
    let window = Duration::from_micros(accept.fec_window_us as u64);
    if Limits::default()
        .check_session(&cfg, &hello.session, window)
        .is_err()
    {
        return;
    }
    let mut rx = ReceiverCore::new(&cfg, &hello.session, &accept);
    let mut now = Time::from_micros(1_000_000);
    let mut polls = 0u32;
    for (tag, body) in recs {
        match tag {
            1 => rx.on_datagram(now, body),
            2 => {
                if let Ok(m) = Control::decode_body(body) {
                    rx.on_control(&m);
                }
            }
            _ => {
                now += Duration::from_millis(body.first().copied().unwrap_or(1) as u64);
                polls += 1;
                // Bounded work however far time jumps: at most one frame per
                // substream per tick.
                rx.poll(now, &mut |_| {});
                if polls > 2000 {
                    return;
                }
            }
        }
    }
});
