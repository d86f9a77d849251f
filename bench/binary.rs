//! The release binary a benchmark measures, built from the source first.

/// Build `jetbridge` in release (a no-op when it is up to date). `cargo run`
/// gives this program the `CARGO_*` variables of its own package; a cargo
/// started with them takes build scripts that watch those (ring's) for
/// changed and rebuilds half the dependencies. They are left out.
pub fn build_release() {
    let mut cargo = std::process::Command::new("cargo");
    cargo.args([
        "build",
        "--release",
        "-p",
        "jetbridge",
        "--bin",
        "jetbridge",
    ]);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let set_by_cargo_run = key.starts_with("CARGO_PKG_")
            || matches!(
                key.as_str(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            cargo.env_remove(key);
        }
    }
    let ok = cargo.status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "cargo build --release -p jetbridge --bin jetbridge failed"
    );
}
