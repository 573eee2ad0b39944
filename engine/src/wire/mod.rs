//! What crosses the network: media packets and NACKs (datagrams), control
//! messages (one reliable stream), and the fan-out driver's signed and
//! sealed messages.

pub mod control;
pub mod fanout;
pub mod nack;
pub mod packet;
