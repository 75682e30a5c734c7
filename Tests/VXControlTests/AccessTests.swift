// The control endpoint's privilege model without root: the pure decision (caller's credentials +
// control group + request kind → allow/deny), every route's 403 on the Unix socket for a caller
// outside the group, and the metrics listener's one route. PrivilegeTests repeats the essentials
// against a real router and real users.
import Foundation
import NIOHTTP1
import Testing
import VXConfig
import VXPlatform

@testable import VXControl

private let group = ControlGroup(name: "vxadmin", gid: 990)
private let nobody = PeerCredentials(pid: 4242, uid: 65534, gid: 65534, supplementaryGroups: [])
private let root = PeerCredentials(pid: 1, uid: 0, gid: 0, supplementaryGroups: [])
private let member = PeerCredentials(pid: 4243, uid: 1000, gid: 1000, supplementaryGroups: [27, 990])
private let primaryMember = PeerCredentials(pid: 4244, uid: 1001, gid: 990, supplementaryGroups: nil)
private let groupsUnknown = PeerCredentials(pid: 4245, uid: 1000, gid: 1000, supplementaryGroups: nil)

@Suite struct AccessDecisionTests {
    @Test func requestKinds() {
        #expect(RequestKind(method: .GET, exposesTraffic: false) == .read)
        #expect(RequestKind(method: .HEAD, exposesTraffic: false) == .read)
        #expect(RequestKind(method: .GET, exposesTraffic: true) == .trafficExposure)
        for method: HTTPMethod in [.POST, .DELETE, .PUT, .PATCH, .RAW(value: "BREW")] {
            #expect(RequestKind(method: method, exposesTraffic: false) == .change, "\(method)")
        }
        #expect(!RequestKind.read.privileged && RequestKind.change.privileged && RequestKind.trafficExposure.privileged)
    }

    @Test func readsAreOpenToAnyCaller() {
        for caller in [nobody, root, member, groupsUnknown, nil] as [PeerCredentials?] {
            #expect(ControlAccess.decide(.read, caller: caller, group: group) == .allow)
        }
    }

    @Test func rootAndMembersMayChangeAndCapture() {
        for kind in [RequestKind.change, .trafficExposure] {
            #expect(ControlAccess.decide(kind, caller: root, group: group) == .allow)
            #expect(ControlAccess.decide(kind, caller: member, group: group) == .allow, "supplementary group")
            #expect(ControlAccess.decide(kind, caller: primaryMember, group: group) == .allow, "primary group")
        }
    }

    @Test func othersAreRefusedWithTheReason() {
        for kind in [RequestKind.change, .trafficExposure] {
            guard case .deny(let reason) = ControlAccess.decide(kind, caller: nobody, group: group) else {
                Issue.record("nobody allowed to \(kind)")
                continue
            }
            #expect(reason.contains("vxadmin") && reason.contains("uid 65534") && reason.contains("control.group"), "\(reason)")
            #expect(reason.contains(kind == .change ? "changes" : "capture"), "\(reason)")
        }
        // Groups unreadable: only uid and primary gid count, and the reason says so.
        guard case .deny(let reason) = ControlAccess.decide(.change, caller: groupsUnknown, group: group) else {
            Issue.record("allowed without known groups")
            return
        }
        #expect(reason.contains("could not be read"), "\(reason)")
        // Credentials unreadable: refused.
        guard case .deny = ControlAccess.decide(.change, caller: nil, group: group) else {
            Issue.record("allowed without credentials")
            return
        }
    }

    @Test func rootGroupMeansRootOnly() {
        let rootGroup = ControlGroup(name: "root", gid: 0)
        #expect(ControlAccess.decide(.change, caller: root, group: rootGroup) == .allow)
        #expect(ControlAccess.decide(.change, caller: member, group: rootGroup) != .allow)
    }

    @Test func procStatusGroups() {
        let status = "Name:\tcurl\nUmask:\t0022\nGid:\t1000\t1000\t1000\t1000\nGroups:\t27 990 1000 \nNStgid:\t4242\n"
        #expect(supplementaryGroups(procStatus: status) == [27, 990, 1000])
        #expect(supplementaryGroups(procStatus: "Name:\tx\nGroups:\t\nPid:\t1\n") == [])
        #expect(supplementaryGroups(procStatus: "Name:\tx\n") == nil)
        #expect(supplementaryGroups(procStatus: "Groups:\t27 x\n") == nil)
    }

