//! What the unit tests of apply, watch and source share: a repository of desired state as files,
//! git run in a scratch repository, a scratch SQLite store, and a progress sink that keeps every
//! line. The engine side is
//! [`crate::runtime::fake`].

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use crate::apply::Progress;
use crate::model::{DesiredState, SourceContent, SourceFile};
use crate::store::Store;

/// One plan `p` and one theme `t` (the built-in site), and a tenant per `(slug, display name)`.
pub fn state_files(tenants: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files = vec![
        (
            "plans/p.yaml".to_string(),
            "kind: Plan\nname: p\nspec:\n  displayName: P\n  price: { amount: 1, currency: USD, cycle: monthly }\n  resources: { cpus: 1, memory: 64Mi }\n".to_string(),
        ),
        (
            "themes/t.yaml".to_string(),
            "kind: Theme\nname: t\nspec: { displayName: T, version: 1.0.0 }\n".to_string(),
        ),
    ];
    for (slug, display) in tenants {
        files.push((
            format!("tenants/{slug}.yaml"),
            format!(
                "kind: Tenant\nname: {slug}\nspec:\n  displayName: {display}\n  owner: {slug}@a.example\n  plan: p\n  theme: t\n"
            ),
        ));
    }
    files
}

/// The desired state of [`state_files`].
pub fn desired(tenants: &[(&str, &str)]) -> DesiredState {
    let files: Vec<SourceFile> = state_files(tenants)
        .into_iter()
        .map(|(path, text)| SourceFile {
            path,
            content: SourceContent::Bytes(text.into_bytes()),
        })
        .collect();
    match crate::model::load(&files) {
        Ok(desired) => desired,
        Err(diagnostics) => panic!("the fixture is invalid: {diagnostics:?}"),
    }
}

/// Runs `git args` in `dir` as a test author with no signing; fails the test if git does.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A migrated SQLite database in `dir`.
pub async fn scratch_store(dir: &Path) -> Store {
    match Store::open(&Store::default_url(dir)).await {
        Ok(store) => store,
        Err(e) => panic!("opening a scratch store: {e}"),
    }
}

/// Keeps every progress line, `tenant: message` for a tenant's.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl Lines {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines containing `text`.
    pub fn with(&self, text: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|l| l.contains(text))
            .collect()
    }
}

impl Progress for Lines {
    fn line(&self, tenant: Option<&str>, message: &str) {
        let line = match tenant {
            Some(t) => format!("{t}: {message}"),
            None => message.to_string(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

/// A self-signed certificate for `hosts` (EC P-256) and its key, both PEM: what `tls: files`
/// names in the edge's unit tests.
pub fn self_signed(hosts: &[&str]) -> (String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, hosts[0])
        .expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("time"))
        .expect("not after");
    let mut san = SubjectAlternativeName::new();
    for h in hosts {
        san.dns(h);
    }
    let san = san.build(&b.x509v3_context(None, None)).expect("san");
    b.append_extension(san).expect("extension");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = String::from_utf8(b.build().to_pem().expect("pem")).expect("utf8");
    let key = String::from_utf8(key.private_key_to_pem_pkcs8().expect("pem")).expect("utf8");
    (cert, key)
}
