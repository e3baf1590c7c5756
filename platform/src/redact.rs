//! Credentials out of anything that may be logged or shown.

/// The URL with its password replaced, fit for logs and error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL to the parser (say, an unescaped `/` in the password):
        // still hide whatever follows `user:` in `scheme://user:password@host`.
        Err(_) => {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url.to_string();
            };
            let Some((userinfo, host)) = rest.split_once('@') else {
                return url.to_string();
            };
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:p@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u:p/w@h:1/db"), "postgres://u:***@h:1/db");
    }
}
