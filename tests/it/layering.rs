//! The house rules of `src/`, read from the source itself so they cannot
//! drift: the layers and what each may import, the size of a file and of a
//! function. docs/architecture.md explains the layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module imports only from lower layers and
/// from itself; modules in the same layer stay independent of each other.
/// A new top-level module goes into this table, or the test fails.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundations", &["backoff", "duration", "stdio", "text"]),
    ("engines", &["freeze", "secrets", "smoke"]),
    ("observability", &["metrics", "telemetry"]),
    ("clients and store", &["github", "notify", "store"]),
    ("configuration", &["config"]),
    ("deploy domain", &["deploy"]),
    ("renderer", &["render"]),
    ("webhook handlers", &["handlers"]),
    ("the two faces", &["action", "serve"]),
    ("command line", &["cli"]),
];

/// Items of `lib.rs` itself (`now_ms`, the `outln!`/`errln!` macros): below
/// every layer.
const ROOT_ITEMS: &[&str] = &["now_ms", "outln", "errln"];

/// Files allowed past [`MAX_FILE_LINES`], and whose functions may pass
/// [`MAX_FN_LINES`]: tables of rules, data more than code.
const RULE_TABLES: &[&str] = &["src/secrets/rules.rs"];
const MAX_FILE_LINES: usize = 700;
const MAX_FN_LINES: usize = 120;

fn src_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The top-level module a file belongs to (`src/store/sql.rs` → `store`);
/// `None` for `lib.rs` and `main.rs`.
fn unit_of(rel: &str) -> Option<String> {
    let inner = rel.strip_prefix("src/").unwrap();
    let first = inner.split('/').next().unwrap();
    let unit = first.strip_suffix(".rs").unwrap_or(first);
    (unit != "lib" && unit != "main").then(|| unit.to_string())
}

fn layer_of(unit: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, units))| units.contains(&unit))
        .map(|(rank, (name, _))| (rank, *name))
}

