//! Packet interleaving without holding packets back.
//!
//! A group is `D` FEC blocks. Instead of buffering the blocks and sending
//! them column by column, the sender assigns source packet `i` of the group
//! to block `i mod D` as it leaves, and sends the group's repairs column by
//! column when the group closes. The transmission order is then exactly the
//! column order of a `D x (k + m)` matrix (each block's packets `D` apart),
//! so a burst of up to `D` losses costs each block one packet, while sources
//! leave as soon as they are made: the only added latency is the receiver's
//! wait for the group's repairs (`D` block windows).

/// Block (within the group) and index (within the block) of the group's
/// `i`-th source packet.
pub const fn place_source(i: usize, depth: usize) -> (usize, usize) {
    (i % depth, i / depth)
}

/// Order of a closed group's repairs: `(repair j, block b)` column by column.
pub fn repair_order(depth: usize, m: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..m).flat_map(move |j| (0..depth).map(move |b| (j, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_is_spread_depth_apart() {
        let (d, k, m) = (4, 3, 2);
        // Transmission positions of block 1's packets.
        let sources: Vec<usize> = (0..d * k).filter(|&i| place_source(i, d).0 == 1).collect();
        assert_eq!(sources, vec![1, 5, 9]);
        let repairs: Vec<usize> = repair_order(d, m)
            .enumerate()
            .filter(|&(_, (_, b))| b == 1)
            .map(|(pos, _)| d * k + pos)
            .collect();
        assert_eq!(repairs, vec![13, 17]);
    }
}
