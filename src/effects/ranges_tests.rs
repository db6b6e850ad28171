use super::*;

fn kind(text: &str) -> Option<Restricted> {
    classify(text.parse().unwrap())
}

#[test]
fn ipv4_blocks_are_recognised_at_both_ends() {
    let cases = [
        ("127.0.0.1", Restricted::Loopback),
        ("127.255.255.254", Restricted::Loopback),
        ("10.0.0.0", Restricted::Private),
        ("10.255.255.255", Restricted::Private),
        ("172.16.0.1", Restricted::Private),
        ("172.31.255.255", Restricted::Private),
        ("192.168.0.1", Restricted::Private),
        ("192.168.255.255", Restricted::Private),
        ("169.254.0.1", Restricted::LinkLocal),
        ("169.254.169.254", Restricted::LinkLocal),
        ("0.0.0.0", Restricted::Unspecified),
        ("0.1.2.3", Restricted::ThisNetwork),
        ("0.255.255.255", Restricted::ThisNetwork),
        ("224.0.0.1", Restricted::Multicast),
        ("239.255.255.255", Restricted::Multicast),
        ("255.255.255.255", Restricted::Broadcast),
        ("100.64.0.1", Restricted::SharedCgnat),
        ("100.127.255.255", Restricted::SharedCgnat),
        ("240.0.0.1", Restricted::Reserved),
        ("192.0.2.10", Restricted::Documentation),
    ];
    for (addr, expected) in cases {
        assert_eq!(kind(addr), Some(expected), "{addr}");
    }
}

#[test]
fn public_ipv4_addresses_next_to_the_blocks_pass() {
    for addr in [
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "169.253.255.255",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "223.255.255.255",
        "1.0.0.0",
    ] {
        assert_eq!(kind(addr), None, "{addr}");
    }
}

#[test]
fn ipv6_blocks_are_recognised() {
    let cases = [
        ("::1", Restricted::Loopback),
        ("::", Restricted::Unspecified),
        ("fc00::1", Restricted::Private),
        ("fdff:ffff::1", Restricted::Private),
        ("fe80::1", Restricted::LinkLocal),
        ("febf:ffff::1", Restricted::LinkLocal),
        ("fec0::1", Restricted::Private),
        ("ff02::1", Restricted::Multicast),
        ("ff0e::1", Restricted::Multicast),
        ("2001:db8::1", Restricted::Documentation),
        ("100::1", Restricted::Reserved),
        ("::7f00:1", Restricted::Reserved),
    ];
    for (addr, expected) in cases {
        assert_eq!(kind(addr), Some(expected), "{addr}");
    }
}

#[test]
fn public_ipv6_addresses_pass() {
    for addr in [
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "fbff::1",
        "fe00::1",
    ] {
        assert_eq!(kind(addr), None, "{addr}");
    }
}

#[test]
fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_inside() {
    let cases = [
        ("::ffff:127.0.0.1", Some(Restricted::Loopback)),
        ("::ffff:10.1.2.3", Some(Restricted::Private)),
        ("::ffff:172.16.0.1", Some(Restricted::Private)),
        ("::ffff:192.168.1.1", Some(Restricted::Private)),
        ("::ffff:169.254.169.254", Some(Restricted::LinkLocal)),
        ("::ffff:0.0.0.0", Some(Restricted::Unspecified)),
        ("::ffff:0.1.0.0", Some(Restricted::ThisNetwork)),
        ("::ffff:224.0.0.1", Some(Restricted::Multicast)),
        ("::ffff:255.255.255.255", Some(Restricted::Broadcast)),
        ("::ffff:100.64.0.1", Some(Restricted::SharedCgnat)),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::10.0.0.1", Some(Restricted::Private)),
        ("64:ff9b::7f00:1", Some(Restricted::Loopback)),
        ("64:ff9b::8.8.8.8", None),
        ("2002:7f00:1::", Some(Restricted::Loopback)),
        ("2002:c0a8:0101::1", Some(Restricted::Private)),
        ("2002:0808:0808::1", None),
    ];
    for (addr, expected) in cases {
        assert_eq!(kind(addr), expected, "{addr}");
    }
}

#[test]
fn networks_contain_exactly_their_prefix() {
    let net = IpNet::parse("172.16.0.0/12").unwrap();
    assert!(net.contains("172.16.0.0".parse().unwrap()));
    assert!(net.contains("172.31.255.255".parse().unwrap()));
    assert!(!net.contains("172.32.0.0".parse().unwrap()));
    assert!(!net.contains("::ffff:172.16.0.1".parse().unwrap()));
    let net = IpNet::parse("fd00::/8").unwrap();
    assert!(net.contains("fd12::1".parse().unwrap()));
    assert!(!net.contains("fc12::1".parse().unwrap()));
    let all = IpNet::parse("0.0.0.0/0").unwrap();
    assert!(all.contains("203.0.113.9".parse().unwrap()));
    assert!(IpNet::parse("10.0.0.0/33").is_none());
    assert!(IpNet::parse("::/129").is_none());
    assert!(IpNet::parse("10.0.0/8").is_none());
}