/// The top-level names a line reaches through `crate::` (also `$crate::` in
/// macros and grouped `crate::{a, b::c}` imports).
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // Top-level names of the group: split at depth-0 commas.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(group[start..i].trim().to_string());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(group[start..i].trim().to_string());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(after.to_string());
        }
        rest = after;
    }
    out.into_iter()
        .filter_map(|p| {
            let name: String = p
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Every `crate::` import from one layer into a higher one or into a peer,
/// as `file:line: message` lines.
fn layering_violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let Some(unit) = unit_of(rel) else { continue };
        let Some((rank, layer)) = layer_of(&unit) else {
            out.push(format!(
                "{rel}: top-level module `{unit}` is in no layer: add it to LAYERS in tests/it/layering.rs"
            ));
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for target in crate_paths(line) {
                if target == unit || ROOT_ITEMS.contains(&target.as_str()) {
                    continue;
                }
                match layer_of(&target) {
                    None => out.push(format!(
                        "{rel}:{}: `crate::{target}` is in no layer",
                        n + 1
                    )),
                    Some((r, l)) if r > rank => out.push(format!(
                        "{rel}:{}: `{unit}` ({layer}) imports `crate::{target}` from a higher layer ({l})",
                        n + 1
                    )),
                    Some((r, _)) if r == rank => out.push(format!(
                        "{rel}:{}: `{unit}` imports its peer `crate::{target}` ({layer}); peers stay independent",
                        n + 1
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    out
}

fn read_src() -> Vec<(String, String)> {
    src_files()
        .iter()
        .map(|p| (relative(p), std::fs::read_to_string(p).unwrap()))
        .collect()
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let violations = layering_violations(&read_src());
    assert!(
        violations.is_empty(),
        "{} layering violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Handlers never call each other: what two of them share lives in
/// `handlers/mod.rs` or lower (the deploy domain, the store).
fn handler_cross_imports(files: &[(String, String)]) -> Vec<String> {
    let handler_of = |rel: &str| {
        let inner = rel.strip_prefix("src/handlers/")?;
        let first = inner.split('/').next()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (name != "mod").then(|| name.to_string())
    };
    let handlers: Vec<String> = files
        .iter()
        .filter_map(|(rel, _)| handler_of(rel))
        .collect();
    let mut out = Vec::new();
    for (rel, text) in files {
        let Some(own) = handler_of(rel) else { continue };
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for other in handlers.iter().filter(|h| **h != own) {
                if line.contains(&format!("handlers::{other}::"))
                    || line.contains(&format!("super::{other}::"))
                {
                    out.push(format!(
                        "{rel}:{}: handler `{own}` reaches into handler `{other}`",
                        n + 1
                    ));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn handlers_never_call_each_other() {
    let found = handler_cross_imports(&read_src());
    assert!(found.is_empty(), "{}", found.join("\n"));
    let planted = vec![
        (
            "src/handlers/previews/mod.rs".to_string(),
            "use crate::handlers::chatops::deploy::last_good;".to_string(),
        ),
        ("src/handlers/chatops/mod.rs".to_string(), String::new()),
    ];
    assert_eq!(handler_cross_imports(&planted).len(), 1);
}

/// A file's module path: `src/store/sql/rows.rs` → `store::sql::rows`,
/// `src/deploy/mod.rs` → `deploy`.
fn module_of(rel: &str) -> String {
    let inner = rel
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let inner = inner.strip_suffix("/mod").unwrap_or(inner);
    if inner == "lib" || inner == "main" {
        String::new()
    } else {
        inner.replace('/', "::")
    }
}

/// Which modules each module's code (tests aside) names through `crate::`
/// or `super::`, resolved to the deepest module that exists. A module naming
/// its own ancestor is how Rust nests (`use super::*`), not an edge.
fn module_edges(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().map(|(rel, _)| module_of(rel)).collect();
    let resolve = |parts: &[&str]| {
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let own = module_of(rel);
        let parent: Vec<&str> = own.split("::").filter(|p| !p.is_empty()).collect();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut targets = Vec::new();
            for (prefix, base) in [
                ("crate::", Vec::new()),
                ("super::", parent[..parent.len().saturating_sub(1)].to_vec()),
            ] {
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    let after = &rest[at + prefix.len()..];
                    let path: String = after
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    let mut parts = base.clone();
                    parts.extend(path.split("::").filter(|p| !p.is_empty()));
                    if let Some(t) = resolve(&parts) {
                        targets.push(t);
                    }
                    rest = after;
                }
            }
            for t in targets {
                let ancestor = own == t || own.starts_with(&format!("{t}::")) || t.is_empty();
                if !ancestor {
                    edges.entry(own.clone()).or_default().insert(t);
                }
            }
        }
    }
    edges
}

/// One import cycle among modules, if there is any, as `a → b → a`.
fn a_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle.join(" → "));
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_form_a_cycle() {
    let edges = module_edges(&read_src());
    assert!(edges.len() > 30, "{} modules import others", edges.len());
    if let Some(cycle) = a_cycle(&edges) {
        panic!("import cycle: {cycle}");
    }
    // The check finds one: two siblings naming each other.
    let planted = vec![
        (
            "src/action/check.rs".to_string(),
            "use crate::action::gates::secrets;".to_string(),
        ),
        (
            "src/action/gates/secrets.rs".to_string(),
            "use crate::action::check::report;".to_string(),
        ),
        (
            "src/action/gates/mod.rs".to_string(),
            "pub mod secrets;".to_string(),
        ),
        (
            "src/action/mod.rs".to_string(),
            "pub mod check;".to_string(),
        ),
    ];
    assert_eq!(
        a_cycle(&module_edges(&planted)).as_deref(),
        Some("action::check → action::gates::secrets → action::check")
    );
}

#[test]
fn every_module_of_lib_rs_is_in_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() >= 10, "lib.rs declares {declared:?}");
    for unit in declared {
        assert!(layer_of(unit).is_some(), "`{unit}` is in no layer");
    }
}

/// The checker itself: an upward import, a peer import and a grouped import
/// are each caught; a downward one is not.
#[test]
fn the_layering_check_catches_upward_peer_and_grouped_imports() {
    let files = vec![
        (
            "src/store/mod.rs".to_string(),
            "use crate::serve::ingress::MAX_BODY_BYTES;\nuse crate::text::short;\n// crate::cli in a comment\n".to_string(),
        ),
        ("src/github/mod.rs".to_string(), "use crate::{backoff, notify::Notifier};\n".to_string()),
        ("src/deploy/gates.rs".to_string(), "let x = $crate::handlers::Context::new();".to_string()),
        ("src/newthing.rs".to_string(), String::new()),
    ];
    let v = layering_violations(&files);
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(v[0].starts_with("src/store/mod.rs:1: `store`"), "{}", v[0]);
    assert!(v[1].contains("peer `crate::notify`"), "{}", v[1]);
    assert!(
        v[2].contains("`crate::handlers` from a higher layer"),
        "{}",
        v[2]
    );
    assert!(v[3].contains("`newthing` is in no layer"), "{}", v[3]);
}

#[test]
fn no_file_in_src_is_over_700_lines_except_rule_tables() {
    let long: Vec<String> = read_src()
        .iter()
        .filter(|(rel, _)| !RULE_TABLES.contains(&rel.as_str()))
        .map(|(rel, text)| (rel, text.lines().count()))
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(rel, n)| format!("{rel}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Functions as rustfmt lays them out: from a line starting with `fn` (after
/// visibility and qualifiers) to the first line at its indentation that is
/// `}`. Declarations without a body end at `;`.
fn long_functions(rel: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let mut words = trimmed.split_whitespace().peekable();
        while let Some(w) = words.peek() {
            if matches!(*w, "pub" | "async" | "const" | "unsafe" | "extern")
                || w.starts_with("pub(")
            {
                words.next();
            } else {
                break;
            }
        }
        if words.next() != Some("fn") {
            continue;
        }
        let name: String = words
            .next()
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{}}}", " ".repeat(indent));
        let mut end = None;
        for (j, l) in lines.iter().enumerate().skip(i) {
            if j == i && l.trim_end().ends_with('}') && l.contains('{') {
                end = Some(j);
                break;
            }
            if l.trim_end().ends_with(';') && !lines[i..=j].iter().any(|x| x.contains('{')) {
                break;
            }
            if j > i && *l == close {
                end = Some(j);
                break;
            }
        }
        if let Some(j) = end {
            let n = j - i + 1;
            if n > MAX_FN_LINES {
                out.push(format!("{rel}:{}: fn {name} is {n} lines", i + 1));
            }
        }
    }
    out
}

#[test]
fn no_function_in_src_is_over_120_lines() {
    let long: Vec<String> = read_src()
        .iter()
        .filter(|(rel, _)| !RULE_TABLES.contains(&rel.as_str()))
        .flat_map(|(rel, text)| long_functions(rel, text))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_measure_counts_from_fn_to_its_closing_brace() {
    let body: String = (0..130).map(|_| "        x();\n").collect();
    let text = format!(
        "impl A {{\n    pub async fn long(&self) {{\n{body}    }}\n    fn short() {{}}\n    fn decl(&self);\n}}\n"
    );
    let found = long_functions("src/a.rs", &text);
    assert_eq!(found, vec!["src/a.rs:2: fn long is 132 lines".to_string()]);
}
