//! The curious server's two linear attacks, with the paper's key policy
//! (issue every key) and with the rank budget: the attacks recover the data
//! exactly in the first case and are refused in the second.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.

use std::sync::Arc;

use cryptonn_authority::{Authority, Caps, IssueAll, RankBudget};
use cryptonn_fe::feip::Decryptor;
use cryptonn_fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn_mnist::equivalence::encrypt_batch;
use cryptonn_protocol::{Error, KeyPolicy, KeyService};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Solves A·x = b (A row-major n×n) by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (offset, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (r, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *r -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        x[row] = (b[row] - (row + 1..n).map(|k| a[row][k] * x[k]).sum::<f64>()) / a[row][row];
    }
    x
}

fn random_vectors(rng: &mut StdRng, count: usize, dim: usize) -> Vec<Vec<i64>> {
    (0..count)
        .map(|_| (0..dim).map(|_| rng.random_range(-50..=50)).collect())
        .collect()
}

struct Scenario {
    pixels: Vec<i64>,
    authority: Arc<Authority<Ristretto255>>,
    batch: cryptonn_protocol::EncryptedBatch<Ristretto255>,
    decryptor: Decryptor<Ristretto255>,
    rng: StdRng,
}

fn scenario(policy: impl KeyPolicy + 'static, batch: usize, features: usize) -> Scenario {
    let mut rng = StdRng::seed_from_u64(11);
    let pixels: Vec<i64> = (0..batch * features)
        .map(|_| rng.random_range(0..256))
        .collect();
    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let encrypted = encrypt_batch(&authority, &pixels, features, &mut rng).unwrap();
    let table = Arc::new(DlogTable::new(DlogConfig::new(1 << 12, 1 << 30)).unwrap());
    Scenario {
        pixels,
        authority,
        batch: encrypted,
        decryptor: Decryptor::new(table),
        rng,
    }
}

/// Leak 1: keys for `features` independent vectors under the row-wise master
/// key determine every sample of the batch.
fn recover_samples(s: &mut Scenario, features: usize) -> Result<Vec<i64>, Error> {
    let ys = random_vectors(&mut s.rng, features, features);
    let keys = s.authority.feip_keys(s.batch.row_key(), &ys)?;
    let products = s.decryptor.decrypt_batch(&keys, s.batch.rows())?;
    let a: Vec<Vec<f64>> = ys
        .iter()
        .map(|y| y.iter().map(|&v| v as f64).collect())
        .collect();
    Ok(products
        .chunks(features)
        .flat_map(|row| solve(a.clone(), row.iter().map(|&v| v as f64).collect()))
        .map(|v| v.round() as i64)
        .collect())
}

#[test]
fn master_key_attack_succeeds_without_policy_and_is_refused_with_it() {
    let (batch, features) = (3, 12);
    let mut open = scenario(IssueAll, batch, features);
    assert_eq!(recover_samples(&mut open, features).unwrap(), open.pixels);

    let mut guarded = scenario(
        RankBudget::new(
            Caps::from_margin(4, features, batch),
            4,
            0.5,
            &mut StdRng::seed_from_u64(1),
        ),
        batch,
        features,
    );
    assert!(matches!(
        recover_samples(&mut guarded, features),
        Err(Error::KeyRefused(_))
    ));
    // Within the budget the server still gets its inner products.
    let ys = random_vectors(&mut guarded.rng, features - 4, features);
    assert!(
        guarded
            .authority
            .feip_keys(guarded.batch.row_key(), &ys)
            .is_ok()
    );
}

