//! The fuzz targets' bodies (`fuzz/src/lib.rs`) on stable, so CI always runs
//! them: over every seed input (generated from the fixtures and docs) and
//! over every input a fuzzer found a crash with (`fuzz/regressions/<target>/`).
//! Long fuzzing runs are `bench/fuzz.sh` (see bench/BENCHMARKS.md).

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_target_has_seeds_and_takes_them_all() {
    let seeds = fuzz::seeds(root());
    for target in fuzz::TARGETS {
        let mine: Vec<_> = seeds.iter().filter(|(t, _, _)| t == target).collect();
        assert!(mine.len() >= 5, "{target}: only {} seeds", mine.len());
        for (_, name, data) in mine {
            eprintln!("{target}/{name}");
            fuzz::run(target, data);
        }
    }
}

#[test]
fn every_saved_crash_input_runs_clean() {
    let mut count = 0;
    for target in fuzz::TARGETS {
        let dir = root().join("fuzz/regressions").join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            eprintln!("{}", path.display());
            fuzz::run(target, &std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    eprintln!("{count} saved inputs");
}

/// Every real payload of an event shipgate handles decodes for every handler
/// that wants it (the fuzz target only checks that a refusal is permanent).
#[test]
fn every_handled_fixture_payload_decodes() {
    let mut decoded = 0;
    for (target, name, data) in fuzz::seeds(root()) {
        if target != "webhook_payload" {
            continue;
        }
        let text = std::str::from_utf8(&data).unwrap();
        let (event, body) = text.split_once('\n').unwrap();
        let results = fuzz::decode_checked(event, body.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: envelope refused: {e}"));
        for (handler, result) in &results {
            assert!(result.is_ok(), "{name}: {handler}: {result:?}");
        }
        if fuzz::HANDLED_EVENTS.contains(&event) {
            decoded += results.len();
        } else {
            assert!(
                results.is_empty(),
                "{name}: {event} is handled: add it to HANDLED_EVENTS"
            );
        }
    }
    // Each handled event has at least one seed some handler decodes.
    assert!(decoded > 50, "{decoded}");
}

/// `fuzz/regressions/repo_config/two-documents`, found by the `repo_config`
/// target in its first seconds: a config with a second YAML document is
/// refused, without a position (serde_yaml_ng gives none), which the
/// target's first property wrongly demanded.
#[test]
fn repo_config_two_documents_are_refused() {
    let data = std::fs::read(root().join("fuzz/regressions/repo_config/two-documents")).unwrap();
    let text = std::str::from_utf8(&data[4..]).unwrap();
    let e = shipgate::config::repo::RepoConfig::parse(text).unwrap_err();
    assert!(e.message.contains("more than one document"), "{e}");
    fuzz::repo_config(&data);
}

/// `fuzz/regressions/repo_config/dst-repeated-hour`: the freeze fix of
/// `freeze::tests::a_freeze_ending_in_the_repeated_hour_ends_ahead`, through
/// the target's body.
#[test]
fn repo_config_freeze_in_the_repeated_hour_ends_ahead() {
    let data =
        std::fs::read(root().join("fuzz/regressions/repo_config/dst-repeated-hour")).unwrap();
    fuzz::repo_config(&data);
}

/// `fuzz/regressions/repo_config/duplicate-environment`, found by the
/// `repo_config` target (66,780 runs into its second run): `staging` named
/// twice under `environments` was accepted, the later one silently
/// replacing the first; now an error with a position.
#[test]
fn repo_config_an_environment_named_twice_is_refused() {
    let data =
        std::fs::read(root().join("fuzz/regressions/repo_config/duplicate-environment")).unwrap();
    let text = String::from_utf8_lossy(&data[4..]);
    let e = shipgate::config::repo::RepoConfig::parse(&text).unwrap_err();
    assert!(e.message.contains("duplicate entry"), "{e}");
    assert!(e.location.is_some(), "{e}");
    fuzz::repo_config(&data);
}
