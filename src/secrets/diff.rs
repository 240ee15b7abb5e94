//! The lines a patch adds (`git diff` / `git log -p`, any context size),
//! read by the patch's structure: a hunk header says how many old and new
//! lines follow, and exactly that many lines are hunk lines, whatever they
//! start with. So an added line that reads `++ b/x` (shown as `+++ b/x`) is
//! content, not a file header. Paths come from the `+++` header, unquoted
//! when git quoted them (C-style, for `"`, `\` and control characters; the
//! caller runs git with `core.quotePath=false`, so other bytes are literal)
//! and without the tab git appends to names holding a space.
//!
//! Each hunk's run of added lines is scanned as one text (so a PEM key's
//! body after its header is seen), at its line numbers in the new file.
//! Input is read line by line with a cap on a line's length, and a file's
//! added text is capped by `ScanOptions::max_file_bytes`: a file over it is
//! listed in `ScanReport::too_large`, a file with NUL bytes counted as binary.

use std::io::BufRead;

use super::{blank_fingerprints, scan_content, Excludes, ScanOptions, ScanReport};

/// Reads one line into `buf` without its `\n`, keeping at most `cap` bytes.
/// Returns `None` at the end of input, else whether the line fit.
fn read_line(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fit = true;
    let mut any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(any.then_some(fit));
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if chunk.len() > room {
            fit = false;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        input.consume(used);
        if done {
            return Ok(Some(fit));
        }
    }
}

/// Undoes git's C-style quoting of a path (`"a\"b\303\251"`).
fn unquote(quoted: &[u8]) -> Vec<u8> {
    let inner = quoted
        .strip_prefix(b"\"")
        .and_then(|q| q.strip_suffix(b"\""))
        .unwrap_or(quoted);
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' || i >= inner.len() {
            out.push(b);
            continue;
        }
        let e = inner[i];
        i += 1;
        match e {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'r' => out.push(b'\r'),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match inner.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    out
}

/// The path of a `+++ ` header: `None` for `/dev/null` (a deleted file).
fn new_path(header: &[u8]) -> Option<String> {
    // git ends the header with a tab when the name holds a space; a tab in
    // a name is always quoted, so one at the end is that separator.
    let header = header.strip_suffix(b"\t").unwrap_or(header);
    let raw: Vec<u8> = if header.starts_with(b"\"") {
        unquote(header)
    } else {
        header.to_vec()
    };
    if raw == b"/dev/null" {
        return None;
    }
    let path = raw.strip_prefix(b"b/").unwrap_or(&raw);
    Some(String::from_utf8_lossy(path).into_owned())
}

/// `@@ -a[,b] +c[,d] @@…`: (old count, new count, first new line).
fn hunk_header(line: &[u8]) -> Option<(u64, u64, u32)> {
    let text = std::str::from_utf8(line.strip_prefix(b"@@ ")?).ok()?;
    let mut parts = text.split(' ');
    let range = |p: &str, sign: char| -> Option<(u64, u64)> {
        let p = p.strip_prefix(sign)?;
        let (start, count) = match p.split_once(',') {
            Some((s, c)) => (s.parse().ok()?, c.parse().ok()?),
            None => (p.parse().ok()?, 1),
        };
        Some((start, count))
    };
    let (_, old) = range(parts.next()?, '-')?;
    let (start, new) = range(parts.next()?, '+')?;
    Some((old, new, u32::try_from(start).ok()?))
}

/// One file's part of the patch.
struct FileDiff {
    /// `None` until the `+++` header, and for deleted or excluded files.
    path: Option<String>,
    added_bytes: u64,
    /// Over the size cap or binary: nothing more is scanned.
    given_up: bool,
}

/// A run of consecutive added lines.
struct Block {
    first_line: u32,
    text: Vec<u8>,
}

struct Reader<'a> {
    opts: &'a ScanOptions,
    excludes: &'a Excludes,
    report: &'a mut ScanReport,
    file: FileDiff,
    block: Block,
}

