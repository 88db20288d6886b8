//! The Kafka mapping: the one description the consumer and the publisher follow —
//! which topics to consume, which event type (or which value of a field of it) makes
//! which [`Action`], how a message's fields are read ([`Fields`]: orderId, lines,
//! quantity, TTL, locations, and the templates that form an item's key), what a
//! cancellation of a committed order does ([`CancelAfterCommit`]), and which topic
//! each published event goes to and how its body is laid out ([`Publishing`]).
//!
//! Without `--kafka-config` the mapping is [`Mapping::default`] (today's built-in
//! event types, each consumed from the topic of its name, with `--kafka-topics`,
//! `--kafka-map` and `--kafka-publish-topic` applied on top). With it, the file (TOML
//! for `.toml`, YAML for `.yaml` / `.yml`) is the mapping; unknown keys and bad values
//! are start errors naming the file and the field. The keys (every one optional but
//! `events`; examples/kafka/ has a commented file per seed):
//!
//! ```toml
//! topics = ["order.updated"]           # default: the event types of [events]
//! cancel_after_commit = "restock"      # or "reject"; --cancel-after-commit wins
//! [fields]                             # names tried in order (a string or a list)
//! event_type = ["eventType", "type"]   # none found: the topic without ".topic"
//! item_key = ["{sku}", "{productId}:{variantId}", "{productId}"]
//! [events]
//! "order.created" = "reserve"
//! [events."order.updated"]             # routed by a field's value
//! route_by = "status"
//! routes = { delivered = "commit", cancelled = "cancel", shipped = "ignore" }
//! otherwise = "ignore"                 # default: dead-letter the message
//! [publish]
//! topic = "{type}"                     # every published event's topic
//! topics = { "inventory.reservation_failed" = "order.reservation.failed.topic" }
//! payload = "envelope"                 # or "bare": the event's data alone
//! payloads = { "inventory.reservation_failed" = "bare" }
//! lines = ["inventory.reserved"]       # one event per line (sku, quantity, ...)
//! ```

use super::events::{Action, LINE_TYPES, PUBLISHED_TYPES};
use super::incoming::{parse_with, Incoming};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What a cancellation (or payment failure) of an order that is already committed
/// does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CancelAfterCommit {
    /// Put back on hand what is left of the order's sale: a `ReturnSold` per line and
    /// location, bounded by the engine's return ledger (a repeat changes nothing).
    #[default]
    Restock,
    /// Send the message to the dead-letter topic with the reason.
    Reject,
}

impl CancelAfterCommit {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelAfterCommit::Restock => "restock",
            CancelAfterCommit::Reject => "reject",
        }
    }
}

/// An item-key template: literal text and `{field}` placeholders, each filled with
/// the line's field (a non-empty string). A template applies only when every field it
/// names is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<KeyPart>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyPart {
    Text(String),
    Field(String),
}

