//! The address guard: which IP addresses citewatch may connect to.
//!
//! By default only public unicast addresses are allowed. The classifier is pure and unit
//! tested over every range; the resolver applies it to the addresses a name actually resolves
//! to, so a public-looking name that points at 127.0.0.1 or 169.254.169.254 is refused before
//! any connection is made. IP-literal hosts bypass custom resolvers in reqwest, so the fetcher
//! checks them with [`check_host`] before every request (every redirect hop included).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused non-public address {addr} ({range}); pass --allow-private to allow it")]
pub struct Refused {
    /// The address.
    pub addr: IpAddr,
    /// Which range it falls in.
    pub range: &'static str,
}

/// Classifies an address: `None` when public, otherwise the name of its non-public range.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let r = match o {
        [0, ..] => "this network (0.0.0.0/8)",
        [10, ..] => "private (10.0.0.0/8)",
        [100, b, ..] if (64..128).contains(&b) => "shared CGNAT (100.64.0.0/10)",
        [127, ..] => "loopback (127.0.0.0/8)",
        [169, 254, ..] => "link-local (169.254.0.0/16)",
        [172, b, ..] if (16..32).contains(&b) => "private (172.16.0.0/12)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0.0/24)",
        [192, 0, 2, _] => "documentation (192.0.2.0/24)",
        [192, 88, 99, _] => "6to4 relay anycast (192.88.99.0/24)",
        [192, 168, ..] => "private (192.168.0.0/16)",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking (198.18.0.0/15)",
        [198, 51, 100, _] => "documentation (198.51.100.0/24)",
        [203, 0, 113, _] => "documentation (203.0.113.0/24)",
        [a, ..] if (224..240).contains(&a) => "multicast (224.0.0.0/4)",
        [255, 255, 255, 255] => "broadcast",
        [a, ..] if a >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(r)
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let s = ip.segments();
    let r = match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified (::)",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback (::1)",
        // IPv4-compatible (deprecated) ::a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96)",
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return v4_range(v4).map(|_| "NAT64 of a non-public IPv4 (64:ff9b::/96)");
        }
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0, ..] => "Teredo (2001::/32)",
        [0x2001, b, ..] if b < 0x200 => "IETF protocol assignments (2001::/23)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            return v4_range(v4).map(|_| "6to4 of a non-public IPv4 (2002::/16)");
        }
        [0x3fff, b, ..] if b < 0x1000 => "documentation (3fff::/20)",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    };
    Some(r)
}

/// Which addresses the fetcher may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressPolicy {
    /// Public unicast addresses only (the default).
    #[default]
    PublicOnly,
    /// Anything (`--allow-private`).
    Any,
    /// Loopback only, public addresses refused too: for tests and benchmarks, so that even a
    /// wrong test cannot send a packet beyond this machine.
    LoopbackOnly,
}

/// The environment variable that confines every request of the process to loopback
/// (`CITEWATCH_LOOPBACK_ONLY=1`): the test suite sets it on every command it runs, so that even
/// a wrong test or a wrong default (an archive endpoint, a notification target) cannot send a
/// request, or a DNS query, beyond this machine. Also useful for a sandboxed trial run.
pub const LOOPBACK_ONLY_VAR: &str = "CITEWATCH_LOOPBACK_ONLY";

/// Whether [`LOOPBACK_ONLY_VAR`] is set to a true value.
pub fn loopback_only_from_env() -> bool {
    std::env::var(LOOPBACK_ONLY_VAR).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Whether a host name may be resolved under `policy`: in loopback-only mode only `localhost`
/// names are, so not even a DNS query leaves the machine.
pub fn may_resolve(host: &str, policy: AddressPolicy) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    policy != AddressPolicy::LoopbackOnly || h == "localhost" || h.ends_with(".localhost")
}

/// Checks one address against the policy.
pub fn check_ip(ip: IpAddr, policy: AddressPolicy) -> Result<(), Refused> {
    let range = non_public_range(ip);
    let loopback = ip.is_loopback()
        || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    match policy {
        AddressPolicy::Any => Ok(()),
        AddressPolicy::PublicOnly => match range {
            None => Ok(()),
            Some(range) => Err(Refused { addr: ip, range }),
        },
        AddressPolicy::LoopbackOnly if loopback => Ok(()),
        AddressPolicy::LoopbackOnly => Err(Refused {
            addr: ip,
            range: range.unwrap_or("public, refused in loopback-only mode"),
        }),
    }
}

/// Checks a URL's host when it is an IP literal (any spelling the URL parser accepts, e.g.
/// `2130706433` or `0x7f000001`, is already normalised to an address by then).
pub fn check_host(url: &url::Url, policy: AddressPolicy) -> Result<(), Refused> {
    match url.host() {
        Some(url::Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4), policy),
        Some(url::Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6), policy),
        _ => Ok(()),
    }
}

/// A DNS resolver that drops non-public answers, failing with [`Refused`] when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver applying `policy` to every answer.
    pub fn new(policy: AddressPolicy) -> Arc<Self> {
        Arc::new(GuardedResolver { policy })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            if !may_resolve(&host, policy) {
                return Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host}: not resolved in loopback-only mode"),
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match check_ip(a.ip(), policy) {
                    Ok(()) => true,
                    Err(r) => {
                        refused.get_or_insert(r);
                        false
                    }
                })
                .collect();
            if let (true, Some(r)) = (allowed.is_empty(), refused) {
                return Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        non_public_range(s.parse().unwrap()).is_some()
    }

    #[test]
    fn loopback_only_mode_resolves_only_localhost() {
        assert!(may_resolve("localhost", AddressPolicy::LoopbackOnly));
        assert!(may_resolve("a.localhost.", AddressPolicy::LoopbackOnly));
        assert!(!may_resolve("web.archive.org", AddressPolicy::LoopbackOnly));
        assert!(may_resolve("web.archive.org", AddressPolicy::PublicOnly));
        assert!(may_resolve("web.archive.org", AddressPolicy::Any));
    }

    #[test]
    fn non_public_v4_ranges() {
        for a in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(a), "{a} should be refused");
        }
    }

    #[test]
    fn public_v4() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.0.1",
            "172.32.0.1",
            "193.0.2.1",
            "151.101.1.1",
        ] {
            assert!(!blocked(a), "{a} should be allowed");
        }
    }

    #[test]
    fn non_public_v6_ranges() {
        for a in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "100::1",
        ] {
            assert!(blocked(a), "{a} should be refused");
        }
    }

    #[test]
    fn public_v6() {
        for a in [
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!blocked(a), "{a} should be allowed");
        }
    }

    #[test]
    fn literal_spellings_are_checked() {
        for u in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/",
        ] {
            let url = url::Url::parse(u).unwrap();
            assert!(
                check_host(&url, AddressPolicy::PublicOnly).is_err(),
                "{u} should be refused"
            );
            assert!(check_host(&url, AddressPolicy::Any).is_ok());
        }
        assert!(
            check_host(
                &url::Url::parse("https://example.com/").unwrap(),
                AddressPolicy::PublicOnly
            )
            .is_ok()
        );
    }

    #[test]
    fn loopback_only_refuses_everything_else() {
        let ok = |s: &str| check_ip(s.parse().unwrap(), AddressPolicy::LoopbackOnly).is_ok();
        assert!(ok("127.0.0.1") && ok("127.9.9.9") && ok("::1") && ok("::ffff:127.0.0.1"));
        assert!(
            !ok("8.8.8.8") && !ok("10.0.0.1") && !ok("169.254.169.254") && !ok("2606:4700::1111")
        );
    }
}
