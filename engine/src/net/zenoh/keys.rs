//! The key space. A stream's name is the tail of every key, after a first
//! chunk naming the role, so a stream named `studio/a/mix` is listed by
//! `studio/**` and no stream name can collide with another stream's keys:
//!
//! | key | what | how |
//! |---|---|---|
//! | `isochron/media/<stream>` | sealed media datagrams | best effort, express, real-time |
//! | `isochron/catalog/<stream>` | the signed catalog | queryable |
//! | `isochron/key/<stream>` | key requests and wrapped keys | queryable |
//! | `isochron/eos/<stream>` | sealed end of stream | reliable |
//! | `isochron/report/<stream>/<listener>` | sealed listener reports | reliable, low priority |
//! | `isochron/live/<stream>` | the publisher is on air | liveliness token |
//! | `isochron/listen/<stream>/<listener>` | a listener is subscribed | liveliness token |

/// Every key starts with this chunk.
pub const ROOT: &str = "isochron";

/// Media datagrams of `stream`.
pub fn media(stream: &str) -> String {
    format!("{ROOT}/media/{stream}")
}

/// The catalog queryable of `stream`.
pub fn catalog(stream: &str) -> String {
    format!("{ROOT}/catalog/{stream}")
}

/// The key-request queryable of `stream`.
pub fn key(stream: &str) -> String {
    format!("{ROOT}/key/{stream}")
}

/// End of stream of `stream`.
pub fn eos(stream: &str) -> String {
    format!("{ROOT}/eos/{stream}")
}

/// One listener's reports on `stream`.
pub fn report(stream: &str, listener: &[u8; 16]) -> String {
    format!("{ROOT}/report/{stream}/{}", hex(listener))
}

/// Every listener's reports on `stream`.
pub fn reports(stream: &str) -> String {
    format!("{ROOT}/report/{stream}/*")
}

/// The publisher's liveliness token for `stream`.
pub fn live(stream: &str) -> String {
    format!("{ROOT}/live/{stream}")
}

/// Publisher tokens matching a listing pattern (`studio/**`; empty: all).
pub fn live_pattern(pattern: &str) -> String {
    let p = pattern.trim_matches('/');
    if p.is_empty() {
        format!("{ROOT}/live/**")
    } else {
        format!("{ROOT}/live/{p}")
    }
}

/// The stream a publisher token names, if it is one.
pub fn stream_of_live(key: &str) -> Option<&str> {
    key.strip_prefix(ROOT)?.strip_prefix("/live/")
}

/// A listener's liveliness token on `stream`.
pub fn listen(stream: &str, listener: &[u8; 16]) -> String {
    format!("{ROOT}/listen/{stream}/{}", hex(listener))
}

/// Every listener token on `stream`.
pub fn listeners(stream: &str) -> String {
    format!("{ROOT}/listen/{stream}/*")
}

/// Lowercase hex of an id.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 16-byte id a key's last chunk names (32 hex digits), if it does.
pub fn id_of(key: &str) -> Option<[u8; 16]> {
    let last = key.rsplit('/').next()?;
    if last.len() != 32 {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(last.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids() {
        let id = [0xab; 16];
        assert_eq!(media("studio/a/mix"), "isochron/media/studio/a/mix");
        assert_eq!(
            report("s", &id),
            format!("isochron/report/s/{}", "ab".repeat(16))
        );
        assert_eq!(id_of(&listen("x/y", &id)), Some(id));
        assert_eq!(id_of("isochron/listen/x/zz"), None);
        assert_eq!(live_pattern(""), "isochron/live/**");
        assert_eq!(live_pattern("studio/**"), "isochron/live/studio/**");
        assert_eq!(stream_of_live("isochron/live/studio/a"), Some("studio/a"));
    }
}
