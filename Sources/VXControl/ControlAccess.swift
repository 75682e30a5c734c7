// Who may do what on the control endpoint — one pure decision, tested without root.
//
// Reads (stats, FDB and flood listings, config, health, metrics, events) are open to whoever can
// open the endpoint: they change nothing and show no traffic. Changes (POST, DELETE: FDB and flood
// entries steer traffic, captures start work) and the live capture stream (the overlay's packets)
// are what the kernel's own vxlan asks CAP_NET_ADMIN / CAP_NET_RAW for, so on the Unix socket they
// need root or a member of the control group (`control.group`), from the caller's SO_PEERCRED
// credentials; on TCP they need the bearer token (`control.token_file`), checked before this.
import NIOHTTP1
import VXPlatform

/// What a request would do, for the privilege check.
enum RequestKind: Sendable, Equatable {
    /// Reads state; changes nothing.
    case read
    /// Changes forwarding or starts/stops work (POST, DELETE, or any other non-read method).
    case change
    /// A read that shows the overlay's traffic (the live capture stream).
    case trafficExposure

    init(method: HTTPMethod, exposesTraffic: Bool) {
        if method != .GET && method != .HEAD && method != .OPTIONS {
            self = .change
        } else {
            self = exposesTraffic ? .trafficExposure : .read
        }
    }

    var privileged: Bool { self != .read }
}

/// The group whose members may change things through the Unix socket, resolved at start.
public struct ControlGroup: Sendable, Equatable {
    public let name: String
    public let gid: UInt32

    public init(name: String, gid: UInt32) {
        self.name = name
        self.gid = gid
    }
}

enum AccessDecision: Sendable, Equatable {
    case allow
    /// Refused (403), with the reason for the caller.
    case deny(String)
}

enum ControlAccess {
    /// The decision for a request of `kind` from `caller` (nil: its credentials could not be read)
    /// on the Unix socket of `group`.
    static func decide(_ kind: RequestKind, caller: PeerCredentials?, group: ControlGroup) -> AccessDecision {
        guard kind.privileged else { return .allow }
        let what = kind == .change ? "changes need" : "the live capture needs"
        guard let caller else {
            return .deny("\(what) root or the control group \(group.name), and the caller's credentials could not be read")
        }
        if caller.uid == 0 || caller.gid == group.gid || caller.supplementaryGroups?.contains(group.gid) == true {
            return .allow
        }
        let groupsKnown = caller.supplementaryGroups == nil ? " (its supplementary groups could not be read)" : ""
        return .deny(
            "\(what) root or membership of the control group \(group.name) (gid \(group.gid), control.group); "
                + "the caller is uid \(caller.uid), gid \(caller.gid)\(groupsKnown)")
    }
}
