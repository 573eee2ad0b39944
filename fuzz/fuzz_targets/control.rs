//! Any bytes on the control stream, split anywhere: messages decode and
//! validate or fail with an error; a decoded message re-encodes to itself.
//! Seed it with valid messages (tests/fuzz.rs writes them) so it reaches
//! validation.
#![no_main]

use isochron_engine::wire::control::{Control, ControlDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Control::decode_body(data) {
        let frame = m.to_frame();
        let mut d = ControlDecoder::new();
        d.push(&frame).unwrap();
        assert_eq!(d.next_message().unwrap(), Some(m));
    }
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let mut d = ControlDecoder::new();
    for part in [&data[..cut], &data[cut..]] {
        if d.push(part).is_err() {
            return;
        }
        while let Ok(Some(_)) = d.next_message() {}
    }
});