impl KeyTemplate {
    pub fn parse(text: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(KeyPart::Text(rest.to_owned()));
                    rest = "";
                }
                Some(i) if rest.as_bytes()[i] == b'}' => return Err(format!("{text:?}: '}}' without '{{'")),
                Some(i) => {
                    if i > 0 {
                        parts.push(KeyPart::Text(rest[..i].to_owned()));
                    }
                    let after = &rest[i + 1..];
                    let end = after.find('}').ok_or_else(|| format!("{text:?}: '{{' without '}}'"))?;
                    let name = &after[..end];
                    if name.is_empty() || name.contains('{') {
                        return Err(format!("{text:?}: a placeholder must name a field, as in {{productId}}"));
                    }
                    parts.push(KeyPart::Field(name.to_owned()));
                    rest = &after[end + 1..];
                }
            }
        }
        if !parts.iter().any(|p| matches!(p, KeyPart::Field(_))) {
            return Err(format!("{text:?}: names no field (write it as {{field}})"));
        }
        Ok(KeyTemplate { parts, text: text.to_owned() })
    }

    /// The key for `object`, if every field the template names is a non-empty string.
    pub fn fill(&self, object: &serde_json::Value) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                KeyPart::Text(t) => out.push_str(t),
                KeyPart::Field(f) => out.push_str(object.get(f)?.as_str().filter(|s| !s.is_empty())?),
            }
        }
        Some(out)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// How a consumed message's fields are read: for each, the names tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The event type of a bare payload (an envelope `{type, data}` names its own);
    /// none found: the topic name without a `.topic` suffix.
    pub event_type: Vec<String>,
    /// The event id of a bare payload (an envelope's is its `id`).
    pub event_id: Vec<String>,
    /// The order id: a non-empty string or a whole number.
    pub order_id: Vec<String>,
    /// The reservation id (a commit or confirm without an orderId uses it).
    pub reservation_id: Vec<String>,
    /// The list of an order's lines.
    pub items: Vec<String>,
    /// A line's quantity (a whole number).
    pub quantity: Vec<String>,
    /// The item a line (or a product event) names: the first template whose fields
    /// the line has.
    pub item_key: Vec<KeyTemplate>,
    /// The location (warehouse) a line must come from.
    pub location: Vec<String>,
    /// The order's delivery region.
    pub region: Vec<String>,
    /// The order's allocation strategy.
    pub allocation: Vec<String>,
    /// The order's own TTL in seconds (else the server's `--default-ttl`).
    pub ttl: Vec<String>,
    /// The on-hand quantity of a product event (create_item / set_item).
    pub on_hand: Vec<String>,
    /// The low-stock threshold of a product event.
    pub low_stock_threshold: Vec<String>,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for Fields {
    /// What stockd read before mapping files existed.
    fn default() -> Self {
        Fields {
            event_type: names(&["eventType", "type"]),
            event_id: names(&["eventId", "id", "idempotencyId"]),
            order_id: names(&["orderId", "order_id"]),
            reservation_id: names(&["reservationId"]),
            items: names(&["items"]),
            quantity: names(&["quantity"]),
            item_key: ["{sku}", "{productId}:{variantId}", "{productId}"]
                .iter()
                .map(|t| KeyTemplate::parse(t).expect("built-in template"))
                .collect(),
            location: names(&super::incoming::LOCATION_FIELDS),
            region: names(&["region"]),
            allocation: names(&["allocation", "allocationStrategy"]),
            ttl: names(&["expiresIn"]),
            on_hand: names(&["availableStock", "quantity", "stock", "onHand", "initialStock"]),
            low_stock_threshold: names(&["thresholdStock", "lowStockThreshold"]),
        }
    }
}

/// What an event type makes stockd do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Do(Action),
    /// The value of `field` (a string, number or boolean, as text) picks the action;
    /// a value not listed takes `otherwise`, or is dead-lettered when that is `None`.
    Route {
        field: String,
        routes: Vec<(String, Action)>,
        otherwise: Option<Action>,
    },
}

/// How a published event's body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// Seed 002's envelope: `{id, type, source, dataVersion, timestamp,
    /// correlationId, data}`.
    #[default]
    Envelope,
    /// The envelope's `data` alone, as seed 000 publishes its events; the event's
    /// id and type are still in the Kafka headers `id` and `type`.
    Bare,
}

impl Payload {
    fn parse(s: &str) -> Option<Payload> {
        match s {
            "envelope" => Some(Payload::Envelope),
            "bare" => Some(Payload::Bare),
            _ => None,
        }
    }
}

/// What published events look like and where they go: `topic` (a template; `{type}`
/// is the event type) unless `by_type` names a topic for the event's type; `payload`
/// unless `payload_by_type` names one for the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publishing {
    pub topic: String,
    pub by_type: Vec<(String, String)>,
    pub payload: Payload,
    pub payload_by_type: Vec<(String, Payload)>,
    /// Event types published one event per line (`publish.lines`).
    pub per_line: Vec<String>,
}

impl Default for Publishing {
    fn default() -> Self {
        Publishing::from("{type}")
    }
}

impl From<&str> for Publishing {
    fn from(template: &str) -> Self {
        Publishing {
            topic: template.to_owned(),
            by_type: Vec::new(),
            payload: Payload::default(),
            payload_by_type: Vec::new(),
            per_line: Vec::new(),
        }
    }
}

