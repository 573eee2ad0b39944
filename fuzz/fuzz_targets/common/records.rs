//! The records the session and sender targets read: `[tag][len lo][len
//! hi][bytes]`, the tag taken modulo 4, a short last record cut to what is
//! there.

pub fn records(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 3 {
            return None;
        }
        let (tag, len) = (data[0], u16::from_le_bytes([data[1], data[2]]) as usize);
        let body = &data[3..(3 + len).min(data.len())];
        data = &data[3 + body.len()..];
        Some((tag % 4, body))
    })
}
