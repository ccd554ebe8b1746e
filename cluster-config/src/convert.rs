//! Conversions of single config values (figment `Value`s, from the file or the environment)
//! to Rust types, with the reason for a failure, and the "did you mean" hint for unknown keys.

use std::time::Duration;

use figment::value::Value;

/// How durations are written, for error messages.
pub(crate) const DURATION_FORMS: &str = "use 500ms, 30s, 15m, 8h, 7d";

pub(crate) fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(_, s) => Ok(s.clone()),
        Value::Char(_, c) => Ok(c.to_string()),
        other => Err(format!("must be a string, not {}", describe(other))),
    }
}

pub(crate) fn to_whole<T: TryFrom<u128>>(v: &Value) -> Result<T, String> {
    let n: u128 = match v {
        Value::Num(_, n) => match (n.to_u128_lossy(), n.to_i128()) {
            (Some(n), _) => n,
            (None, Some(_)) => return Err(format!("{} must not be negative", describe(v))),
            (None, None) => return Err(format!("{} is not a whole number", describe(v))),
        },
        Value::String(_, s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number ≥ 0"))?,
        other => return Err(format!("must be a whole number, not {}", describe(other))),
    };
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// The longest duration any key accepts: far beyond any sensible setting, and short enough that
/// no clock arithmetic on it can overflow.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn to_duration(v: &Value) -> Result<Duration, String> {
    match v {
        Value::String(_, s) => {
            let d = humantime::parse_duration(s.trim())
                .map_err(|_| format!("{s:?} is not a duration ({DURATION_FORMS})"))?;
            if d > MAX_DURATION {
                return Err(format!(
                    "{s:?} is longer than the longest duration accepted ({})",
                    humantime::format_duration(MAX_DURATION)
                ));
            }
            Ok(d)
        }
        other => Err(format!(
            "{} is not a duration: write it as a string with a unit ({DURATION_FORMS})",
            describe(other)
        )),
    }
}

/// A value as it would be written, for messages: `"15x"`, `42`, `true`, `a table`.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => match (n.to_i128(), n.to_u128(), n.to_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => f.to_string(),
            (None, None, None) => "a number".to_owned(),
        },
        Value::Empty(..) => "an empty value".to_owned(),
        Value::Dict(..) => "a table".to_owned(),
        Value::Array(..) => "a list".to_owned(),
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a likely typo.
pub(crate) fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_suggestions() {
        let known = ["idle_timeout", "max_lifetime", "on_limit"];
        assert_eq!(closest("idel_timeout", &known), Some("idle_timeout"));
        assert_eq!(closest("onlimit", &known), Some("on_limit"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_duration_form() {
        let d = |s: &str| to_duration(&Value::from(s));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(d("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(d("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(d("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            d("15x").unwrap_err(),
            "\"15x\" is not a duration (use 500ms, 30s, 15m, 8h, 7d)"
        );
        assert!(to_duration(&Value::from(900u64))
            .unwrap_err()
            .starts_with("900 is not"));
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(to_whole::<u64>(&Value::from(3i64)), Ok(3));
        assert_eq!(to_whole::<u64>(&Value::from("42")), Ok(42));
        assert!(to_whole::<u64>(&Value::from(-1i64))
            .unwrap_err()
            .contains("negative"));
        assert!(to_whole::<u64>(&Value::from(1.5f64)).is_err());
        assert!(to_whole::<u32>(&Value::from(u64::MAX))
            .unwrap_err()
            .contains("too large"));
        assert!(to_whole::<u64>(&Value::from("x")).is_err());
    }
}
