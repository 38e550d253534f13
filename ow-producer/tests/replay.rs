//! Offline replay from a directory of recorded answers, and recording live answers into one.

mod common;

use common::{client, id, replay_client, sample, samples};
use ow_domain::FetchOutcome;
use ow_producer::fixture_server::{Fault, FixtureServer};
use ow_producer::overfast::{ClientConfig, ConfigError, FetchError, OverfastClient, Source};

#[tokio::test]
async fn replayed_public_profile() {
    let client = replay_client(samples());
    let fetch = client.fetch(&id("TeKrop#2217")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Ok);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.attempts, 1);
    assert_eq!(fetch.error, None);
    assert_eq!(fetch.cache, Default::default());
    assert_eq!(
        fetch.body.as_deref(),
        Some(sample("TeKrop-2217.json").as_str())
    );
    assert!(fetch.request_url.starts_with("file:///"));
    assert!(
        fetch
            .request_url
            .ends_with("/samples/overfast/players/TeKrop-2217")
    );

    let john = client.fetch(&id("JohnV1-1190")).await;
    assert_eq!(john.outcome, FetchOutcome::Ok);
    assert_eq!(
        john.body.as_deref(),
        Some(sample("JohnV1-1190.json").as_str())
    );
}

#[tokio::test]
async fn replayed_private_profile() {
    let fetch = replay_client(samples()).fetch(&id("Player-137712")).await;
    assert_eq!(fetch.outcome, FetchOutcome::Private);
    assert_eq!(fetch.http_status, Some(200));
    assert_eq!(fetch.error, None);
}

#[tokio::test]
async fn replayed_not_found() {
    let client = replay_client(samples());
    let fetch = client.fetch(&id("Unknown-1234")).await;
    assert_eq!(fetch.outcome, FetchOutcome::NotFound);
    assert_eq!(fetch.http_status, Some(404));
    assert_eq!(fetch.attempts, 1);
    assert_eq!(
        fetch.body.as_deref(),
        Some(sample("Unknown-1234.404.json").as_str())
    );
    // The recorded `retry_after: 600` holds the player back, as a live 404 does.
    assert_eq!(fetch.next_attempt_at, Some(fetch.fetched_at + 600_000));
    let again = client.fetch(&id("Unknown-1234")).await;
    assert_eq!(again.attempts, 0);
    assert!(matches!(again.error, Some(FetchError::NotBefore { .. })));
}

#[tokio::test]
async fn a_player_without_a_file_is_not_found() {
    let fetch = replay_client(samples()).fetch(&id("Nobody-4242")).await;
    assert_eq!(fetch.outcome, FetchOutcome::NotFound);
    assert_eq!(fetch.http_status, None);
    assert_eq!(fetch.body, None);
    assert_eq!(fetch.attempts, 1);
    assert!(matches!(fetch.error, Some(FetchError::NotRecorded { .. })));
    assert_eq!(fetch.next_attempt_at, Some(fetch.fetched_at + 600_000));
}

