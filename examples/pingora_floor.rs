//! The floor of `bench/edge.sh`: the least a Pingora HTTP proxy does, so the benchmark can say
//! how much of the edge's cost per request is Pingora itself and how much is tenantctl's edge.
//!
//! ```sh
//! cargo run --release --example pingora_floor -- LISTEN UPSTREAM [THREADS]
//! cargo run --release --example pingora_floor -- 127.0.0.1:8081 127.0.0.1:49153 1
//! ```
//!
//! Pingora's `ProxyHttp` with every hook at its default except the one it cannot do without
//! (`upstream_peer`: the one upstream, plain HTTP/1.1, kept-alive pool as the edge has), no
//! downstream modules, no routing by Host, no `X-Forwarded-*`, no access log, no metrics, the
//! same server configuration as `tenantctl edge` (per-thread runtimes, no work stealing).

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, Result};
use pingora::proxy::{ProxyHttp, Session};
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        eprintln!("usage: pingora_floor LISTEN UPSTREAM [THREADS]");
        std::process::exit(2);
    };
    let upstream: SocketAddr = upstream.parse().unwrap_or_else(|e| {
        eprintln!("UPSTREAM {upstream:?}: {e}");
        std::process::exit(2);
    });
    let threads = args.get(2).map_or(1, |t| {
        t.parse().unwrap_or_else(|e| {
            eprintln!("THREADS {t:?}: {e}");
            std::process::exit(2);
        })
    });
    let mut conf = pingora::server::configuration::ServerConf {
        threads,
        work_stealing: false,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..Default::default()
    };
    conf.upstream_keepalive_pool_size = 256;
    let mut server = pingora::server::Server::new_with_opt_and_conf(None, conf);
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Floor { upstream },
        "pingora floor",
    );
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.bootstrap();
    server.run(pingora::server::RunArgs::default());
}