    @Test func ownProcessGroupsAndGroupLookup() throws {
        // This process's own /proc entry, and the group database's root group: no privilege needed.
        #expect(readSupplementaryGroups(pid: getpid()) != nil)
        #expect(try groupID(named: "root") == 0)
        #expect(try groupID(named: "vxrouter-no-such-group") == nil)
    }
}

@Suite struct PrivilegedRouteTests {
    let good = #"{"mac": "02:00:00:00:00:42", "remote": "198.18.0.7"}"#

    /// Every changing route and the capture stream, with a body that would succeed.
    var privileged: [(String, String, String?)] {
        [
            ("POST", "/v1/networks/42/fdb", good),
            ("POST", "/v1/networks/42/fdb/flush", nil),
            ("DELETE", "/v1/networks/42/fdb/02:00:00:00:00:42", nil),
            ("POST", "/v1/networks/42/flood", #"{"remote": "198.18.0.9"}"#),
            ("DELETE", "/v1/networks/43/flood/198.18.0.2", nil),
            ("POST", "/v1/capture", #"{"file": "x.pcap", "count": 1}"#),
            ("DELETE", "/v1/capture", nil),
            ("GET", "/v1/capture/stream?count=1", nil),
        ]
    }

    @Test func everyPrivilegedRouteRefusesAnOutsider() async throws {
        for (method, path, body) in privileged {
            let service = FakeRouterService()
            let reply = try await exchange(
                request(method, path, body: body, token: nil), service: service, token: nil, controlGroup: group,
                caller: nobody)
            #expect(reply.status == 403, "\(method) \(path): \(reply)")
            #expect(reply.errorMessage?.contains("control group vxadmin") == true, "\(method) \(path): \(reply)")
            #expect(service.calls.isEmpty, "\(method) \(path) reached the router: \(service.calls)")
        }
    }

    @Test func rootAndMembersGetThrough() async throws {
        for caller in [root, member] {
            for (method, path, body) in privileged {
                let reply = try await exchange(
                    request(method, path, body: body, token: nil), service: FakeRouterService(), token: nil,
                    controlGroup: group, caller: caller)
                #expect(reply.status != 403 && reply.status < 500, "uid \(caller.uid) \(method) \(path): \(reply)")
            }
        }
    }

    @Test func readsStayOpenOnTheSocket() async throws {
        for path in ["/v1/health", "/v1/stats", "/v1/networks/42/fdb", "/v1/networks/43/flood", "/v1/config", "/metrics"] {
            let reply = try await exchange(
                request("GET", path, token: nil), service: FakeRouterService(), token: nil, controlGroup: group,
                caller: nobody)
            #expect(reply.status == 200, "\(path): \(reply)")
        }
    }

    @Test func unreadableCredentialsAreRefused() async throws {
        let reply = try await exchange(
            request("POST", "/v1/networks/42/fdb", body: good, token: nil), service: FakeRouterService(), token: nil,
            controlGroup: group, caller: nil)
        #expect(reply.status == 403, "\(reply)")
    }

    @Test func tokenStillCheckedFirstWhenBothApply() async throws {
        let reply = try await exchange(
            request("POST", "/v1/networks/42/fdb", body: good, token: nil), service: FakeRouterService(),
            token: "secret", controlGroup: group, caller: root)
        #expect(reply.status == 401, "\(reply)")
    }
}

@Suite struct MetricsListenerTests {
    @Test func servesMetricsOnly() async throws {
        let service = FakeRouterService()
        let metrics = try await exchange(request("GET", "/metrics", token: nil), service: service, token: nil, routes: .metrics)
        #expect(metrics.status == 200, "\(metrics)")
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(metrics.text.contains("vxrouter_workers 2"))
        for path in ["/v1/stats", "/v1/health", "/v1/networks/42/fdb", "/v1/capture/stream", "/", "/metrics/x"] {
            let reply = try await exchange(request("GET", path, token: nil), service: service, token: nil, routes: .metrics)
            #expect(reply.status == 404, "\(path): \(reply)")
        }
        // Nothing to change there: a POST to a control route is not found, one to /metrics not allowed.
        let post = try await exchange(
            request("POST", "/v1/networks/42/flood", body: #"{"remote": "198.18.0.9"}"#, token: nil), service: service,
            token: nil, routes: .metrics)
        #expect(post.status == 404, "\(post)")
        let postMetrics = try await exchange(request("POST", "/metrics", token: nil), service: service, token: nil, routes: .metrics)
        #expect(postMetrics.status == 405, "\(postMetrics)")
        #expect(service.calls == ["metrics"], "\(service.calls)")
    }
}
