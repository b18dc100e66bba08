//! What both backends do to a webhook's notifications before storing them: check that
//! each carries the webhook's body at its `raw_at`, and cut that body out when several
//! notifications share it.

use crate::{NewNotification, StoreError};

/// Where each notification carries the webhook's body `raw`: its `raw_at`, checked.
fn raw_offsets(raw: &[u8], notifications: &[NewNotification]) -> Result<Vec<usize>, StoreError> {
    notifications
        .iter()
        .map(|n| {
            n.raw_at
                .filter(|&at| n.body.get(at..at.saturating_add(raw.len())) == Some(raw))
                .ok_or_else(|| {
                    StoreError::Database(format!(
                        "notification {} does not carry the webhook body at its raw_at {:?}",
                        n.id, n.raw_at
                    ))
                })
        })
        .collect()
}

/// A notification's body without the `raw_len` bytes of the shared body at `at`.
fn strip_raw(body: &[u8], at: usize, raw_len: usize) -> Vec<u8> {
    let mut stripped = Vec::with_capacity(body.len() - raw_len);
    stripped.extend_from_slice(&body[..at]);
    stripped.extend_from_slice(&body[at + raw_len..]);
    stripped
}

/// A notification's `raw_at`, and its body without the shared one if it may be stored so.
pub(crate) type Prepared = (usize, Option<Vec<u8>>);

/// Each notification's `raw_at`, checked, with its body without the shared one when the
/// webhook has several notifications (which then share it).
pub(crate) fn prepare_webhook(
    raw: &[u8],
    notifications: &[NewNotification],
) -> Result<Vec<Prepared>, StoreError> {
    let offsets = raw_offsets(raw, notifications)?;
    let several = notifications.len() > 1;
    Ok(notifications
        .iter()
        .zip(offsets)
        .map(|(n, at)| (at, several.then(|| strip_raw(&n.body, at, raw.len()))))
        .collect())
}