impl Publishing {
    pub fn topic_for(&self, event_type: &str) -> String {
        match self.by_type.iter().find(|(t, _)| t == event_type) {
            Some((_, topic)) => topic.clone(),
            None => self.topic.replace("{type}", event_type),
        }
    }

    pub fn payload_for(&self, event_type: &str) -> Payload {
        self.payload_by_type.iter().find(|(t, _)| t == event_type).map_or(self.payload, |(_, p)| *p)
    }

    /// Whether events of this type go out one per line of their `items`.
    pub fn per_line(&self, event_type: &str) -> bool {
        self.per_line.iter().any(|t| t == event_type)
    }
}

/// The whole mapping (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Topics to consume.
    pub topics: Vec<String>,
    pub cancel_after_commit: CancelAfterCommit,
    pub fields: Arc<Fields>,
    /// Event type → rule, in file order.
    pub rules: Vec<(String, Rule)>,
    pub publish: Publishing,
    /// The file it was read from, if any.
    pub source: Option<String>,
}

impl Default for Mapping {
    /// The built-in mapping: every action's default event types, each consumed from
    /// the topic of its name; the built-in fields; events published to `{type}`.
    fn default() -> Self {
        let mut rules = Vec::new();
        for a in Action::ALL {
            for t in a.default_types() {
                rules.push(((*t).to_owned(), Rule::Do(a)));
            }
        }
        let topics = rules.iter().map(|(t, _)| t.clone()).collect();
        Mapping {
            topics,
            cancel_after_commit: CancelAfterCommit::default(),
            fields: Arc::new(Fields::default()),
            rules,
            publish: Publishing::default(),
            source: None,
        }
    }
}

/// Why a message has no action: for the dead-letter topic.
pub type RouteError = String;

impl Mapping {
    /// The built-in mapping with the flags' overrides: each `ACTION=TYPE[,TYPE...]`
    /// replaces the types of its action (`--kafka-map`); then the consumed topics are
    /// `topics` when given (`--kafka-topics`), else every mapped type.
    pub fn with_overrides(overrides: &[String]) -> Result<Mapping, String> {
        let mut map = Mapping::default();
        for o in overrides.iter().filter(|o| !o.trim().is_empty()) {
            let (action, types) =
                o.split_once('=').ok_or_else(|| format!("--kafka-map {o:?}: expected ACTION=TYPE,..."))?;
            let action = Action::parse(action.trim()).ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!("--kafka-map {o:?}: unknown action (one of {})", names.join(", "))
            })?;
            map.rules.retain(|(_, r)| *r != Rule::Do(action));
            for t in types.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                map.rules.retain(|(et, _)| et != t);
                map.rules.push((t.to_owned(), Rule::Do(action)));
            }
        }
        map.topics = map.types();
        Ok(map)
    }

    /// The mapping `--kafka-config` and the other Kafka flags describe. With a file,
    /// `--kafka-topics`, `--kafka-map` and `--kafka-publish-topic` are refused (the
    /// file says those); `--cancel-after-commit` overrides the file's policy.
    pub fn from_args(args: &super::KafkaArgs) -> Result<Mapping, String> {
        let topics: Vec<String> =
            args.kafka_topics.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
        let overrides: Vec<String> = args.kafka_map.iter().filter(|o| !o.trim().is_empty()).cloned().collect();
        let mut mapping = match &args.kafka_config {
            Some(path) => {
                let clash = [
                    (!topics.is_empty(), "--kafka-topics"),
                    (!overrides.is_empty(), "--kafka-map"),
                    (args.kafka_publish_topic.is_some(), "--kafka-publish-topic"),
                ];
                if let Some((_, flag)) = clash.iter().find(|(set, _)| *set) {
                    return Err(format!(
                        "kafka config {}: {flag} cannot be combined with --kafka-config (say it in the file)",
                        path.display()
                    ));
                }
                Mapping::load(path)?
            }
            None => {
                let mut m = Mapping::with_overrides(&overrides)?;
                if !topics.is_empty() {
                    m.topics = topics;
                }
                if let Some(t) = &args.kafka_publish_topic {
                    m.publish = Publishing::from(t.as_str());
                }
                m
            }
        };
        if let Some(policy) = args.cancel_after_commit {
            mapping.cancel_after_commit = policy;
        }
        Ok(mapping)
    }

    /// Reads and checks a mapping file (`.toml`, `.yaml`, `.yml`).
    pub fn load(path: &Path) -> Result<Mapping, String> {
        let what = format!("kafka config {}", path.display());
        let yaml = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("yaml" | "yml") => true,
            Some("toml") => false,
            _ => return Err(format!("{what}: unknown format; name it *.toml, *.yaml or *.yml")),
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: cannot read it: {e}"))?;
        let mut m = parse(&text, yaml).map_err(|e| format!("{what}: {e}"))?;
        m.source = Some(path.display().to_string());
        Ok(m)
    }

    /// Every event type mapped, in a stable order.
    pub fn types(&self) -> Vec<String> {
        self.rules.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Parses a consumed message with this mapping's fields.
    pub fn parse(&self, topic: &str, payload: Option<&[u8]>) -> Result<Incoming, String> {
        parse_with(&self.fields, topic, payload)
    }

    /// The action of a parsed message: `Ok(None)` when its type is not mapped;
    /// `Err` when it is routed by a field that is missing or holds a value with no
    /// route and no `otherwise`.
    pub fn route(&self, incoming: &Incoming) -> Result<Option<Action>, RouteError> {
        let Some((_, rule)) = self.rules.iter().find(|(t, _)| *t == incoming.event_type) else {
            return Ok(None);
        };
        match rule {
            Rule::Do(a) => Ok(Some(*a)),
            Rule::Route { field, routes, otherwise } => {
                let value = match incoming.data.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
                    _ if otherwise.is_some() => return Ok(*otherwise),
                    _ => return Err(format!("{}: missing {field} (the event is routed by it)", incoming.event_type)),
                };
                match routes.iter().find(|(v, _)| *v == value) {
                    Some((_, a)) => Ok(Some(*a)),
                    None => otherwise.map(Some).ok_or_else(|| {
                        let known: Vec<&str> = routes.iter().map(|(v, _)| v.as_str()).collect();
                        format!(
                            "{}: {field} {value:?} has no route (routed: {}; set `otherwise` to accept others)",
                            incoming.event_type,
                            known.join(", ")
                        )
                    }),
                }
            }
        }
    }
}

