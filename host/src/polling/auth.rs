//! Vendor credentials: the connector builds each authentication request and reads the
//! answer; the host runs it and keeps the tokens in the store, never in an answer or a log.

use store::{InstanceId, Store, StoredCredentials};

use crate::instances::origin::vendor_fingerprint;

use super::PollError;
use super::vendor::VendorClient;
use runtime::LoadedConnector;
use runtime::types::{AuthStep, Context, Credentials};

/// Credentials within this many milliseconds of expiry are renewed first.
const EXPIRY_MARGIN_MS: i64 = 30_000;

/// Credentials as stored, with the fingerprint of the vendor URLs of `config`, the
/// configuration they were obtained with.
fn to_stored(c: Credentials, now_ms: i64, config: &[(String, String)]) -> StoredCredentials {
    StoredCredentials {
        access_token: c.access_token,
        refresh_token: c.refresh_token,
        expires_at_ms: c.expires_in_secs.map(|s| now_ms + (s as i64) * 1000),
        obtained_ms: now_ms,
        origin: Some(vendor_fingerprint(config)),
    }
}

/// The contract's view of stored credentials.
pub fn to_contract(c: &StoredCredentials, now_ms: i64) -> Credentials {
    Credentials {
        access_token: c.access_token.clone(),
        refresh_token: c.refresh_token.clone(),
        expires_in_secs: c
            .expires_at_ms
            .map(|at| ((at - now_ms).max(0) / 1000) as u64),
    }
}

/// Runs one authentication step; `None` when the connector has no such step.
pub async fn run_step(
    connector: &LoadedConnector,
    vendor: &VendorClient,
    ctx: &Context,
    step: &AuthStep,
) -> Result<Option<StoredCredentials>, PollError> {
    let Some(request) = connector.build_auth_request(ctx, step).await? else {
        return Ok(None);
    };
    let response = vendor.run(&request).await?;
    let credentials = connector.parse_auth_response(ctx, step, &response).await?;
    Ok(Some(to_stored(credentials, crate::now_ms(), &ctx.config)))
}

/// What obtains and renews an instance's credentials.
pub struct Credentialer<'a> {
    /// The connector.
    pub connector: &'a LoadedConnector,
    /// Runs the vendor calls.
    pub vendor: &'a VendorClient,
    /// Keeps the tokens.
    pub store: &'a dyn Store,
    /// The instance.
    pub instance_id: InstanceId,
    /// Its configuration.
    pub config: &'a [(String, String)],
}

impl Credentialer<'_> {
    fn ctx(&self, current: Option<&StoredCredentials>) -> Context {
        let now = crate::now_ms();
        Context {
            config: self.config.to_vec(),
            credentials: current.map(|c| to_contract(c, now)),
        }
    }

    async fn obtain(
        &self,
        stale: Option<&StoredCredentials>,
    ) -> Result<Option<StoredCredentials>, PollError> {
        let ctx = self.ctx(stale);
        let mut fresh = None;
        if let Some(refresh) = stale.and_then(|c| c.refresh_token.clone()) {
            fresh = run_step(
                self.connector,
                self.vendor,
                &ctx,
                &AuthStep::Refresh(refresh),
            )
            .await?;
        }
        if fresh.is_none() {
            fresh = run_step(self.connector, self.vendor, &ctx, &AuthStep::Login).await?;
        }
        if let Some(c) = &fresh {
            self.store
                .save_credentials(self.instance_id, Some(c.clone()))
                .await?;
            tracing::info!(instance = self.instance_id.0, "vendor credentials renewed");
        }
        Ok(fresh)
    }

    /// The credentials to poll with: the stored ones while valid, else new ones from a
    /// refresh or a login; `None` when the connector needs none.
    pub async fn current(&self) -> Result<Option<StoredCredentials>, PollError> {
        // Credentials obtained for other vendor URLs (the instance moved since) are never
        // sent, not even their refresh token: they are as good as none.
        let here = vendor_fingerprint(self.config);
        let stored = self
            .store
            .credentials(self.instance_id)
            .await?
            .filter(|c| c.origin.as_ref().is_none_or(|o| *o == here));
        let fresh_enough = |c: &StoredCredentials| {
            c.expires_at_ms
                .is_none_or(|at| at - EXPIRY_MARGIN_MS > crate::now_ms())
        };
        match stored {
            Some(c) if fresh_enough(&c) => Ok(Some(c)),
            stale => match self.obtain(stale.as_ref()).await? {
                Some(c) => Ok(Some(c)),
                // Nothing to renew with: keep what there is (the vendor will say).
                None => Ok(stale),
            },
        }
    }

    /// New credentials after the vendor refused `stale`; an error when none can be had.
    pub async fn renew(
        &self,
        stale: Option<&StoredCredentials>,
    ) -> Result<StoredCredentials, PollError> {
        self.obtain(stale).await?.ok_or_else(|| {
            PollError::Unauthorized(
                "the vendor refused the credentials and the connector has no way to renew them"
                    .into(),
            )
        })
    }
}