/// Leak 2: with a first layer at least as wide as the batch, the weight
/// gradient Xᵀ·δ and δ give Xᵀ. Here the server picks δ (B × H, H = B).
fn recover_from_gradient(
    s: &mut Scenario,
    batch: usize,
    features: usize,
) -> Result<Vec<i64>, Error> {
    let deltas = random_vectors(&mut s.rng, batch, batch); // H = B columns of δ, each of length B
    let keys = s.authority.feip_keys(s.batch.col_key(), &deltas)?;
    let grad = s.decryptor.decrypt_batch(&keys, &s.batch.cols())?; // [features][H]
    // Row i of the gradient is δᵀ·X[:, i]: solve for the i-th column of X.
    let a: Vec<Vec<f64>> = deltas
        .iter()
        .map(|d| d.iter().map(|&v| v as f64).collect())
        .collect();
    let columns: Vec<Vec<f64>> = grad
        .chunks(batch)
        .map(|row| solve(a.clone(), row.iter().map(|&v| v as f64).collect()))
        .collect();
    Ok((0..batch)
        .flat_map(|b| {
            (0..features)
                .map(|i| columns[i][b].round() as i64)
                .collect::<Vec<_>>()
        })
        .collect())
}

#[test]
fn gradient_attack_succeeds_without_policy_and_is_refused_with_it() {
    let (batch, features) = (6, 10);
    let mut open = scenario(IssueAll, batch, features);
    assert_eq!(
        recover_from_gradient(&mut open, batch, features).unwrap(),
        open.pixels
    );

    let mut guarded = scenario(
        RankBudget::new(
            Caps::from_margin(3, features, batch),
            3,
            0.5,
            &mut StdRng::seed_from_u64(2),
        ),
        batch,
        features,
    );
    assert!(matches!(
        recover_from_gradient(&mut guarded, batch, features),
        Err(Error::KeyRefused(_))
    ));
}

#[test]
fn unit_vector_keys_are_refused() {
    let (batch, features) = (2, 8);
    let guarded = scenario(
        RankBudget::new(
            Caps::from_margin(2, features, batch),
            4,
            0.5,
            &mut StdRng::seed_from_u64(3),
        ),
        batch,
        features,
    );
    let mut e0 = vec![0i64; features];
    e0[0] = 1;
    let err = guarded
        .authority
        .feip_keys(guarded.batch.row_key(), &[e0])
        .unwrap_err();
    assert!(matches!(err, Error::KeyRefused(_)), "{err}");
}

/// A secure convolution's forward pass: keys for 3 kernels on 12×12 images
/// are more equations than pixels; one pass gives every image back exactly,
/// and a rank budget one below full refuses the pass.
#[test]
fn one_convolution_forward_pass_gives_the_images_back() {
    use cryptonn_protocol::PatchGeometry;
    let mut rng = StdRng::seed_from_u64(12);
    let geometry = PatchGeometry::new([1, 12, 12], [3, 3], [1, 1], [0, 0]).unwrap();
    let (images, n) = (2, geometry.pixels());
    let pixels: Vec<i64> = (0..images * n).map(|_| rng.random_range(0..256)).collect();
    let kernels = random_vectors(&mut rng, 3, geometry.patch_len());
    let encrypt = |authority: &Authority<Ristretto255>, rng: &mut StdRng| {
        let keys = authority.patch_keys(geometry, images, rng).unwrap();
        cryptonn_client::ImageClient::new(&keys, geometry)
            .unwrap()
            .encrypt(&pixels, 255.0, rng)
            .unwrap()
    };

    let authority = Authority::<Ristretto255>::new(IssueAll);
    let batch = encrypt(&authority, &mut rng);
    let keys = authority.feip_keys(batch.row_key(), &kernels).unwrap();
    let table = Arc::new(DlogTable::<Ristretto255>::new(DlogConfig::default()).unwrap());
    let products = Decryptor::new(table)
        .decrypt_batch(&keys, batch.rows())
        .unwrap();
    let guess = cryptonn_audit::solve_convolution(&geometry, &kernels, &products).unwrap();
    let rounded: Vec<i64> = guess.iter().map(|v| v.round() as i64).collect();
    assert_eq!(rounded, pixels);

    let caps = Caps {
        rows: n - 1,
        cols: 0,
    };
    let budget = Authority::<Ristretto255>::new(RankBudget::new(caps, 1, 1.0, &mut rng));
    let batch = encrypt(&budget, &mut rng);
    assert!(matches!(
        budget.feip_keys(batch.row_key(), &kernels),
        Err(Error::KeyRefused(_))
    ));
}
