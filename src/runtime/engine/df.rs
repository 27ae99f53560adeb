//! The size of each volume, from the engine's disk-usage API (`GET /system/df?type=volume`).
//!
//! bollard's `df` decodes the response shape of API 1.52 and later (`VolumeUsage.Items`); older
//! engines (API 1.41 here) answer `Volumes` at the top level, which it drops. So the request is
//! sent on the engine's unix socket by hand and both shapes are read. The engine walks every
//! volume for this (it is slow): the meter asks once per pass, never per tenant.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::runtime::RuntimeError;

/// How long the engine may take to walk its volumes.
pub const DF_TIMEOUT: Duration = Duration::from_secs(60);
/// A disk-usage answer larger than this is refused (each volume is a few hundred bytes).
const MAX_ANSWER: usize = 64 << 20;

/// Volume name → bytes used, for every volume the engine could size (it reports -1 for one it
/// could not, e.g. a non-local driver's).
pub async fn volume_sizes(socket: &Path) -> Result<BTreeMap<String, u64>, RuntimeError> {
    // The engine runs one disk-usage operation at a time and refuses a second one meanwhile
    // ("a disk usage operation is already running"): another meter, `docker system df`. Ask
    // again until it answers, within the one timeout.
    let retried = async {
        let mut wait = Duration::from_millis(200);
        loop {
            match ask_once(socket).await {
                Err(RuntimeError::DiskUsage { reason }) if reason.contains("already running") => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    };
    tokio::time::timeout(DF_TIMEOUT, retried)
        .await
        .map_err(|_| RuntimeError::DiskUsage {
            reason: format!("no answer within {}s", DF_TIMEOUT.as_secs()),
        })?
}

async fn ask_once(socket: &Path) -> Result<BTreeMap<String, u64>, RuntimeError> {
    let failed = |reason: String| RuntimeError::DiskUsage { reason };
    let ask = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| failed(format!("cannot connect to {}: {e}", socket.display())))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(conn);
        let request = hyper::Request::get("/system/df?type=volume")
            .header(hyper::header::HOST, "docker")
            .header(hyper::header::USER_AGENT, "tenantctl")
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        let answer: Value =
            serde_json::from_slice(&body).map_err(|e| failed(format!("not JSON: {e}")))?;
        Ok(sizes_of(&answer))
    };
    ask.await
}

/// The volumes of a disk-usage answer, old shape (`Volumes`) or new (`VolumeUsage.Items`).
pub fn sizes_of(answer: &Value) -> BTreeMap<String, u64> {
    let volumes = answer.get("Volumes").and_then(Value::as_array).or_else(|| {
        answer
            .pointer("/VolumeUsage/Items")
            .and_then(Value::as_array)
    });
    volumes
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v.get("Name")?.as_str()?;
            let size = v.pointer("/UsageData/Size")?.as_i64()?;
            Some((name.to_string(), u64::try_from(size).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_answer_shapes_give_the_sizes_the_engine_could_tell() {
        let old = json!({"LayersSize": 1, "Volumes": [
            {"Name": "ns-acme", "UsageData": {"Size": 4096, "RefCount": 1}},
            {"Name": "remote", "UsageData": {"Size": -1, "RefCount": 0}},
            {"Name": "unsized"}
        ]});
        let new = json!({"VolumeUsage": {"TotalSize": 4096, "Items": [
            {"Name": "ns-acme", "UsageData": {"Size": 4096, "RefCount": 1}}
        ]}});
        let want = BTreeMap::from([("ns-acme".to_string(), 4096)]);
        assert_eq!(sizes_of(&old), want);
        assert_eq!(sizes_of(&new), want);
        assert!(sizes_of(&json!({})).is_empty());
    }
}
