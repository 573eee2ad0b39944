//! A hostile receiver against a default sender, and hostile bytes that
//! only a hand-made peer can send (issue #10 items 10, 15 and 16), over
//! real QUIC on loopback.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{feed_pattern, ms, stereo48k, with_length};
use isochron::engine::config::ReceiverConfig;
use isochron::engine::handshake;
use isochron::engine::net::quic::control_stream::ControlReader;
use isochron::engine::net::quic::transport;
use isochron::engine::net::{Identity, Sender, SenderOptions, TransportError, Trust, tls};
use isochron::engine::wire::control::{CONTROL_VERSION, Control, Hello, Mode, SessionDesc};

/// A receiver that answers the first hello with an accept and a PAUSE in
/// the same write, and then never says another word.
fn pausing_receiver() -> (std::net::SocketAddr, isochron::engine::net::Fingerprint) {
    let identity = Identity::ephemeral().unwrap();
    let fp = identity.fingerprint();
    let transport = Arc::new(transport::config(Duration::from_secs(30)));
    let server = tls::server_config(&identity, transport).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ep = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(ep.local_addr().unwrap()).unwrap();
            let conn = ep.accept().await.unwrap().await.unwrap();
            let (mut send, recv) = conn.accept_bi().await.unwrap();
            let mut reader = ControlReader::new(recv);
            let Ok(Some(Control::Hello(hello))) = reader.next(Duration::from_secs(30)).await else {
                panic!("no hello");
            };
            let accept = handshake::answer(&ReceiverConfig::default(), &hello, 1).unwrap();
            let mut bytes = Control::Accept(accept).to_frame();
            bytes.extend(Control::Pause.to_frame());
            send.write_all(&bytes).await.unwrap();
            // Hold the connection (and say nothing) until the sender leaves.
            conn.closed().await;
        });
    });
    (rx.recv().unwrap(), fp)
}

/// Items 15 and 16: a PAUSE that came with the accept was never applied,
/// and a receiver that paused and never resumed left the sender hanging.
/// Now the pause holds from the start and the sender gives up after
/// `max_pause`, with an error that says so.
#[test]
fn a_sender_paused_for_ever_gives_up_after_max_pause() {
    let (addr, fp) = pausing_receiver();
    let mut opts = SenderOptions::new(
        addr,
        Trust::Pinned(vec![fp]),
        common::sender_identity().clone(),
    );
    opts.config.max_pause = Duration::from_secs(2);
    let subs = with_length(&[stereo48k(0, ms(10))], 3.0);
    let started = Instant::now();
    let mut tx = Sender::connect(opts, subs.clone()).expect("accepted");
    feed_pattern(&mut tx, &subs);
    // Paused from the accept on: no media went out.
    let sent = tx.stats().source_packets;
    let r = tx.wait();
    match r {
        Err(TransportError::Paused { seconds }) => assert!(seconds >= 2.0, "{seconds}"),
        other => panic!("expected the pause to end the session, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up in bounded time"
    );
    assert!(sent <= 1, "{sent} packets sent while paused");
}

/// A receiver that accepts one session, reads it until the sender's end of stream and then vanishes: no bye,
/// no close, its endpoint never heard from again (a host that lost power, or
/// a bye lost in a burst until the receiver gave up).
fn vanishing_receiver() -> (std::net::SocketAddr, isochron::engine::net::Fingerprint) {
    let identity = Identity::ephemeral().unwrap();
    let fp = identity.fingerprint();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        {
            let transport = Arc::new(transport::config(Duration::from_secs(30)));
            let server = tls::server_config(&identity, transport).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let ep = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
                tx.send(ep.local_addr().unwrap()).unwrap();
                let conn = ep.accept().await.unwrap().await.unwrap();
                let (mut send, recv) = conn.accept_bi().await.unwrap();
                let mut reader = ControlReader::new(recv);
                let Ok(Some(Control::Hello(hello))) = reader.next(Duration::from_secs(30)).await
                else {
                    panic!("no hello");
                };
                let accept = handshake::answer(&ReceiverConfig::default(), &hello, 1).unwrap();
                send.write_all(&Control::Accept(accept).to_frame())
                    .await
                    .unwrap();
                loop {
                    match reader.next(Duration::from_secs(30)).await {
                        Ok(Some(Control::EndOfStream(_))) => break,
                        Ok(Some(_)) => {}
                        other => panic!("no end of stream: {other:?}"),
                    }
                }
                // Vanish: nothing closes, nothing answers again.
                std::mem::forget((conn, send, reader, ep));
            });
            // The endpoint's driver stops with the runtime.
            drop(rt);
        }
    });
    let addr = rx.recv().unwrap();
    (addr, fp)
}

/// A receiver that vanishes after the end of stream ends the session as
/// not completed, with the sender's account (what `send --stats-json`
/// writes), not as a lost connection: the idle timeout fires on both the
/// connection and the control stream, and either could be seen first.
#[test]
fn a_receiver_that_vanishes_after_the_end_leaves_the_sender_its_account() {
    for round in 0..3 {
        let (a, fp) = vanishing_receiver();
        let mut opts = SenderOptions::new(
            a,
            Trust::Pinned(vec![fp]),
            common::sender_identity().clone(),
        );
        opts.idle_timeout = Duration::from_millis(600);
        let subs = with_length(&[stereo48k(0, ms(10))], 0.3);
        let started = Instant::now();
        let mut tx = Sender::connect(opts, subs.clone()).expect("accepted");
        feed_pattern(&mut tx, &subs);
        match tx.wait() {
            Ok(r) => {
                assert!(!r.completed, "no bye came");
                assert!(r.stats.source_packets >= 30, "round {round}: {:?}", r.stats);
            }
            Err(e) => panic!("round {round}: the account was lost: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "bounded");
    }
}

/// Item 10: a rate of 0/1 or 48000/0 arrived through serde, bypassing
/// `Rate::new`, and panicked in hound and in the catalog. Decoding refuses
/// it as an invalid message.
#[test]
fn a_zero_rate_from_the_wire_is_refused_when_decoded() {
    let hello = Control::Hello(Hello {
        version: CONTROL_VERSION,
        token: None,
        session: SessionDesc {
            name: "zero".into(),
            mode: Mode::Live,
            speed: 1.0,
            fec: isochron::FecParams {
                k: 1,
                m: 0,
                depth: 1,
                window_us: 0,
                auto_depth: false,
            },
            substreams: vec![stereo48k(0, ms(10))],
            recovery: Default::default(),
        },
    });
    let body = hello.to_frame()[4..].to_vec();
    // 48000 then 1, as postcard varints: the rate's numerator and denominator.
    let rate = [0x80u8, 0xf7, 0x02, 0x01];
    let at = body
        .windows(4)
        .position(|w| w == rate)
        .expect("the rate's bytes");
    assert!(Control::decode_body(&body).is_ok());
    for patch in [&[0x00u8, 0x01][..], &[0x80, 0xf7, 0x02, 0x00][..]] {
        let mut bad = body[..at].to_vec();
        bad.extend_from_slice(patch);
        bad.extend_from_slice(&body[at + 4..]);
        let e = Control::decode_body(&bad).expect_err("a zero rate is refused");
        assert!(e.to_string().contains("rate"), "{e}");
    }
}
