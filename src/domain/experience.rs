//! Experiences: the products of an instance seen with their own settings
//! (Interakt style): kind, allowed operations, allowed origins, rate limits and
//! an optional static experience token.

use serde::{Deserialize, Serialize};

pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperienceKind {
    Search,
    Chat,
    #[default]
    Custom,
}

impl ExperienceKind {
    /// What an experience of this kind allows when it names no operations;
    /// `None` means every operation.
    pub fn default_operations(self) -> Option<&'static [&'static str]> {
        match self {
            ExperienceKind::Search => Some(&["search", "autocomplete", "documents", "summarise"]),
            ExperienceKind::Chat => Some(&["chat", "sessions"]),
            ExperienceKind::Custom => None,
        }
    }
}

/// The operation of a gateway path tail: its first segment after an optional
/// `v<N>/` version prefix (`v1/documents/42` → `documents`).
pub fn operation_of(tail: &str) -> &str {
    let mut segments = tail.split('/');
    let first = segments.next().unwrap_or("");
    let is_version =
        first.len() > 1 && first.starts_with('v') && first[1..].bytes().all(|b| b.is_ascii_digit());
    if is_version {
        segments.next().unwrap_or("")
    } else {
        first
    }
}

/// Operation names: what may follow the version prefix.
pub fn valid_operation(op: &str) -> bool {
    !op.is_empty()
        && op.len() <= 64
        && op
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_follow_the_version_prefix() {
        assert_eq!(operation_of("v1/search"), "search");
        assert_eq!(operation_of("v2/documents/42"), "documents");
        assert_eq!(operation_of("search"), "search");
        assert_eq!(operation_of("v/search"), "v");
        assert_eq!(operation_of("vx/search"), "vx");
        assert_eq!(operation_of(""), "");
        assert_eq!(operation_of("v1"), "");
    }

    #[test]
    fn kinds_have_their_operations() {
        let search = ExperienceKind::Search.default_operations().unwrap();
        assert!(search.contains(&"summarise") && !search.contains(&"chat"));
        let chat = ExperienceKind::Chat.default_operations().unwrap();
        assert!(chat.contains(&"sessions") && !chat.contains(&"search"));
        assert!(ExperienceKind::Custom.default_operations().is_none());
    }
}
