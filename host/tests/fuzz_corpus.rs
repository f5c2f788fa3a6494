//! Every committed input of the parser fuzz targets (`fuzz/corpus/<target>`: the seeds,
//! and each finding's input once fixed) replayed through the same entry point the
//! target calls, in the ordinary test run: a parser regression on a known input fails
//! here even without an instrumented build.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no inputs", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("a corpus file");
            (p, data)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, data) in inputs(target) {
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn presence_request_corpus() {
    replay("presence_request", rtm_host::fuzzing::presence_request);
}

#[test]
fn manifest_corpus() {
    replay("manifest", rtm_host::fuzzing::manifest);
}

#[test]
fn tenants_file_corpus() {
    replay("tenants_file", rtm_host::fuzzing::tenants_file);
}

#[test]
fn jwt_corpus() {
    replay("jwt", rtm_host::fuzzing::jwt);
}
