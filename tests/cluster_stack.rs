//! The stack's Kafka as a cluster: how many brokers, who leads a partition,
//! and one broker killed and started again through `scripts/stack.sh`.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::Stack;

impl Stack {
    /// How many brokers the cluster's metadata lists.
    pub async fn brokers_in_cluster(&self) -> usize {
        self.kafka()
            .fetch_metadata(None, Duration::from_secs(10))
            .await
            .expect("cluster metadata")
            .brokers()
            .len()
    }

    /// The node id leading `topic`/`partition`, and how many replicas it has.
    pub async fn leader_of(&self, topic: &str, partition: i32) -> (i32, usize) {
        let consumer: BaseConsumer = self.kafka().client_config().create().expect("client");
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("topic metadata");
            let found = metadata.topics()[0]
                .partitions()
                .iter()
                .find(|p| p.id() == partition)
                .unwrap_or_else(|| panic!("{topic} has no partition {partition}"));
            (found.leader(), found.replicas().len())
        })
        .await
        .unwrap()
    }
}

/// One broker of the stack, killed; started again when dropped unless
/// [`StackBroker::start`] did.
pub struct StackBroker {
    node: i32,
    started: bool,
}

impl StackBroker {
    /// SIGKILLs broker `node` (its node id) of the stack.
    pub fn kill(node: i32) -> StackBroker {
        let output = stack_script(&["kill", &format!("kafka-{node}")]);
        assert!(output.status.success(), "{}", crate::describe(&output));
        StackBroker {
            node,
            started: false,
        }
    }

    /// Starts it again and waits until it serves.
    pub fn start(mut self) -> Output {
        self.started = true;
        stack_script(&["start", &format!("kafka-{}", self.node)])
    }
}

impl Drop for StackBroker {
    fn drop(&mut self) {
        if !self.started {
            stack_script(&["start", &format!("kafka-{}", self.node)]);
        }
    }
}

fn stack_script(args: &[&str]) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/stack.sh");
    Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("running scripts/stack.sh")
}
