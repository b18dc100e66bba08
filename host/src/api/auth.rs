//! Who is calling: an organization (`User …, Organization …`) or one instance
//! (`Element <token>`), and which instances each may see.

use std::sync::Arc;

use hyper::header::HeaderMap;
use store::{InstanceId, OrgId, SecretHashes};

use super::App;
use super::error::ApiError;
use crate::instances::LiveInstance;
use crate::tenancy::{Credential, digest, parse_authorization};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An organization's user: every instance of the organization.
    Org(OrgId),
    /// An instance's token: that instance only.
    Instance {
        /// The instance.
        id: InstanceId,
        /// Its organization.
        org_id: OrgId,
    },
}

impl Caller {
    /// The caller's organization.
    pub fn org_id(&self) -> OrgId {
        match self {
            Caller::Org(id) => *id,
            Caller::Instance { org_id, .. } => *org_id,
        }
    }
}

const HINT: &str = "send `Authorization: User <secret>, Organization <secret>` or `Authorization: Element <token>`";

/// Reads and checks the `Authorization` header: 401 when missing or wrong.
pub async fn authorize(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let value = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Unauthorized(format!("the Authorization header is missing: {HINT}"))
        })?;
    match parse_authorization(value) {
        Some(Credential::UserOrg { user, org }) => {
            let hashes = SecretHashes {
                user: digest(&user),
                org: digest(&org),
            };
            match app.store.find_org(&hashes).await? {
                Some(org) => Ok(Caller::Org(org.id)),
                None => Err(ApiError::Unauthorized(
                    "the user and organization secrets are not valid".into(),
                )),
            }
        }
        Some(Credential::Element(token)) => match app.instances.by_token(&digest(&token)) {
            Some(i) => Ok(Caller::Instance {
                id: i.id,
                org_id: i.org_id,
            }),
            None => Err(ApiError::Unauthorized(
                "the element token is not valid".into(),
            )),
        },
        None => Err(ApiError::Unauthorized(format!(
            "the Authorization header is malformed: {HINT}"
        ))),
    }
}

/// The instance `id` if the caller may see it; 404 otherwise, so that another
/// organization's instances are indistinguishable from missing ones.
pub fn instance(app: &App, caller: &Caller, id: &str) -> Result<Arc<LiveInstance>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no instance {id}"));
    let id = InstanceId::parse(id).ok_or_else(not_found)?;
    let instance = app.instances.get(id).ok_or_else(not_found)?;
    let allowed = match caller {
        Caller::Org(org) => instance.org_id == *org,
        Caller::Instance { id: own, .. } => instance.id == *own,
    };
    if allowed {
        Ok(instance)
    } else {
        Err(not_found())
    }
}

/// Every instance the caller may see, by id: an organization's all, an instance token's
/// own.
pub fn visible(app: &App, caller: &Caller) -> Vec<Arc<LiveInstance>> {
    match caller {
        Caller::Org(org) => app.instances.of_org(*org),
        Caller::Instance { id, .. } => app.instances.get(*id).into_iter().collect(),
    }
}
