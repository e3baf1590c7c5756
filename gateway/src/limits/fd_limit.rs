//! Connections must hit `CHORUS_GATEWAY_MAX_CONNECTIONS` before the process
//! runs out of file descriptors: at start-up the soft limit (`ulimit -n`) is
//! raised towards the hard one as far as the connections and a reserve need,
//! and a cap that still does not fit stops the gateway naming the variable.
//! Left at its default, the cap is lowered to fit instead (with a warning).

use chorus_platform::ConfigError;

use super::Limits;

/// Descriptors kept for everything but client connections: listeners,
/// the three database pools, Kafka's sockets (a few per broker), the schema
/// registry, the identity provider, log files.
pub fn reserve(db_pool_size: u32) -> u64 {
    3 * u64::from(db_pool_size) + 256
}

/// Raises the soft limit to what `limits` needs (at most the hard limit),
/// then fits `max_connections` (and the per-address cap) into it.
pub fn fit(limits: &mut Limits, reserve: u64) -> Result<(), ConfigError> {
    match raise_to(limits.max_connections as u64 + reserve) {
        Some(available) => fit_into(limits, reserve, available),
        None => Ok(()),
    }
}

/// Fits the caps into `available` descriptors, `reserve` of them kept.
fn fit_into(limits: &mut Limits, reserve: u64, available: u64) -> Result<(), ConfigError> {
    let wanted = limits.max_connections as u64 + reserve;
    if available >= wanted {
        return Ok(());
    }
    let fits = available.saturating_sub(reserve) as usize;
    if limits.max_connections_set || fits == 0 {
        return Err(ConfigError::new(
            "CHORUS_GATEWAY_MAX_CONNECTIONS",
            &limits.max_connections.to_string(),
            &format!(
                "needs {wanted} file descriptors with the {reserve} kept for databases and \
                 Kafka, but the process may open {available} (ulimit -n): raise the limit \
                 or set at most {fits}"
            ),
        ));
    }
    tracing::warn!(
        max_connections = fits,
        file_descriptors = available,
        "the file-descriptor limit is lower than the default connection cap needs; \
         CHORUS_GATEWAY_MAX_CONNECTIONS lowered to fit"
    );
    limits.max_connections = fits;
    limits.max_connections_per_addr = limits.max_connections_per_addr.min(fits);
    Ok(())
}

/// The soft limit on open files after raising it towards `wanted`; `None`
/// when unlimited or unknown.
#[cfg(unix)]
fn raise_to(wanted: u64) -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    if current >= wanted {
        return Some(current);
    }
    let target = limit.maximum.map_or(wanted, |max| max.min(wanted));
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => Some(target),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the file-descriptor limit");
            Some(current)
        }
    }
}

#[cfg(not(unix))]
fn raise_to(_wanted: u64) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_set_beyond_the_descriptors_stops_the_gateway_a_default_one_is_lowered() {
        let mut set = Limits {
            max_connections: 10_000,
            max_connections_set: true,
            ..Limits::default()
        };
        let err = fit_into(&mut set, 304, 4_096).unwrap_err();
        assert_eq!(err.variable, "CHORUS_GATEWAY_MAX_CONNECTIONS");
        assert!(err.to_string().contains("at most 3792"), "{err}");

        let mut default = Limits::default();
        fit_into(&mut default, 304, 1_024).unwrap();
        assert_eq!(default.max_connections, 720);
        assert_eq!(default.max_connections_per_addr, 720);
        // Enough descriptors: nothing changes.
        let mut roomy = Limits::default();
        fit_into(&mut roomy, 304, 20_000).unwrap();
        assert_eq!(roomy.max_connections, 10_000);
    }
}
