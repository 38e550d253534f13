//! Offline answers from a directory of recorded bodies, and the recorder that writes them.
//!
//! Layout (also in `samples/overfast/README.md`): `<player_id>.json` is the body of a 200 (a
//! private profile is a body with `"stats": null`), `<player_id>.404.json` the body of a 404.
//! When both exist the 200 wins. No file means not found.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ow_domain::FetchOutcome;
use ow_domain::battletag::PlayerId;

use super::cache::CacheInfo;
use super::classify::Answer;
use super::fetch::FetchError;

/// The answer files of one player, with the status each stands for.
fn files(dir: &Path, player: &PlayerId) -> [(PathBuf, u16); 2] {
    [
        (dir.join(format!("{player}.json")), 200),
        (dir.join(format!("{player}.404.json")), 404),
    ]
}

#[derive(Debug)]
pub(crate) struct ReplayDir {
    dir: PathBuf,
    max_body_bytes: usize,
}

impl ReplayDir {
    pub(crate) fn new(dir: PathBuf, max_body_bytes: usize) -> ReplayDir {
        ReplayDir {
            dir,
            max_body_bytes,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recorded answer, or `None` when the player has no file.
    pub(crate) async fn get(&self, player: &PlayerId) -> Option<Answer> {
        for (path, status) in files(&self.dir, player) {
            let answer = |body| Answer {
                status: Some(status),
                cache: CacheInfo::default(),
                retry_after: None,
                body,
            };
            let unreadable = |e: std::io::Error| FetchError::Replay {
                path: path.display().to_string(),
                reason: e.to_string(),
            };
            let len = match tokio::fs::metadata(&path).await {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Some(answer(Err(unreadable(e)))),
            };
            if len > self.max_body_bytes as u64 {
                return Some(answer(Err(FetchError::BodyTooLarge {
                    limit: self.max_body_bytes,
                })));
            }
            return Some(answer(tokio::fs::read(&path).await.map_err(unreadable)));
        }
        None
    }
}

/// Saves live answers in the replay layout.
#[derive(Debug)]
pub(crate) struct Recorder {
    dir: PathBuf,
}

impl Recorder {
    pub(crate) fn new(dir: PathBuf) -> Recorder {
        Recorder { dir }
    }

    /// Saves the body of an `ok`, `private` or `not_found` answer (others are not answers worth
    /// replaying) and removes the player's other file, so the directory holds the latest answer.
    /// A failure is logged, never fatal.
    pub(crate) async fn save(&self, player: &PlayerId, outcome: FetchOutcome, body: &[u8]) {
        let [(found, _), (not_found, _)] = files(&self.dir, player);
        let (path, stale) = match outcome {
            FetchOutcome::Ok | FetchOutcome::Private => (found, not_found),
            FetchOutcome::NotFound => (not_found, found),
            FetchOutcome::RateLimited | FetchOutcome::UpstreamError => return,
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
        let written = async {
            tokio::fs::write(&tmp, body).await?;
            tokio::fs::rename(&tmp, &path).await?;
            match tokio::fs::remove_file(&stale).await {
                Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        .await;
        match written {
            Ok(()) => tracing::debug!(player = %player, path = %path.display(), "recorded answer"),
            Err(e) => {
                tracing::warn!(player = %player, path = %path.display(), error = %e, "cannot record answer");
                let _ = tokio::fs::remove_file(&tmp).await;
            }
        }
    }
}
