// Conversions between the wire module's Endpoint and the kernel's sockaddr structures.
import Glibc
import VXWire

extension Endpoint {
    /// Writes this endpoint as a sockaddr_in/sockaddr_in6 into `storage`; returns its length.
    /// `port` overrides the endpoint's port (raw sockets want 0).
    @inline(__always)
    func write(to storage: UnsafeMutablePointer<sockaddr_storage>, port overridePort: UInt16? = nil) -> socklen_t {
        let port = (overridePort ?? self.port).bigEndian
        let raw = UnsafeMutableRawPointer(storage)
        switch address.family {
        case .v4:
            let sin = raw.assumingMemoryBound(to: sockaddr_in.self)
            sin.pointee = sockaddr_in()
            sin.pointee.sin_family = sa_family_t(AF_INET)
            sin.pointee.sin_port = port
            sin.pointee.sin_addr.s_addr = address.v4Value.bigEndian
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6:
            let sin6 = raw.assumingMemoryBound(to: sockaddr_in6.self)
            sin6.pointee = sockaddr_in6()
            sin6.pointee.sin6_family = sa_family_t(AF_INET6)
            sin6.pointee.sin6_port = port
            withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { bytes in
                bytes.storeBytes(of: address.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: address.low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Reads a sockaddr_in/sockaddr_in6; nil for any other family.
    @inline(__always)
    init?(_ storage: UnsafePointer<sockaddr_storage>) {
        let raw = UnsafeRawPointer(storage)
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let sin = raw.assumingMemoryBound(to: sockaddr_in.self).pointee
            self.init(address: IPAddress(v4: UInt32(bigEndian: sin.sin_addr.s_addr)), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = raw.assumingMemoryBound(to: sockaddr_in6.self).pointee
            var addr = sin6.sin6_addr
            let (high, low) = withUnsafeBytes(of: &addr) { bytes in
                (UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self.init(address: IPAddress(v6High: high, low: low), port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }
}