impl Reader<'_> {
    fn start_file(&mut self, path: Option<String>) {
        self.flush();
        let path = path.filter(|p| !self.excludes.excludes(p));
        self.file = FileDiff {
            path,
            added_bytes: 0,
            given_up: false,
        };
    }

    fn added(&mut self, line_no: u32, text: &[u8], fit: bool) {
        if self.file.given_up || self.file.path.is_none() {
            return;
        }
        self.file.added_bytes += text.len() as u64 + 1;
        if !fit || self.file.added_bytes > self.opts.max_file_bytes {
            self.give_up_too_large();
            return;
        }
        if self.block.text.is_empty() {
            self.block.first_line = line_no;
        }
        self.block.text.extend_from_slice(text);
        self.block.text.push(b'\n');
    }

    fn give_up_too_large(&mut self) {
        self.block.text.clear();
        self.file.given_up = true;
        self.report.skipped_large += 1;
        if let Some(p) = &self.file.path {
            if !self.report.too_large.contains(p) {
                self.report.too_large.push(p.clone());
            }
        }
    }

    /// Scans the current run of added lines.
    fn flush(&mut self) {
        if self.block.text.is_empty() {
            return;
        }
        let Some(path) = self.file.path.clone() else {
            self.block.text.clear();
            return;
        };
        let mut text = std::mem::take(&mut self.block.text);
        if path.rsplit('/').next() == Some(".shipgateignore") {
            blank_fingerprints(&mut text);
        }
        if text.contains(&0) {
            self.file.given_up = true;
            self.report.skipped_binary += 1;
            return;
        }
        let mut found = Vec::new();
        self.report.suppressed += scan_content(&path, &text, self.opts, &mut found);
        let offset = self.block.first_line.saturating_sub(1);
        for mut f in found {
            f.line = f.line.saturating_add(offset);
            self.report.findings.push(f);
        }
        self.report.bytes_scanned += text.len() as u64;
    }
}

