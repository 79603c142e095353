//! Which images go into which batch: the compositions a client encrypts
//! and a trainer with plaintext labels must agree on.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The first `available` images shuffled once by `seed`, cut into whole
/// batches of `batch_size` (the remainder is left out).
pub fn shuffled(seed: u64, available: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..available).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    whole(&order, batch_size)
}

/// The first `count` images in order, in whole batches of `batch_size`: the
/// test images of secure inference.
pub fn leading(count: usize, batch_size: usize) -> Vec<Vec<usize>> {
    whole(&(0..count).collect::<Vec<_>>(), batch_size)
}

fn whole(order: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    order
        .chunks_exact(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_whole_disjoint_and_seeded() {
        let a = shuffled(7, 10, 3);
        assert_eq!(a.len(), 3);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9, "disjoint");
        assert_eq!(a, shuffled(7, 10, 3), "the seed fixes them");
        assert_eq!(leading(5, 2), vec![vec![0, 1], vec![2, 3]]);
        assert!(leading(1, 2).is_empty());
        assert!(
            shuffled(1, 3, 0).len() == 3,
            "a batch size of 0 is read as 1"
        );
    }
}
