//! Any bytes as a fan-out message, as a listener or publisher reads them
//! from a router: each message type decodes and validates or fails with an
//! error, re-encodes to itself, and a signed envelope's signature is
//! checked against the certificate it names; a sealed envelope is opened
//! with a fixed key (clear part chosen by the first byte). Never a panic.
#![no_main]

use isochron_engine::net::tls::verify_signature;
use isochron_engine::seal::Opener;
use isochron_engine::wire::control::Report;
use isochron_engine::wire::fanout::{
    self, KeyAnswer, KeyRequest, PublisherControl, SealedMessage, Signed, StreamCatalog, context,
};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(data: &[u8]) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + fanout::Validate + PartialEq + std::fmt::Debug,
{
    let m: T = fanout::decode(data).ok()?;
    let again: T = fanout::decode(&fanout::encode(&m)).expect("a valid message re-encodes");
    assert_eq!(again, m);
    Some(m)
}

fuzz_target!(|data: &[u8]| {
    if let Some(s) = round_trip::<Signed>(data) {
        if let Some(c) = round_trip::<StreamCatalog>(&s.body) {
            let _ = verify_signature(
                &c.publisher_cert,
                context::CATALOG,
                &s.body,
                s.scheme,
                &s.signature,
            );
        }
        let _ = round_trip::<KeyRequest>(&s.body);
        let _ = round_trip::<KeyAnswer>(&s.body);
    }
    let _ = round_trip::<StreamCatalog>(data);
    let _ = round_trip::<PublisherControl>(data);
    let _ = round_trip::<Report>(data);
    if let Some(m) = round_trip::<SealedMessage>(data) {
        let mut sealed = m.sealed.clone();
        let clear = data.first().map_or(0, |&b| b as usize);
        let _ = Opener::new(&[7; 32]).open(&mut sealed, clear);
    }
    let mut raw = data.to_vec();
    let clear = data.first().map_or(0, |&b| b as usize % 32);
    let _ = Opener::new(&[7; 32]).open(&mut raw, clear);
});
