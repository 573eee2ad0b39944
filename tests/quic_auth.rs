//! Who may send, over real QUIC on 127.0.0.1: a receiver admits only the
//! senders it lists, refuses others with the command that admits them, and
//! writes nothing for them.

mod common;

use std::time::Duration;

use common::{feed_pattern, ms, stereo48k, with_length};
use isochron::engine::net::tls::AuthorizedSenders;
use isochron::engine::net::{
    Admission, Identity, ReceiverEvent, ReceiverOptions, Sender, SenderOptions, TransportError,
    Trust,
};
use isochron::engine::wire::control::RejectReason;

fn refusal(rx: &isochron::engine::net::Receiver) -> String {
    match rx.events().recv_timeout(Duration::from_secs(10)) {
        Ok(ReceiverEvent::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_unlisted_sender_is_refused_until_the_file_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let file = tmp.path().join("authorized_senders");
    let receiver = Identity::ephemeral().unwrap();
    let sender = Identity::ephemeral().unwrap();
    let opts = ReceiverOptions::new("127.0.0.1:0".parse().unwrap(), Admission::file(&file, []));
    let rx = common::file_receiver(opts, &receiver, &out);
    let subs = with_length(&[stereo48k(0, ms(10))], 0.3);
    let sopts = || {
        SenderOptions::new(
            rx.local_addr(),
            Trust::Pinned(vec![rx.fingerprint()]),
            sender.clone(),
        )
    };
    let command = format!(
        "isochron trust add {} --file {}",
        sender.fingerprint(),
        file.display()
    );
    match Sender::connect(sopts(), subs.clone()) {
        Err(TransportError::Rejected { reason, message }) => {
            assert_eq!(reason, RejectReason::Unauthorized);
            assert!(message.ends_with(&command), "{message}");
        }
        other => panic!("expected a refusal, got {:?}", other.err()),
    }
    let logged = refusal(&rx);
    assert!(logged.contains(&command), "{logged}");
    assert!(
        std::fs::read_dir(&out).map_or(0, |d| d.count()) == 0,
        "nothing written"
    );
    // Listed now: the same receiver, without a restart, admits it.
    assert!(AuthorizedSenders::add(&file, sender.fingerprint(), "test").unwrap());
    let mut tx = Sender::connect(sopts(), subs.clone()).expect("admitted");
    feed_pattern(&mut tx, &subs);
    assert!(tx.wait().unwrap().completed);
    match rx.events().recv_timeout(Duration::from_secs(10)).unwrap() {
        ReceiverEvent::Started(info) => assert_eq!(info.sender, sender.fingerprint()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_library_default_admits_only_whom_it_is_told() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Identity::ephemeral().unwrap();
    let nobody = ReceiverOptions::new("127.0.0.1:0".parse().unwrap(), Admission::only([]));
    let rx = common::file_receiver(nobody, &receiver, tmp.path());
    let subs = with_length(&[stereo48k(0, ms(10))], 0.1);
    let err = Sender::connect(common::sender_options(rx.local_addr(), &rx), subs.clone())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--allow sha256:"), "{err}");
    // Opening up takes the loudly named policy.
    let anyone = ReceiverOptions::new("127.0.0.1:0".parse().unwrap(), Admission::DangerouslyAnyone);
    let rx = common::file_receiver(anyone, &receiver, tmp.path());
    let mut tx = Sender::connect(common::sender_options(rx.local_addr(), &rx), subs.clone())
        .expect("anyone is admitted");
    feed_pattern(&mut tx, &subs);
    assert!(tx.wait().unwrap().completed);
}

/// The token is a second factor: wrong guesses from one address lock it
/// out (even the right token is then refused until the lockout ends), and
/// the refusal says so.
#[test]
fn wrong_tokens_are_rate_limited_per_source_address() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Identity::ephemeral().unwrap();
    let mut opts = common::receiver_options();
    opts.config.token = Some("the right one".into());
    // A lockout no loaded machine outlasts between two attempts.
    opts.limits.token_attempts.first_lockout = Duration::from_secs(600);
    opts.limits.token_attempts.max_lockout = Duration::from_secs(600);
    let rx = common::file_receiver(opts, &receiver, tmp.path());
    let subs = with_length(&[stereo48k(0, ms(10))], 0.1);
    let attempt = |token: &str| {
        let mut o = common::sender_options(rx.local_addr(), &rx);
        o.token = Some(token.into());
        match Sender::connect(o, subs.clone()) {
            Err(TransportError::Rejected { reason, message }) => {
                assert_eq!(reason, RejectReason::Token);
                let _ = refusal(&rx);
                message
            }
            other => panic!("expected a token refusal, got {:?}", other.err()),
        }
    };
    for _ in 0..4 {
        let m = attempt("guess");
        assert!(m.contains("token rejected (wrong)"), "{m}");
    }
    let m = attempt("the right one");
    assert!(m.contains("too many wrong tokens from 127.0.0.1"), "{m}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
