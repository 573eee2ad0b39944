//! What crosses the network: media packets and NACKs (datagrams) and
//! control messages (one reliable stream).

pub mod control;
pub mod nack;
pub mod packet;
