//! Resource quantities (`500m`, `128Mi`, `1.5`, `2e3`) read as numbers, so that they can be compared and added.
//!
//! In Kubernetes a `resource.Quantity` is parsed when the JSON is read; in `k8s-openapi` it stays a string, so
//! validation (`requests` must not exceed `limits`) and defaulting (the QoS class) parse it here. We keep exactly
//! Kubernetes' grammar — `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$` with the binary suffixes `Ki`..`Ei`, the
//! decimal suffixes `n`..`E` and exponents `e3` — but not its arbitrary precision: a value is held as a whole
//! number of nano-units (10⁻⁹) in an `i128`, rounded up like Kubernetes rounds up to its smallest scale, which is
//! exact for anything a manifest contains. What we leave out: canonical formatting (`1000m` printed back as `1`).

use std::cmp::Ordering;

/// The sentence Kubernetes answers with when a quantity cannot be read.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity as a number of nano-units: `500m` is 500 000 000, `1Ki` is 1 024 000 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount {
    nanos: i128,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{QUANTITY_FORMAT_ERROR}")]
pub struct QuantityError;

const NANOS_PER_UNIT: i128 = 1_000_000_000;

impl Amount {
    /// The amount in thousandths, rounded up as Kubernetes' `MilliValue` does (`100m` CPU → 100).
    pub fn milli_value(self) -> i64 {
        let milli = NANOS_PER_UNIT / 1000;
        i64::try_from((self.nanos + milli - 1).div_euclid(milli)).unwrap_or(i64::MAX)
    }

    /// The amount in whole units, rounded up as Kubernetes' `Value` does (`64Mi` → 67108864, `1500m` → 2).
    pub fn value(self) -> i64 {
        i64::try_from((self.nanos + NANOS_PER_UNIT - 1).div_euclid(NANOS_PER_UNIT)).unwrap_or(i64::MAX)
    }

    /// Zero, the value of an absent request.
    pub const ZERO: Amount = Amount { nanos: 0 };

    /// Reads a quantity string.
    pub fn parse(text: &str) -> Result<Amount, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(QuantityError);
        }
        let (exponent10, binary_power) = parse_suffix(suffix)?;

        // value = digits × 10^(exponent10 - len(fraction)), expressed in nano-units.
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa.saturating_mul(10).saturating_add(i128::from(digit - b'0'));
        }
        let scale = exponent10 - fraction.len() as i64 + 9;
        let mut nanos = if scale >= 0 {
            mantissa.saturating_mul(pow10(scale))
        } else {
            // Finer than a nano-unit: round up, as Kubernetes does when it lowers precision.
            let divisor = pow10(-scale);
            mantissa / divisor + i128::from(mantissa % divisor != 0)
        };
        for _ in 0..binary_power {
            nanos = nanos.saturating_mul(1024);
        }
        Ok(Amount { nanos: if negative { -nanos } else { nanos } })
    }

    /// True for anything below zero, which no request or limit may be.
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// True when the quantity is a whole number of units (extended resources must be).
    pub fn is_whole(self) -> bool {
        self.nanos % NANOS_PER_UNIT == 0
    }

    /// The sum of two amounts (saturating, never overflowing).
    pub fn plus(self, other: Amount) -> Amount {
        Amount { nanos: self.nanos.saturating_add(other.nanos) }
    }

    /// Compares with another amount (also available through `Ord`).
    pub fn compare(self, other: Amount) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// 10^exp, saturating: exponents beyond `i128` mean "absurdly large".
fn pow10(exp: i64) -> i128 {
    let mut value: i128 = 1;
    for _ in 0..exp.min(60) {
        value = value.saturating_mul(10);
    }
    value
}

/// The suffix as (power of ten, power of 1024).
fn parse_suffix(suffix: &str) -> Result<(i64, u32), QuantityError> {
    let found = match suffix {
        "" => (0, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        _ => {
            // An exponent: `e3`, `E-2`, `e+6`.
            let digits = suffix.strip_prefix(['e', 'E']).ok_or(QuantityError)?;
            let exponent: i64 = digits.parse().map_err(|_| QuantityError)?;
            if exponent.abs() > 60 {
                return Err(QuantityError);
            }
            (exponent, 0)
        }
    };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        Amount::parse(text).unwrap()
    }

    #[test]
    fn values_round_up_as_kubernetes_does() {
        assert_eq!(amount("100m").milli_value(), 100);
        assert_eq!(amount("2").milli_value(), 2000);
        assert_eq!(amount("1500m").value(), 2);
        assert_eq!(amount("64Mi").value(), 64 * 1024 * 1024);
        assert_eq!(amount("0").value(), 0);
    }

    #[test]
    fn equal_quantities_written_differently_compare_equal() {
        assert_eq!(amount("500m"), amount("0.5"));
        assert_eq!(amount("1"), amount("1000m"));
        assert_eq!(amount("1Ki"), amount("1024"));
        assert_eq!(amount("1k"), amount("1e3"));
        assert_eq!(amount("128Mi"), amount("134217728"));
    }

    #[test]
    fn order_follows_the_value_not_the_text() {
        assert!(amount("2") > amount("1500m"));
        assert!(amount("1Gi") > amount("1G"));
        assert!(amount("-1").is_negative());
        assert!(amount("2").is_whole() && !amount("1.5").is_whole());
    }

    #[test]
    fn malformed_quantities_are_refused_with_kubernetes_words() {
        for bad in ["", "abc", "1.2.3", "5Mb", "m", "1e", "--1"] {
            let err = Amount::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), QUANTITY_FORMAT_ERROR, "{bad}");
        }
    }
}
