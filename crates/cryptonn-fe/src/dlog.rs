//! Bounded discrete logarithm by baby-step giant-step.
//!
//! FE decryption ends with g^v for a small integer v. [`DlogTable`] stores
//! the fingerprints of j·g for j ∈ [−m, m] (the baby steps) and, for a target
//! T, tries T − k·(2m+1)·g for k = 0, 1, −1, 2, −2, … (the giant steps),
//! walking outward from 0 so that small results cost one lookup. It stops
//! with [`Error::OutOfBound`] once |v| would exceed the bound, so every
//! search ends in at most ⌈bound/(2m+1)⌉·2 + 1 steps.
//!
//! Build the table once and share it (it is `Sync`; wrap it in an `Arc`).

use core::hash::{BuildHasher, Hasher};

use hashbrown::HashMap;
use rayon::prelude::*;

use crate::group::Group;
use crate::{Error, Result};

/// Sizes a [`DlogTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DlogConfig {
    /// m: the table holds j·g for j ∈ [−m, m]. Memory is about 36 bytes per
    /// entry (hashbrown at its load factor). Default 2¹⁹ (2²⁰ + 1 entries).
    pub half_width: u64,
    /// The largest |v| that will be searched for. Default 2³¹.
    pub bound: u64,
}

impl Default for DlogConfig {
    fn default() -> Self {
        Self {
            half_width: 1 << 19,
            bound: 1 << 31,
        }
    }
}

impl DlogConfig {
    /// A table of half-width `half_width` searching up to `bound`.
    pub fn new(half_width: u64, bound: u64) -> Self {
        Self { half_width, bound }
    }
}

/// Keys are already uniform fingerprints, so the hash is the identity.
#[derive(Clone, Copy, Default)]
struct Identity;

struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// Baby steps j·g for j ∈ [−m, m], keyed by fingerprint.
///
/// Each entry keeps 96 bits of the element's fingerprint (64 as the key, 32
/// checked on a hit), so a false match has probability about 2⁻⁷⁵ per lookup.
pub struct DlogTable<G: Group> {
    map: HashMap<u64, u64, Identity>,
    config: DlogConfig,
    /// (2m + 1)·g, one giant step.
    giant: G::Element,
    /// −(2m + 1)·g, so both walks add (negation is an inversion in MODP).
    giant_neg: G::Element,
}

const BUILD_CHUNK: u64 = 4096;
const SOLVE_CHUNK: usize = 256;

impl<G: Group> core::fmt::Debug for DlogTable<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DlogTable")
            .field("group", &G::ID)
            .field("config", &self.config)
            .finish()
    }
}

fn split(fp: u128) -> (u64, u32) {
    (fp as u64, (fp >> 64) as u32)
}

