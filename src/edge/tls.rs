//! TLS: certificates by SNI name through the openssl backend's certificate callback, from the
//! pushed `certificates` (`files`), the edge's own CA (`internal`) or ACME (`acme`).

use super::Shared;
use super::routes::{normalize_host, write_private};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::ssl::NameType;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The internal CA's certificate and key in the data directory.
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// How long a leaf of the internal CA is valid, and how long before its end it is replaced.
const LEAF_DAYS: u32 = 90;
const LEAF_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A certificate chain (leaf first) and its private key.
pub struct CertifiedKey {
    pub leaf: X509,
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// When the leaf stops being valid (seconds since the epoch).
    pub not_after: i64,
    /// When it started being valid.
    pub not_before: i64,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertifiedKey {
    /// Parses a PEM chain (leaf first) and a PEM private key, and checks that they belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, String> {
        let mut certs = X509::stack_from_pem(cert_pem.as_bytes())
            .map_err(|e| format!("cert_pem: not a PEM certificate: {e}"))?;
        if certs.is_empty() {
            return Err("cert_pem: no certificate in it".into());
        }
        let key = PKey::private_key_from_pem(key_pem.as_bytes())
            .map_err(|_| "key_pem: not a PEM private key".to_string())?;
        let leaf = certs.remove(0);
        let public = leaf
            .public_key()
            .map_err(|e| format!("cert_pem: unreadable public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err("key_pem does not belong to the first certificate of cert_pem".into());
        }
        let not_after = asn1_to_unix(leaf.not_after())?;
        let not_before = asn1_to_unix(leaf.not_before())?;
        Ok(CertifiedKey {
            leaf,
            chain: certs,
            key,
            not_after,
            not_before,
        })
    }

    /// The chain and key as one PEM text (how the edge stores them).
    pub fn to_pem(&self) -> Result<Vec<u8>, String> {
        let mut out = self.leaf.to_pem().map_err(|e| e.to_string())?;
        for c in &self.chain {
            out.extend(c.to_pem().map_err(|e| e.to_string())?);
        }
        out.extend(
            self.key
                .private_key_to_pem_pkcs8()
                .map_err(|e| e.to_string())?,
        );
        Ok(out)
    }

    /// Reads what [`Self::to_pem`] wrote.
    pub fn from_combined_pem(pem: &str) -> Result<CertifiedKey, String> {
        CertifiedKey::from_pem(pem, pem)
    }

    /// True when less than `margin` is left of its validity at `now`.
    pub fn expires_within(&self, now: SystemTime, margin: Duration) -> bool {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        self.not_after - now < margin.as_secs() as i64
    }

    /// True when less than a third of its lifetime is left (when ACME renews).
    pub fn due_for_renewal(&self, now: SystemTime) -> bool {
        let lifetime = (self.not_after - self.not_before).max(0) as u64;
        self.expires_within(now, Duration::from_secs(lifetime / 3))
    }
}

fn asn1_to_unix(time: &openssl::asn1::Asn1TimeRef) -> Result<i64, String> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch.diff(time).map_err(|e| e.to_string())?;
    Ok(diff.days as i64 * 86400 + diff.secs as i64)
}

fn new_ec_key() -> Result<PKey<Private>, String> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    let ec = EcKey::generate(&group).map_err(|e| e.to_string())?;
    PKey::from_ec_key(ec).map_err(|e| e.to_string())
}

fn random_serial() -> Result<openssl::asn1::Asn1Integer, openssl::error::ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    bn.to_asn1_integer()
}

