//! The fuzz targets, one module each.

pub mod authorization;
pub mod dates;
pub mod instance;
pub mod webhook;

use arbitrary::Unstructured;

/// One of `choices`, or a few arbitrary characters.
pub(crate) fn pick_or_text(
    u: &mut Unstructured<'_>,
    choices: &[&str],
) -> arbitrary::Result<String> {
    if u.ratio(3, 4)? {
        Ok(u.choose(choices)?.to_string())
    } else {
        let n = u.int_in_range(0..=12)?;
        (0..n).map(|_| u.arbitrary::<char>()).collect()
    }
}
