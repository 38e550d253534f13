//! From a record of `ow.player-requests` to a request the producer can answer.

use ow_domain::PlayerRequest;
use ow_domain::battletag::PlayerId;
use ow_stream_core::registry::RegistryError;
use ow_stream_core::serde::{SerdeContext, SerdeError, deserialize_loading};
use ow_stream_core::{RawRecord, Topic};

/// Why a request could not be decoded.
pub(super) struct DecodeError {
    pub(super) part: &'static str,
    pub(super) source: SerdeError,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode the {}: {}", self.part, self.source)
    }
}

/// Whether a decoding error is the registry's trouble rather than the record's.
pub(super) fn is_transient(e: &SerdeError) -> bool {
    match e {
        SerdeError::Registry(r) => match r {
            RegistryError::Unreachable { .. }
            | RegistryError::BadResponse { .. }
            | RegistryError::Io { .. }
            | RegistryError::Locked { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        },
        _ => false,
    }
}

pub(super) async fn decode_request(
    topic: &Topic<String, PlayerRequest>,
    raw: &RawRecord,
) -> Result<(String, PlayerRequest), DecodeError> {
    let key = deserialize_loading(
        &**topic.key_serde(),
        SerdeContext::key(topic.name()),
        raw.key.as_deref().unwrap_or_default(),
    )
    .await
    .map_err(|source| DecodeError {
        part: "key",
        source,
    })?;
    let Some(value) = raw.value.as_deref() else {
        return Err(DecodeError {
            part: "value",
            source: SerdeError::Malformed {
                format: "record",
                reason: "a tombstone (null value)".into(),
            },
        });
    };
    let value = deserialize_loading(
        &**topic.value_serde(),
        SerdeContext::value(topic.name()),
        value,
    )
    .await
    .map_err(|source| DecodeError {
        part: "value",
        source,
    })?;
    Ok((key, value))
}

/// The player a request names, if the request is one the producer can answer.
pub(super) fn validate(key: &str, request: &PlayerRequest) -> Result<PlayerId, String> {
    let player = PlayerId::parse(&request.player_id).map_err(|e| e.to_string())?;
    match PlayerId::parse(key) {
        Ok(k) if k == player => Ok(player),
        _ => Err(format!(
            "record key {key:?} does not name the request's player {player}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use ow_domain::RequestOrigin;

    use super::*;

    fn request(player: &str) -> PlayerRequest {
        PlayerRequest {
            request_id: "r".into(),
            player_id: player.into(),
            requested_at: 0,
            origin: RequestOrigin::Search,
        }
    }

    #[test]
    fn requests_must_name_a_battletag_in_key_and_value() {
        assert_eq!(
            validate("TeKrop-2217", &request("TeKrop#2217")).map(|p| p.to_string()),
            Ok("TeKrop-2217".to_string())
        );
        let bad = validate("../etc#1", &request("../etc#1")).unwrap_err();
        assert!(bad.contains("slash"), "{bad}");
        let mismatch = validate("JohnV1-1190", &request("TeKrop-2217")).unwrap_err();
        assert!(mismatch.contains("does not name"), "{mismatch}");
    }

    #[test]
    fn registry_outages_are_not_the_records_fault() {
        assert!(is_transient(&SerdeError::Registry(
            RegistryError::Unreachable {
                url: "http://r".into(),
                source: "refused".into(),
            }
        )));
        assert!(!is_transient(&SerdeError::Registry(
            RegistryError::SchemaNotFound { id: 7 }
        )));
        assert!(!is_transient(&SerdeError::Malformed {
            format: "x",
            reason: "y".into()
        }));
    }
}
