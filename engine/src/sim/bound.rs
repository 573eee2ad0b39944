//! The physical limit for a given code: the exact residual source loss of an
//! ideal (MDS) systematic `(k, m)` code, with packet interleaving depth `D`,
//! under a loss model.
//!
//! Interleaving places a block's `k + m` packets `D` apart in the
//! transmission order, so they see the loss chain sampled every `D` steps.
//! A block loses its lost sources only when more than `m` of its packets are
//! lost. A dynamic programme over the block's packets gives the expectation
//! exactly (no simulation).

use super::impair::Loss;

/// 2x2 transition matrix of the loss chain, state 1 = lossy.
type Chain = [[f64; 2]; 2];

fn chain(loss: Loss) -> Chain {
    match loss {
        Loss::None => [[1.0, 0.0], [1.0, 0.0]],
        Loss::Bernoulli { p } => [[1.0 - p, p], [1.0 - p, p]],
        Loss::GilbertElliott { p, r } => [[1.0 - p, p], [r, 1.0 - r]],
    }
}

/// The chain's transition matrix `steps` packets on.
pub fn transition(loss: Loss, steps: usize) -> [[f64; 2]; 2] {
    // In closed form, `pi + l^n (I - pi)` with `l = 1 - p - r` the chain's
    // memory: the steps come from round trips and latencies, and adaptive
    // FEC asks for many of them at every retune.
    let c = chain(loss);
    let (p, r) = (c[0][1], c[1][0]);
    if p + r <= 0.0 {
        return [[1.0, 0.0], [0.0, 1.0]];
    }
    let pi = [r / (p + r), p / (p + r)];
    let memory = (1.0 - p - r).powi(steps.min(i32::MAX as usize) as i32);
    let at = |i: usize, j: usize| pi[j] + memory * ((i == j) as u8 as f64 - pi[j]);
    [[at(0, 0), at(0, 1)], [at(1, 0), at(1, 1)]]
}

/// How one block's `k + m` packets fare: `d[lost * (k + 1) + src]` is the
/// probability that `lost` of them are lost, `src` of those sources (the
/// packets `depth` apart on the wire, the chain stationary at the first).
pub fn block_losses(loss: Loss, k: usize, m: usize, depth: usize) -> Vec<f64> {
    let step = transition(loss, depth.max(1));
    let pi_bad = loss.mean();
    let n = k + m;
    // dist[s][lost][lost_sources]
    let idx = |lost: usize, src: usize| lost * (k + 1) + src;
    let size = (n + 1) * (k + 1);
    let mut dist = [vec![0.0; size], vec![0.0; size]];
    // First packet: the chain is stationary.
    dist[0][idx(0, 0)] = 1.0 - pi_bad;
    dist[1][idx(1, 1.min(k))] = pi_bad;
    for i in 1..n {
        let source = i < k;
        let mut next = [vec![0.0; size], vec![0.0; size]];
        for s in 0..2 {
            for lost in 0..i + 1 {
                for src in 0..=lost.min(k) {
                    let pr = dist[s][idx(lost, src)];
                    if pr == 0.0 {
                        continue;
                    }
                    next[0][idx(lost, src)] += pr * step[s][0];
                    let src2 = src + source as usize;
                    next[1][idx(lost + 1, src2)] += pr * step[s][1];
                }
            }
        }
        dist = next;
    }
    dist[0].iter().zip(&dist[1]).map(|(a, b)| a + b).collect()
}

/// A floor under the residual loss of any scheme, FEC, retransmission or
/// both, that sends `n` packets after each one while its deadline still
/// allows: a packet is lost for good when it is lost and so are all of
/// those (nothing about it can get through). The chain steps once a
/// packet, so it is a floor at an even rate only: a scheme that sends more
/// while a burst lasts (retransmissions of packets found overdue) takes
/// the chain through more steps in the same time and can be under it.
pub fn burst_floor(loss: Loss, n: usize) -> f64 {
    loss.mean() * transition(loss, 1)[1][1].powi(n.min(i32::MAX as usize) as i32)
}

/// Expected fraction of source packets neither received nor rebuildable.
pub fn mds_residual(loss: Loss, k: usize, m: usize, depth: usize) -> f64 {
    let d = block_losses(loss, k, m, depth);
    let mut residual = 0.0;
    for lost in m + 1..=k + m {
        for src in 0..=lost.min(k) {
            residual += d[lost * (k + 1) + src] * src as f64;
        }
    }
    residual / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mul(a: &Chain, b: &Chain) -> Chain {
        let mut c = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
            }
        }
        c
    }

    fn close(a: f64, b: f64) -> bool {
        (a / b - 1.0).abs() < 0.05
    }

    #[test]
    fn transition_in_closed_form_is_the_steps_one_by_one_and_any_count_is_cheap() {
        let ge = Loss::from_mean(0.05, 10.0);
        let mut step = [[1.0, 0.0], [0.0, 1.0]];
        for n in 0..40 {
            let t = transition(ge, n);
            for (row, want) in t.iter().zip(&step) {
                for (x, y) in row.iter().zip(want) {
                    assert!((x - y).abs() < 1e-12, "{n}: {t:?} vs {step:?}");
                }
            }
            step = mul(&step, &chain(ge));
        }
        // A round trip a peer made absurd: the stationary chain, at once.
        let far = transition(ge, usize::MAX);
        assert!((far[1][1] - ge.mean()).abs() < 1e-9, "{far:?}");
    }

    #[test]
    fn matches_the_design_table() {
        // ../shared/DESIGN.md, "Residual loss bound".
        let rows = [
            (Loss::from_mean(0.01, 1.0), [3.4e-7, 3.4e-7, 4.7e-11]),
            (Loss::from_mean(0.05, 1.0), [6.6e-4, 6.6e-4, 3.0e-5]),
            (Loss::from_mean(0.02, 3.0), [9.0e-3, 3.3e-5, 1.5e-7]),
            (Loss::from_mean(0.05, 3.0), [2.5e-2, 9.8e-4, 5.8e-5]),
            (Loss::from_mean(0.05, 10.0), [4.4e-2, 1.1e-2, 3.1e-3]),
        ];
        for (loss, want) in rows {
            let got = [
                mds_residual(loss, 16, 4, 1),
                mds_residual(loss, 16, 4, 8),
                mds_residual(loss, 32, 8, 8),
            ];
            for (g, w) in got.iter().zip(want) {
                assert!(close(*g, w), "{loss:?}: got {got:?}, want {want:?}");
            }
        }
    }

    #[test]
    fn the_burst_floor() {
        let ge = Loss::from_mean(0.05, 10.0);
        assert!((burst_floor(ge, 0) - 0.05).abs() < 1e-12);
        assert!((burst_floor(ge, 10) - 0.05 * 0.9f64.powi(10)).abs() < 1e-12);
        assert!(burst_floor(Loss::Bernoulli { p: 0.05 }, 2) < 1.3e-4);
    }

    #[test]
    fn no_loss_no_residual() {
        assert_eq!(mds_residual(Loss::None, 16, 4, 1), 0.0);
    }
}
