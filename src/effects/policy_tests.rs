use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn refusal(policy: &AddressPolicy, host: &str, port: u16, addr: &str) -> Option<String> {
    policy
        .check(host, port, ip(addr))
        .err()
        .map(|d| d.to_string())
}

#[test]
fn without_entries_every_restricted_address_is_refused_and_public_ones_pass() {
    let p = AddressPolicy::default();
    for addr in [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "172.20.0.1",
        "192.168.1.1",
        "fd00::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "100.64.0.1",
        "0.1.2.3",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ] {
        assert!(p.check("example.com", 80, ip(addr)).is_err(), "{addr}");
    }
    for addr in ["93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
        assert!(p.check("example.com", 80, ip(addr)).is_ok(), "{addr}");
    }
}

#[test]
fn a_refusal_names_the_address_and_the_block() {
    let p = AddressPolicy::default();
    assert_eq!(
        refusal(&p, "x", 80, "127.0.0.1").unwrap(),
        "127.0.0.1 is a loopback address"
    );
    assert_eq!(
        refusal(&p, "x", 80, "::ffff:192.168.0.1").unwrap(),
        "::ffff:192.168.0.1 is a private address (it carries 192.168.0.1)"
    );
    assert_eq!(
        refusal(&p, "x", 80, "fe80::1").unwrap(),
        "fe80::1 is a link-local address"
    );
}

#[test]
fn an_address_entry_allows_that_address_only() {
    let p = AddressPolicy::new(&["127.0.0.1"]).unwrap();
    assert!(p.check("x", 80, ip("127.0.0.1")).is_ok());
    assert!(p.check("x", 80, ip("::ffff:127.0.0.1")).is_ok());
    assert!(p.check("x", 80, ip("127.0.0.2")).is_err());
    assert!(p.check("x", 80, ip("::1")).is_err());
    let p = AddressPolicy::new(&["::1"]).unwrap();
    assert!(p.check("x", 80, ip("::1")).is_ok());
    assert!(p.check("x", 80, ip("127.0.0.1")).is_err());
    let p = AddressPolicy::new(&["[::1]"]).unwrap();
    assert!(p.check("x", 80, ip("::1")).is_ok());
}

#[test]
fn an_address_entry_with_a_port_allows_that_port_only() {
    let p = AddressPolicy::new(&["127.0.0.1:8080", "[::1]:9090"]).unwrap();
    assert!(p.check("x", 8080, ip("127.0.0.1")).is_ok());
    assert!(p.check("x", 8081, ip("127.0.0.1")).is_err());
    assert!(p.check("x", 9090, ip("::1")).is_ok());
    assert!(p.check("x", 8080, ip("::1")).is_err());
}

#[test]
fn a_cidr_entry_allows_its_block() {
    let p = AddressPolicy::new(&["10.1.0.0/16", "fd00::/8"]).unwrap();
    assert!(p.check("x", 80, ip("10.1.200.3")).is_ok());
    assert!(p.check("x", 80, ip("::ffff:10.1.0.9")).is_ok());
    assert!(p.check("x", 80, ip("10.2.0.1")).is_err());
    assert!(p.check("x", 80, ip("fd12:3456::1")).is_ok());
    assert!(p.check("x", 80, ip("fc00::1")).is_err());
}

#[test]
fn a_name_entry_allows_what_that_name_resolves_to() {
    let p = AddressPolicy::new(&["LocalHost", "api.internal:8443"]).unwrap();
    assert!(p.check("localhost", 80, ip("127.0.0.1")).is_ok());
    assert!(p.check("localhost", 3000, ip("::1")).is_ok());
    assert!(p.check("evil.example", 80, ip("127.0.0.1")).is_err());
    assert!(p.check("api.internal", 8443, ip("10.0.0.5")).is_ok());
    assert!(p.check("api.internal", 443, ip("10.0.0.5")).is_err());
}

#[test]
fn bad_entries_are_refused_with_a_reason() {
    for bad in [
        "",
        "10.0.0.0/40",
        "host:port",
        "a b",
        "x..y",
        "http://x",
        "[::1",
    ] {
        let err = AddressPolicy::new(&[bad]).unwrap_err();
        assert!(!err.is_empty(), "{bad:?}");
    }
}

#[test]
fn entries_print_as_written() {
    let p = AddressPolicy::new(&["10.0.0.0/8", "127.0.0.1:80", "localhost"]).unwrap();
    let printed: Vec<String> = p.entries().iter().map(ToString::to_string).collect();
    assert_eq!(printed, ["10.0.0.0/8", "127.0.0.1/32 port 80", "localhost"]);
}