/// Scans the lines `input` (a unified patch) adds. Path rules are not
/// applied here: the caller lists the paths from git's NUL-separated output.
/// Each file part counts once in `files_scanned`.
pub fn scan_patch(
    input: &mut dyn BufRead,
    opts: &ScanOptions,
    excludes: &Excludes,
    report: &mut ScanReport,
) -> std::io::Result<()> {
    let cap = opts.max_file_bytes.min(usize::MAX as u64) as usize;
    let mut r = Reader {
        opts,
        excludes,
        report,
        file: FileDiff {
            path: None,
            added_bytes: 0,
            given_up: false,
        },
        block: Block {
            first_line: 0,
            text: Vec::new(),
        },
    };
    let mut line = Vec::new();
    // Lines left in the current hunk: (old, new), and the next new line's number.
    let mut hunk: Option<(u64, u64)> = None;
    let mut next_line = 0u32;
    while let Some(fit) = read_line(input, &mut line, cap)? {
        if let Some((old, new)) = hunk.as_mut() {
            match line.first() {
                Some(b'+') if *new > 0 => {
                    r.added(next_line, &line[1..], fit);
                    *new -= 1;
                    next_line = next_line.saturating_add(1);
                }
                Some(b'-') if *old > 0 => {
                    r.flush();
                    *old -= 1;
                }
                // A context line (some tools drop the space of an empty one).
                Some(b' ') | None if *old > 0 && *new > 0 => {
                    r.flush();
                    *old -= 1;
                    *new -= 1;
                    next_line = next_line.saturating_add(1);
                }
                Some(b'\\') => {}
                // Not a hunk line where one was due: the patch is not what
                // its header said. Read on as headers.
                _ => {
                    r.flush();
                    hunk = None;
                }
            }
            if let Some((0, 0)) = hunk {
                r.flush();
                hunk = None;
            }
            if hunk.is_some() {
                continue;
            }
            if matches!(line.first(), Some(b'+' | b'-' | b' ' | b'\\')) {
                continue;
            }
        }
        if line.starts_with(b"diff ") {
            r.start_file(None);
        } else if let Some(header) = line.strip_prefix(b"+++ ") {
            let path = new_path(header);
            if path.is_some() {
                r.report.files_scanned += 1;
            }
            r.start_file(path);
        } else if line.starts_with(b"@@ ") {
            if let Some((old, new, start)) = hunk_header(&line) {
                next_line = start;
                if old > 0 || new > 0 {
                    hunk = Some((old, new));
                }
            }
        }
    }
    r.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(patch: &str) -> Vec<(String, u32, String)> {
        let opts = ScanOptions::default();
        let excludes = Excludes::new(&[]).unwrap();
        let mut report = ScanReport::default();
        scan_patch(&mut patch.as_bytes(), &opts, &excludes, &mut report).unwrap();
        report
            .findings
            .into_iter()
            .map(|f| (f.path, f.line, f.rule))
            .collect()
    }

    #[test]
    fn hunk_headers() {
        assert_eq!(hunk_header(b"@@ -1,0 +2,2 @@"), Some((0, 2, 2)));
        assert_eq!(hunk_header(b"@@ -9 +10 @@ fn x()"), Some((1, 1, 10)));
        assert_eq!(hunk_header(b"@@ -0,0 +1 @@"), Some((0, 1, 1)));
        assert_eq!(hunk_header(b"@@ nonsense @@"), None);
    }

    #[test]
    fn paths_quoted_or_with_a_tab() {
        assert_eq!(new_path(b"b/a b.txt\t").as_deref(), Some("a b.txt"));
        assert_eq!(new_path(b"b/plain").as_deref(), Some("plain"));
        assert_eq!(new_path(b"/dev/null"), None);
        assert_eq!(
            new_path(b"\"b/say \\\"hi\\\".txt\"\t").as_deref(),
            Some("say \"hi\".txt")
        );
        assert_eq!(
            new_path(br#""b/caf\303\251 \"x\"\ty""#).as_deref(),
            Some("café \"x\"\ty")
        );
    }

    #[test]
    fn added_lines_that_look_like_headers_are_content() {
        let tok = format!("ghp_{}", "a1B2c3D4e5F6g7H8i9".repeat(2));
        let patch = format!(
            "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,0 +1,4 @@\n+++ /dev/null\n+++ b/other\n+@@ -1 +1 @@\n+t = \"{tok}\"\n"
        );
        assert_eq!(
            added(&patch),
            [("x".to_string(), 4, "github-token".to_string())]
        );
    }

    #[test]
    fn context_and_removed_lines_keep_the_numbers_right() {
        let tok = format!("glpat-{}", "Ab3_xY9-Qz".repeat(2));
        let patch = format!(
            "diff --git a/y b/y\n--- a/y\n+++ b/y\n@@ -3,3 +3,3 @@\n keep\n-old\n+t={tok}\n \n\\ No newline at end of file\n"
        );
        assert_eq!(
            added(&patch),
            [("y".to_string(), 4, "gitlab-token".to_string())]
        );
    }

    #[test]
    fn long_lines_are_cut_and_the_file_is_listed() {
        let opts = ScanOptions {
            max_file_bytes: 16,
            ..ScanOptions::default()
        };
        let excludes = Excludes::new(&[]).unwrap();
        let mut report = ScanReport::default();
        let patch = format!(
            "diff --git a/z b/z\n--- a/z\n+++ b/z\n@@ -0,0 +1,2 @@\n+{}\n+short\n",
            "x".repeat(100)
        );
        scan_patch(&mut patch.as_bytes(), &opts, &excludes, &mut report).unwrap();
        assert_eq!(report.too_large, ["z"]);
        assert_eq!(report.skipped_large, 1);
    }
}
