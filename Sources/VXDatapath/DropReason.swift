/// Every way the datapath can decline a packet, counted per worker and per VNI and summed by the
/// control side (VPP's `vxlan_error.def` names outcomes the same way). A packet is counted under
/// exactly one reason; nothing is dropped silently.
public enum DropReason: Int, CaseIterable, Sendable {
    /// Shorter than the headers it claims (UDP payload under 8 + 14 bytes, TAP frame under 14).
    case truncated
    /// The VXLAN I flag is clear (RFC 7348 §5: the receiver must drop it).
    case badFlags
    /// A VNI this router does not serve.
    case unknownVNI
    /// The sending VTEP is outside the network's `allow_from` prefixes.
    case notAllowed
    /// The frame does not fit the network's MTU (inbound) or the underlay without fragmenting (outbound).
    case oversize
    /// Inner source MAC is multicast, broadcast or zero: never a valid station.
    case badInnerSource
    /// Inner source MAC is a static FDB entry that lives behind another VTEP (the kernel drops these too).
    case staticConflict
    /// Nowhere to send: unknown or broadcast destination and an empty flood list.
    case noDestination
    /// The kernel refused the frame on the TAP write.
    case tapWriteError
    /// The kernel refused the encapsulated packet on send.
    case sendError

    /// The name used in logs, stats and (later) metrics labels.
    public var name: String {
        switch self {
        case .truncated: "truncated"
        case .badFlags: "bad_flags"
        case .unknownVNI: "unknown_vni"
        case .notAllowed: "not_allowed"
        case .oversize: "oversize"
        case .badInnerSource: "bad_inner_source"
        case .staticConflict: "static_conflict"
        case .noDestination: "no_destination"
        case .tapWriteError: "tap_write_error"
        case .sendError: "send_error"
        }
    }
}
