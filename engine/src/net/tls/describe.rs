//! Failed connections turned into messages a user can act on.

use std::fmt::Write;

use quinn::{ConnectionError, TransportErrorCode};
use rustls::{AlertDescription, CertificateError};

use super::verify::{PinMismatch, Rejection};
use super::{ALPN, PeerSeen, Trust};

/// Turns a failed connect or handshake into a message a user can act on:
/// fingerprint mismatch with both fingerprints, unknown CA, name mismatch,
/// the peer rejecting *our* certificate, timeout...
///
/// The sender passes the [`PeerSeen`] from its [`client_config`]
/// (`Some(&seen)`); the receiver passes `None`. Which one also decides
/// whether the peer is called "the receiver" or "the sender".
///
/// [`client_config`]: super::client_config
pub fn describe_handshake_error(err: &ConnectionError, seen: Option<&PeerSeen>) -> String {
    let peer = if seen.is_some() {
        "the receiver"
    } else {
        "the sender"
    };
    match err {
        // We closed: our own TLS stack refused something.
        ConnectionError::TransportError(e) => match alert(e.code) {
            Some(alert) => match seen.and_then(|s| s.rejected().map(|r| (s, r))) {
                // A refusal recorded in an earlier handshake would send its own alert.
                Some((_, rejection)) if !sent_for(&rejection.error, alert) => {
                    local_alert(alert, &e.reason, peer)
                }
                Some((seen, rejection)) => describe_rejection(seen, &rejection),
                None => local_alert(alert, &e.reason, peer),
            },
            None => format!("QUIC protocol error with {peer}: {e}"),
        },
        // The peer closed: its TLS stack refused something of ours.
        ConnectionError::ConnectionClosed(close) => match alert(close.error_code) {
            Some(alert) => peer_alert(alert, &close.reason, peer),
            None => format!(
                "{peer} aborted the connection: {}{}",
                close.error_code,
                said(&close.reason)
            ),
        },
        ConnectionError::ApplicationClosed(close) => format!(
            "{peer} closed the connection (code {}){}",
            close.error_code,
            said(&close.reason)
        ),
        ConnectionError::TimedOut if seen.is_some() => "no answer from the receiver before the \
             idle timeout: is it running and listening on that address and port, and does UDP \
             get through (firewall, NAT)?"
            .to_owned(),
        ConnectionError::TimedOut => "the sender went silent (idle timeout)".to_owned(),
        ConnectionError::Reset => format!("{peer} reset the connection (did it restart?)"),
        ConnectionError::VersionMismatch => format!("{peer} does not speak QUIC version 1"),
        ConnectionError::LocallyClosed => "the connection was closed on this side".to_owned(),
        ConnectionError::CidsExhausted => format!("cannot connect to {peer}: {err}"),
    }
}

/// Our verifier's own record of why it refused the receiver.
fn describe_rejection(seen: &PeerSeen, rejection: &Rejection) -> String {
    let presented = seen
        .get()
        .map_or_else(|| "unknown".to_owned(), |f| f.to_string());
    let error = &rejection.error;
    if let Some(mismatch) = PinMismatch::find(error) {
        let pinned = match mismatch.pinned.as_slice() {
            [one] => one.to_string(),
            many => {
                let list: Vec<String> = many.iter().map(ToString::to_string).collect();
                format!("one of {}", list.join(", "))
            }
        };
        return format!(
            "fingerprint mismatch: the receiver presented {}, but you pinned {pinned}. \
             If the receiver's identity was recreated, pin the fingerprint it prints now; \
             otherwise something else is answering at that address",
            mismatch.presented
        );
    }
    if rejection.signature {
        return format!(
            "the receiver ({presented}) could not prove it holds its certificate's private key \
             (TLS 1.3 handshake signature rejected: {error})"
        );
    }
    let (ca_file, name) = match seen.trust() {
        Some(Trust::Roots {
            ca_pem,
            server_name,
        }) => (ca_pem.display().to_string(), server_name.as_str()),
        _ => ("the CA file".to_owned(), "the name connected to"),
    };
    let cert = format!("the receiver's certificate ({presented})");
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => {
                format!("{cert} is not signed by a CA in {ca_file} (unknown issuer)")
            }
            CertificateError::NotValidForNameContext {
                expected,
                presented: names,
            } => format!(
                "{cert} is not valid for the name {:?}; it names: {}",
                expected.to_str(),
                names
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CertificateError::NotValidForName => {
                format!("{cert} is not valid for the name {name:?}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("{cert} has expired ({e})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("{cert} is not valid yet; check both clocks ({e})")
            }
            _ => format!("{cert} was rejected: {e}"),
        },
        _ => format!("{cert} was rejected: {error}"),
    }
}

