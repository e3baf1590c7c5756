//! The Kafka ACLs of a namespace, derived from the topic catalogue's
//! statement of who produces and consumes what ([`Service`]), so they never
//! drift from the code: each service may write what it produces and the
//! dead-letter topics of what it consumes, read what it consumes, and read
//! with its own consumer group; the operator (the CLI) may administer the
//! namespace's topics. Pure: `chorus acls apply` sends what this returns.

use std::collections::BTreeSet;

use chorus_avro::{Service, TopicCatalogue};

use crate::config::{ConfigError, Env};
use crate::kafka_admin::{AclBinding, CLUSTER, Operation, PatternType, ResourceType};

/// Consumer-group prefixes of the CLI's reading verbs (`tail`, `dlq`, `trace`, …):
/// each run uses a fresh group under one of them.
pub const OPERATOR_GROUP_PREFIXES: [&str; 2] = ["chorus-cli-", "chorus-tail-"];

/// The Kafka principal of each service and of the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    services: Vec<(Service, String)>,
    pub operator: String,
}

impl Default for Principals {
    /// `User:chorus-<service>` and `User:chorus`, the development stack's users.
    fn default() -> Principals {
        Principals {
            services: Service::ALL
                .iter()
                .map(|&s| (s, format!("User:chorus-{}", s.name())))
                .collect(),
            operator: "User:chorus".to_string(),
        }
    }
}

impl Principals {
    /// The defaults, each overridable by `CHORUS_ACL_PRINCIPAL_<SERVICE>` or
    /// `CHORUS_ACL_PRINCIPAL_OPERATOR` (a value must read `User:<name>`).
    pub fn from_env(env: &Env) -> Result<Principals, ConfigError> {
        let mut principals = Principals::default();
        for (service, principal) in &mut principals.services {
            let variable = format!("CHORUS_ACL_PRINCIPAL_{}", service.name().to_uppercase());
            *principal = principal_from(env, &variable, principal)?;
        }
        principals.operator =
            principal_from(env, "CHORUS_ACL_PRINCIPAL_OPERATOR", &principals.operator)?;
        Ok(principals)
    }

    pub fn of(&self, service: Service) -> &str {
        self.services
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, p)| p.as_str())
            .expect("every service has a principal")
    }

    /// Every principal, services first, without repeats.
    pub fn all(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.services
            .iter()
            .map(|(_, p)| p.as_str())
            .chain([self.operator.as_str()])
            .filter(|p| seen.insert(*p))
            .collect()
    }
}

fn principal_from(env: &Env, variable: &str, default: &str) -> Result<String, ConfigError> {
    let value = env.string(variable, default)?.trim().to_string();
    match value.strip_prefix("User:") {
        Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => Ok(value),
        _ => Err(ConfigError::new(
            variable,
            &value,
            "must be a Kafka principal such as User:chorus-order",
        )),
    }
}

/// Every ACL of `catalogue`'s namespace, in a stable order.
pub fn derive_acls(catalogue: &TopicCatalogue, principals: &Principals) -> Vec<AclBinding> {
    let mut acls = BTreeSet::new();
    let literal = |principal: &str, op, kind, name: &str| {
        AclBinding::allow(principal, op, kind, PatternType::Literal, name)
    };
    for &service in Service::ALL {
        let principal = principals.of(service);
        for topic in service.writes(catalogue) {
            acls.insert(literal(
                principal,
                Operation::Write,
                ResourceType::Topic,
                &topic,
            ));
        }
        for topic in service.reads(catalogue) {
            acls.insert(literal(
                principal,
                Operation::Read,
                ResourceType::Topic,
                &topic,
            ));
        }
        if service.consumes_anything() {
            let group = service.consumer_group(catalogue.namespace());
            acls.insert(literal(
                principal,
                Operation::Read,
                ResourceType::Group,
                &group,
            ));
        }
    }
    let operator = principals.operator.as_str();
    let prefix = format!("{}.", catalogue.namespace());
    for op in [
        Operation::Read,
        Operation::Write,
        Operation::Describe,
        Operation::Create,
        Operation::DescribeConfigs,
    ] {
        acls.insert(AclBinding::allow(
            operator,
            op,
            ResourceType::Topic,
            PatternType::Prefixed,
            &prefix,
        ));
    }
    for group in OPERATOR_GROUP_PREFIXES {
        acls.insert(AclBinding::allow(
            operator,
            Operation::Read,
            ResourceType::Group,
            PatternType::Prefixed,
            group,
        ));
    }
    acls.insert(literal(
        operator,
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER,
    ));
    acls.into_iter().collect()
}

/// Whether `acl` is about `namespace`'s resources (so `apply` may remove it
/// when it is not derived): a topic or group named `<namespace>.…` (literal
/// or prefixed), or the namespace itself.
pub fn in_namespace(acl: &AclBinding, namespace: &str) -> bool {
    matches!(acl.resource_type, ResourceType::Topic | ResourceType::Group)
        && (acl.name == namespace || acl.name.starts_with(&format!("{namespace}.")))
}

/// What `apply` changes: the derived ACLs missing on the broker, and the
/// principals' ACLs on the namespace that are not derived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclChanges {
    pub add: Vec<AclBinding>,
    pub remove: Vec<AclBinding>,
}

