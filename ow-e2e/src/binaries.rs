//! The workspace's binaries, built once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The packages whose binaries the scenarios run.
const PACKAGES: &[&str] = &[
    "ow-producer",
    "ow-processor",
    "ow-web",
    "ow-stream-registry",
    "ow-admin",
];

/// Where the binaries are (`target/debug`).
#[derive(Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Builds the stage binaries (`cargo build --bins` of their packages, in the target
    /// directory of this test binary, so they are never older than the code under test) the
    /// first time it is called, and says where they are.
    ///
    /// # Panics
    /// When the build fails.
    pub fn get() -> &'static Binaries {
        static BINARIES: OnceLock<Binaries> = OnceLock::new();
        BINARIES.get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary has a path");
            // target/<profile>/deps/<test>: the profile directory is two levels up.
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("the test binary is in target/<profile>/deps")
                .to_path_buf();
            let target = dir.parent().expect("target/<profile> has a parent");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command
                .arg("build")
                .arg("--bins")
                .arg("--manifest-path")
                .arg(workspace_root().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(target);
            if dir.file_name().is_some_and(|n| n == "release") {
                command.arg("--release");
            }
            for package in PACKAGES {
                command.args(["-p", package]);
            }
            let status = command
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo build: {e}"));
            assert!(status.success(), "cargo build of the stage binaries failed");
            Binaries { dir }
        })
    }

    /// The path of binary `name` (`ow-web`, `ow-registry`...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ow-e2e is in the workspace")
        .to_path_buf()
}