/// Whether our refusal `error` is what made rustls send `alert`.
fn sent_for(error: &rustls::Error, alert: AlertDescription) -> bool {
    match error {
        rustls::Error::InvalidCertificate(e) => AlertDescription::from(e.clone()) == alert,
        _ => true,
    }
}

/// Our TLS stack sent `alert` without our verifier having refused anything.
fn local_alert(alert: AlertDescription, reason: &str, peer: &str) -> String {
    match alert {
        AlertDescription::NoApplicationProtocol => no_alpn(peer),
        AlertDescription::ProtocolVersion => format!("{peer} does not offer TLS 1.3"),
        AlertDescription::CertificateRequired => format!(
            "{peer} presented no certificate: every sender must present its identity \
             (an isochron before mutual authentication?)"
        ),
        _ => format!(
            "TLS handshake with {peer} failed ({}): {reason}",
            alert_name(alert)
        ),
    }
}

/// The peer's TLS stack sent `alert` and closed.
fn peer_alert(alert: AlertDescription, reason: &[u8], peer: &str) -> String {
    let said = said(reason);
    let name = alert_name(alert);
    match alert {
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateRevoked
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnknownCA
        | AlertDescription::AccessDenied => format!(
            "{peer} rejected our certificate (TLS alert {name}){said}: it probably pinned \
             another fingerprint or trusts another CA; compare with the fingerprint we print"
        ),
        AlertDescription::CertificateRequired => format!(
            "{peer} requires a client certificate and we sent none (TLS alert {name}){said}"
        ),
        AlertDescription::DecryptError => {
            format!("{peer} could not verify our TLS handshake signature (TLS alert {name}){said}")
        }
        AlertDescription::NoApplicationProtocol => no_alpn(peer),
        AlertDescription::ProtocolVersion => format!("{peer} does not accept TLS 1.3{said}"),
        _ => format!("{peer} aborted the TLS handshake (TLS alert {name}){said}"),
    }
}

fn no_alpn(peer: &str) -> String {
    format!(
        "{peer} does not speak {} (no common ALPN protocol): is it an isochron of the same \
         protocol version?",
        String::from_utf8_lossy(ALPN)
    )
}

/// The TLS alert inside a QUIC CRYPTO_ERROR code (0x100 + alert), if it is one.
fn alert(code: TransportErrorCode) -> Option<AlertDescription> {
    let code = u64::from(code);
    (0x100..0x200)
        .contains(&code)
        .then(|| AlertDescription::from((code & 0xff) as u8))
}

/// The RFC 8446 name of an alert ("bad_certificate"), from rustls' Debug form.
fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    let mut previous_lower = false;
    for c in debug.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            name.push('_');
        }
        previous_lower = c.is_ascii_lowercase();
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// "localhost" from webpki's `DnsName("localhost")` (and `IpAddress(..)`).
fn plain_name(name: &str) -> String {
    let inner = ["DnsName(\"", "IpAddress("]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .and_then(|rest| rest.strip_suffix(')'))
        .map(|rest| rest.strip_suffix('"').unwrap_or(rest));
    // The name comes from the peer's certificate.
    inner
        .unwrap_or(name)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `: "reason"` from bytes the peer sent, printable and bounded, or nothing.
fn said(reason: &[u8]) -> String {
    // Room for a pin mismatch with both fingerprints.
    const MAX: usize = 300;
    if reason.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(reason);
    let mut out = String::from(": \"");
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        match c {
            '"' | '\\' => {
                let _ = write!(out, "\\{c}");
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_codes_and_names() {
        assert_eq!(
            alert(TransportErrorCode::crypto(42)),
            Some(AlertDescription::BadCertificate)
        );
        assert_eq!(alert(TransportErrorCode::PROTOCOL_VIOLATION), None);
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::NoApplicationProtocol),
            "no_application_protocol"
        );
    }

    #[test]
    fn webpki_names_are_plain() {
        assert_eq!(plain_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("DirectoryName"), "DirectoryName");
        assert_eq!(plain_name("DnsName(\"a\nb\")"), "a?b");
    }

    #[test]
    fn peer_reasons_are_printable_and_bounded() {
        assert_eq!(said(b""), "");
        assert_eq!(said(b"a\"b\n"), ": \"a\\\"b?\"");
        assert!(said(&[b'x'; 10_000]).len() < 320);
        assert!(said(&[0xff, 0xfe]).contains('\u{fffd}'));
    }
}
