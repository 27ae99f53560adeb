//! `tls: acme`: certificates from an ACME CA (Let's Encrypt, or Pebble in tests) by HTTP-01,
//! answered by the proxy on the http listener. A task looks at the routes when they change and
//! every hour: each host of an active route without a certificate, or with less than a third of
//! its certificate's lifetime left, gets a new one (one order per host), stored in
//! `acme/certs/<host>.pem` and served at once. The ACME account is kept in `acme/account.json`.

use super::routes::{RouteState, write_private};
use super::tls::CertifiedKey;
use super::{AcmeConfig, Shared};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509ReqBuilder};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the certificates are looked at when nothing else happens.
const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// After a failed pass, the first wait; it doubles up to [`CHECK_EVERY`].
const FIRST_BACKOFF: Duration = Duration::from_secs(10);

pub async fn run(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let Some(config) = shared.config.acme.clone() else {
        return;
    };
    let mut account = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let wait = match pass(&shared, &config, &mut account).await {
            Ok(()) => {
                backoff = FIRST_BACKOFF;
                CHECK_EVERY
            }
            Err(e) => {
                tracing::warn!("ACME: {e}; trying again in {}s", backoff.as_secs());
                let wait = backoff;
                backoff = (backoff * 2).min(CHECK_EVERY);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.routes_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The hosts of active routes whose certificate is missing or due for renewal.
fn hosts_needing_certificates(shared: &Shared) -> BTreeSet<String> {
    let store = shared.acme_store.as_ref();
    let now = SystemTime::now();
    shared
        .table()
        .hosts()
        .filter(|(_, t)| t.state == RouteState::Active)
        .filter(|(host, _)| {
            store
                .and_then(|s| s.get(host))
                .is_none_or(|ck| ck.due_for_renewal(now))
        })
        .map(|(host, _)| host.clone())
        .collect()
}

async fn pass(
    shared: &Shared,
    config: &AcmeConfig,
    account: &mut Option<Account>,
) -> Result<(), String> {
    let hosts = hosts_needing_certificates(shared);
    if hosts.is_empty() {
        return Ok(());
    }
    if account.is_none() {
        *account = Some(load_or_create_account(shared, config).await?);
    }
    let Some(account) = account.as_ref() else {
        return Ok(());
    };
    let mut failed = Vec::new();
    for host in &hosts {
        match obtain(shared, account, host).await {
            Ok(not_after) => tracing::info!(
                "ACME: certificate for {host} obtained (valid until {})",
                humantime::format_rfc3339_seconds(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64)
                )
            ),
            Err(e) => failed.push(format!("{host}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

fn acme_dir(shared: &Shared) -> PathBuf {
    shared.config.data.join("acme")
}

async fn load_or_create_account(shared: &Shared, config: &AcmeConfig) -> Result<Account, String> {
    let dir = acme_dir(shared);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let builder = || -> Result<_, String> {
        match &config.ca_pem {
            Some(pem) => {
                let path = dir.join("directory-ca.pem");
                std::fs::write(&path, pem)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Account::builder_with_root(&path).map_err(|e| {
                    format!("TENANTCTL_EDGE_ACME_CA: not a usable PEM certificate: {e}")
                })
            }
            None => Account::builder().map_err(|e| format!("ACME HTTP client: {e}")),
        }
    };
    let path = dir.join("account.json");
    if let Ok(text) = std::fs::read(&path)
        && let Ok((directory, credentials)) =
            serde_json::from_slice::<(String, AccountCredentials)>(&text)
        && directory == config.directory
    {
        match builder()?.from_credentials(credentials).await {
            Ok(account) => return Ok(account),
            Err(e) => {
                tracing::warn!("ACME: the stored account does not work ({e}); making a new one")
            }
        }
    }
    let contact = config.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await
        .map_err(|e| format!("cannot create an account at {}: {e}", config.directory))?;
    let text = serde_json::to_vec(&(&config.directory, &credentials)).map_err(|e| e.to_string())?;
    write_private(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!("ACME: account created at {}", config.directory);
    Ok(account)
}

/// Runs one order for `host` through HTTP-01 and stores the certificate; its end of validity.
async fn obtain(shared: &Shared, account: &Account, host: &str) -> Result<i64, String> {
    let identifiers = [Identifier::Dns(host.to_string())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut tokens = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("authorization is {other:?}")),
            }
            let mut challenge = authz
                .challenge(ChallengeType::Http01)
                .ok_or("the CA offers no HTTP-01 challenge")?;
            shared.set_challenge(
                &challenge.token,
                Some(challenge.key_authorization().as_str().to_string()),
            );
            tokens.push(challenge.token.clone());
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        let status = order
            .poll_ready(&RetryPolicy::new().timeout(Duration::from_secs(120)))
            .await
            .map_err(|e| format!("waiting for validation: {e}"))?;
        if status != OrderStatus::Ready {
            return Err(format!("the order is {status:?} (validation failed)"));
        }
        let (csr, key) = csr(host).map_err(|e| format!("CSR: {e}"))?;
        order
            .finalize_csr(&csr)
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(&RetryPolicy::new().timeout(Duration::from_secs(120)))
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        let key_pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
        let key_pem = String::from_utf8(key_pem).map_err(|e| e.to_string())?;
        CertifiedKey::from_pem(&chain, &key_pem)
    }
    .await;
    for token in &tokens {
        shared.set_challenge(token, None);
    }
    let ck = result?;
    let not_after = ck.not_after;
    shared
        .acme_store
        .as_ref()
        .ok_or("no ACME store")?
        .put(&[host.to_string()], ck)?;
    Ok(not_after)
}

/// A new EC P-256 key and a CSR for `host` (DER).
fn csr(
    host: &str,
) -> Result<(Vec<u8>, openssl::pkey::PKey<openssl::pkey::Private>), openssl::error::ErrorStack> {
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let mut req = X509ReqBuilder::new()?;
    req.set_pubkey(&key)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, host)?;
    req.set_subject_name(&name.build())?;
    let mut extensions = Stack::new()?;
    extensions.push(
        SubjectAlternativeName::new()
            .dns(host)
            .build(&req.x509v3_context(None))?,
    )?;
    req.add_extensions(&extensions)?;
    req.sign(&key, MessageDigest::sha256())?;
    Ok((req.build().to_der()?, key))
}
