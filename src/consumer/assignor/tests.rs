//! Unit tests of the consumer protocol bytes and of the assignors (no broker).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::sticky::{decode_sticky_user_data, encode_sticky_user_data, MemberData};
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers.

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

fn member(id: &str, topics: &[&str]) -> MemberInfo {
    MemberInfo {
        member_id: id.to_string(),
        group_instance_id: None,
        subscription: Subscription::new(topics.iter().map(|t| t.to_string()).collect()),
    }
}

/// The subscription a member of `assignor` sends after owning `owned` in `generation`.
fn rejoin(
    assignor: &dyn Assignor,
    mut m: MemberInfo,
    owned: &[TopicPartition],
    generation: i32,
) -> MemberInfo {
    m.subscription.user_data = assignor.subscription_user_data(owned, generation);
    if assignor.protocol() == RebalanceProtocol::Cooperative {
        m.subscription.owned_partitions = owned.to_vec();
        m.subscription.generation_id = generation;
    }
    m
}

fn parts(a: &BTreeMap<String, Assignment>, id: &str) -> Vec<TopicPartition> {
    a[id].partitions.clone()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Tiny deterministic PRNG (xorshift64*) for randomized scenarios.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Every partition of a subscribed topic is assigned to exactly one member subscribed to it,
/// except `withheld` ones, which are assigned to nobody. Members not in the input get nothing.
fn check_coverage(
    ppt: &BTreeMap<String, i32>,
    members: &[MemberInfo],
    result: &BTreeMap<String, Assignment>,
    withheld: &BTreeSet<TopicPartition>,
) {
    check_coverage_ctx(ppt, members, result, withheld, "");
}

fn check_coverage_ctx(
    ppt: &BTreeMap<String, i32>,
    members: &[MemberInfo],
    result: &BTreeMap<String, Assignment>,
    withheld: &BTreeSet<TopicPartition>,
    ctx: &str,
) {
    assert_eq!(result.len(), members.len(), "one entry per member");
    let mut owner: BTreeMap<TopicPartition, String> = BTreeMap::new();
    for m in members {
        for p in &result[&m.member_id].partitions {
            assert!(
                m.subscription.topics.iter().any(|t| **t == *p.topic),
                "{p} assigned to {} which does not subscribe to it",
                m.member_id
            );
            assert!(
                owner.insert(p.clone(), m.member_id.clone()).is_none(),
                "{p} assigned twice"
            );
        }
    }
    let subscribed: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().map(String::as_str))
        .collect();
    for (t, &n) in ppt {
        if !subscribed.contains(t.as_str()) {
            continue;
        }
        for p in 0..n {
            let x = tp(t, p);
            assert!(
                owner.contains_key(&x) != withheld.contains(&x),
                "{ctx}: {x}: assigned={} withheld={}",
                owner.contains_key(&x),
                withheld.contains(&x)
            );
        }
    }
}

fn sizes(result: &BTreeMap<String, Assignment>) -> (usize, usize) {
    let min = result
        .values()
        .map(|a| a.partitions.len())
        .min()
        .unwrap_or(0);
    let max = result
        .values()
        .map(|a| a.partitions.len())
        .max()
        .unwrap_or(0);
    (min, max)
}

