//! Writes the fuzz targets' seed corpora, generated from the repository's
//! fixtures and docs: `cargo run --example fuzz_seeds -- fuzz/corpus`
//! (one directory per target; `bench/fuzz.sh` runs it).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz;

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = fuzz::seeds(root);
    for target in fuzz::TARGETS {
        std::fs::create_dir_all(out.join(target)).expect("create corpus directory");
    }
    for (target, name, data) in &seeds {
        std::fs::write(out.join(target).join(format!("seed-{name}")), data).expect("write seed");
    }
    for target in fuzz::TARGETS {
        let n = seeds.iter().filter(|(t, _, _)| t == target).count();
        println!("{target}: {n} seeds");
    }
}
