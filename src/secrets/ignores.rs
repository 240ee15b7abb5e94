//! What a scan leaves out: `secrets.exclude` globs ([`Excludes`]) and the
//! fingerprints listed in `.shipgateignore`, which is itself scanned with
//! those fingerprints blanked. Apart so every way to silence a finding is
//! in one place.

use std::path::Path;

use super::ScanError;

/// The fingerprints listed in the text of a `.shipgateignore`: one per
/// line, `#` comments and blank lines ignored.
pub fn parse_ignore_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Fingerprints listed in `.shipgateignore` at `root`. A missing file is an
/// empty list.
pub fn load_ignore_file(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(".shipgateignore"))
        .map(|text| parse_ignore_file(&text))
        .unwrap_or_default()
}

/// Whether `s` has the shape of a fingerprint: `rule:path:` and 12 hex
/// digits or `-`.
fn is_fingerprint(s: &str) -> bool {
    let Some((head, tail)) = s.rsplit_once(':') else {
        return false;
    };
    let Some((rule, path)) = head.split_once(':') else {
        return false;
    };
    !rule.is_empty()
        && rule
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !path.is_empty()
        && (tail == "-" || (tail.len() == 12 && tail.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// A `.shipgateignore` is scanned like any file, except the fingerprints it
/// lists (which name rules and paths, not secrets): they are blanked, in
/// place, so lines and columns stay where they are.
pub(super) fn blank_fingerprints(data: &mut [u8]) {
    let mut start = 0;
    while start < data.len() {
        let end = data[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |p| start + p);
        let line = &data[start..end];
        let code_end = line.iter().position(|&b| b == b'#').unwrap_or(line.len());
        if std::str::from_utf8(&line[..code_end]).is_ok_and(|s| is_fingerprint(s.trim())) {
            data[start..start + code_end].fill(b' ');
        }
        start = end + 1;
    }
}

/// `secrets.exclude`: gitignore-style globs over paths relative to the scan root.
pub struct Excludes(ignore::gitignore::Gitignore);

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Self, ScanError> {
        Self::globs(patterns, "exclude").map_err(ScanError::Exclude)
    }

    /// Gitignore-style globs; `what` names them in an error.
    pub(super) fn globs(patterns: &[String], what: &str) -> Result<Self, String> {
        let mut builder = ignore::gitignore::GitignoreBuilder::new("");
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|e| format!("bad {what} pattern {pattern:?}: {e}"))?;
        }
        let matcher = builder
            .build()
            .map_err(|e| format!("bad {what} patterns: {e}"))?;
        Ok(Excludes(matcher))
    }

    /// Whether the file at `path` (relative, forward slashes) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        self.excludes_entry(Path::new(path), false)
    }

    pub(super) fn excludes_entry(&self, rel: &Path, is_dir: bool) -> bool {
        !rel.as_os_str().is_empty()
            && !rel.has_root()
            && self.0.matched_path_or_any_parents(rel, is_dir).is_ignore()
    }
}
