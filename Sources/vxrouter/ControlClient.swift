// The CLI's side of the control endpoint: a small blocking HTTP/1.1 client over TCP or a Unix
// socket. It only ever talks to a router on this host, one request per connection
// (`Connection: close`), so it needs no pool and no event loop: write the request, read the
// status line and headers, then the body (Content-Length, chunked, or until close). Streams
// (the event stream) hand body bytes to a callback as they arrive.
import Glibc
import VXConfig

public struct ControlClientError: Error, CustomStringConvertible {
    public let description: String
    /// True when nothing answered at the endpoint (no router, or its endpoint is off).
    public let unreachable: Bool
}

public struct ControlResponse: Sendable {
    public let status: Int
    public let headers: [(String, String)]
    public let body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

public struct ControlClient: Sendable {
    public let endpoint: ControlAddress
    public let token: String?
    /// Seconds to wait for a response (0 = forever, for streams).
    public var timeout: Int = 10

    public init(endpoint: ControlAddress, token: String? = nil) {
        self.endpoint = endpoint
        self.token = token
    }

    /// One request; returns the whole response.
    public func request(_ method: String, _ path: String, json body: String? = nil) throws(ControlClientError)
        -> ControlResponse
    {
        var collected: [UInt8] = []
        let head = try exchange(method, path, body: body) { collected += $0; return true }
        return ControlResponse(status: head.status, headers: head.headers, body: collected)
    }

    /// A request whose body is consumed as it arrives; `onBytes` returns false to stop reading.
    @discardableResult
    public func stream(_ method: String, _ path: String, onBytes: ([UInt8]) -> Bool) throws(ControlClientError)
        -> (status: Int, headers: [(String, String)])
    {
        var client = self
        client.timeout = 0
        return try client.exchange(method, path, body: nil, onBytes: onBytes)
    }

    private func fail(_ text: String, unreachable: Bool = false) -> ControlClientError {
        ControlClientError(description: text, unreachable: unreachable)
    }

    private func connectSocket() throws(ControlClientError) -> Int32 {
        let noRouter = "no router answers at \(endpoint)"
        switch endpoint {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw fail("socket: \(String(cString: strerror(errno)))") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in bytes.prefix(raw.count - 1).enumerated() { raw[i] = byte }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            if rc != 0 {
                let err = errno
                close(fd)
                throw fail("\(noRouter): \(String(cString: strerror(err)))", unreachable: true)
            }
            return fd
        case .tcp(let ip, let port):
            let domain = ip.isV4 ? AF_INET : AF_INET6
            let fd = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw fail("socket: \(String(cString: strerror(errno)))") }
            var storage = sockaddr_storage()
            var length: socklen_t
            if ip.isV4 {
                length = socklen_t(MemoryLayout<sockaddr_in>.size)
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        sin.pointee.sin_family = sa_family_t(AF_INET)
                        sin.pointee.sin_port = port.bigEndian
                        sin.pointee.sin_addr.s_addr = ip.v4Value.bigEndian
                    }
                }
            } else {
                length = socklen_t(MemoryLayout<sockaddr_in6>.size)
                withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                        sin6.pointee.sin6_port = port.bigEndian
                        withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { raw in
                            for (i, byte) in ip.bytes.enumerated() { raw[i] = byte }
                        }
                    }
                }
            }
            let rc = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if rc != 0 {
                let err = errno
                close(fd)
                throw fail("\(noRouter): \(String(cString: strerror(err)))", unreachable: true)
            }
            return fd
        }
    }

    private func exchange(
        _ method: String, _ path: String, body: String?, onBytes: ([UInt8]) -> Bool
    ) throws(ControlClientError) -> (status: Int, headers: [(String, String)]) {
        let fd = try connectSocket()
        defer { close(fd) }
        if timeout > 0 {
            var tv = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: vxrouter\r\nUser-Agent: vxrouter-cli\r\nConnection: close\r\n"
        request += "Accept: application/json, text/event-stream\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let body {
            request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        } else {
            request += method == "GET" ? "\r\n" : "Content-Length: 0\r\n\r\n"
        }
        var bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("sending to \(endpoint): \(String(cString: strerror(errno)))")
            }
            sent += n
        }
        bytes.removeAll()

        var reader = Reader(fd: fd, endpoint: endpoint)
        // Status line and headers.
        let statusLine = try reader.line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw fail("\(endpoint) did not answer with HTTP: \(statusLine.prefix(80))")
        }
        var headers: [(String, String)] = []
        while true {
            let line = try reader.line()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon]).lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingSpaces()
            headers.append((name, value))
        }
        let value = { (name: String) in headers.first { $0.0 == name }?.1 }
        if value("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try reader.line()
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init)?.trimmingSpaces() ?? "", radix: 16)
                else { throw fail("bad chunk size from \(endpoint): \(sizeLine.prefix(20))") }
                if size == 0 { break }
                let chunk = try reader.bytes(size)
                _ = try reader.line()
                if !onBytes(chunk) { break }
            }
        } else if let length = value("content-length").flatMap({ Int($0) }) {
            if length > 0 { _ = onBytes(try reader.bytes(length)) }
        } else {
            while let chunk = try reader.some() {
                if !onBytes(chunk) { break }
            }
        }
        return (status, headers)
    }

    /// Buffered reads from the socket.
    private struct Reader {
        let fd: Int32
        let endpoint: ControlAddress
        var buffer: [UInt8] = []
        var start = 0

        mutating func fill() throws(ControlClientError) -> Bool {
            var chunk = [UInt8](repeating: 0, count: 16384)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    if start > 0 {
                        buffer.removeFirst(start)
                        start = 0
                    }
                    buffer += chunk[0..<n]
                    return true
                }
                if n == 0 { return false }
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ControlClientError(description: "\(endpoint) did not answer in time", unreachable: false)
                }
                throw ControlClientError(
                    description: "reading from \(endpoint): \(String(cString: strerror(errno)))", unreachable: false)
            }
        }

        mutating func line() throws(ControlClientError) -> String {
            while true {
                if let newline = buffer[start...].firstIndex(of: 0x0A) {
                    var end = newline
                    if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                    let text = String(decoding: buffer[start..<end], as: UTF8.self)
                    start = newline + 1
                    return text
                }
                guard try fill() else {
                    throw ControlClientError(description: "\(endpoint) closed the connection early", unreachable: false)
                }
            }
        }

        mutating func bytes(_ count: Int) throws(ControlClientError) -> [UInt8] {
            while buffer.count - start < count {
                guard try fill() else {
                    throw ControlClientError(description: "\(endpoint) closed the connection early", unreachable: false)
                }
            }
            let result = Array(buffer[start..<start + count])
            start += count
            return result
        }

        /// Whatever is buffered or arrives next; nil at end of stream.
        mutating func some() throws(ControlClientError) -> [UInt8]? {
            if start == buffer.count {
                guard try fill() else { return nil }
            }
            let result = Array(buffer[start...])
            start = buffer.count
            return result
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
