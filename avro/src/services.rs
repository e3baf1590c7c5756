//! Which service produces and consumes which topic: the one statement of it
//! that the Kafka ACLs (`chorus acls apply`) and the services' start-up
//! checks are derived from. Read from the code: the event types a service
//! emits (its outbox, republished alike) decide the topics it writes; the
//! topics its consumer subscribes to decide what it reads, and a message it
//! cannot apply (or whose external call never goes through) is written to
//! that topic's dead-letter topic.

use crate::events::EventType;
use crate::topics::{Topic, TopicCatalogue};

/// The services of chorus, each its own Kafka principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Gateway,
    Order,
    Inventory,
    Payment,
    Notification,
}

impl Service {
    pub const ALL: &'static [Service] = &[
        Service::Gateway,
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ];

    /// `gateway`, `order`, …: the worker's name, its consumer group suffix.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Order => "order",
            Service::Inventory => "inventory",
            Service::Payment => "payment",
            Service::Notification => "notification",
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The event types this service publishes.
    pub fn emits(self) -> &'static [EventType] {
        use EventType::*;
        match self {
            Service::Gateway => &[OrderPlaced, OrderCancellationRequested, StockAdjusted],
            // Confirmed or cancelled by the saga's facts, or by its deadline.
            Service::Order => &[OrderConfirmed, OrderCancelled],
            Service::Inventory => &[StockReserved, StockReservationFailed, StockReleased],
            Service::Payment => &[PaymentAuthorized, PaymentFailed, PaymentVoided],
            Service::Notification => &[NotificationSent],
        }
    }

    /// The topics this service's consumer subscribes to (none for the gateway).
    pub fn consumes(self) -> &'static [Topic] {
        match self {
            Service::Gateway => &[],
            Service::Order => &[Topic::Orders, Topic::Inventory, Topic::Payments],
            Service::Inventory => &[Topic::InventoryCommands, Topic::Orders, Topic::Payments],
            Service::Payment => &[Topic::Inventory, Topic::Orders],
            Service::Notification => &[Topic::Orders],
        }
    }

    /// The topics this service publishes events on, in catalogue order.
    pub fn produces(self) -> Vec<Topic> {
        Topic::ALL
            .iter()
            .copied()
            .filter(|t| self.emits().iter().any(|e| e.topic() == *t))
            .collect()
    }

    /// Whether this service has a consumer group (every worker; not the gateway).
    pub fn consumes_anything(self) -> bool {
        !self.consumes().is_empty()
    }

    /// The service's consumer group under `namespace`: `<namespace>.<service>`.
    pub fn consumer_group(self, namespace: &str) -> String {
        format!("{namespace}.{}", self.name())
    }

    /// The full names of the topics the service writes: what it produces, and
    /// the dead-letter topics of what it consumes.
    pub fn writes(self, catalogue: &TopicCatalogue) -> Vec<String> {
        catalogue.written_by(&self.produces(), self.consumes())
    }

    /// The full names of the topics the service reads.
    pub fn reads(self, catalogue: &TopicCatalogue) -> Vec<String> {
        catalogue.names(self.consumes())
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_exactly_one_producer() {
        for event_type in EventType::ALL {
            let producers: Vec<Service> = Service::ALL
                .iter()
                .copied()
                .filter(|s| s.emits().contains(event_type))
                .collect();
            assert_eq!(producers.len(), 1, "{event_type}: {producers:?}");
        }
    }

    #[test]
    fn every_topic_is_consumed_except_the_notifications_record() {
        for topic in Topic::ALL {
            let consumed = Service::ALL.iter().any(|s| s.consumes().contains(topic));
            assert_eq!(consumed, *topic != Topic::Notifications, "{topic:?}");
        }
    }

    #[test]
    fn a_worker_writes_what_it_emits_and_the_dead_letters_of_what_it_reads() {
        let catalogue = TopicCatalogue::new("t1", 2);
        assert_eq!(
            Service::Payment.writes(&catalogue),
            ["t1.payments", "t1.inventory.dlq", "t1.orders.dlq"]
        );
        assert_eq!(
            Service::Payment.reads(&catalogue),
            ["t1.inventory", "t1.orders"]
        );
        assert_eq!(
            Service::Gateway.writes(&catalogue),
            ["t1.orders", "t1.inventory.commands"]
        );
        assert!(Service::Gateway.reads(&catalogue).is_empty());
        assert_eq!(Service::Order.consumer_group("t1"), "t1.order");
        assert_eq!(
            Service::from_name("notification"),
            Some(Service::Notification)
        );
        assert_eq!(Service::from_name("nobody"), None);
    }
}