// ---- the file ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    topics: Option<Vec<String>>,
    cancel_after_commit: Option<PolicyName>,
    #[serde(default)]
    fields: FieldsFile,
    events: BTreeMap<String, RuleFile>,
    #[serde(default)]
    publish: PublishFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsFile {
    event_type: Option<Names>,
    event_id: Option<Names>,
    order_id: Option<Names>,
    reservation_id: Option<Names>,
    items: Option<Names>,
    quantity: Option<Names>,
    item_key: Option<Names>,
    location: Option<Names>,
    region: Option<Names>,
    allocation: Option<Names>,
    ttl: Option<Names>,
    on_hand: Option<Names>,
    low_stock_threshold: Option<Names>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFile {
    topic: Option<String>,
    #[serde(default)]
    topics: BTreeMap<String, String>,
    payload: Option<String>,
    #[serde(default)]
    payloads: BTreeMap<String, String>,
    #[serde(default)]
    lines: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutedFile {
    route_by: String,
    routes: BTreeMap<String, ActionName>,
    otherwise: Option<ActionName>,
}

/// `"reserve"`, or a routed rule's table.
#[derive(Debug)]
enum RuleFile {
    Do(Action),
    Routed(RoutedFile),
}

impl<'de> Deserialize<'de> for RuleFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RuleFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an action name ({}) or a table with route_by and routes", action_names())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RuleFile, E> {
                parse_action(s).map(RuleFile::Do).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RuleFile, A::Error> {
                RoutedFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(RuleFile::Routed)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy)]
struct ActionName(Action);

impl<'de> Deserialize<'de> for ActionName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_action(&s).map(ActionName).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy)]
struct PolicyName(CancelAfterCommit);

impl<'de> Deserialize<'de> for PolicyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "restock" => Ok(PolicyName(CancelAfterCommit::Restock)),
            "reject" => Ok(PolicyName(CancelAfterCommit::Reject)),
            other => Err(de::Error::custom(format!("must be restock or reject, got {other:?}"))),
        }
    }
}

