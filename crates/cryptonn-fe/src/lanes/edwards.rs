//! Scalar twisted Edwards arithmetic on −x² + y² = 1 + d·x²·y² (the curve under
//! Ristretto255), in extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z.
//!
//! Formulas: Hisil, Wong, Carter, Dawson, "Twisted Edwards curves revisited"
//! (ASIACRYPT 2008), §3.1 with a = −1 (`add-2008-hwcd-3`, `dbl-2008-hwcd`), the
//! same ones curve25519-dalek uses. Both are complete on this curve.
//!
//! # Security
//! No secret-dependent branches here, but the module is meant for public values only.

use super::field::Fe;

/// A point in extended coordinates (X : Y : Z : T) with X·Y = Z·T.
#[derive(Clone, Copy, Debug)]
pub struct Extended {
    /// X.
    pub x: Fe,
    /// Y.
    pub y: Fe,
    /// Z.
    pub z: Fe,
    /// T = X·Y/Z.
    pub t: Fe,
}

/// A point prepared as the right operand of an addition: (Y + X, Y − X, Z, 2d·T).
#[derive(Clone, Copy, Debug)]
pub struct Cached {
    /// Y + X.
    pub y_plus_x: Fe,
    /// Y − X.
    pub y_minus_x: Fe,
    /// Z.
    pub z: Fe,
    /// 2d·T.
    pub t2d: Fe,
}

impl Extended {
    /// The neutral element (0 : 1 : 1 : 0).
    pub const IDENTITY: Extended = Extended {
        x: Fe::ZERO,
        y: Fe::ONE,
        z: Fe::ONE,
        t: Fe::ZERO,
    };

    /// Completed (P1 × P1) coordinates to extended: 4 multiplications.
    fn from_completed(x: Fe, y: Fe, z: Fe, t: Fe) -> Extended {
        Extended {
            x: x.mul(&t),
            y: y.mul(&z),
            z: z.mul(&t),
            t: x.mul(&y),
        }
    }

    /// `self + q`: 9 multiplications (8 if q.z = 1 were exploited).
    pub fn add(&self, q: &Cached) -> Extended {
        let pp = self.y.add(&self.x).mul(&q.y_plus_x);
        let mm = self.y.sub(&self.x).mul(&q.y_minus_x);
        let tt2d = self.t.mul(&q.t2d);
        let zz = self.z.mul(&q.z);
        let zz2 = zz.add(&zz);
        Extended::from_completed(pp.sub(&mm), pp.add(&mm), zz2.add(&tt2d), zz2.sub(&tt2d))
    }

    /// `2·self`: 4 squarings and 4 multiplications.
    pub fn double(&self) -> Extended {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz);
        let xpy2 = self.x.add(&self.y).square();
        let yy_plus_xx = yy.add(&xx);
        let yy_minus_xx = yy.sub(&xx);
        Extended::from_completed(
            xpy2.sub(&yy_plus_xx),
            yy_plus_xx,
            yy_minus_xx,
            zz2.sub(&yy_minus_xx),
        )
    }

    /// `−self` = (−X : Y : Z : −T).
    pub fn neg(&self) -> Extended {
        Extended {
            x: self.x.neg(),
            y: self.y,
            z: self.z,
            t: self.t.neg(),
        }
    }

    /// The cached form of `self`, for use as an addend.
    pub fn to_cached(&self) -> Cached {
        Cached {
            y_plus_x: self.y.add(&self.x),
            y_minus_x: self.y.sub(&self.x),
            z: self.z,
            t2d: self.t.mul(&Fe::D2),
        }
    }
}

impl Cached {
    /// The cached form of `−P`: swap Y ± X and negate 2d·T.
    pub fn neg(&self) -> Cached {
        Cached {
            y_plus_x: self.y_minus_x,
            y_minus_x: self.y_plus_x,
            z: self.z,
            t2d: self.t2d.neg(),
        }
    }
}