#[tokio::test]
async fn a_bad_recording_is_classified_like_a_bad_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("Broken-1111.json"), r#"{"summary": {"#).expect("write");
    std::fs::write(dir.path().join("Shapeless-2222.json"), r#"{"summary": {}}"#).expect("write");
    std::fs::write(
        dir.path().join("Both-3333.json"),
        r#"{"summary": {}, "stats": null}"#,
    )
    .expect("write");
    std::fs::write(dir.path().join("Both-3333.404.json"), "").expect("write");
    std::fs::write(dir.path().join("Gone-4444.404.json"), "").expect("write");
    let client = replay_client(dir.path());

    let broken = client.fetch(&id("Broken-1111")).await;
    assert_eq!(broken.outcome, FetchOutcome::UpstreamError);
    assert_eq!(broken.attempts, 1, "a replay is never retried");
    assert!(matches!(broken.error, Some(FetchError::InvalidJson { .. })));
    assert_eq!(broken.body.as_deref(), Some(r#"{"summary": {"#));

    let shapeless = client.fetch(&id("Shapeless-2222")).await;
    assert!(matches!(
        shapeless.error,
        Some(FetchError::NotAProfile { .. })
    ));
    // `stats: null` without a summary is not a private profile: the processor could not read it.
    std::fs::write(dir.path().join("Nameless-5555.json"), r#"{"stats": null}"#).expect("write");
    let nameless = client.fetch(&id("Nameless-5555")).await;
    assert_eq!(nameless.outcome, FetchOutcome::UpstreamError);
    assert!(matches!(
        nameless.error,
        Some(FetchError::NotAProfile { .. })
    ));

    assert_eq!(
        client.fetch(&id("Both-3333")).await.outcome,
        FetchOutcome::Private
    );

    let gone = client.fetch(&id("Gone-4444")).await;
    assert_eq!(gone.outcome, FetchOutcome::NotFound);
    assert_eq!(gone.body, None);
    assert_eq!(gone.error, Some(FetchError::NotFound { message: None }));
}

#[test]
fn replay_settings_are_checked() {
    let missing = OverfastClient::new(ClientConfig::new(Source::replay("/no/such/dir")));
    assert!(matches!(missing, Err(ConfigError::ReplayDir { .. })));
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let not_dir = OverfastClient::new(ClientConfig::new(Source::replay(file.path())));
    assert!(matches!(not_dir, Err(ConfigError::ReplayDir { .. })));
    let mut both = ClientConfig::new(Source::replay(samples()));
    both.record_dir = Some(samples());
    assert!(matches!(
        OverfastClient::new(both),
        Err(ConfigError::RecordWhileReplaying { .. })
    ));
    let dir = std::fs::canonicalize(samples()).expect("samples");
    let url = Source::parse(&format!("file://{}", dir.display())).expect("file url");
    assert_eq!(url, Source::Replay(dir));
}

#[tokio::test(start_paused = true)]
async fn recorded_answers_replay_the_same() {
    let server = FixtureServer::with_samples().await.expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let record_dir = dir.path().join("recorded");
    let live = client(&server, |c| {
        c.record_dir = Some(record_dir.clone());
        c.max_attempts = 1;
    });
    server.inject("JohnV1-1190", [Fault::InternalError]);
    let players = ["TeKrop-2217", "Player-137712", "Ghost-9999", "JohnV1-1190"];
    let mut live_fetches = Vec::new();
    for player in players {
        live_fetches.push(live.fetch(&id(player)).await);
    }
    let outcomes: Vec<_> = live_fetches.iter().map(|f| f.outcome).collect();
    assert_eq!(
        outcomes,
        [
            FetchOutcome::Ok,
            FetchOutcome::Private,
            FetchOutcome::NotFound,
            FetchOutcome::UpstreamError
        ]
    );

    let mut files: Vec<String> = std::fs::read_dir(&record_dir)
        .expect("record dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "Ghost-9999.404.json",
            "Player-137712.json",
            "TeKrop-2217.json"
        ]
    );
    assert_eq!(
        std::fs::read(record_dir.join("TeKrop-2217.json")).expect("read"),
        sample("TeKrop-2217.json").into_bytes()
    );

    let replay = replay_client(&record_dir);
    for live_fetch in &live_fetches[..3] {
        let replayed = replay.fetch(&live_fetch.player_id).await;
        assert_eq!(replayed.outcome, live_fetch.outcome);
        assert_eq!(replayed.body, live_fetch.body);
        assert_eq!(replayed.http_status, live_fetch.http_status);
    }

    // A player found after a 404 loses the stale 404 file.
    server.add_profile("Ghost-9999", r#"{"summary":{},"stats":null}"#);
    tokio::time::advance(std::time::Duration::from_secs(601)).await;
    assert_eq!(
        live.fetch(&id("Ghost-9999")).await.outcome,
        FetchOutcome::Private
    );
    assert!(record_dir.join("Ghost-9999.json").exists());
    assert!(!record_dir.join("Ghost-9999.404.json").exists());
}
