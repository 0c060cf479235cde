//! From settings to what the driver connects to: one server or a Cluster's seeds, with
//! credentials, database, timeouts and TLS (rustls; the system's roots, or the CA file of
//! `redis.tls_ca_file`), plus the endpoint as it may be shown (never with a password).

use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    TlsCertificates,
};

use crate::config::RedisSettings;
use crate::error::{Error, scrub};
use crate::redact::redact_url;

/// What to connect to, resolved from the settings.
#[derive(Clone)]
pub(super) enum Target {
    Single {
        client: Client,
        config: AsyncConnectionConfig,
    },
    Cluster {
        client: redis::cluster::ClusterClient,
        /// Used for pub/sub, which Redis Cluster broadcasts to every node.
        seeds: Vec<Client>,
    },
}

/// The certificates to trust when a CA file is configured: that CA in addition to the
/// system's roots. (Given no root, the driver trusts the system's roots; given one, it trusts
/// only what it is given, so the system's roots are added here.)
fn certificates(ca_file: &[u8]) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(with_system_roots(ca_file)),
    }
}

/// `ca_file` followed by every system root certificate that parses as a trust anchor, as
/// PEM. A system certificate that does not parse is left out rather than failing the whole
/// bundle (the driver refuses a bundle with one bad certificate).
fn with_system_roots(ca_file: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let mut bundle = ca_file.to_vec();
    bundle.push(b'\n');
    for cert in rustls_native_certs::load_native_certs().certs {
        if rustls::RootCertStore::empty().add(cert.clone()).is_err() {
            continue;
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        bundle.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            bundle.extend_from_slice(line);
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    bundle
}

/// The target and its showable endpoint.
pub(super) fn resolve_target(s: &RedisSettings) -> Result<(Target, String), Error> {
    let config_err = |m: String| Error::Config(m);
    let password = s.password.clone().filter(|p| !p.is_empty());
    let username = s.username.clone().filter(|u| !u.is_empty());
    let with_auth = |info: ConnectionInfo, db: Option<i64>| -> ConnectionInfo {
        let mut r = info.redis_settings().clone();
        if let Some(u) = &username
            && r.username().is_none()
        {
            r = r.set_username(u);
        }
        if let Some(p) = &password
            && r.password().is_none()
        {
            r = r.set_password(p);
        }
        if let Some(db) = db {
            r = r.set_db(db);
        }
        info.set_redis_settings(r)
    };
    let root_cert = match &s.tls_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            config_err(format!(
                "redis.tls_ca_file: cannot read {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let url_info = |setting: &str, raw: &str| -> Result<ConnectionInfo, Error> {
        raw.into_connection_info()
            .map_err(|_| config_err(format!("{setting}: cannot parse {}", redact_url(raw))))
    };
    let host_info = |host: &str, port: u16| -> Result<ConnectionInfo, Error> {
        let addr = if s.tls {
            ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: s.tls_insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        // From the address itself (infallible): a host such as `::1` would not parse inside
        // a URL.
        addr.into_connection_info()
            .map_err(|e| config_err(format!("redis: {}", scrub(&e.to_string()))))
    };
    // Built from the address alone, never from what the user typed; redacted all the same,
    // should a host name itself hold credentials (`REDIS_HOST=user:pw@host`).
    let describe = |info: &ConnectionInfo| -> String {
        let db = info.redis_settings().db();
        redact_url(&match info.addr() {
            ConnectionAddr::Tcp(h, p) => format!("redis://{h}:{p}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix://{}?db={db}", path.display()),
            _ => "redis".into(),
        })
    };
    let build_client = |info: ConnectionInfo| -> Result<Client, Error> {
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let made = match (&root_cert, tls) {
            (Some(cert), true) => Client::build_with_tls(info, certificates(cert)),
            _ => Client::open(info),
        };
        made.map_err(|e| config_err(format!("redis: {}", scrub(&e.to_string()))))
    };

    let url = s.url.clone().filter(|u| !u.is_empty());
    if s.cluster {
        let seeds: Vec<ConnectionInfo> = if !s.cluster_nodes.is_empty() {
            s.cluster_nodes
                .iter()
                .map(|n| {
                    if n.contains("://") {
                        return url_info("redis.cluster_nodes", n).map(|i| with_auth(i, None));
                    }
                    // `[user[:password]@]host:port`: the credentials are taken as typed.
                    let (creds, host_port) = match n.rsplit_once('@') {
                        Some((c, hp)) => (Some(c), hp),
                        None => (None, n.as_str()),
                    };
                    let shown = redact_url(n);
                    let (h, p) = host_port.rsplit_once(':').ok_or_else(|| {
                        config_err(format!("redis.cluster_nodes: {shown:?} is not host:port"))
                    })?;
                    let port = p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                        config_err(format!("redis.cluster_nodes: bad port in {shown:?}"))
                    })?;
                    let h = h.trim_start_matches('[').trim_end_matches(']');
                    let mut info = host_info(h, port)?;
                    if let Some(creds) = creds {
                        let (user, pass) = match creds.split_once(':') {
                            Some((u, p)) => (u, Some(p)),
                            None => (creds, None),
                        };
                        let mut r = info.redis_settings().clone();
                        if !user.is_empty() {
                            r = r.set_username(user);
                        }
                        if let Some(p) = pass.filter(|p| !p.is_empty()) {
                            r = r.set_password(p);
                        }
                        info = info.set_redis_settings(r);
                    }
                    Ok(with_auth(info, None))
                })
                .collect::<Result<_, _>>()?
        } else if let Some(u) = &url {
            vec![with_auth(url_info("redis.url", u)?, None)]
        } else {
            vec![with_auth(host_info(&s.host, s.port)?, None)]
        };
        let endpoint = format!(
            "cluster[{}]",
            seeds.iter().map(describe).collect::<Vec<_>>().join(",")
        );
        let mut builder = redis::cluster::ClusterClient::builder(seeds.clone())
            .connection_timeout(s.connect_timeout())
            .response_timeout(s.command_timeout())
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(500);
        if let Some(u) = &username {
            builder = builder.username(u);
        }
        if let Some(p) = &password {
            builder = builder.password(p);
        }
        let tls_seeds = seeds
            .iter()
            .any(|i| matches!(i.addr(), ConnectionAddr::TcpTls { .. }));
        if let Some(cert) = &root_cert
            && tls_seeds
        {
            // Every node the client discovers is verified against the same CA.
            builder = builder.certs(certificates(cert));
        }
        if s.tls_insecure {
            builder = builder.danger_accept_invalid_hostnames(true);
        }
        let client = builder
            .build()
            .map_err(|e| config_err(format!("redis cluster: {}", scrub(&e.to_string()))))?;
        let seeds = seeds
            .into_iter()
            .map(build_client)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((Target::Cluster { client, seeds }, endpoint));
    }

    let info = match &url {
        Some(u) => with_auth(url_info("redis.url", u)?, None),
        None => with_auth(host_info(&s.host, s.port)?, Some(s.db)),
    };
    let endpoint = describe(&info);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(s.connect_timeout()))
        .set_response_timeout(Some(s.command_timeout()));
    Ok((
        Target::Single {
            client: build_client(info)?,
            config,
        },
        endpoint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_never_shows_the_password() {
        let s = RedisSettings {
            url: Some("redis://bob:hunter2@example.invalid:7000/3".into()),
            ..Default::default()
        };
        let (_, endpoint) = resolve_target(&s).unwrap();
        assert_eq!(endpoint, "redis://example.invalid:7000/3");
    }

    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_ca_file_is_trusted_in_addition_to_the_system_roots() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let bundle = with_system_roots(made.cert.pem().as_bytes());
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&bundle)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs[0].as_ref(), made.cert.der().as_ref());
        if !rustls_native_certs::load_native_certs().certs.is_empty() {
            assert!(certs.len() > 1, "the system's roots follow the CA");
        }
        let mut store = rustls::RootCertStore::empty();
        for cert in certs {
            store.add(cert).unwrap();
        }
    }

    #[test]
    fn a_ca_file_is_accepted_for_a_tls_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(&ca, made.cert.pem()).unwrap();
        let s = RedisSettings {
            cluster: true,
            tls: true,
            cluster_nodes: vec!["127.0.0.1:7000".into()],
            tls_ca_file: Some(ca),
            ..Default::default()
        };
        let (target, endpoint) = resolve_target(&s).unwrap();
        assert!(matches!(target, Target::Cluster { .. }));
        assert_eq!(endpoint, "cluster[rediss://127.0.0.1:7000/0]");
    }
}
