//! Exact rational numbers for frame arithmetic: frame rates such as `30000/1001` and episode
//! times (sums of frame counts over such rates) stay exact until they are rounded, once, to
//! the unit a format needs (milliseconds, frames).

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `num / den`, always reduced, `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    pub const ZERO: Rational = Rational { num: 0, den: 1 };

    /// `num / den`; `None` when `den` is 0.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let s = if den < 0 { -1 } else { 1 };
        Some(Self {
            num: s * num / g,
            den: s * den / g,
        })
    }

    pub fn integer(n: i128) -> Self {
        Self { num: n, den: 1 }
    }

    pub fn num(self) -> i128 {
        self.num
    }

    pub fn den(self) -> i128 {
        self.den
    }

    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Rounded to the nearest integer, halves away from zero (never floored).
    pub fn round(self) -> i128 {
        let twice = 2 * self.num.abs() + self.den;
        let magnitude = twice / (2 * self.den);
        if self.num < 0 { -magnitude } else { magnitude }
    }

    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    pub fn recip(self) -> Option<Self> {
        Self::new(self.den, self.num)
    }
}

impl Add for Rational {
    type Output = Rational;
    fn add(self, o: Rational) -> Rational {
        let g = gcd(self.den, o.den).max(1);
        Rational::new(
            self.num * (o.den / g) + o.num * (self.den / g),
            self.den / g * o.den,
        )
        .expect("non-zero denominators")
    }
}

impl Sub for Rational {
    type Output = Rational;
    fn sub(self, o: Rational) -> Rational {
        self + (-o)
    }
}

impl Neg for Rational {
    type Output = Rational;
    fn neg(self) -> Rational {
        Rational {
            num: -self.num,
            den: self.den,
        }
    }
}

impl Mul for Rational {
    type Output = Rational;
    fn mul(self, o: Rational) -> Rational {
        let g1 = gcd(self.num, o.den).max(1);
        let g2 = gcd(o.num, self.den).max(1);
        Rational::new(
            (self.num / g1) * (o.num / g2),
            (self.den / g2) * (o.den / g1),
        )
        .expect("non-zero denominators")
    }
}

impl Div for Rational {
    type Output = Rational;
    /// Panics on division by zero (callers divide by frame rates, which are validated > 0).
    fn div(self, o: Rational) -> Rational {
        let inverse = o.recip().expect("division by zero");
        Mul::mul(self, inverse)
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Rational {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.num * o.den).cmp(&(o.num * self.den))
    }
}

impl From<u64> for Rational {
    fn from(n: u64) -> Self {
        Rational::integer(i128::from(n))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// A frame rate: positive, exact (`30000/1001`, not 29.97).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRate(Rational);

impl FrameRate {
    /// `num/den` frames per second; `None` unless both are positive.
    pub fn new(num: u32, den: u32) -> Option<Self> {
        (num > 0 && den > 0)
            .then(|| Rational::new(i128::from(num), i128::from(den)).map(FrameRate))
            .flatten()
    }

    /// From `"60/1"`, `"30000/1001"` or `"25"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        match s.split_once('/') {
            Some((n, d)) => Self::new(n.trim().parse().ok()?, d.trim().parse().ok()?),
            None => Self::new(s.parse().ok()?, 1),
        }
    }

    /// The exact rate a measured `fps` stands for: an integer, an NTSC rate (`n·1000/1001`), or
    /// else the value to a thousandth of a frame per second.
    pub fn from_fps(fps: f64) -> Option<Self> {
        if !(fps.is_finite() && fps > 0.0 && fps < 1e6) {
            return None;
        }
        let near = |x: f64| (x - x.round()).abs() < 1e-6 * x.max(1.0);
        if near(fps) {
            return Self::new(fps.round() as u32, 1);
        }
        let ntsc = fps * 1001.0 / 1000.0;
        if near(ntsc) {
            return Self::new(ntsc.round() as u32 * 1000, 1001);
        }
        Self::new((fps * 1000.0).round() as u32, 1000)
    }

    pub fn as_rational(self) -> Rational {
        self.0
    }

    pub fn to_f64(self) -> f64 {
        self.0.to_f64()
    }

    /// Seconds at the start of frame `frame` (exact).
    pub fn seconds(self, frame: u64) -> Rational {
        Rational::from(frame) / self.0
    }

    /// The frame count nearest to `seconds` (rounded, never floored).
    pub fn frames(self, seconds: Rational) -> i128 {
        (seconds * self.0).round()
    }

    /// Frames per timecode second for non-drop-frame timecode: the rate rounded (30 for
    /// 30000/1001, as NDF counts).
    pub fn timecode_base(self) -> u64 {
        self.0.round().max(1) as u64
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn arithmetic_is_exact_and_reduced() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(1, -2), r(-1, 2));
        assert_eq!(r(1, 3) + r(1, 6), r(1, 2));
        assert_eq!(r(1, 3) - r(1, 2), r(-1, 6));
        assert_eq!(
            r(1001, 30000) * Rational::integer(30000),
            Rational::integer(1001)
        );
        assert_eq!(r(3, 4) / r(3, 8), Rational::integer(2));
        assert!(r(1, 3) < r(34, 100));
        assert_eq!(Rational::new(1, 0), None);
    }

    #[test]
    fn rounding_is_to_nearest_with_halves_away_from_zero() {
        assert_eq!(r(5, 2).round(), 3);
        assert_eq!(r(-5, 2).round(), -3);
        assert_eq!(r(7, 3).round(), 2);
        assert_eq!(r(8, 3).round(), 3);
        assert_eq!(r(-8, 3).round(), -3);
        assert_eq!(r(1999, 1000).round(), 2, "never floored");
    }

    #[test]
    fn frame_rates_are_exact() {
        let ntsc = FrameRate::parse("30000/1001").unwrap();
        assert_eq!(FrameRate::from_fps(29.97002997), Some(ntsc));
        assert_eq!(
            FrameRate::from_fps(59.94005994),
            FrameRate::new(60000, 1001)
        );
        assert_eq!(FrameRate::from_fps(60.0), FrameRate::new(60, 1));
        assert_eq!(FrameRate::from_fps(12.5), FrameRate::new(25, 2));
        assert_eq!(FrameRate::from_fps(0.0), None);
        assert_eq!(FrameRate::parse("0/1"), None);
        assert_eq!(FrameRate::parse("25"), FrameRate::new(25, 1));
        // Frame 30 of 29.97 fps starts at 1.001 s exactly.
        assert_eq!(ntsc.seconds(30), r(1001, 1000));
        assert_eq!(ntsc.timecode_base(), 30);
        // 1.001 s is frame 30 again; 0.5 frame rounds up.
        assert_eq!(ntsc.frames(r(1001, 1000)), 30);
        let sixty = FrameRate::new(60, 1).unwrap();
        assert_eq!(
            sixty.frames(r(1, 120)),
            1,
            "half a frame rounds up, never down"
        );
        assert_eq!(sixty.frames(r(1, 121)), 0);
    }
}
