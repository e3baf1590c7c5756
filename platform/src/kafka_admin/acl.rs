//! The three ACL requests: create (idempotent on the broker's side: an
//! existing binding is success), describe by principal, and delete exactly
//! the bindings given.

use std::time::Duration;

use rdkafka::bindings as rd;

use super::binding::{AclBinding, Operation, PatternType, ResourceType, permission};
use super::request::{AdminHandle, c_string, error_text, or_null, slice, text};
use crate::kafka::KafkaSettings;

/// An `rd_kafka_AclBinding_t` (or filter: the same type in librdkafka),
/// destroyed on drop.
struct RawBinding(*mut rd::rd_kafka_AclBinding_t);

impl RawBinding {
    /// The exact binding; as a filter it matches that binding only.
    fn exact(binding: &AclBinding, filter: bool) -> Result<RawBinding, String> {
        let name = c_string(&binding.name)?;
        let principal = c_string(&binding.principal)?;
        let host = c_string(&binding.host)?;
        let mut errstr = [0 as std::ffi::c_char; 256];
        let new = if filter {
            rd::rd_kafka_AclBindingFilter_new
        } else {
            rd::rd_kafka_AclBinding_new
        };
        // SAFETY: the strings are NUL-terminated and outlive the call (librdkafka
        // copies them); errstr is a writable buffer of the size given.
        let raw = unsafe {
            new(
                binding.resource_type.to_rd(),
                name.as_ptr(),
                binding.pattern.to_rd(),
                principal.as_ptr(),
                host.as_ptr(),
                binding.operation.to_rd(),
                permission(binding.allow),
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if raw.is_null() {
            // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
            return Err(format!("ACL {binding}: {}", unsafe {
                text(errstr.as_ptr())
            }));
        }
        Ok(RawBinding(raw))
    }

    /// Every binding of `principal`, on any resource.
    fn of_principal(principal: &str) -> Result<RawBinding, String> {
        let principal = c_string(principal)?;
        let mut errstr = [0 as std::ffi::c_char; 256];
        // SAFETY: as in `exact`; NULL name and host mean any.
        let raw = unsafe {
            rd::rd_kafka_AclBindingFilter_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_ANY,
                or_null(None),
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_ANY,
                principal.as_ptr(),
                or_null(None),
                rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_ANY,
                rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                errstr.as_mut_ptr(),
                errstr.len(),
            )
        };
        if raw.is_null() {
            // SAFETY: librdkafka wrote a NUL-terminated message into errstr.
            return Err(unsafe { text(errstr.as_ptr()) });
        }
        Ok(RawBinding(raw))
    }
}

impl Drop for RawBinding {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_AclBinding(Filter)_new, destroyed once
        // (the requests copy what they are given).
        unsafe { rd::rd_kafka_AclBinding_destroy(self.0) }
    }
}

/// Reads a binding librdkafka returned.
///
/// # Safety
/// `acl` is a live binding of a result event.
unsafe fn read_binding(acl: *const rd::rd_kafka_AclBinding_t) -> AclBinding {
    // SAFETY: per the function's contract; the strings live as long as the binding.
    unsafe {
        AclBinding {
            principal: text(rd::rd_kafka_AclBinding_principal(acl)),
            resource_type: ResourceType::from_rd(rd::rd_kafka_AclBinding_restype(acl)),
            pattern: PatternType::from_rd(rd::rd_kafka_AclBinding_resource_pattern_type(acl)),
            name: text(rd::rd_kafka_AclBinding_name(acl)),
            operation: Operation::from_rd(rd::rd_kafka_AclBinding_operation(acl)),
            host: text(rd::rd_kafka_AclBinding_host(acl)),
            allow: rd::rd_kafka_AclBinding_permission_type(acl)
                == rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
        }
    }
}

