//! The Action's `freeze` gate as people read it: a freeze in force (with
//! or without the override label), or none, and the next window if one
//! starts within two weeks. A headline for the console and the comment, a
//! line of Markdown for the job summary.

use chrono::{DateTime, Utc};

use crate::freeze::Freeze;
use crate::text::inline_text;

/// How the end of a freeze and the start of the next one are written.
const TIME: &str = "%Y-%m-%d %H:%M UTC";

/// What the override label made of a freeze in force.
#[derive(Debug, Clone, Copy)]
pub enum Override<'a> {
    /// The label is not on the pull request.
    Absent,
    /// A maintainer or an admin added it: their login.
    By(&'a str),
    /// The label is there but does not count: why not.
    Refused(&'a str),
}

/// A freeze in force and what the override label made of it.
#[derive(Debug, Clone, Copy)]
pub struct FreezeInForce<'a> {
    /// The environment judged; `None` for all environments.
    pub environment: Option<&'a str>,
    pub freeze: &'a Freeze,
    /// The override label's name (from the config).
    pub label: &'a str,
    pub override_: Override<'a>,
}

/// What a freeze applies to: `` `production` `` or all environments.
fn scope(environment: Option<&str>) -> String {
    environment
        .map(|e| format!("`{}`", inline_text(e)))
        .unwrap_or_else(|| "all environments".into())
}

/// The gate's headline for a freeze in force: plain text, escaped where it
/// is shown as Markdown.
pub fn freeze_headline(f: &FreezeInForce) -> String {
    let (description, label) = (&f.freeze.description, f.label);
    let until = f.freeze.ends_at.format(TIME);
    match f.override_ {
        Override::By(by) => {
            format!("{description} — overridden by the `{label}` label (added by {by})")
        }
        Override::Refused(why) => {
            format!("{description} until {until}; the `{label}` label does not count: {why}")
        }
        Override::Absent => format!("{description} until {until}"),
    }
}

/// The job summary's line for a freeze in force: who overrode it, why the
/// label does not count, or who can add it.
pub fn freeze_markdown(f: &FreezeInForce) -> String {
    let what = scope(f.environment);
    let description = inline_text(&f.freeze.description);
    let until = f.freeze.ends_at.format(TIME);
    let label = inline_text(f.label);
    match f.override_ {
        Override::By(by) => format!(
            "⚠️ Deploy freeze on {what}: {description} until {until}, overridden by the `{label}` label (added by {}).\n",
            inline_text(by)
        ),
        Override::Refused(why) => format!(
            "❌ Deploy freeze on {what}: {description} until {until}. The `{label}` label does not count: {}. Only a maintainer or an admin can override a freeze.\n",
            inline_text(why)
        ),
        Override::Absent => format!(
            "❌ Deploy freeze on {what}: {description} until {until}. A maintainer or an admin can add the `{label}` label to override.\n"
        ),
    }
}

/// The gate's headline when no freeze is in force: the next one to start
/// (at `t`) within two weeks, if any.
pub fn no_freeze_headline(next: Option<(DateTime<Utc>, &Freeze)>) -> String {
    match next {
        Some((t, f)) => format!(
            "no freeze now; next: {} from about {}",
            f.description,
            t.format(TIME)
        ),
        None => "no freeze now or in the next 14 days".to_string(),
    }
}

/// The job summary's line when no freeze is in force on `environment`.
pub fn no_freeze_markdown(
    environment: Option<&str>,
    next: Option<(DateTime<Utc>, &Freeze)>,
) -> String {
    format!(
        "✅ {}: {}\n",
        scope(environment),
        inline_text(&no_freeze_headline(next))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn freeze() -> Freeze {
        Freeze {
            // Config text: may mention people, break tables, open comments.
            description: "Holidays @acme/ops | <!-- x -->".into(),
            ends_at: Utc.with_ymd_and_hms(2024, 12, 27, 8, 0, 0).unwrap(),
        }
    }

    fn both(f: &FreezeInForce) -> String {
        format!("{}\n{}", freeze_headline(f), freeze_markdown(f))
    }

    #[test]
    fn freeze_in_force() {
        let freeze = freeze();
        let f = |environment, override_| FreezeInForce {
            environment,
            freeze: &freeze,
            label: "freeze-override",
            override_,
        };
        insta::assert_snapshot!([
            both(&f(Some("production"), Override::Absent)),
            both(&f(None, Override::By("maya"))),
            both(&f(
                Some("prod | <b>"),
                Override::Refused("added by mallory, whose role (write) is below maintain")
            )),
        ]
        .join("\n"));
    }

    #[test]
    fn no_freeze() {
        let freeze = freeze();
        let t = Utc.with_ymd_and_hms(2024, 12, 20, 17, 15, 0).unwrap();
        insta::assert_snapshot!([
            no_freeze_headline(None),
            no_freeze_markdown(Some("production"), None),
            no_freeze_headline(Some((t, &freeze))),
            no_freeze_markdown(None, Some((t, &freeze))),
        ]
        .join("\n"));
    }
}
