//! What crosses the network: media packets (datagrams) and control messages
//! (one reliable stream).

pub mod control;
pub mod packet;