/// Every ACL binding whose principal is `principal`.
pub async fn describe_acls(
    kafka: &KafkaSettings,
    principal: &str,
    timeout: Duration,
) -> Result<Vec<AclBinding>, String> {
    let kafka = kafka.clone();
    let principal = principal.to_string();
    blocking(move || {
        let admin = AdminHandle::connect(&kafka, timeout)?;
        let filter = RawBinding::of_principal(&principal)?;
        let event = admin.request(
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBEACLS,
            false,
            &format!("describing the ACLs of {principal} at {}", kafka.brokers),
            // SAFETY: the filter is live until after the request; librdkafka copies it.
            |rk, options, queue| unsafe { rd::rd_kafka_DescribeAcls(rk, filter.0, options, queue) },
        )?;
        // SAFETY: the event is live while its bindings are read.
        let found = unsafe {
            let result = rd::rd_kafka_event_DescribeAcls_result(event.0);
            let mut count = 0;
            slice(
                rd::rd_kafka_DescribeAcls_result_acls(result, &mut count),
                count,
            )
            .iter()
            .map(|acl| read_binding(*acl))
            .collect()
        };
        Ok(found)
    })
    .await
}

/// Creates `bindings` (an existing one is success). Needs ALTER on the cluster.
pub async fn create_acls(
    kafka: &KafkaSettings,
    bindings: Vec<AclBinding>,
    timeout: Duration,
) -> Result<(), String> {
    change_acls(kafka, bindings, Change::Create, timeout).await
}

/// Deletes exactly `bindings`.
pub async fn delete_acls(
    kafka: &KafkaSettings,
    bindings: Vec<AclBinding>,
    timeout: Duration,
) -> Result<(), String> {
    change_acls(kafka, bindings, Change::Delete, timeout).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Delete,
}

/// One request creating or deleting `bindings`; the first binding the
/// broker refused, if any, is the error.
async fn change_acls(
    kafka: &KafkaSettings,
    bindings: Vec<AclBinding>,
    change: Change,
    timeout: Duration,
) -> Result<(), String> {
    if bindings.is_empty() {
        return Ok(());
    }
    let kafka = kafka.clone();
    let (op, verb) = match change {
        Change::Create => (
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEACLS,
            "creating",
        ),
        Change::Delete => (
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEACLS,
            "deleting",
        ),
    };
    blocking(move || {
        let admin = AdminHandle::connect(&kafka, timeout)?;
        // A deletion takes filters, each matching its binding exactly.
        let raw: Vec<RawBinding> = bindings
            .iter()
            .map(|b| RawBinding::exact(b, change == Change::Delete))
            .collect::<Result<_, _>>()?;
        let mut pointers: Vec<*mut rd::rd_kafka_AclBinding_t> = raw.iter().map(|r| r.0).collect();
        let event = admin.request(
            op,
            false,
            &format!("{verb} ACLs at {}", kafka.brokers),
            // SAFETY: the bindings are live until `raw` drops, after the
            // request; librdkafka copies them.
            |rk, options, queue| unsafe {
                let (acls, count) = (pointers.as_mut_ptr(), pointers.len());
                match change {
                    Change::Create => rd::rd_kafka_CreateAcls(rk, acls, count, options, queue),
                    Change::Delete => rd::rd_kafka_DeleteAcls(rk, acls, count, options, queue),
                }
            },
        )?;
        // SAFETY: the event is live while its results are read; each result's
        // error lives as long as the event.
        unsafe {
            let mut count = 0;
            let errors: Vec<*const rd::rd_kafka_error_t> = match change {
                Change::Create => {
                    let result = rd::rd_kafka_event_CreateAcls_result(event.0);
                    slice(
                        rd::rd_kafka_CreateAcls_result_acls(result, &mut count),
                        count,
                    )
                    .iter()
                    .map(|r| rd::rd_kafka_acl_result_error(*r))
                    .collect()
                }
                Change::Delete => {
                    let result = rd::rd_kafka_event_DeleteAcls_result(event.0);
                    slice(
                        rd::rd_kafka_DeleteAcls_result_responses(result, &mut count),
                        count,
                    )
                    .iter()
                    .map(|r| rd::rd_kafka_DeleteAcls_result_response_error(*r))
                    .collect()
                }
            };
            for (binding, error) in bindings.iter().zip(errors) {
                if !error.is_null() {
                    return Err(format!("{verb} ACL {binding}: {}", error_text(error)));
                }
            }
        }
        Ok(())
    })
    .await
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(format!("the Kafka admin request panicked: {e}")))
}
