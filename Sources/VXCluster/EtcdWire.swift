// The JSON shapes of etcd's v3 gateway (grpc-gateway over etcdserverpb), Codable both ways.
// The gateway writes every int64 as a decimal string and every key and value as base64; fields
// equal to their protobuf default (0, false, "", PUT) are left out, so every field is optional
// here and read with its default.
import Foundation

/// An int64 as the gateway writes it ("123"); a bare number is accepted too.
struct Int64String: Codable, Sendable, Equatable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self), let value = Int64(text) {
            self.value = value
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// Bytes as base64 text (keys, values, range ends).
struct Base64Bytes: Codable, Sendable, Equatable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8) }

    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not base64: \(text.prefix(40))"))
        }
        bytes = Array(data)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Data(bytes).base64EncodedString())
    }
}

enum EtcdWire {
    struct ResponseHeader: Codable, Sendable {
        var revision: Int64String?
    }

    struct KeyValue: Codable, Sendable {
        var key: Base64Bytes
        var value: Base64Bytes?
        var createRevision: Int64String?
        var modRevision: Int64String?
        var version: Int64String?
        var lease: Int64String?

        enum CodingKeys: String, CodingKey {
            case key, value, version, lease
            case createRevision = "create_revision"
            case modRevision = "mod_revision"
        }
    }

    struct RangeRequest: Codable, Sendable {
        var key: Base64Bytes
        var rangeEnd: Base64Bytes?
        var revision: Int64String?
        var limit: Int64String?

        enum CodingKeys: String, CodingKey {
            case key, revision, limit
            case rangeEnd = "range_end"
        }
    }

    struct RangeResponse: Codable, Sendable {
        var header: ResponseHeader?
        var kvs: [KeyValue]?
        var more: Bool?
        var count: Int64String?
    }

    struct PutRequest: Codable, Sendable {
        var key: Base64Bytes
        var value: Base64Bytes
        var lease: Int64String?
    }

    struct PutResponse: Codable, Sendable {
        var header: ResponseHeader?
    }

    struct DeleteRangeRequest: Codable, Sendable {
        var key: Base64Bytes
        var rangeEnd: Base64Bytes?

        enum CodingKeys: String, CodingKey {
            case key
            case rangeEnd = "range_end"
        }
    }

    struct DeleteRangeResponse: Codable, Sendable {
        var header: ResponseHeader?
        var deleted: Int64String?
    }

    struct CompactionRequest: Codable, Sendable {
        var revision: Int64String
    }

    struct AuthenticateRequest: Codable, Sendable {
        var name: String
        var password: String
    }

    struct AuthenticateResponse: Codable, Sendable {
        var header: ResponseHeader?
        var token: String?
    }

    struct LeaseGrantRequest: Codable, Sendable {
        // The gateway keeps protobuf's field names for these two.
        var TTL: Int64String
        var ID: Int64String?
    }

    struct LeaseGrantResponse: Codable, Sendable {
        var header: ResponseHeader?
        var ID: Int64String?
        var TTL: Int64String?
        var error: String?
    }

    struct LeaseIDRequest: Codable, Sendable {
        var ID: Int64String
    }

    /// `/v3/lease/keepalive` streams; one POST carries one keepalive and gets one `result`.
    struct LeaseKeepAliveResponse: Codable, Sendable {
        struct Result: Codable, Sendable {
            var header: ResponseHeader?
            var ID: Int64String?
            var TTL: Int64String?
        }
        var result: Result?
        var error: StreamError?
    }

    struct LeaseRevokeResponse: Codable, Sendable {
        var header: ResponseHeader?
    }

    struct WatchCreateRequest: Codable, Sendable {
        var key: Base64Bytes
        var rangeEnd: Base64Bytes?
        var startRevision: Int64String?
        var prevKV: Bool?
        var progressNotify: Bool?

        enum CodingKeys: String, CodingKey {
            case key
            case rangeEnd = "range_end"
            case startRevision = "start_revision"
            case prevKV = "prev_kv"
            case progressNotify = "progress_notify"
        }
    }

    struct WatchRequest: Codable, Sendable {
        var createRequest: WatchCreateRequest

        enum CodingKeys: String, CodingKey { case createRequest = "create_request" }
    }

    struct Event: Codable, Sendable {
        /// "PUT" is the default and so usually absent.
        var type: String?
        var kv: KeyValue?
        var prevKV: KeyValue?

        enum CodingKeys: String, CodingKey {
            case type, kv
            case prevKV = "prev_kv"
        }
    }

    struct WatchResponse: Codable, Sendable {
        struct Result: Codable, Sendable {
            var header: ResponseHeader?
            var created: Bool?
            var canceled: Bool?
            var compactRevision: Int64String?
            var cancelReason: String?
            var events: [Event]?

            enum CodingKeys: String, CodingKey {
                case header, created, canceled, events
                case compactRevision = "compact_revision"
                case cancelReason = "cancel_reason"
            }
        }
        var result: Result?
        var error: StreamError?
    }

    /// A streaming call's error object (grpc-gateway's stream error shape).
    struct StreamError: Codable, Sendable {
        var message: String?
        var grpcCode: Int?

        enum CodingKeys: String, CodingKey {
            case message
            case grpcCode = "grpc_code"
        }
    }

    /// What the gateway answers instead of a response: a gRPC status code and its message.
    struct ErrorBody: Codable, Sendable {
        var error: String?
        var message: String?
        var code: Int?
    }

    /// A body that may be an error: decoded first to tell the two apart.
    struct MaybeError: Codable, Sendable {
        var error: String?
        var message: String?
        var code: Int?
    }
}