/// The edge's own certificate authority (`tls: internal`): created once in the data directory,
/// it signs a leaf per SNI host on first use; leaves are kept in memory.
pub struct InternalCa {
    cert: X509,
    key: PKey<Private>,
    pub cert_pem: String,
    leaves: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl InternalCa {
    /// Loads `ca.pem`/`ca-key.pem` from `dir`, creating them when missing.
    pub fn load_or_create(dir: &Path) -> Result<InternalCa, String> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path)
                .map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
            let key_pem = std::fs::read_to_string(&key_path)
                .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
            let parsed = CertifiedKey::from_pem(&cert_pem, &key_pem)
                .map_err(|e| format!("{}: {e}", cert_path.display()))?;
            return Ok(InternalCa {
                cert: parsed.leaf,
                key: parsed.key,
                cert_pem,
                leaves: RwLock::default(),
            });
        }
        let key = new_ec_key()?;
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).map_err(|e| e.to_string())?;
        let cert = (|| -> Result<X509, openssl::error::ErrorStack> {
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "tenantctl")?;
            name.append_entry_by_nid(
                Nid::COMMONNAME,
                &format!("tenantctl edge CA {}", hex::encode(suffix)),
            )?;
            let name = name.build();
            let mut b = X509::builder()?;
            b.set_version(2)?;
            b.set_serial_number(&*random_serial()?)?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(&name)?;
            b.set_pubkey(&key)?;
            b.set_not_before(&*Asn1Time::days_from_now(0)?)?;
            b.set_not_after(&*Asn1Time::days_from_now(3650)?)?;
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
            let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
            b.append_extension(ski)?;
            b.sign(&key, MessageDigest::sha256())?;
            Ok(b.build())
        })()
        .map_err(|e| format!("cannot make the internal CA: {e}"))?;
        let key_pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
        write_private(&key_path, &key_pem)
            .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
        let cert_pem = String::from_utf8(cert.to_pem().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        write_public(&cert_path, cert_pem.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
        Ok(InternalCa {
            cert,
            key,
            cert_pem,
            leaves: RwLock::default(),
        })
    }

    /// The leaf for `host`: the cached one while it has more than 30 days left, else a new one.
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, String> {
        let now = SystemTime::now();
        if let Some(leaf) = self
            .leaves
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            && !leaf.expires_within(now, LEAF_RENEW_BEFORE)
        {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(self.issue(host)?);
        self.leaves
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_string(), leaf.clone());
        Ok(leaf)
    }

    fn issue(&self, host: &str) -> Result<CertifiedKey, String> {
        let key = new_ec_key()?;
        let cert = (|| -> Result<X509, openssl::error::ErrorStack> {
            let mut name = X509NameBuilder::new()?;
            name.append_entry_by_nid(Nid::COMMONNAME, host)?;
            let name = name.build();
            let mut b = X509::builder()?;
            b.set_version(2)?;
            b.set_serial_number(&*random_serial()?)?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(self.cert.subject_name())?;
            b.set_pubkey(&key)?;
            // An hour back: clients whose clock is a little behind still accept it.
            let start = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs() as i64
                - 3600;
            b.set_not_before(&*Asn1Time::from_unix(start)?)?;
            b.set_not_after(&*Asn1Time::days_from_now(LEAF_DAYS)?)?;
            b.append_extension(BasicConstraints::new().build()?)?;
            b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
            let san = SubjectAlternativeName::new()
                .dns(host)
                .build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(san)?;
            let aki = AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(aki)?;
            b.sign(&self.key, MessageDigest::sha256())?;
            Ok(b.build())
        })()
        .map_err(|e| format!("cannot issue a certificate for {host}: {e}"))?;
        let not_after = asn1_to_unix(cert.not_after())?;
        let not_before = asn1_to_unix(cert.not_before())?;
        Ok(CertifiedKey {
            leaf: cert,
            chain: Vec::new(),
            key,
            not_after,
            not_before,
        })
    }
}

/// Writes a file others may read (the CA certificate), atomically.
fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// ACME certificates by host, kept in `acme/certs/<host>.pem` (chain and key, 0600).
pub struct AcmeStore {
    dir: PathBuf,
    certs: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl AcmeStore {
    pub fn load(dir: PathBuf) -> Result<AcmeStore, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut certs = HashMap::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(host) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pem"))
            else {
                continue;
            };
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|pem| CertifiedKey::from_combined_pem(&pem))
            {
                Ok(ck) => {
                    certs.insert(host.to_string(), Arc::new(ck));
                }
                Err(e) => tracing::warn!("ignoring {}: {e}", path.display()),
            }
        }
        Ok(AcmeStore {
            dir,
            certs: RwLock::new(certs),
        })
    }

    pub fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.certs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
            .cloned()
    }

    /// Stores a certificate for `hosts` (on disk first, then live).
    pub fn put(&self, hosts: &[String], ck: CertifiedKey) -> Result<(), String> {
        let pem = ck.to_pem()?;
        for host in hosts {
            let path = self.dir.join(format!("{host}.pem"));
            write_private(&path, &pem)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let ck = Arc::new(ck);
        let mut certs = self.certs.write().unwrap_or_else(|e| e.into_inner());
        for host in hosts {
            certs.insert(host.clone(), ck.clone());
        }
        Ok(())
    }
}

/// The certificate callback: picks the certificate by SNI name from the mode's source. No SNI,
/// or a name the edge has no certificate for, fails the handshake.
pub struct CertResolver(pub Arc<Shared>);

#[async_trait::async_trait]
impl TlsAccept for CertResolver {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let Some(name) = ssl
            .servername(NameType::HOST_NAME)
            .map(|n| normalize_host(n).into_owned())
        else {
            tracing::debug!("TLS handshake without SNI: no certificate");
            return;
        };
        let Some(ck) = self.0.certificate_for(&name) else {
            tracing::debug!("TLS handshake for {name}: no certificate");
            return;
        };
        let result = ext::ssl_use_certificate(ssl, &ck.leaf)
            .and_then(|()| {
                ck.chain
                    .iter()
                    .try_for_each(|c| ext::ssl_add_chain_cert(ssl, c))
            })
            .and_then(|()| ext::ssl_use_private_key(ssl, &ck.key));
        if let Err(e) = result {
            tracing::warn!("TLS handshake for {name}: cannot use its certificate: {e}");
        }
    }
}