fn owner_map(result: &BTreeMap<String, Assignment>) -> BTreeMap<TopicPartition, String> {
    result
        .iter()
        .flat_map(|(m, a)| a.partitions.iter().map(move |p| (p.clone(), m.clone())))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Consumer protocol bytes.

fn sub_t0(version: i16) -> Subscription {
    Subscription {
        topics: vec!["t".into()],
        user_data: None,
        owned_partitions: if version >= 1 {
            vec![tp("t", 0)]
        } else {
            vec![]
        },
        generation_id: if version >= 2 { 5 } else { -1 },
        rack_id: if version >= 3 { Some("r".into()) } else { None },
    }
}

#[test]
fn subscription_bytes_match_the_schema() {
    // version | topics: count, "t" | user_data: null
    let v0 = "0000 00000001 0001 74 ffffffff";
    // owned_partitions: count, "t", partitions: count, 0
    let owned = "00000001 0001 74 00000001 00000000";
    let expected = [
        v0.to_string(),
        format!("0001 00000001 0001 74 ffffffff {owned}"),
        format!("0002 00000001 0001 74 ffffffff {owned} 00000005"),
        format!("0003 00000001 0001 74 ffffffff {owned} 00000005 0001 72"),
    ];
    for (v, want) in expected.iter().enumerate() {
        let v = v as i16;
        let s = sub_t0(v);
        let bytes = s.encode(v);
        assert_eq!(hex(&bytes), hex(&unhex(want)), "v{v}");
        assert_eq!(Subscription::decode(&bytes).unwrap(), s, "v{v} round trip");
    }
    // Rack absent at v3: null string.
    let s = Subscription {
        rack_id: None,
        ..sub_t0(3)
    };
    assert!(hex(&s.encode(3)).ends_with("00000005ffff"));
    // User data present.
    let s = Subscription {
        user_data: Some(Bytes::from_static(b"\x01\x02")),
        ..sub_t0(0)
    };
    assert_eq!(
        hex(&s.encode(0)),
        hex(&unhex("0000 00000001 0001 74 00000002 0102"))
    );
    assert_eq!(Subscription::decode(&s.encode(0)).unwrap(), s);
}

#[test]
fn subscription_encoding_is_canonical_like_java() {
    let s = Subscription {
        topics: vec!["b".into(), "a".into()],
        user_data: Some(Bytes::from_static(b"x")),
        owned_partitions: vec![tp("b", 1), tp("a", 2), tp("b", 0)],
        generation_id: 7,
        rack_id: None,
    };
    let d = Subscription::decode(&s.encode(3)).unwrap();
    assert_eq!(d.topics, vec!["a", "b"]);
    assert_eq!(d.owned_partitions, vec![tp("a", 2), tp("b", 0), tp("b", 1)]);
    // Fields above the version are dropped and come back as defaults.
    let d1 = Subscription::decode(&s.encode(1)).unwrap();
    assert_eq!(d1.generation_id, -1);
    assert_eq!(d1.owned_partitions.len(), 3);
    let d0 = Subscription::decode(&s.encode(0)).unwrap();
    assert!(d0.owned_partitions.is_empty());
    // Versions outside 0..=3 are clamped when encoding.
    assert_eq!(s.encode(9), s.encode(3));
    assert_eq!(s.encode(-2), s.encode(0));
    // An empty rack decodes to None, as in Java.
    let r = Subscription {
        rack_id: Some(String::new()),
        ..Subscription::new(vec![])
    };
    assert_eq!(Subscription::decode(&r.encode(3)).unwrap().rack_id, None);
}

#[test]
fn assignment_bytes_match_the_schema() {
    let a = Assignment {
        partitions: vec![tp("t", 0)],
        user_data: None,
    };
    for v in 0..=3i16 {
        let want = format!("000{v} 00000001 0001 74 00000001 00000000 ffffffff");
        let bytes = a.encode(v);
        assert_eq!(hex(&bytes), hex(&unhex(&want)), "v{v}");
        assert_eq!(Assignment::decode(&bytes).unwrap(), a);
    }
    let a = Assignment {
        partitions: vec![tp("b", 3), tp("a", 1), tp("b", 2)],
        user_data: Some(Bytes::from_static(b"u")),
    };
    // Grouped by topic in first-appearance order, like Java's serializeAssignment.
    let want =
        "0003 00000002 0001 62 00000002 00000003 00000002 0001 61 00000001 00000001 00000001 75";
    assert_eq!(hex(&a.encode(3)), hex(&unhex(want)));
    assert_eq!(
        Assignment::decode(&a.encode(3)).unwrap().partitions,
        vec![tp("b", 3), tp("b", 2), tp("a", 1)]
    );
}

#[test]
fn empty_assignment_bytes_decode_to_empty_assignment() {
    assert_eq!(Assignment::decode(&[]).unwrap(), Assignment::default());
    let empty = Assignment::default();
    assert_eq!(hex(&empty.encode(0)), "000000000000ffffffff");
    assert_eq!(Assignment::decode(&empty.encode(3)).unwrap(), empty);
}

#[test]
fn higher_versions_decode_their_known_prefix() {
    // A hypothetical v4 subscription: the v3 fields followed by unknown ones.
    let mut bytes = sub_t0(3).encode(3).to_vec();
    bytes[1] = 4;
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00]);
    assert_eq!(Subscription::decode(&bytes).unwrap(), sub_t0(3));

    let a = Assignment {
        partitions: vec![tp("t", 0)],
        user_data: None,
    };
    let mut bytes = a.encode(3).to_vec();
    bytes[1] = 0x7f;
    bytes.extend_from_slice(&[1, 2, 3]);
    assert_eq!(Assignment::decode(&bytes).unwrap(), a);
}

#[test]
fn truncated_or_garbage_bytes_are_errors_not_panics() {
    let s = Subscription {
        topics: vec!["topic-a".into(), "b".into()],
        user_data: Some(Bytes::from_static(b"userdata")),
        owned_partitions: vec![tp("topic-a", 1), tp("b", 4)],
        generation_id: 3,
        rack_id: Some("rack".into()),
    };
    for v in 0..=3 {
        let full = s.encode(v);
        for cut in 0..full.len() {
            match Subscription::decode(&full[..cut]) {
                Err(crate::error::Error::Protocol(_)) => {}
                other => panic!("v{v} cut {cut}: {other:?}"),
            }
        }
    }
    let a = Assignment {
        partitions: vec![tp("topic-a", 1), tp("b", 4)],
        user_data: Some(Bytes::from_static(b"u")),
    };
    let full = a.encode(3);
    for cut in 1..full.len() {
        assert!(matches!(
            Assignment::decode(&full[..cut]),
            Err(crate::error::Error::Protocol(_))
        ));
    }
    // Negative version, null non-nullable array, absurd counts and lengths.
    for bad in [
        "ffff 00000000 ffffffff",
        "0000 ffffffff ffffffff",
        "0000 7fffffff",
        "0000 00000001 7fff",
        "0000 00000001 ffff",
        "0001 00000000 7ffffff0",
        "0001 00000000 ffffffff 00000001 0001 74 7fffffff",
    ] {
        assert!(Subscription::decode(&unhex(bad)).is_err(), "{bad}");
    }
    assert!(Assignment::decode(&unhex("0000 80000000")).is_err());
    assert!(Assignment::decode(&[0]).is_err());
    // Random garbage never panics.
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let len = rng.below(40);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 2 && rng.chance(70) {
            buf[0] = 0;
            buf[1] = rng.below(5) as u8;
        }
        if len >= 6 && rng.chance(50) {
            buf[2..6].copy_from_slice(&(rng.below(3) as i32).to_be_bytes());
        }
        let _ = Subscription::decode(&buf);
        let _ = Assignment::decode(&buf);
        let _ = decode_sticky_user_data(&buf);
    }
}

