//! Helpers shared by the integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;

use ow_producer::battletag::PlayerId;
use ow_producer::fixture_server::FixtureServer;
use ow_producer::overfast::{ClientConfig, OverfastClient, Source};

/// A player id the test knows is valid.
pub(crate) fn id(text: &str) -> PlayerId {
    PlayerId::parse(text).expect("test player ids are valid")
}

/// The repository's `samples/overfast/`.
pub(crate) fn samples() -> PathBuf {
    FixtureServer::samples_dir()
}

/// A sample file's bytes, as text.
pub(crate) fn sample(file: &str) -> String {
    std::fs::read_to_string(samples().join(file)).expect("the sample exists")
}

/// A client of `server` with the default settings changed by `tweak`.
pub(crate) fn client(
    server: &FixtureServer,
    tweak: impl FnOnce(&mut ClientConfig),
) -> OverfastClient {
    let mut config =
        ClientConfig::new(Source::parse(&server.url()).expect("the server url parses"));
    tweak(&mut config);
    OverfastClient::new(config).expect("the test config is valid")
}

/// A replay client of `dir`.
pub(crate) fn replay_client(dir: impl Into<PathBuf>) -> OverfastClient {
    OverfastClient::new(ClientConfig::new(Source::replay(dir))).expect("the replay dir exists")
}