/// Compares the derived ACLs with those the broker holds for the principals.
pub fn changes(derived: &[AclBinding], existing: &[AclBinding], namespace: &str) -> AclChanges {
    let have: BTreeSet<&AclBinding> = existing.iter().collect();
    let want: BTreeSet<&AclBinding> = derived.iter().collect();
    AclChanges {
        add: derived
            .iter()
            .filter(|a| !have.contains(a))
            .cloned()
            .collect(),
        remove: existing
            .iter()
            .filter(|a| in_namespace(a, namespace) && !want.contains(a))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(acls: &[AclBinding], principal: &str) -> Vec<String> {
        acls.iter()
            .filter(|a| a.principal == principal)
            .map(|a| {
                format!(
                    "{} {} {} {}",
                    a.operation,
                    a.resource_type.as_str(),
                    a.pattern.as_str(),
                    a.name
                )
            })
            .collect()
    }

    #[test]
    fn a_worker_writes_what_it_emits_and_the_dead_letters_of_what_it_reads_with_its_own_group() {
        let acls = derive_acls(&TopicCatalogue::new("t1", 3), &Principals::default());
        assert_eq!(
            of(&acls, "User:chorus-payment"),
            [
                "READ topic literal t1.inventory",
                "WRITE topic literal t1.inventory.dlq",
                "READ topic literal t1.orders",
                "WRITE topic literal t1.orders.dlq",
                "WRITE topic literal t1.payments",
                "READ group literal t1.payment",
            ]
        );
        assert_eq!(
            of(&acls, "User:chorus-gateway"),
            [
                "WRITE topic literal t1.inventory.commands",
                "WRITE topic literal t1.orders"
            ]
        );
        let notification = of(&acls, "User:chorus-notification");
        assert!(notification.contains(&"WRITE topic literal t1.notifications".to_string()));
        assert!(
            !notification
                .iter()
                .any(|a| a.starts_with("READ topic literal t1.payments"))
        );
        assert!(acls.iter().all(|a| a.allow && a.host == "*"));
    }

    #[test]
    fn no_service_may_write_another_services_events() {
        let acls = derive_acls(&TopicCatalogue::new("t1", 3), &Principals::default());
        let writers = |topic: &str| -> Vec<String> {
            acls.iter()
                .filter(|a| a.operation == Operation::Write && a.name == topic)
                .map(|a| a.principal.clone())
                .collect()
        };
        assert_eq!(writers("t1.inventory"), ["User:chorus-inventory"]);
        assert_eq!(writers("t1.payments"), ["User:chorus-payment"]);
        assert_eq!(
            writers("t1.orders"),
            ["User:chorus-gateway", "User:chorus-order"]
        );
    }

    #[test]
    fn the_operator_administers_the_namespace_by_prefix() {
        let acls = derive_acls(&TopicCatalogue::new("t1", 3), &Principals::default());
        assert_eq!(
            of(&acls, "User:chorus"),
            [
                "READ topic prefixed t1.",
                "WRITE topic prefixed t1.",
                "CREATE topic prefixed t1.",
                "DESCRIBE topic prefixed t1.",
                "DESCRIBE_CONFIGS topic prefixed t1.",
                "READ group prefixed chorus-cli-",
                "READ group prefixed chorus-tail-",
                "DESCRIBE cluster literal kafka-cluster",
            ]
        );
    }

    #[test]
    fn apply_adds_what_is_missing_and_removes_only_this_namespaces_extras() {
        let catalogue = TopicCatalogue::new("t1", 3);
        let derived = derive_acls(&catalogue, &Principals::default());
        let stray = |name: &str| {
            AclBinding::allow(
                "User:chorus-order",
                Operation::Write,
                ResourceType::Topic,
                PatternType::Literal,
                name,
            )
        };
        let mut existing: Vec<AclBinding> = derived[1..].to_vec();
        existing.extend([
            stray("t1.inventory"),
            stray("t10.inventory"),
            stray("other"),
        ]);
        let changes = changes(&derived, &existing, "t1");
        assert_eq!(changes.add, [derived[0].clone()]);
        assert_eq!(changes.remove, [stray("t1.inventory")]);
        let settled = super::changes(&derived, &derived, "t1");
        assert_eq!(settled, AclChanges::default());
    }

    #[test]
    fn principals_come_from_the_environment_and_a_bad_one_names_its_variable() {
        let env = Env::from_pairs(&[
            ("CHORUS_ACL_PRINCIPAL_ORDER", "User:orders-svc"),
            ("CHORUS_ACL_PRINCIPAL_OPERATOR", "User:ops"),
        ]);
        let principals = Principals::from_env(&env).unwrap();
        assert_eq!(principals.of(Service::Order), "User:orders-svc");
        assert_eq!(principals.of(Service::Payment), "User:chorus-payment");
        assert_eq!(principals.operator, "User:ops");
        assert_eq!(principals.all().len(), 6);
        for bad in ["chorus-payment", "User:", "Group:x", "User:a b"] {
            let env = Env::from_pairs(&[("CHORUS_ACL_PRINCIPAL_PAYMENT", bad)]);
            let err = Principals::from_env(&env).unwrap_err();
            assert_eq!(err.variable, "CHORUS_ACL_PRINCIPAL_PAYMENT", "{bad}");
        }
    }
}
