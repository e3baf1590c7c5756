//! What the broker says the connected principal may do on some topics and
//! on a consumer group (DescribeTopics / DescribeConsumerGroups with the
//! authorized operations included).

use std::time::Duration;

use rdkafka::bindings as rd;

use super::acl::blocking;
use super::binding::Operation;
use super::request::{AdminHandle, c_string, error_code, error_text, slice, text};
use crate::kafka::KafkaSettings;

/// The broker's answer about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The resource is there; `None` when the broker does not say which
    /// operations are allowed (no authorizer, or a broker too old to tell).
    Allowed(Option<Vec<Operation>>),
    /// The principal may not even describe it (Kafka does not say whether
    /// it exists then).
    Refused,
    /// It does not exist.
    Missing,
    /// Any other error, as the broker worded it.
    Failed(String),
}

/// The answer for each topic of `topics`, in the broker's order.
pub async fn describe_topic_access(
    kafka: &KafkaSettings,
    topics: Vec<String>,
    timeout: Duration,
) -> Result<Vec<(String, Access)>, String> {
    let kafka = kafka.clone();
    blocking(move || {
        let admin = AdminHandle::connect(&kafka, timeout)?;
        let names: Vec<_> = topics
            .iter()
            .map(|t| c_string(t))
            .collect::<Result<_, _>>()?;
        let mut pointers: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        // SAFETY: the names are live for the call; the collection copies them
        // and is destroyed by `TopicCollection`'s Drop after the request.
        let collection = TopicCollection(unsafe {
            rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len())
        });
        let event = admin.request(
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            true,
            &format!("describing topics {topics:?} at {}", kafka.brokers),
            // SAFETY: the collection is live until after the request, which copies it.
            |rk, options, queue| unsafe {
                rd::rd_kafka_DescribeTopics(rk, collection.0, options, queue)
            },
        )?;
        // SAFETY: the event is live while its descriptions are read.
        let answers = unsafe {
            let result = rd::rd_kafka_event_DescribeTopics_result(event.0);
            let mut count = 0;
            slice(
                rd::rd_kafka_DescribeTopics_result_topics(result, &mut count),
                count,
            )
            .iter()
            .map(|&topic| {
                let name = text(rd::rd_kafka_TopicDescription_name(topic));
                let error = rd::rd_kafka_TopicDescription_error(topic);
                let mut count = 0;
                let operations =
                    rd::rd_kafka_TopicDescription_authorized_operations(topic, &mut count);
                (name, access(error, operations, count))
            })
            .collect()
        };
        Ok(answers)
    })
    .await
}

/// The answer for consumer group `group`.
pub async fn describe_group_access(
    kafka: &KafkaSettings,
    group: &str,
    timeout: Duration,
) -> Result<Access, String> {
    let kafka = kafka.clone();
    let group = group.to_string();
    blocking(move || {
        let admin = AdminHandle::connect(&kafka, timeout)?;
        let name = c_string(&group)?;
        let mut pointers = [name.as_ptr()];
        let event = admin.request(
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            true,
            &format!("describing consumer group {group} at {}", kafka.brokers),
            // SAFETY: the name is live for the call; librdkafka copies it.
            |rk, options, queue| unsafe {
                rd::rd_kafka_DescribeConsumerGroups(rk, pointers.as_mut_ptr(), 1, options, queue)
            },
        )?;
        // SAFETY: the event is live while its description is read.
        let answer = unsafe {
            let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.0);
            let mut count = 0;
            let groups = slice(
                rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count),
                count,
            );
            let Some(&description) = groups.first() else {
                return Err(format!("Kafka said nothing of consumer group {group}"));
            };
            let error = rd::rd_kafka_ConsumerGroupDescription_error(description);
            let mut count = 0;
            let operations = rd::rd_kafka_ConsumerGroupDescription_authorized_operations(
                description,
                &mut count,
            );
            access(error, operations, count)
        };
        Ok(answer)
    })
    .await
}

/// # Safety
/// `error` is NULL or a live error, `operations` NULL or `count` live
/// operations, both of a live result event.
unsafe fn access(
    error: *const rd::rd_kafka_error_t,
    operations: *const rd::rd_kafka_AclOperation_t,
    count: usize,
) -> Access {
    use rd::rd_kafka_resp_err_t::*;
    // SAFETY: per the function's contract.
    match unsafe { error_code(error) } {
        None => {}
        Some(
            RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
            | RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
        ) => {
            return Access::Refused;
        }
        Some(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART | RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) => {
            return Access::Missing;
        }
        // SAFETY: per the function's contract.
        Some(_) => return Access::Failed(unsafe { error_text(error) }),
    }
    if operations.is_null() {
        return Access::Allowed(None);
    }
    // SAFETY: per the function's contract.
    let operations = unsafe { slice(operations, count) };
    Access::Allowed(Some(
        operations
            .iter()
            .map(|&op| Operation::from_rd(op))
            .collect(),
    ))
}

struct TopicCollection(*mut rd::rd_kafka_TopicCollection_t);

impl Drop for TopicCollection {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_TopicCollection_of_topic_names, destroyed once.
        unsafe { rd::rd_kafka_TopicCollection_destroy(self.0) }
    }
}
