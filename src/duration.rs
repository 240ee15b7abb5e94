//! Durations as people write them in configuration and commands (`90s`,
//! `30m`, `1h30m`, `1d`), and back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration such as `90s`, `30m`, `2h`, `1h30m` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct DurationText(pub std::time::Duration);

impl DurationText {
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("expected a duration like 30m, 2h or 1h30m, got \"{s}\"");
        let mut total = 0u64;
        let mut number = String::new();
        let mut saw_unit = false;
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let n: u64 = number.parse().map_err(|_| err())?;
            number.clear();
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(err()),
            };
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(err)?;
            saw_unit = true;
        }
        if !number.is_empty() || !saw_unit || total == 0 {
            return Err(err());
        }
        Ok(DurationText(std::time::Duration::from_secs(total)))
    }
}

impl TryFrom<String> for DurationText {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        DurationText::parse(&s)
    }
}

impl From<DurationText> for String {
    fn from(d: DurationText) -> String {
        humanize(d.0)
    }
}

/// `1h30m`-style text for a duration.
pub fn humanize(d: std::time::Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}
