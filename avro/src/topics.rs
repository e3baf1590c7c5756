//! The topic catalogue: every topic name, its partition count and dead-letter
//! topic, and which event types go where — defined here and nowhere else.

use crate::events::EventType;

/// Partitions per topic unless configured otherwise.
pub const DEFAULT_PARTITIONS: i32 = 6;

/// The topics of chorus, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Orders,
    Inventory,
    InventoryCommands,
    Payments,
    Notifications,
}

impl Topic {
    pub const ALL: &'static [Topic] = &[
        Topic::Orders,
        Topic::Inventory,
        Topic::InventoryCommands,
        Topic::Payments,
        Topic::Notifications,
    ];

    /// The short name, used after the namespace: `orders`, `inventory.commands`, …
    pub fn short_name(self) -> &'static str {
        match self {
            Topic::Orders => "orders",
            Topic::Inventory => "inventory",
            Topic::InventoryCommands => "inventory.commands",
            Topic::Payments => "payments",
            Topic::Notifications => "notifications",
        }
    }

    /// The event types published on this topic.
    pub fn event_types(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .iter()
            .copied()
            .filter(move |t| t.topic() == self)
    }
}

/// Concrete topic names under a namespace (`chorus` by default; tests use
/// their own so they never see each other's messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCatalogue {
    namespace: String,
    partitions: i32,
}

impl Default for TopicCatalogue {
    fn default() -> Self {
        TopicCatalogue::new("chorus", DEFAULT_PARTITIONS)
    }
}

impl TopicCatalogue {
    pub fn new(namespace: impl Into<String>, partitions: i32) -> Self {
        TopicCatalogue {
            namespace: namespace.into(),
            partitions,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// e.g. `chorus.orders`.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}.{}", self.namespace, topic.short_name())
    }

    /// e.g. `chorus.orders.dlq`.
    pub fn dead_letter(&self, topic: Topic) -> String {
        format!("{}.dlq", self.name(topic))
    }

    /// The full names of `topics`.
    pub fn names(&self, topics: &[Topic]) -> Vec<String> {
        topics.iter().map(|&t| self.name(t)).collect()
    }

    /// The full names a process writes when it publishes on `produces` and
    /// consumes `consumes`: those topics, and the dead-letter topics of what
    /// it consumes.
    pub fn written_by(&self, produces: &[Topic], consumes: &[Topic]) -> Vec<String> {
        let mut names = self.names(produces);
        names.extend(consumes.iter().map(|&t| self.dead_letter(t)));
        names
    }

    /// The topic an event type is published on.
    pub fn topic_of(&self, event_type: EventType) -> String {
        self.name(event_type.topic())
    }

    /// Every topic and dead-letter topic name, in a stable order.
    pub fn all_names(&self) -> Vec<String> {
        Topic::ALL
            .iter()
            .flat_map(|&t| [self.name(t), self.dead_letter(t)])
            .collect()
    }

    /// Which catalogue topic a name (full, or short like `orders`) refers to.
    pub fn resolve(&self, name: &str) -> Option<Topic> {
        Topic::ALL
            .iter()
            .copied()
            .find(|&t| name == self.name(t) || name == t.short_name())
    }

    /// Accepts a full topic name, a short catalogue name (`orders`) or a
    /// dead-letter name, and returns the full name to read from.
    pub fn full_name(&self, name: &str) -> String {
        match self.resolve(name) {
            Some(t) => self.name(t),
            None => match name.strip_suffix(".dlq").and_then(|n| self.resolve(n)) {
                Some(t) => self.dead_letter(t),
                None => name.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_topic_and_every_topic_has_a_dead_letter_topic() {
        let catalogue = TopicCatalogue::default();
        let names = catalogue.all_names();
        assert_eq!(names.len(), Topic::ALL.len() * 2);
        for t in EventType::ALL {
            assert!(names.contains(&catalogue.topic_of(*t)), "{t}");
        }
        assert_eq!(catalogue.dead_letter(Topic::Orders), "chorus.orders.dlq");
        assert_eq!(
            catalogue.topic_of(EventType::StockAdjusted),
            "chorus.inventory.commands"
        );
    }

    #[test]
    fn short_and_dead_letter_names_resolve_under_the_namespace() {
        let catalogue = TopicCatalogue::new("t1", 2);
        assert_eq!(catalogue.full_name("orders"), "t1.orders");
        assert_eq!(catalogue.full_name("orders.dlq"), "t1.orders.dlq");
        assert_eq!(catalogue.full_name("t1.payments"), "t1.payments");
        assert_eq!(catalogue.full_name("elsewhere"), "elsewhere");
    }
}