impl<G: Group> DlogTable<G> {
    /// Builds the table in parallel.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `half_width` is 0 or above 2²⁸, or
    /// `bound` is below `half_width` or above 2⁶².
    pub fn new(config: DlogConfig) -> Result<Self> {
        let m = config.half_width;
        if m == 0 || m > 1 << 28 || config.bound < m || config.bound > 1 << 62 {
            // Plain numbers, not `{config:?}`: this text reaches CLI users.
            return Err(Error::InvalidParameter(format!(
                "discrete-log table needs 1 ≤ half_width ≤ 2^28 and half_width ≤ bound ≤ 2^62, got half_width {m}, bound {}",
                config.bound
            )));
        }
        let g = G::generator();
        let entries = 2 * m + 1;
        let chunks: Vec<Vec<(u64, u64)>> = (0..entries.div_ceil(BUILD_CHUNK))
            .into_par_iter()
            .map(|c| {
                let start = c * BUILD_CHUNK;
                let end = (start + BUILD_CHUNK).min(entries);
                let first = start as i64 - m as i64;
                let mut points = Vec::with_capacity((end - start) as usize);
                let mut p = G::vartime_mul_small(&g, first);
                for _ in start..end {
                    let next = G::add(&p, &g);
                    points.push(p);
                    p = next;
                }
                G::fingerprints(&points)
                    .into_iter()
                    .zip(first..)
                    .map(|(fp, j)| {
                        let (key, check) = split(fp);
                        (key, (u64::from(check) << 32) | u64::from(j as i32 as u32))
                    })
                    .collect()
            })
            .collect();
        let mut map = HashMap::with_capacity_and_hasher(entries as usize, Identity);
        for chunk in chunks {
            map.extend(chunk);
        }
        let giant = G::vartime_mul_small(&g, entries as i64);
        let giant_neg = G::sub(&G::identity(), &giant);
        Ok(Self {
            map,
            config,
            giant,
            giant_neg,
        })
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> DlogConfig {
        self.config
    }

    /// Bytes held by the table's hash map.
    pub fn heap_bytes(&self) -> usize {
        self.map.allocation_size()
    }

    fn lookup(&self, fp: u128) -> Option<i64> {
        let (key, check) = split(fp);
        let entry = *self.map.get(&key)?;
        ((entry >> 32) as u32 == check).then_some(i64::from(entry as u32 as i32))
    }

    /// The v with v·g = target and |v| ≤ bound.
    ///
    /// # Errors
    /// [`Error::OutOfBound`] when no such v exists.
    pub fn solve(&self, target: &G::Element) -> Result<i64> {
        self.solve_chunk(core::slice::from_ref(target), 1)
            .pop()
            .unwrap_or(Err(Error::OutOfBound {
                bound: self.config.bound,
            }))
    }

    /// Solves every target, in parallel over chunks; results keep the order.
    pub fn solve_batch(&self, targets: &[G::Element]) -> Vec<Result<i64>> {
        self.solve_batch_scaled(targets, 1)
    }

    /// The v with (scale·v)·g = target and |v| ≤ bound, for every target:
    /// the search runs to scale·bound and keeps multiples of scale. A target
    /// `scale`·Q has such a v exactly when Q = v·g (the order is prime).
    pub(crate) fn solve_batch_scaled(
        &self,
        targets: &[G::Element],
        scale: u32,
    ) -> Vec<Result<i64>> {
        targets
            .par_chunks(SOLVE_CHUNK)
            .flat_map_iter(|c| self.solve_chunk(c, i128::from(scale.max(1))))
            .collect()
    }

    /// [`Self::solve_batch_scaled`] for targets given by their encodings
    /// (`ELEMENT_LEN` bytes each) and fingerprints: the fingerprints are
    /// looked up first, and only targets not found there are decoded and
    /// walked outward.
    pub(crate) fn solve_encoded(
        &self,
        fingerprints: &[u128],
        encodings: &[u8],
        scale: u32,
    ) -> Vec<Result<i64>> {
        let scale = i128::from(scale.max(1));
        let found: Vec<Option<i64>> = fingerprints.par_iter().map(|&fp| self.lookup(fp)).collect();
        let mut results: Vec<Result<i64>> = found
            .iter()
            .map(|j| match j {
                Some(j) => self.accept(i128::from(*j), scale),
                // Walked outward below.
                None => Err(Error::OutOfBound {
                    bound: self.config.bound,
                }),
            })
            .collect();
        let misses: Vec<usize> = (0..found.len()).filter(|&i| found[i].is_none()).collect();
        let len = G::ELEMENT_LEN;
        let decoded: Vec<Result<G::Element>> = misses
            .par_iter()
            .map(|&i| {
                encodings
                    .get(i * len..(i + 1) * len)
                    .ok_or(Error::LengthMismatch {
                        expected: fingerprints.len() * len,
                        got: encodings.len(),
                    })
                    .and_then(G::element_from_bytes)
            })
            .collect();
        let targets: Vec<G::Element> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().cloned())
            .collect();
        let mut solved = self
            .solve_batch_scaled(&targets, u32::try_from(scale).unwrap_or(1))
            .into_iter();
        for (&i, d) in misses.iter().zip(decoded) {
            results[i] = match d {
                Ok(_) => solved.next().unwrap_or(Err(Error::OutOfBound {
                    bound: self.config.bound,
                })),
                Err(e) => Err(e),
            };
        }
        results
    }

    /// v = w / scale when |w| ≤ scale·bound and scale divides w.
    fn accept(&self, w: i128, scale: i128) -> Result<i64> {
        if w.abs() <= i128::from(self.config.bound) * scale && w % scale == 0 {
            Ok((w / scale) as i64)
        } else {
            Err(Error::OutOfBound {
                bound: self.config.bound,
            })
        }
    }