#[test]
fn bytes_agree_with_kafka_protocol_generated_types() {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as ATp;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as STp;
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    let s = Subscription {
        topics: vec!["a".into(), "bb".into()],
        user_data: Some(Bytes::from_static(b"\x00\x01")),
        owned_partitions: vec![tp("a", 0), tp("a", 3), tp("bb", 1)],
        generation_id: 42,
        rack_id: Some("rack-1".into()),
    };
    for v in 0..=3i16 {
        let kp = ConsumerProtocolSubscription::default()
            .with_topics(
                s.topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.clone()))
                    .collect(),
            )
            .with_user_data(s.user_data.clone())
            .with_owned_partitions(if v >= 1 {
                vec![
                    STp::default()
                        .with_topic(TopicName(StrBytes::from_static_str("a")))
                        .with_partitions(vec![0, 3]),
                    STp::default()
                        .with_topic(TopicName(StrBytes::from_static_str("bb")))
                        .with_partitions(vec![1]),
                ]
            } else {
                vec![]
            })
            .with_generation_id(if v >= 2 { 42 } else { -1 })
            .with_rack_id(if v >= 3 {
                Some(StrBytes::from_static_str("rack-1"))
            } else {
                None
            });
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, v);
        kp.encode(&mut buf, v).unwrap();
        let ours = s.encode(v);
        assert_eq!(hex(&ours), hex(&buf), "subscription v{v}");
        let mut body = ours.slice(2..);
        assert_eq!(
            ConsumerProtocolSubscription::decode(&mut body, v).unwrap(),
            kp
        );

        let a = Assignment {
            partitions: s.owned_partitions.clone(),
            user_data: s.user_data.clone(),
        };
        let kp = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![
                ATp::default()
                    .with_topic(TopicName(StrBytes::from_static_str("a")))
                    .with_partitions(vec![0, 3]),
                ATp::default()
                    .with_topic(TopicName(StrBytes::from_static_str("bb")))
                    .with_partitions(vec![1]),
            ])
            .with_user_data(s.user_data.clone());
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, v);
        kp.encode(&mut buf, v).unwrap();
        assert_eq!(hex(&a.encode(v)), hex(&buf), "assignment v{v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Registry and user data.

#[test]
fn assignors_by_protocol_and_java_class_name() {
    for (name, class, proto) in [
        ("range", "RangeAssignor", RebalanceProtocol::Eager),
        ("roundrobin", "RoundRobinAssignor", RebalanceProtocol::Eager),
        ("sticky", "StickyAssignor", RebalanceProtocol::Eager),
        (
            "cooperative-sticky",
            "CooperativeStickyAssignor",
            RebalanceProtocol::Cooperative,
        ),
    ] {
        let a = assignor_by_name(name).unwrap();
        assert_eq!(a.name(), name);
        assert_eq!(a.protocol(), proto);
        let b = assignor_by_name(&format!("org.apache.kafka.clients.consumer.{class}")).unwrap();
        assert_eq!(b.name(), name);
    }
    assert!(assignor_by_name("RangeAssignor").is_none());
    assert!(assignor_by_name("org.apache.kafka.clients.consumer.Nope").is_none());
    assert!(assignor_by_name("").is_none());
}

#[test]
fn user_data_formats() {
    assert_eq!(RangeAssignor.subscription_user_data(&[tp("t", 0)], 3), None);
    assert_eq!(
        RoundRobinAssignor.subscription_user_data(&[tp("t", 0)], 3),
        None
    );
    // CooperativeStickyAssignor: the generation as a big-endian i32.
    assert_eq!(
        CooperativeStickyAssignor
            .subscription_user_data(&[tp("t", 0)], 3)
            .unwrap(),
        Bytes::from_static(&[0, 0, 0, 3])
    );
    assert_eq!(
        CooperativeStickyAssignor
            .subscription_user_data(&[], -1)
            .unwrap(),
        Bytes::from_static(&[0xff; 4])
    );
    // StickyAssignor: Java's STICKY_ASSIGNOR_USER_DATA_V1.
    let ud = StickyAssignor
        .subscription_user_data(&[tp("t", 1), tp("t", 0)], 3)
        .unwrap();
    assert_eq!(
        hex(&ud),
        hex(&unhex(
            "00000001 0001 74 00000002 00000000 00000001 00000003"
        ))
    );
    assert_eq!(StickyAssignor.subscription_user_data(&[], -1), None);
    assert_eq!(
        decode_sticky_user_data(&ud),
        MemberData {
            partitions: vec![tp("t", 0), tp("t", 1)],
            generation: Some(3)
        }
    );
    // V0 (no generation) and garbage, as Java reads them.
    assert_eq!(
        decode_sticky_user_data(&unhex("00000001 0001 74 00000001 00000002")),
        MemberData {
            partitions: vec![tp("t", 2)],
            generation: None
        }
    );
    assert_eq!(
        decode_sticky_user_data(&unhex("0102")),
        MemberData {
            partitions: vec![],
            generation: Some(-1)
        }
    );
    assert_eq!(
        encode_sticky_user_data(&[], 0),
        Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0])
    );
}

// ---------------------------------------------------------------------------------------------
// range and roundrobin.

