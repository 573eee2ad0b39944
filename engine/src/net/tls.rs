//! TLS identities and verification (to be written).