    /// Walks all targets of a chunk outward together, so each round shares
    /// one batched fingerprint computation.
    fn solve_chunk(&self, targets: &[G::Element], scale: i128) -> Vec<Result<i64>> {
        // i128: scale·bound may pass i64 (bound ≤ 2⁶²).
        let m = i128::from(self.config.half_width);
        let step = 2 * m + 1;
        let wide = i128::from(self.config.bound) * scale;
        let mut results: Vec<Result<i64>> = vec![
            Err(Error::OutOfBound {
                bound: self.config.bound,
            });
            targets.len()
        ];
        let accept = |w: i128| self.accept(w, scale);

        // Round 0: the targets themselves.
        let mut pending: Vec<(usize, G::Element, G::Element)> = Vec::new();
        for (i, fp) in G::fingerprints(targets).into_iter().enumerate() {
            match self.lookup(fp) {
                Some(j) => results[i] = accept(i128::from(j)),
                None => pending.push((i, targets[i].clone(), targets[i].clone())),
            }
        }
        // Round k: T − k·step·g (value k·step + j) and T + k·step·g (−k·step + j).
        let mut k = 1i128;
        let mut batch = Vec::with_capacity(2 * pending.len());
        while !pending.is_empty() && k * step - m <= wide {
            batch.clear();
            for (_, up, down) in pending.iter_mut() {
                *up = G::add(up, &self.giant_neg);
                *down = G::add(down, &self.giant);
                batch.push(up.clone());
                batch.push(down.clone());
            }
            let fps = G::fingerprints(&batch);
            let mut still = Vec::with_capacity(pending.len());
            for (n, entry) in pending.drain(..).enumerate() {
                if let Some(j) = self.lookup(fps[2 * n]) {
                    results[entry.0] = accept(k * step + i128::from(j));
                } else if let Some(j) = self.lookup(fps[2 * n + 1]) {
                    results[entry.0] = accept(-k * step + i128::from(j));
                } else {
                    still.push(entry);
                }
            }
            pending = still;
            k += 1;
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Modp2048, Ristretto255};

    fn check<G: Group>(config: DlogConfig, values: &[i64]) {
        let table = DlogTable::<G>::new(config).unwrap();
        let g = G::generator();
        let targets: Vec<_> = values
            .iter()
            .map(|&v| G::vartime_mul_small(&g, v))
            .collect();
        for (v, r) in values.iter().zip(table.solve_batch(&targets)) {
            if v.unsigned_abs() <= config.bound {
                assert_eq!(r, Ok(*v));
            } else {
                assert_eq!(
                    r,
                    Err(Error::OutOfBound {
                        bound: config.bound
                    })
                );
            }
        }
        assert_eq!(
            table.solve(&targets[0]).ok(),
            (values[0].unsigned_abs() <= config.bound).then_some(values[0])
        );
    }

    #[test]
    fn solves_within_and_rejects_outside_bound() {
        let config = DlogConfig::new(16, 500);
        let values = [
            0, 1, -1, 16, -16, 17, -17, 33, 250, -499, 500, -500, 501, -501, 1000, 123_456,
        ];
        check::<Ristretto255>(config, &values);
        check::<Modp2048>(config, &values);
    }

    #[test]
    fn scaled_search_halves_even_values_and_rejects_the_rest() {
        let config = DlogConfig::new(16, 500);
        let table = DlogTable::<Ristretto255>::new(config).unwrap();
        let g = Ristretto255::generator();
        let values = [0i64, 1, -1, 17, -250, 499, 500, -500, 501, -501, 1000];
        let doubled: Vec<_> = values
            .iter()
            .map(|&v| Ristretto255::vartime_mul_small(&g, 2 * v))
            .collect();
        let out = Err(Error::OutOfBound { bound: 500 });
        for (v, r) in values.iter().zip(table.solve_batch_scaled(&doubled, 2)) {
            assert_eq!(r, if v.abs() <= 500 { Ok(*v) } else { out.clone() });
        }
        // Odd multiples are not 2·(v·g) for any small v.
        let odd: Vec<_> = [1i64, 3, -999]
            .iter()
            .map(|&v| Ristretto255::vartime_mul_small(&g, v))
            .collect();
        assert!(table.solve_batch_scaled(&odd, 2).iter().all(|r| *r == out));
    }

    #[test]
    fn encoded_targets_solve_as_points() {
        let config = DlogConfig::new(16, 500);
        let table = DlogTable::<Ristretto255>::new(config).unwrap();
        let g = Ristretto255::generator();
        // In the table, found by giant steps, out of bound, odd (not 2·v).
        let values = [3i64, -16, 200, -499, 500, 501, 1000];
        let mut points: Vec<_> = values
            .iter()
            .map(|&v| Ristretto255::vartime_mul_small(&g, 2 * v))
            .collect();
        points.push(Ristretto255::vartime_mul_small(&g, 7));
        let encodings: Vec<u8> = points
            .iter()
            .flat_map(Ristretto255::element_to_bytes)
            .collect();
        let fps = Ristretto255::fingerprints(&points);
        let got = table.solve_encoded(&fps, &encodings, 2);
        assert_eq!(got, table.solve_batch_scaled(&points, 2));
        assert_eq!(got[..5], [Ok(3), Ok(-16), Ok(200), Ok(-499), Ok(500)]);
        assert!(got[5..].iter().all(Result::is_err));
        // A target that misses and does not decode is an error, not a panic.
        let mut bad = encodings.clone();
        bad[32 * 2 + 31] |= 0x80;
        let got = table.solve_encoded(&fps, &bad, 2);
        assert!(matches!(got[2], Err(Error::NonCanonical(_))), "{got:?}");
        assert!(
            table
                .solve_encoded(&fps, &encodings[..40], 2)
                .iter()
                .skip(1)
                .all(Result::is_err)
        );
    }

    #[test]
    fn rejects_bad_config() {
        assert!(DlogTable::<Ristretto255>::new(DlogConfig::new(0, 10)).is_err());
        assert!(DlogTable::<Ristretto255>::new(DlogConfig::new(10, 5)).is_err());
    }
}
