//! Any datagram through the packet parser: an error or a view, never a
//! panic, and a view's parts lie inside the datagram.
#![no_main]

use isochron_engine::wire::packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = packet::parse(data) {
        assert!(v.payload.len() <= data.len());
        let _ = packet::parse_shard(v.shard);
    }
    let _ = packet::parse_shard(data);
});