/// One name or a list of names.
#[derive(Debug)]
struct Names(Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name or a list of field names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Names, E> {
                Ok(Names(vec![s.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Names(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn action_names() -> String {
    let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
    names.push("return");
    names.join(", ")
}

fn parse_action(s: &str) -> Result<Action, String> {
    Action::parse(s).ok_or_else(|| format!("unknown action {s:?}; one of {}", action_names()))
}

fn check_names(field: &str, n: Option<Names>, default: &[String]) -> Result<Vec<String>, String> {
    let Some(Names(list)) = n else { return Ok(default.to_vec()) };
    if list.is_empty() {
        return Err(format!("fields.{field}: must name at least one field"));
    }
    if let Some(i) = list.iter().position(|s| s.trim().is_empty()) {
        return Err(format!("fields.{field}[{i}]: must not be empty"));
    }
    Ok(list)
}

/// Parses and checks a mapping document.
fn parse(text: &str, yaml: bool) -> Result<Mapping, String> {
    let file: File = if yaml {
        let de = serde_norway::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| describe(e.path().to_string(), e.into_inner()))?
    } else {
        let de = toml::Deserializer::parse(text).map_err(|e| format!("malformed TOML: {}", e.message()))?;
        serde_path_to_error::deserialize(de)
            .map_err(|e| describe(e.path().to_string(), e.into_inner().message().to_owned()))?
    };
    let d = Fields::default();
    let f = file.fields;
    let item_key = match f.item_key {
        None => d.item_key.clone(),
        Some(n) => check_names("item_key", Some(n), &[])?
            .iter()
            .enumerate()
            .map(|(i, t)| KeyTemplate::parse(t).map_err(|e| format!("fields.item_key[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
    };
    let fields = Fields {
        event_type: check_names("event_type", f.event_type, &d.event_type)?,
        event_id: check_names("event_id", f.event_id, &d.event_id)?,
        order_id: check_names("order_id", f.order_id, &d.order_id)?,
        reservation_id: check_names("reservation_id", f.reservation_id, &d.reservation_id)?,
        items: check_names("items", f.items, &d.items)?,
        quantity: check_names("quantity", f.quantity, &d.quantity)?,
        item_key,
        location: check_names("location", f.location, &d.location)?,
        region: check_names("region", f.region, &d.region)?,
        allocation: check_names("allocation", f.allocation, &d.allocation)?,
        ttl: check_names("ttl", f.ttl, &d.ttl)?,
        on_hand: check_names("on_hand", f.on_hand, &d.on_hand)?,
        low_stock_threshold: check_names("low_stock_threshold", f.low_stock_threshold, &d.low_stock_threshold)?,
    };
    if file.events.is_empty() {
        return Err("events: maps no event type".into());
    }
    let mut rules = Vec::with_capacity(file.events.len());
    for (event_type, rule) in file.events {
        if event_type.trim().is_empty() {
            return Err("events: an event type must not be empty".into());
        }
        let rule = match rule {
            RuleFile::Do(a) => Rule::Do(a),
            RuleFile::Routed(r) => {
                let at = format!("events.{event_type:?}");
                if r.route_by.trim().is_empty() {
                    return Err(format!("{at}.route_by: must name a field"));
                }
                if r.routes.is_empty() {
                    return Err(format!("{at}.routes: routes no value"));
                }
                Rule::Route {
                    field: r.route_by,
                    routes: r.routes.into_iter().map(|(v, a)| (v, a.0)).collect(),
                    otherwise: r.otherwise.map(|a| a.0),
                }
            }
        };
        rules.push((event_type, rule));
    }
    let topics = match file.topics {
        None => rules.iter().map(|(t, _)| t.clone()).collect(),
        Some(t) if t.is_empty() => {
            return Err("topics: lists no topic (leave it out to consume the event types)".into())
        }
        Some(t) => {
            for (i, topic) in t.iter().enumerate() {
                check_topic(&format!("topics[{i}]"), topic)?;
                if t[..i].contains(topic) {
                    return Err(format!("topics[{i}]: {topic:?} appears twice"));
                }
            }
            t
        }
    };
    let mut publish = Publishing::default();
    if let Some(t) = file.publish.topic {
        check_topic("publish.topic", &t.replace("{type}", "x"))?;
        publish.topic = t;
    }
    let published = |at: &str, event_type: &str| {
        if PUBLISHED_TYPES.contains(&event_type) {
            Ok(())
        } else {
            Err(format!("{at}: stockd publishes no such event; one of {}", PUBLISHED_TYPES.join(", ")))
        }
    };
    let payload = |at: &str, p: &str| {
        Payload::parse(p).ok_or_else(|| format!("{at}: unknown payload {p:?}; one of envelope, bare"))
    };
    for (event_type, topic) in file.publish.topics {
        let at = format!("publish.topics.{event_type:?}");
        published(&at, &event_type)?;
        check_topic(&at, &topic)?;
        publish.by_type.push((event_type, topic));
    }
    if let Some(p) = file.publish.payload {
        publish.payload = payload("publish.payload", &p)?;
    }
    for (event_type, p) in file.publish.payloads {
        let at = format!("publish.payloads.{event_type:?}");
        published(&at, &event_type)?;
        publish.payload_by_type.push((event_type, payload(&at, &p)?));
    }
    for (i, event_type) in file.publish.lines.into_iter().enumerate() {
        let at = format!("publish.lines[{i}]");
        if !LINE_TYPES.contains(&event_type.as_str()) {
            return Err(format!("{at}: {event_type:?} has no lines; one of {}", LINE_TYPES.join(", ")));
        }
        publish.per_line.push(event_type);
    }
    Ok(Mapping {
        topics,
        cancel_after_commit: file.cancel_after_commit.map(|p| p.0).unwrap_or_default(),
        fields: Arc::new(fields),
        rules,
        publish,
        source: None,
    })
}

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`.
fn check_topic(field: &str, topic: &str) -> Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{field}: {topic:?} is not a Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-')"))
    }
}

/// `field: reason` for a deserialization error at `path` (see [`crate::config_file`]).
fn describe(path: String, reason: impl ToString) -> String {
    crate::config_file::describe(path, reason, "(top level)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incoming(event_type: &str, data: serde_json::Value) -> Incoming {
        let body = data.to_string();
        let m = Mapping::default();
        let mut i = m.parse(event_type, Some(body.as_bytes())).unwrap();
        i.event_type = event_type.to_owned();
        i
    }

    #[test]
    fn default_mapping_is_the_built_in_one() {
        let m = Mapping::default();
        let route = |t: &str| m.route(&incoming(t, json!({}))).unwrap();
        assert_eq!(route("order.created"), Some(Action::Reserve));
        assert_eq!(route("payment.completed"), Some(Action::Commit));
        assert_eq!(route("payment.failed"), Some(Action::PaymentFailed));
        assert_eq!(route("order.returned"), Some(Action::Restock));
        assert_eq!(route("nope"), None);
        assert_eq!(m.topics, m.types());
        assert_eq!(m.publish.topic_for("inventory.reserved"), "inventory.reserved");
        let m = Mapping::with_overrides(&["reserve=cart.checkout".into()]).unwrap();
        assert_eq!(m.route(&incoming("order.created", json!({}))).unwrap(), None);
        assert_eq!(m.route(&incoming("cart.checkout", json!({}))).unwrap(), Some(Action::Reserve));
        assert!(m.topics.contains(&"cart.checkout".to_owned()) && !m.topics.contains(&"order.created".to_owned()));
        assert!(Mapping::with_overrides(&["bogus=x".into()]).is_err());
    }

    const SEED_003: &str = r#"
topics = ["order.created", "order.updated", "order.cancelled", "order.delivered"]
cancel_after_commit = "reject"
[fields]
event_type = ["event", "eventType"]
item_key = "{sku}"
[events]
"order.created" = "reserve"
"order.cancelled" = "cancel"
[events."order.updated"]
route_by = "status"
routes = { delivered = "commit", cancelled = "cancel", shipped = "ignore" }
[publish]
topic = "stock.{type}"
topics = { "inventory.reservation_failed" = "order.reservation.failed.topic" }
payloads = { "inventory.reservation_failed" = "bare" }
lines = ["inventory.reserved"]
"#;

    #[test]
    fn a_file_routes_by_a_field_and_names_publish_topics() {
        let m = parse(SEED_003, false).unwrap();
        assert_eq!(m.cancel_after_commit, CancelAfterCommit::Reject);
        assert_eq!(m.topics.len(), 4);
        let upd = |status: serde_json::Value| m.route(&incoming("order.updated", json!({ "status": status })));
        assert_eq!(upd(json!("delivered")), Ok(Some(Action::Commit)));
        assert_eq!(upd(json!("cancelled")), Ok(Some(Action::Cancel)));
        assert_eq!(upd(json!("shipped")), Ok(Some(Action::Ignore)));
        let e = upd(json!("lost")).unwrap_err();
        assert!(e.contains("status \"lost\" has no route"), "{e}");
        assert!(m.route(&incoming("order.updated", json!({}))).unwrap_err().contains("missing status"));
        assert_eq!(m.route(&incoming("order.delivered", json!({}))), Ok(None));
        assert_eq!(m.publish.topic_for("inventory.reserved"), "stock.inventory.reserved");
        assert_eq!(m.publish.topic_for("inventory.reservation_failed"), "order.reservation.failed.topic");
        assert_eq!(m.publish.payload_for("inventory.reservation_failed"), Payload::Bare);
        assert_eq!(m.publish.payload_for("inventory.reserved"), Payload::Envelope, "the default");
        assert!(m.publish.per_line("inventory.reserved") && !m.publish.per_line("inventory.released"));
        let all_bare = parse("[events]\n\"a\" = \"reserve\"\n[publish]\npayload = \"bare\"\n", false).unwrap();
        assert_eq!(all_bare.publish.payload_for("inventory.released"), Payload::Bare);
        // The same in YAML, with `otherwise`.
        let yaml =
            "events:\n  order.updated:\n    route_by: status\n    routes: {delivered: commit}\n    otherwise: ignore\n";
        let m = parse(yaml, true).unwrap();
        assert_eq!(m.topics, vec!["order.updated".to_owned()]);
        assert_eq!(m.route(&incoming("order.updated", json!({"status": "x"}))), Ok(Some(Action::Ignore)));
        assert_eq!(m.route(&incoming("order.updated", json!({}))), Ok(Some(Action::Ignore)));
    }

    #[test]
    fn item_keys_come_from_templates() {
        let t = KeyTemplate::parse("{storeId}/{productId}").unwrap();
        assert_eq!(t.fill(&json!({"storeId": "s", "productId": "p"})).as_deref(), Some("s/p"));
        assert_eq!(t.fill(&json!({"productId": "p"})), None);
        assert_eq!(t.fill(&json!({"storeId": "", "productId": "p"})), None);
        for bad in ["sku", "{", "}", "{}", "{a", "a}", "{a{b}}"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
        let m = parse("[fields]\nitem_key = [\"{productId}\"]\n[events]\n\"o\" = \"reserve\"\n", false).unwrap();
        let body = json!({"orderId": "o1", "items": [{"productId": "p1", "sku": "S-1", "quantity": 2}]}).to_string();
        let i = m.parse("o", Some(body.as_bytes())).unwrap();
        assert_eq!(i.lines().unwrap()[0].sku, "p1");
    }

    #[test]
    fn the_shipped_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kafka");
        for name in ["seed-000.toml", "seed-001.toml", "seed-002.yaml", "seed-003.toml", "seed-004.yaml"] {
            let m = Mapping::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
            assert!(!m.topics.is_empty(), "{name}");
        }
        let m = Mapping::load(&dir.join("seed-000.toml")).unwrap();
        assert_eq!(m.publish.topic_for("inventory.reservation_failed"), "order.reservation.failed.topic");
        assert_eq!(m.publish.payload_for("inventory.reservation_failed"), Payload::Bare);
        let body = br#"{"orderId":"o","items":[{"productId":"507f","productTitle":"Shoes","quantity":2}]}"#;
        let i = m.parse("order.checkout.started.topic", Some(body)).unwrap();
        assert_eq!((i.event_type.as_str(), i.lines().unwrap()[0].sku.as_str()), ("order.checkout.started", "507f"));
        assert_eq!(m.route(&i), Ok(Some(Action::Reserve)));
        let m = Mapping::load(&dir.join("seed-004.yaml")).unwrap();
        let body = br#"{"order_id":"o","items":[{"product_id":"p","quantity":2,"warehouse_id":"wh-sp-001"}]}"#;
        let i = m.parse("order.created", Some(body)).unwrap();
        assert_eq!(i.order_id().unwrap(), "o");
        assert_eq!(i.lines().unwrap()[0].location.as_deref(), Some("wh-sp-001"));
        assert_eq!(m.publish.topic_for("inventory.released"), "inventory.events");
        let e = Mapping::load(&dir.join("seed-004-warehouses.yaml")).unwrap_err();
        assert!(e.contains("seed-004-warehouses.yaml: warehouses: unknown field"), "{e}");
        let e = Mapping::load(&dir.join("README.md")).unwrap_err();
        assert!(e.contains("unknown format"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let err = |text: &str| parse(text, false).unwrap_err();
        let cases = [
            ("[events]\n\"a\" = \"reserv\"\n", "events.a: unknown action \"reserv\""),
            ("colour = 1\n[events]\n\"a\" = \"reserve\"\n", "colour: unknown field"),
            ("[fields]\nitems = 3\n[events]\n\"a\" = \"reserve\"\n", "fields.items: "),
            ("[fields]\norder = \"x\"\n[events]\n\"a\" = \"reserve\"\n", "fields.order: unknown field"),
            ("[fields]\nitem_key = [\"sku\"]\n[events]\n\"a\" = \"reserve\"\n", "fields.item_key[0]: "),
            ("[fields]\nttl = []\n[events]\n\"a\" = \"reserve\"\n", "fields.ttl: must name"),
            (
                "cancel_after_commit = \"keep\"\n[events]\n\"a\" = \"reserve\"\n",
                "cancel_after_commit: must be restock or reject",
            ),
            ("topics = [\"a b\"]\n[events]\n\"a\" = \"reserve\"\n", "topics[0]: "),
            ("[events]\n", "events: maps no event type"),
            ("topics = []\n", "events: missing field"),
            ("[events.a]\nroute_by = \"status\"\nroutes = { x = \"nope\" }\n", "events.a.routes.x: unknown action"),
            ("[events.a]\nroutes = { x = \"commit\" }\n", "events.a.route_by: missing field"),
            ("[events.a]\nroute_by = \"s\"\nroutes = {}\n", "events.\"a\".routes: routes no value"),
            ("[events.a]\nroute_by = \"s\"\nroutes = { x = \"commit\" }\nelse = 1\n", "events.a.else: unknown field"),
            (
                "[events]\n\"a\" = \"reserve\"\n[publish.topics]\n\"inventory.nope\" = \"t\"\n",
                "publish.topics.\"inventory.nope\": ",
            ),
            ("[events]\n\"a\" = \"reserve\"\n[publish]\ntopic = \"\"\n", "publish.topic: "),
            (
                "[events]\n\"a\" = \"reserve\"\n[publish]\nlines = [\"inventory.adjusted\"]\n",
                "publish.lines[0]: \"inventory.adjusted\" has no lines; one of inventory.reserved",
            ),
            (
                "[events]\n\"a\" = \"reserve\"\n[publish]\npayload = \"naked\"\n",
                "publish.payload: unknown payload \"naked\"; one of envelope, bare",
            ),
            (
                "[events]\n\"a\" = \"reserve\"\n[publish.payloads]\n\"inventory.nope\" = \"bare\"\n",
                "publish.payloads.\"inventory.nope\": stockd publishes no such event",
            ),
            ("[events\n", "malformed TOML"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.starts_with(want), "{text:?}: got {e:?}, want {want:?}");
        }
        let e = parse("events:\n  a: {route_by: s, routes: {x: commit}, other: 1}\n", true).unwrap_err();
        assert!(e.starts_with("events.a.other: unknown field"), "{e}");
        let e = parse("events: {a: 7}\n", true).unwrap_err();
        assert!(e.starts_with("events.a: "), "{e}");
    }
}
