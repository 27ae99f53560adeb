//! The dashboard's background side (being written).

use super::data::Update;
use super::{TuiConfig, Workers};
use tokio::sync::mpsc;

pub fn spawn(config: TuiConfig, updates: mpsc::Sender<Update>) -> Workers {
    let (requests, mut rx) = mpsc::unbounded_channel();
    let (stop, _) = tokio::sync::watch::channel(false);
    let done = tokio::spawn(async move {
        let _ = (config, updates);
        while rx.recv().await.is_some() {}
    });
    Workers {
        requests,
        stop,
        done,
    }
}