#[test]
fn range_ten_partitions_over_three_members() {
    let ms = vec![
        member("c", &["t"]),
        member("a", &["t"]),
        member("b", &["t"]),
    ];
    let r = RangeAssignor.assign(&counts(&[("t", 10)]), &ms).unwrap();
    assert_eq!(
        parts(&r, "a"),
        (0..4).map(|p| tp("t", p)).collect::<Vec<_>>()
    );
    assert_eq!(
        parts(&r, "b"),
        (4..7).map(|p| tp("t", p)).collect::<Vec<_>>()
    );
    assert_eq!(
        parts(&r, "c"),
        (7..10).map(|p| tp("t", p)).collect::<Vec<_>>()
    );
}

#[test]
fn range_two_topics_java_doc_example() {
    let ms = vec![member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
    let r = RangeAssignor
        .assign(&counts(&[("t0", 3), ("t1", 3)]), &ms)
        .unwrap();
    assert_eq!(
        parts(&r, "C0"),
        vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(parts(&r, "C1"), vec![tp("t0", 2), tp("t1", 2)]);
}

#[test]
fn range_different_subscriptions_and_missing_topics() {
    let ms = vec![
        member("a", &["t0", "t1"]),
        member("b", &["t1", "missing"]),
        member("c", &["t2"]),
        member("d", &[]),
    ];
    let ppt = counts(&[("t0", 2), ("t1", 5), ("t2", 1), ("unsubscribed", 4)]);
    let r = RangeAssignor.assign(&ppt, &ms).unwrap();
    assert_eq!(
        parts(&r, "a"),
        vec![
            tp("t0", 0),
            tp("t0", 1),
            tp("t1", 0),
            tp("t1", 1),
            tp("t1", 2)
        ]
    );
    assert_eq!(parts(&r, "b"), vec![tp("t1", 3), tp("t1", 4)]);
    assert_eq!(parts(&r, "c"), vec![tp("t2", 0)]);
    assert_eq!(parts(&r, "d"), vec![]);
    check_coverage(&ppt, &ms, &r, &BTreeSet::new());
}

#[test]
fn range_and_roundrobin_order_static_members_first() {
    // Java's MemberInfo: members with a group.instance.id first (by instance id), then the
    // others by member id.
    let mut a = member("a-dynamic", &["t"]);
    a.group_instance_id = None;
    let mut z = member("z", &["t"]);
    z.group_instance_id = Some("i-2".into());
    let mut y = member("y", &["t"]);
    y.group_instance_id = Some("i-1".into());
    let ms = vec![a, z, y];
    let r = RangeAssignor.assign(&counts(&[("t", 3)]), &ms).unwrap();
    assert_eq!(parts(&r, "y"), vec![tp("t", 0)]);
    assert_eq!(parts(&r, "z"), vec![tp("t", 1)]);
    assert_eq!(parts(&r, "a-dynamic"), vec![tp("t", 2)]);
    let r = RoundRobinAssignor
        .assign(&counts(&[("t", 4)]), &ms)
        .unwrap();
    assert_eq!(parts(&r, "y"), vec![tp("t", 0), tp("t", 3)]);
    assert_eq!(parts(&r, "z"), vec![tp("t", 1)]);
    assert_eq!(parts(&r, "a-dynamic"), vec![tp("t", 2)]);
}

#[test]
fn roundrobin_java_doc_examples() {
    let ms = vec![member("C1", &["t0", "t1"]), member("C0", &["t0", "t1"])];
    let r = RoundRobinAssignor
        .assign(&counts(&[("t0", 3), ("t1", 3)]), &ms)
        .unwrap();
    assert_eq!(parts(&r, "C0"), vec![tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
    assert_eq!(parts(&r, "C1"), vec![tp("t0", 1), tp("t1", 0), tp("t1", 2)]);

    // Members not subscribed to a topic are skipped.
    let ms = vec![
        member("C0", &["t0"]),
        member("C1", &["t0", "t1"]),
        member("C2", &["t0", "t1", "t2"]),
    ];
    let ppt = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    let r = RoundRobinAssignor.assign(&ppt, &ms).unwrap();
    assert_eq!(parts(&r, "C0"), vec![tp("t0", 0)]);
    assert_eq!(parts(&r, "C1"), vec![tp("t1", 0)]);
    assert_eq!(
        parts(&r, "C2"),
        vec![tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
    );
    check_coverage(&ppt, &ms, &r, &BTreeSet::new());
}

#[test]
fn roundrobin_distribution_is_even_with_equal_subscriptions() {
    let ms: Vec<MemberInfo> = (0..4)
        .map(|i| member(&format!("m{i}"), &["x", "y"]))
        .collect();
    let ppt = counts(&[("x", 7), ("y", 6)]);
    let r = RoundRobinAssignor.assign(&ppt, &ms).unwrap();
    check_coverage(&ppt, &ms, &r, &BTreeSet::new());
    assert_eq!(sizes(&r), (3, 4));
    assert_eq!(
        parts(&r, "m0"),
        vec![tp("x", 0), tp("x", 4), tp("y", 1), tp("y", 5)]
    );
}

#[test]
fn duplicate_member_ids_and_empty_groups() {
    let ms = vec![member("a", &["t"]), member("a", &["t"])];
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let a = assignor_by_name(name).unwrap();
        assert!(matches!(
            a.assign(&counts(&[("t", 1)]), &ms),
            Err(crate::error::Error::InvalidArgument(_))
        ));
        assert!(a.assign(&counts(&[("t", 1)]), &[]).unwrap().is_empty());
        // No partitions at all: everyone gets an empty assignment.
        let r = a
            .assign(&counts(&[("t", 0)]), &[member("a", &["t"])])
            .unwrap();
        assert_eq!(r["a"], Assignment::default());
    }
}

// ---------------------------------------------------------------------------------------------
// sticky and cooperative-sticky.

fn sticky_assignors() -> [&'static dyn Assignor; 2] {
    [&StickyAssignor, &CooperativeStickyAssignor]
}

#[test]
fn sticky_java_doc_example_1() {
    let topics = ["t0", "t1", "t2", "t3"];
    let ppt = counts(&[("t0", 2), ("t1", 2), ("t2", 2), ("t3", 2)]);
    for a in sticky_assignors() {
        let ms: Vec<MemberInfo> = ["C0", "C1", "C2"]
            .iter()
            .map(|id| member(id, &topics))
            .collect();
        let r = a.assign(&ppt, &ms).unwrap();
        assert_eq!(parts(&r, "C0"), vec![tp("t0", 0), tp("t1", 1), tp("t3", 0)]);
        assert_eq!(parts(&r, "C1"), vec![tp("t0", 1), tp("t2", 0), tp("t3", 1)]);
        assert_eq!(parts(&r, "C2"), vec![tp("t1", 0), tp("t2", 1)]);

        // C1 leaves: C0 and C2 keep everything they had.
        let ms2 = vec![
            rejoin(a, member("C0", &topics), &parts(&r, "C0"), 1),
            rejoin(a, member("C2", &topics), &parts(&r, "C2"), 1),
        ];
        let r2 = a.assign(&ppt, &ms2).unwrap();
        // Nothing C1 owned is withheld: C1 is gone, so nobody has to revoke first.
        check_coverage(&ppt, &ms2, &r2, &BTreeSet::new());
        for id in ["C0", "C2"] {
            assert!(
                parts(&r, id).iter().all(|p| r2[id].partitions.contains(p)),
                "{id} kept its partitions"
            );
        }
        assert_eq!(sizes(&r2), (4, 4));
    }
}

#[test]
fn sticky_java_doc_example_2_different_subscriptions() {
    let ppt = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
    for a in sticky_assignors() {
        let ms = vec![
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let r = a.assign(&ppt, &ms).unwrap();
        assert_eq!(parts(&r, "C0"), vec![tp("t0", 0)]);
        assert_eq!(parts(&r, "C1"), vec![tp("t1", 0), tp("t1", 1)]);
        assert_eq!(parts(&r, "C2"), vec![tp("t2", 0), tp("t2", 1), tp("t2", 2)]);

        // C0 leaves: 5 of 6 partitions keep their owner.
        let ms2 = vec![
            rejoin(a, member("C1", &["t0", "t1"]), &parts(&r, "C1"), 1),
            rejoin(a, member("C2", &["t0", "t1", "t2"]), &parts(&r, "C2"), 1),
        ];
        let r2 = a.assign(&ppt, &ms2).unwrap();
        assert_eq!(
            parts(&r2, "C1"),
            vec![tp("t0", 0), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(
            parts(&r2, "C2"),
            vec![tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
    }
}

#[test]
fn sticky_adding_a_member_moves_a_third() {
    let topics = ["a", "b", "c"];
    let ppt = counts(&[("a", 10), ("b", 10), ("c", 10)]);
    for a in sticky_assignors() {
        let ms: Vec<MemberInfo> = ["m1", "m2"].iter().map(|id| member(id, &topics)).collect();
        let r1 = a.assign(&ppt, &ms).unwrap();
        assert_eq!(sizes(&r1), (15, 15));
        let before = owner_map(&r1);

        let ms2 = vec![
            rejoin(a, member("m1", &topics), &parts(&r1, "m1"), 1),
            rejoin(a, member("m2", &topics), &parts(&r1, "m2"), 1),
            member("m3", &topics),
        ];
        let r2 = a.assign(&ppt, &ms2).unwrap();
        if a.protocol() == RebalanceProtocol::Eager {
            check_coverage(&ppt, &ms2, &r2, &BTreeSet::new());
            assert_eq!(sizes(&r2), (10, 10));
            let after = owner_map(&r2);
            let moved = before.iter().filter(|(p, m)| after[*p] != **m).count();
            assert_eq!(moved, 10, "only a third of the partitions move");
        } else {
            // Cooperative round 1: m1 and m2 keep 10 each, the 10 partitions going to m3 are
            // withheld until they have been revoked.
            assert_eq!(r2["m1"].partitions.len(), 10);
            assert_eq!(r2["m2"].partitions.len(), 10);
            assert!(r2["m3"].partitions.is_empty());
            let assigned = owner_map(&r2);
            let withheld: BTreeSet<TopicPartition> = before
                .keys()
                .filter(|p| !assigned.contains_key(*p))
                .cloned()
                .collect();
            assert_eq!(withheld.len(), 10);
            check_coverage(&ppt, &ms2, &r2, &withheld);
            // Everything assigned stays with its owner.
            assert!(assigned.iter().all(|(p, m)| before[p] == *m));
        }
    }
}

#[test]
fn sticky_removing_a_member_moves_only_its_partitions() {
    let topics = ["a", "b"];
    let ppt = counts(&[("a", 8), ("b", 7)]);
    for a in sticky_assignors() {
        let ids = ["m1", "m2", "m3"];
        let ms: Vec<MemberInfo> = ids.iter().map(|id| member(id, &topics)).collect();
        let r1 = a.assign(&ppt, &ms).unwrap();
        assert_eq!(sizes(&r1), (5, 5));
        let ms2: Vec<MemberInfo> = ["m1", "m3"]
            .iter()
            .map(|id| rejoin(a, member(id, &topics), &parts(&r1, id), 4))
            .collect();
        let r2 = a.assign(&ppt, &ms2).unwrap();
        check_coverage(&ppt, &ms2, &r2, &BTreeSet::new());
        let (min, max) = sizes(&r2);
        assert!(max - min <= 1);
        for id in ["m1", "m3"] {
            assert!(parts(&r1, id).iter().all(|p| r2[id].partitions.contains(p)));
        }
    }
}

#[test]
fn higher_generation_wins_conflicting_claims() {
    let ppt = counts(&[("t", 4)]);
    for a in sticky_assignors() {
        // a (generation 2) and b (generation 1) both claim t-0.
        let ms = vec![
            rejoin(a, member("a", &["t"]), &[tp("t", 0), tp("t", 1)], 2),
            rejoin(a, member("b", &["t"]), &[tp("t", 0), tp("t", 2)], 1),
        ];
        let r = a.assign(&ppt, &ms).unwrap();
        assert_eq!(parts(&r, "a"), vec![tp("t", 0), tp("t", 1)], "{}", a.name());
        assert_eq!(parts(&r, "b"), vec![tp("t", 2), tp("t", 3)], "{}", a.name());
    }
    // Same generation: neither keeps it; cooperative withholds it so both revoke first.
    let ms = vec![
        rejoin(
            &CooperativeStickyAssignor,
            member("a", &["t"]),
            &[tp("t", 0), tp("t", 1)],
            3,
        ),
        rejoin(
            &CooperativeStickyAssignor,
            member("b", &["t"]),
            &[tp("t", 0), tp("t", 2)],
            3,
        ),
    ];
    let r = CooperativeStickyAssignor.assign(&ppt, &ms).unwrap();
    assert_eq!(parts(&r, "a"), vec![tp("t", 1)]);
    assert_eq!(parts(&r, "b"), vec![tp("t", 2), tp("t", 3)]);
    let ms: Vec<MemberInfo> = ms
        .into_iter()
        .map(|m| {
            let owned = m.subscription.owned_partitions.clone();
            rejoin(
                &StickyAssignor,
                MemberInfo {
                    subscription: Subscription::new(vec!["t".into()]),
                    ..m
                },
                &owned,
                3,
            )
        })
        .collect();
    let r = StickyAssignor.assign(&ppt, &ms).unwrap();
    check_coverage(&ppt, &ms, &r, &BTreeSet::new());
    assert!(r["a"].partitions.contains(&tp("t", 1)));
    assert!(r["b"].partitions.contains(&tp("t", 2)));
}

#[test]
fn cooperative_generation_from_user_data_when_subscription_has_none() {
    // A v0/v1 subscription: generation only in the user data.
    let ppt = counts(&[("t", 2)]);
    let mut a = member("a", &["t"]);
    a.subscription.owned_partitions = vec![tp("t", 0), tp("t", 1)];
    a.subscription.user_data = Some(Bytes::from_static(&[0, 0, 0, 1]));
    let mut b = member("b", &["t"]);
    b.subscription.owned_partitions = vec![tp("t", 0)];
    b.subscription.user_data = Some(Bytes::from_static(&[0, 0, 0, 2]));
    let r = CooperativeStickyAssignor.assign(&ppt, &[a, b]).unwrap();
    // b (generation 2) keeps t-0; t-1 stays with a.
    assert_eq!(parts(&r, "b"), vec![tp("t", 0)]);
    assert_eq!(parts(&r, "a"), vec![tp("t", 1)]);
}

#[test]
fn eager_sticky_falls_back_to_owned_partitions_without_user_data() {
    let ppt = counts(&[("t", 4)]);
    let mut a = member("a", &["t"]);
    a.subscription.owned_partitions = vec![tp("t", 2), tp("t", 3)];
    a.subscription.generation_id = 1;
    let r = StickyAssignor
        .assign(&ppt, &[a, member("b", &["t"])])
        .unwrap();
    assert_eq!(parts(&r, "a"), vec![tp("t", 2), tp("t", 3)]);
}

/// Builds a random group: topics, members with subscriptions, and previous ownership that
/// is consistent (every partition at most one owner, owners subscribed or not).
struct Scenario {
    ppt: BTreeMap<String, i32>,
    members: Vec<(String, Vec<String>)>,
    owned: BTreeMap<String, Vec<TopicPartition>>,
    equal: bool,
}

fn random_scenario(rng: &mut Rng) -> Scenario {
    let n_topics = 1 + rng.below(4);
    let topics: Vec<String> = (0..n_topics).map(|i| format!("topic{i}")).collect();
    let ppt: BTreeMap<String, i32> = topics
        .iter()
        .map(|t| (t.clone(), 1 + rng.below(12) as i32))
        .collect();
    let n_members = 1 + rng.below(7);
    let equal = rng.chance(60);
    let members: Vec<(String, Vec<String>)> = (0..n_members)
        .map(|i| {
            let subs: Vec<String> = if equal {
                topics.clone()
            } else {
                let s: Vec<String> = topics.iter().filter(|_| rng.chance(60)).cloned().collect();
                if s.is_empty() {
                    vec![topics[rng.below(n_topics)].clone()]
                } else {
                    s
                }
            };
            (format!("member-{}", rng.below(1000) * 10 + i), subs)
        })
        .collect();
    // Previous ownership: each partition owned by a random member (or a departed one, or nobody).
    let mut owned: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
    for (t, &n) in &ppt {
        for p in 0..n {
            match rng.below(n_members + 2) {
                i if i < n_members => {
                    let (id, subs) = &members[i];
                    // Mostly owners are subscribed; sometimes they changed their subscription.
                    if subs.contains(t) || rng.chance(20) {
                        owned.entry(id.clone()).or_default().push(tp(t, p));
                    }
                }
                _ => {}
            }
        }
    }
    Scenario {
        ppt,
        members,
        owned,
        equal,
    }
}

fn scenario_members(a: &dyn Assignor, s: &Scenario, generation: i32) -> Vec<MemberInfo> {
    s.members
        .iter()
        .map(|(id, subs)| {
            let m = MemberInfo {
                member_id: id.clone(),
                group_instance_id: None,
                subscription: Subscription::new(subs.clone()),
            };
            let owned = s.owned.get(id).cloned().unwrap_or_default();
            rejoin(a, m, &owned, generation)
        })
        .collect()
}

/// The generalized balance condition of Java's `isBalanced`: no member could take a partition
/// of a topic it subscribes to from a member that has at least two more partitions.
fn assert_balanced(ms: &[MemberInfo], r: &BTreeMap<String, Assignment>, equal: bool, ctx: &str) {
    let (min, max) = sizes(r);
    if equal {
        assert!(
            max - min <= 1,
            "{ctx}: equal subscriptions but sizes {min}..{max}"
        );
        return;
    }
    let owners = owner_map(r);
    for m in ms {
        let mine = r[&m.member_id].partitions.len();
        for (p, o) in &owners {
            if *o != m.member_id && m.subscription.topics.iter().any(|t| **t == *p.topic) {
                let theirs = r[o].partitions.len();
                assert!(
                    mine + 1 >= theirs,
                    "{ctx}: {} ({mine}) could take {p} from {o} ({theirs})",
                    m.member_id
                );
            }
        }
    }
}

#[test]
fn sticky_properties_over_random_scenarios() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut max_rounds = 0;
    for round in 0..400 {
        let s = random_scenario(&mut rng);
        let ctx = format!(
            "round {round}: ppt={:?} members={:?} owned={:?}",
            s.ppt, s.members, s.owned
        );

        // Eager sticky: full coverage, balance, stickiness.
        let ms = scenario_members(&StickyAssignor, &s, 1);
        let target = StickyAssignor.assign(&s.ppt, &ms).unwrap();
        check_coverage_ctx(
            &s.ppt,
            &ms,
            &target,
            &BTreeSet::new(),
            &format!("eager {ctx}"),
        );
        assert_balanced(&ms, &target, s.equal, &ctx);
        if s.equal {
            // Every member keeps at least min(owned & subscribed, minQuota) partitions.
            let total: i32 = s.ppt.values().sum();
            let min_quota = total as usize / ms.len();
            for m in &ms {
                let owned = s.owned.get(&m.member_id).cloned().unwrap_or_default();
                let kept = owned
                    .iter()
                    .filter(|p| target[&m.member_id].partitions.contains(p))
                    .count();
                assert!(
                    kept >= owned.len().min(min_quota),
                    "{ctx}: {} kept {kept} of {}",
                    m.member_id,
                    owned.len()
                );
            }
        }

        // Deterministic and independent of the members' input order.
        let mut shuffled = ms.clone();
        shuffled.reverse();
        assert_eq!(
            StickyAssignor.assign(&s.ppt, &shuffled).unwrap(),
            target,
            "{ctx}"
        );

        // Cooperative rounds: each round is the eager sticky target for the same ownership,
        // minus exactly the partitions changing owner; members then report what they own after
        // revoking. With equal subscriptions the second round assigns everything withheld
        // without moving anything else; otherwise it may take a few more rounds.
        let mut owned = s.owned.clone();
        let mut first_round: Option<BTreeMap<String, Assignment>> = None;
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(
                rounds <= 8,
                "{ctx}: cooperative rebalancing did not converge"
            );
            let generation = rounds;
            let si = Scenario {
                ppt: s.ppt.clone(),
                members: s.members.clone(),
                owned: owned.clone(),
                equal: s.equal,
            };
            let target = StickyAssignor
                .assign(&s.ppt, &scenario_members(&StickyAssignor, &si, generation))
                .unwrap();
            let cms = scenario_members(&CooperativeStickyAssignor, &si, generation);
            let r = CooperativeStickyAssignor.assign(&s.ppt, &cms).unwrap();
            let prev_owner: BTreeMap<TopicPartition, String> = owned
                .iter()
                .flat_map(|(m, ps)| ps.iter().map(move |p| (p.clone(), m.clone())))
                .collect();
            let withheld: BTreeSet<TopicPartition> = owner_map(&target)
                .into_iter()
                .filter(|(p, m)| {
                    prev_owner
                        .get(p)
                        .is_some_and(|o| o != m && cms.iter().any(|c| c.member_id == *o))
                })
                .map(|(p, _)| p)
                .collect();
            let rctx = format!("{ctx} coop round {rounds} target={target:?} r={r:?}");
            check_coverage_ctx(&s.ppt, &cms, &r, &withheld, &rctx);
            for (id, a) in &r {
                let want: Vec<TopicPartition> = target[id]
                    .partitions
                    .iter()
                    .filter(|p| !withheld.contains(*p))
                    .cloned()
                    .collect();
                assert_eq!(a.partitions, want, "{rctx}: {id}");
            }
            if let Some(r1) = &first_round {
                if s.equal {
                    for (id, a) in r1 {
                        assert!(
                            a.partitions.iter().all(|p| r[id].partitions.contains(p)),
                            "{rctx}: {id} lost a partition in round 2"
                        );
                    }
                }
            } else {
                first_round = Some(r.clone());
            }
            owned = r
                .iter()
                .map(|(m, a)| (m.clone(), a.partitions.clone()))
                .collect();
            if withheld.is_empty() {
                assert_balanced(&cms, &r, s.equal, &rctx);
                break;
            }
        }
        if s.equal {
            assert!(
                rounds <= 2,
                "{ctx}: equal subscriptions converge in two rounds, took {rounds}"
            );
        }
        max_rounds = max_rounds.max(rounds);
    }
    assert!(
        max_rounds >= 2,
        "some scenario needed a second cooperative round"
    );
}

#[test]
fn sticky_large_group_is_balanced_and_sticky() {
    let topics: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    let trefs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let ppt: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), 40)).collect();
    let ids: Vec<String> = (0..9).map(|i| format!("consumer-{i}")).collect();
    let ms: Vec<MemberInfo> = ids.iter().map(|id| member(id, &trefs)).collect();
    let r1 = StickyAssignor.assign(&ppt, &ms).unwrap();
    assert!(sizes(&r1).1 - sizes(&r1).0 <= 1);
    // Add one member: exactly the partitions the newcomer gets move.
    let mut ms2: Vec<MemberInfo> = ids
        .iter()
        .map(|id| rejoin(&StickyAssignor, member(id, &trefs), &parts(&r1, id), 1))
        .collect();
    ms2.push(member("consumer-new", &trefs));
    let r2 = StickyAssignor.assign(&ppt, &ms2).unwrap();
    check_coverage(&ppt, &ms2, &r2, &BTreeSet::new());
    assert_eq!(sizes(&r2), (20, 20));
    let (before, after) = (owner_map(&r1), owner_map(&r2));
    let moved = before.iter().filter(|(p, m)| after[*p] != **m).count();
    assert_eq!(moved, r2["consumer-new"].partitions.len());
}

#[test]
fn sticky_survives_conflicting_and_invalid_claims() {
    let mut rng = Rng(0x0bad_cafe_f00d_0001);
    for round in 0..300 {
        let s = random_scenario(&mut rng);
        let ctx = format!("round {round}: {:?} {:?}", s.ppt, s.members);
        let topics: Vec<&String> = s.ppt.keys().collect();
        // Random claims: overlapping, out-of-range, unknown topics, random generations.
        let build = |a: &dyn Assignor, rng: &mut Rng| -> Vec<MemberInfo> {
            s.members
                .iter()
                .map(|(id, subs)| {
                    let mut claims = Vec::new();
                    for _ in 0..rng.below(8) {
                        let t = if rng.chance(10) {
                            "gone".to_string()
                        } else {
                            topics[rng.below(topics.len())].clone()
                        };
                        claims.push(tp(&t, rng.below(14) as i32 - 1));
                    }
                    let generation = rng.below(4) as i32 - 1;
                    rejoin(
                        a,
                        member(id, &subs.iter().map(String::as_str).collect::<Vec<_>>()),
                        &claims,
                        generation,
                    )
                })
                .collect()
        };
        let ms = build(&StickyAssignor, &mut rng);
        let r = StickyAssignor.assign(&s.ppt, &ms).unwrap();
        check_coverage_ctx(&s.ppt, &ms, &r, &BTreeSet::new(), &ctx);
        assert_balanced(&ms, &r, s.equal, &ctx);

        let ms = build(&CooperativeStickyAssignor, &mut rng);
        let r = CooperativeStickyAssignor.assign(&s.ppt, &ms).unwrap();
        // Withheld partitions are the unassigned ones; each must have been claimed by a member
        // that does not get it.
        let assigned = owner_map(&r);
        let mut withheld = BTreeSet::new();
        for (t, &n) in &s.ppt {
            for p in 0..n {
                let x = tp(t, p);
                let subscribed = ms.iter().any(|m| m.subscription.topics.contains(t));
                if subscribed && !assigned.contains_key(&x) {
                    assert!(
                        ms.iter()
                            .any(|m| m.subscription.owned_partitions.contains(&x)),
                        "{ctx}: {x} withheld but nobody owned it"
                    );
                    withheld.insert(x);
                }
            }
        }
        check_coverage_ctx(&s.ppt, &ms, &r, &withheld, &ctx);
    }
}

#[test]
fn sticky_scales_to_large_groups() {
    // 100 members, 2000 partitions, unequal subscriptions (general algorithm), with history.
    let topics: Vec<String> = (0..20).map(|i| format!("topic-{i:02}")).collect();
    let ppt: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), 100)).collect();
    let mut rng = Rng(42);
    let ms: Vec<MemberInfo> = (0..100)
        .map(|i| {
            let subs: Vec<&str> = topics
                .iter()
                .filter(|_| rng.chance(70))
                .map(String::as_str)
                .collect();
            member(&format!("m{i:03}"), &subs)
        })
        .collect();
    let started = std::time::Instant::now();
    let r1 = CooperativeStickyAssignor.assign(&ppt, &ms).unwrap();
    let ms2: Vec<MemberInfo> = ms
        .iter()
        .skip(1)
        .map(|m| {
            rejoin(
                &CooperativeStickyAssignor,
                m.clone(),
                &r1[&m.member_id].partitions,
                1,
            )
        })
        .collect();
    let r2 = CooperativeStickyAssignor.assign(&ppt, &ms2).unwrap();
    // m000 left: its partitions are free, nothing else needs revoking first.
    check_coverage(&ppt, &ms2, &r2, &BTreeSet::new());
    assert!(r2.values().map(|a| a.partitions.len()).sum::<usize>() > 1800);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
