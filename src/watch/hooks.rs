//! Push webhooks (`POST /hooks/git`): who may ask for a sync, and which pushes matter.
//!
//! A GitHub-style hook signs its body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body
//! keyed with the secret>`. A GitLab-style hook sends the secret itself: `X-Gitlab-Token`. Both
//! are compared in constant time; a hook with neither is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The environment variable holding the webhooks' shared secret; unset or empty: webhooks off.
pub const SECRET_ENV: &str = "TENANTCTL_WEBHOOK_SECRET";

/// The largest body accepted (GitHub caps its payloads at 25 MB, but a push is a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a hook is refused (answered 401); said to the sender and in the log, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no signature: send X-Hub-Signature-256 (GitHub) or X-Gitlab-Token (GitLab)")]
    Missing,
    #[error("malformed X-Hub-Signature-256: expected sha256=<64 hex digits>")]
    Malformed,
    #[error("the signature does not match the body and the configured secret")]
    BadSignature,
    #[error("X-Gitlab-Token does not match the configured secret")]
    BadToken,
}

/// Who sent a verified hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    GitHub,
    GitLab,
}

/// Checks a hook's headers against `secret`: `github_signature` is the value of
/// `X-Hub-Signature-256`, `gitlab_token` that of `X-Gitlab-Token` (the signature wins when a
/// request carries both).
pub fn verify(
    secret: &[u8],
    body: &[u8],
    github_signature: Option<&[u8]>,
    gitlab_token: Option<&[u8]>,
) -> Result<Sender, Refused> {
    if let Some(header) = github_signature {
        let hex_digits = header.strip_prefix(b"sha256=").ok_or(Refused::Malformed)?;
        let expected = hex::decode(hex_digits).map_err(|_| Refused::Malformed)?;
        if expected.len() != 32 {
            return Err(Refused::Malformed);
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(body);
        // `verify_slice` compares in constant time.
        return mac
            .verify_slice(&expected)
            .map(|()| Sender::GitHub)
            .map_err(|_| Refused::BadSignature);
    }
    if let Some(token) = gitlab_token {
        // Lengths differ in constant time too: `ct_eq` on slices of unequal length is false.
        return if bool::from(token.ct_eq(secret)) {
            Ok(Sender::GitLab)
        } else {
            Err(Refused::BadToken)
        };
    }
    Err(Refused::Missing)
}

/// The ref a push names (`"ref": "refs/heads/main"` in both GitHub's and GitLab's push
/// payloads); `None` when the body is not JSON or has no `ref`.
pub fn pushed_ref(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("ref")?.as_str().map(str::to_string)
}

/// Whether a push to `pushed` concerns `branch` (a branch name or a full `refs/heads/…` ref).
pub fn concerns(pushed: &str, branch: &str) -> bool {
    let full = if branch.starts_with("refs/") {
        branch.to_string()
    } else {
        format!("refs/heads/{branch}")
    };
    pushed == full
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    /// GitHub's documented example: this secret and body give this signature.
    const SIGNED: &[u8] =
        b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn a_valid_github_signature_is_accepted() {
        assert_eq!(verify(SECRET, BODY, Some(SIGNED), None), Ok(Sender::GitHub));
    }

    #[test]
    fn a_signature_of_another_body_or_secret_is_refused() {
        assert_eq!(
            verify(SECRET, b"Hello, World?", Some(SIGNED), None),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"another secret", BODY, Some(SIGNED), None),
            Err(Refused::BadSignature)
        );
        // Upper-case hex is the same signature.
        let upper = String::from_utf8(SIGNED.to_vec())
            .unwrap()
            .replace("sha256=", "")
            .to_uppercase();
        assert_eq!(
            verify(
                SECRET,
                BODY,
                Some(format!("sha256={upper}").as_bytes()),
                None
            ),
            Ok(Sender::GitHub)
        );
    }

    #[test]
    fn missing_headers_are_refused() {
        assert_eq!(verify(SECRET, BODY, None, None), Err(Refused::Missing));
    }

    #[test]
    fn malformed_signatures_are_refused() {
        for bad in [
            &b"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"[..],
            b"sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
            b"sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            b"sha256=757107ea",
            b"sha256=",
            b"",
        ] {
            assert_eq!(
                verify(SECRET, BODY, Some(bad), None),
                Err(Refused::Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn gitlab_tokens_must_equal_the_secret() {
        assert_eq!(verify(SECRET, BODY, None, Some(SECRET)), Ok(Sender::GitLab));
        for bad in [
            &b"It's a Secret to Everybod"[..],
            b"",
            b"It's a Secret to Everybody!",
        ] {
            assert_eq!(
                verify(SECRET, BODY, None, Some(bad)),
                Err(Refused::BadToken)
            );
        }
        // A bad signature is not rescued by a good token.
        assert_eq!(
            verify(SECRET, BODY, Some(b"sha256=00"), Some(SECRET)),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn the_pushed_ref_is_read_and_matched_against_the_branch() {
        let body = br#"{"ref":"refs/heads/main","after":"abc"}"#;
        assert_eq!(pushed_ref(body).as_deref(), Some("refs/heads/main"));
        assert_eq!(pushed_ref(b"{\"zen\":\"hi\"}"), None);
        assert_eq!(pushed_ref(b"payload=%7B%7D"), None);
        assert!(concerns("refs/heads/main", "main"));
        assert!(concerns("refs/heads/main", "refs/heads/main"));
        assert!(!concerns("refs/heads/mainline", "main"));
        assert!(!concerns("refs/tags/main", "main"));
    }
}
