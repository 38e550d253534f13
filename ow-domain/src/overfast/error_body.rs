//! The bodies of OverFast's error answers: the three shapes of a 404, and the `error` text of
//! the others.

use std::time::{Duration, SystemTime};

/// What a 404 body says, whichever of OverFast's three shapes it has (see the
/// [module docs](super)); every field `None` when the body says nothing readable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ow_domain::overfast::NotFoundBody;
///
/// let nested = NotFoundBody::parse(r#"{"error": {"error": "Player not found",
///     "retry_after": 600, "next_check_at": 1739634000, "check_count": 1}}"#);
/// assert_eq!(nested.message.as_deref(), Some("Player not found"));
/// assert_eq!(nested.wait(SystemTime::now()), Some(Duration::from_secs(600)));
/// assert_eq!(NotFoundBody::parse("<html>"), NotFoundBody::default());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotFoundBody {
    /// The `error` text.
    pub message: Option<String>,
    /// Seconds before OverFast checks the player again.
    pub retry_after: Option<u64>,
    /// When OverFast checks the player again, in Unix seconds.
    pub next_check_at: Option<i64>,
    /// How many times OverFast checked.
    pub check_count: Option<u64>,
}

impl NotFoundBody {
    /// Reads a 404 body; never fails (a body that is not one of the shapes says nothing).
    pub fn parse(text: &str) -> NotFoundBody {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return NotFoundBody::default();
        };
        // Nested (`{"error": {...}}`) or flat/plain (`{"error": "...", ...}`).
        let fields = match value.get("error") {
            Some(inner @ serde_json::Value::Object(_)) => inner,
            _ => &value,
        };
        let number = |key: &str| -> Option<f64> {
            let v = fields.get(key)?;
            v.as_f64().filter(|n| n.is_finite() && *n >= 0.0)
        };
        NotFoundBody {
            message: fields
                .get("error")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            retry_after: number("retry_after").map(|n| n as u64),
            next_check_at: number("next_check_at").map(|n| n as i64),
            check_count: number("check_count").map(|n| n as u64),
        }
    }

    /// How long not to ask: `retry_after` (relative, so immune to clock skew), else
    /// `next_check_at - now`; `None` when the body says neither.
    pub fn wait(&self, now: SystemTime) -> Option<Duration> {
        if let Some(secs) = self.retry_after {
            return Some(Duration::from_secs(secs));
        }
        let at = u64::try_from(self.next_check_at?).ok()?;
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(at);
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

/// The `error` text of an OverFast error body (`{"error": "..."}`, or the nested 404 form).
///
/// ```
/// use ow_domain::overfast::error_message;
///
/// assert_eq!(error_message(r#"{"error": "Couldn't get Blizzard page"}"#).as_deref(),
///            Some("Couldn't get Blizzard page"));
/// assert_eq!(error_message("<html>502</html>"), None);
/// ```
pub fn error_message(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value.get("error")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(inner) => inner.get("error")?.as_str().map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_shapes() {
        let nested = r#"{"error":{"error":"Player not found","retry_after":600,"next_check_at":1000600,"check_count":1}}"#;
        let flat = r#"{"error":"Player not found","retry_after":540,"next_check_at":1000600,"check_count":2}"#;
        let plain = r#"{"error":"Player not found"}"#;
        assert_eq!(
            NotFoundBody::parse(nested),
            NotFoundBody {
                message: Some("Player not found".into()),
                retry_after: Some(600),
                next_check_at: Some(1_000_600),
                check_count: Some(1)
            }
        );
        assert_eq!(
            NotFoundBody::parse(flat),
            NotFoundBody {
                message: Some("Player not found".into()),
                retry_after: Some(540),
                next_check_at: Some(1_000_600),
                check_count: Some(2)
            }
        );
        assert_eq!(
            NotFoundBody::parse(plain),
            NotFoundBody {
                message: Some("Player not found".into()),
                ..NotFoundBody::default()
            }
        );
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let only_next = NotFoundBody::parse(r#"{"error":"x","next_check_at":1000030}"#);
        assert_eq!(only_next.wait(at(1_000_000)), Some(Duration::from_secs(30)));
        assert_eq!(only_next.wait(at(2_000_000)), Some(Duration::ZERO));
        assert_eq!(NotFoundBody::parse(plain).wait(at(0)), None);
    }

    #[test]
    fn error_texts() {
        assert_eq!(
            error_message(r#"{"error":{"error":"Player not found"}}"#).as_deref(),
            Some("Player not found")
        );
        assert_eq!(error_message(r#"{"error": 5}"#), None);
        assert_eq!(error_message("[]"), None);
    }
}
