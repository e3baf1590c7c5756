//! Development mode (`CHORUS_DEV=true`): the gateway accepts the public
//! development JWT secret and payment tokens may travel unsealed. Guarantee:
//! a process in development mode listens on loopback addresses only (any
//! other address stops it at start-up naming `CHORUS_DEV` and the address's
//! variable), and says at every start that it runs in development mode.

use std::net::SocketAddr;

use crate::config::{ConfigError, Env};

pub const VARIABLE: &str = "CHORUS_DEV";

/// Whether `CHORUS_DEV` is on; when it is, every listener in `listeners`
/// (the variable that sets it, the address) must be a loopback address.
/// `0.0.0.0` and `::` are not: they answer on every interface.
pub fn from_env(env: &Env, listeners: &[(&str, SocketAddr)]) -> Result<bool, ConfigError> {
    let dev = env.parse(VARIABLE, false)?;
    if dev {
        for (variable, addr) in listeners {
            if !addr.ip().to_canonical().is_loopback() {
                return Err(ConfigError::new(
                    VARIABLE,
                    "true",
                    &format!(
                        "development mode (the public development JWT secret, unsealed \
                         payment tokens) serves loopback addresses only, and \
                         {variable}={addr} is not one: unset CHORUS_DEV for a deployment, \
                         or bind {variable} to 127.0.0.1 for a development run"
                    ),
                ));
            }
        }
    }
    Ok(dev)
}

/// The line every start in development mode logs.
pub fn warn_at_start() {
    tracing::warn!(
        "development mode (CHORUS_DEV=true): the public development JWT secret is \
         accepted and payment tokens may travel unsealed; never run it in production"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(value: &str, addr: &str) -> Result<bool, ConfigError> {
        let env = Env::from_pairs(&[(VARIABLE, value)]);
        from_env(&env, &[("CHORUS_HTTP_ADDR", addr.parse().unwrap())])
    }

    #[test]
    fn development_mode_listens_on_loopback_only() {
        for addr in [
            "127.0.0.1:8000",
            "127.0.0.9:0",
            "[::1]:8000",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(dev("true", addr).unwrap(), "{addr}");
        }
        for addr in [
            "0.0.0.0:8000",
            "[::]:8000",
            "10.0.0.5:8000",
            "[2001:db8::1]:80",
        ] {
            let err = dev("true", addr).unwrap_err();
            assert_eq!(err.variable, VARIABLE, "{addr}");
            assert!(
                err.problem.contains(&format!("CHORUS_HTTP_ADDR={addr}")),
                "{err}"
            );
        }
    }

    #[test]
    fn outside_development_any_address_is_fine() {
        assert!(!dev("false", "0.0.0.0:8000").unwrap());
        let env = Env::from_pairs(&[]);
        let public = ("CHORUS_HTTP_ADDR", "0.0.0.0:8000".parse().unwrap());
        assert!(!from_env(&env, &[public]).unwrap());
        assert_eq!(dev("yes", "127.0.0.1:1").unwrap_err().variable, VARIABLE);
    }
}
