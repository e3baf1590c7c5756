//! The `next` cursor of `GET /v1/orders`: the key of the last order a page
//! returned, opaque to clients (hex of a version, the key and a check), so
//! the encoding may change without breaking them. The check covers the key
//! and the list it belongs to (whose orders, which status, since when): a
//! cursor that was altered, cut short, or passed to another list is refused
//! instead of silently starting somewhere else. It is not a secret: the
//! caller's token alone decides whose orders are listed, so a forged cursor
//! can only move a caller within their own list.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::store::ListKey;

const VERSION: u8 = 1;
/// Bytes of the check at the end of a cursor.
const CHECK_LEN: usize = 8;
/// Longest cursor accepted, in characters (order ids are UUIDs: ~106).
pub const MAX_LEN: usize = 512;

/// The list a cursor continues: it is valid with these filters only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListScope<'a> {
    pub customer: Option<&'a str>,
    pub status: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
}

pub fn encode(key: &ListKey, scope: &ListScope<'_>) -> String {
    let mut bytes = vec![VERSION];
    bytes.extend(key.created_at.timestamp_micros().to_be_bytes());
    bytes.extend(key.order_id.as_bytes());
    let check = check(&bytes, scope);
    bytes.extend(check);
    hex::encode(bytes)
}

/// The key a cursor holds, or why it is not one this list returned.
pub fn decode(text: &str, scope: &ListScope<'_>) -> Result<ListKey, String> {
    let refused = || {
        "must be a `next` this list returned, passed back unchanged with the same \
         customer, status and since"
            .to_string()
    };
    if text.len() > MAX_LEN {
        return Err(refused());
    }
    let bytes = hex::decode(text).map_err(|_| refused())?;
    if bytes.len() < 1 + 8 + 1 + CHECK_LEN {
        return Err(refused());
    }
    let (body, given) = bytes.split_at(bytes.len() - CHECK_LEN);
    if given != check(body, scope) || body[0] != VERSION {
        return Err(refused());
    }
    let micros = i64::from_be_bytes(body[1..9].try_into().expect("8 bytes"));
    let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(refused)?;
    let order_id = String::from_utf8(body[9..].to_vec()).map_err(|_| refused())?;
    Ok(ListKey {
        created_at,
        order_id,
    })
}

fn check(body: &[u8], scope: &ListScope<'_>) -> [u8; CHECK_LEN] {
    // JSON keeps the fields apart: no two scopes hash the same text.
    let scope = serde_json::to_vec(&(
        scope.customer,
        scope.status,
        scope.since.map(|at| at.timestamp_micros()),
    ))
    .expect("a scope serializes");
    let digest = Sha256::new()
        .chain_update(b"chorus order list cursor\0")
        .chain_update((body.len() as u64).to_be_bytes())
        .chain_update(body)
        .chain_update(scope)
        .finalize();
    digest[..CHECK_LEN].try_into().expect("a digest is longer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ListKey {
        ListKey {
            created_at: DateTime::from_timestamp_micros(1_764_700_000_123_456).unwrap(),
            order_id: "0b5e7a52-8f0c-4d7e-9a43-4f3f3f0e2c11".into(),
        }
    }

    const ALICE: ListScope<'static> = ListScope {
        customer: Some("alice"),
        status: None,
        since: None,
    };

    #[test]
    fn a_cursor_gives_back_its_key_to_microseconds() {
        let cursor = encode(&key(), &ALICE);
        assert!(cursor.len() < 120, "{cursor}");
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode(&cursor, &ALICE), Ok(key()));
    }

    #[test]
    fn an_altered_cut_or_foreign_cursor_is_refused() {
        let cursor = encode(&key(), &ALICE);
        // Every single changed character.
        for i in 0..cursor.len() {
            let mut altered = cursor.clone().into_bytes();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(decode(&altered, &ALICE).is_err(), "accepted {altered}");
        }
        assert!(decode(&cursor[..cursor.len() - 2], &ALICE).is_err());
        assert!(decode(&format!("{cursor}00"), &ALICE).is_err());
        for junk in ["", "zz", "not a cursor", &"0".repeat(MAX_LEN + 2)] {
            assert!(decode(junk, &ALICE).is_err(), "{junk}");
        }
        // Another list: another customer, status or since.
        let others = [
            ListScope {
                customer: Some("bob"),
                ..ALICE
            },
            ListScope {
                customer: None,
                ..ALICE
            },
            ListScope {
                status: Some("CONFIRMED"),
                ..ALICE
            },
            ListScope {
                since: Some(Utc::now()),
                ..ALICE
            },
        ];
        for other in others {
            assert!(decode(&cursor, &other).is_err(), "{other:?}");
        }
    }
}
