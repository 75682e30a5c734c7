// Cluster mode through the control endpoint: `GET /v1/cluster` (404 while cluster mode is off),
// the `vxrouter_cluster_*` metrics, and cluster events on the event stream under their own names.
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import VXControlAPI

@testable import VXControl
@testable import VXRouter

@Suite struct ClusterRouteTests {
    static let info = ClusterInfo(
        overlay: "prod", hostID: "rack1-a", incarnation: "5eed", connected: true, endpoint: "http://10.0.0.2:2379",
        endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"], revision: 812, lastSyncSecondsAgo: 0.4,
        leaseID: "694d7c1a2b3c4d5e", leaseTTLSeconds: 15, members: ["rack1-a", "rack1-b", "rack2-a"], floodMembers: 2,
        entries: 40, published: 22, relists: 3, leasesGranted: 2, corrections: 1, conflicts: 1, moves: 4,
        applyFailures: 0, lastError: nil)

    @Test func clusterModeOffIsNotFound() async throws {
        let reply = try await exchange(request("GET", "/v1/cluster", token: nil), service: FakeRouterService())
        #expect(reply.status == 404, "\(reply)")
        #expect(reply.errorMessage?.contains("cluster mode is off") == true, "\(reply)")
    }

    @Test func clusterStateIsReadWithoutAToken() async throws {
        let service = FakeRouterService()
        service.state.withLock { $0.cluster = Self.info }
        let reply = try await exchange(request("GET", "/v1/cluster", token: nil), service: service)
        #expect(reply.status == 200 && reply.headers["content-type"] == "application/json", "\(reply)")
        #expect(try reply.decode(ClusterInfo.self) == Self.info)
        // snake_case on the wire; an absent last_error is left out, not null.
        #expect(reply.text.contains("\"lease_ttl_seconds\":15") && reply.text.contains("\"last_sync_seconds_ago\":0.4"))
        #expect(!reply.text.contains("last_error"))
        #expect(service.calls == ["cluster"])
        let post = try await exchange(request("POST", "/v1/cluster", body: "{}"), service: service)
        #expect(post.status == 405, "\(post)")
    }

    @Test func metricsCarryTheClusterFamilies() {
        let text = Self.info.metricsText
        for line in [
            "vxrouter_cluster_connected 1", "vxrouter_cluster_revision 812", "vxrouter_cluster_members 3",
            "vxrouter_cluster_entries 40", "vxrouter_cluster_lease_held 1", "vxrouter_cluster_relists_total 3",
            "vxrouter_cluster_corrections_total 1", "vxrouter_cluster_conflicts_total 1", "vxrouter_cluster_moves_total 4",
            "# TYPE vxrouter_cluster_moves_total counter", "# TYPE vxrouter_cluster_connected gauge",
        ] {
            #expect(text.contains(line + "\n"), "missing \(line) in\n\(text)")
        }
        var disconnected = Self.info
        disconnected.connected = false
        disconnected.leaseID = nil
        #expect(disconnected.metricsText.contains("vxrouter_cluster_connected 0\n"))
        #expect(disconnected.metricsText.contains("vxrouter_cluster_lease_held 0\n"))
    }

    @Test func theBoardAnswersOnceTheClientIsAttached() async {
        let board = ClusterBoard()
        #expect(await board.info() == nil)
        board.attach { Self.info }
        #expect(await board.info() == Self.info)
    }

    @Test func clusterEventsGoOnTheStreamUnderTheirOwnNames() throws {
        let channel = EmbeddedChannel()
        let hub = EventHub()
        let hook = ClusterHook(board: ClusterBoard(), hub: hub)
        let subscriber = StreamWriter.events(channel: channel)
        hub.subscribe(subscriber)
        hook.publish(ClusterEventBody(type: .memberJoined, host: "rack1-b", address: "10.1.0.2", time: "t1"))
        hook.publish(
            ClusterEventBody(type: .macMoved, vni: 42, mac: "02:00:00:00:00:01", from: "rack1-a", to: "rack1-b", time: "t2"))
        hook.publish(
            ClusterEventBody(
                type: .macConflict, vni: 42, mac: "02:00:00:00:00:02", claimants: ["rack1-a", "rack2-a"], kept: "rack2-a",
                time: "t3"))
        channel.embeddedEventLoop.run()
        var text = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .body(.byteBuffer(let buffer)) = part { text += String(buffer: buffer) }
        }
        #expect(
            text.hasPrefix(
                "id: 1\nevent: member_joined\ndata: {\"address\":\"10.1.0.2\",\"host\":\"rack1-b\",\"time\":\"t1\",\"type\":\"member_joined\"}\n\n"),
            "\(text)")
        #expect(text.contains("event: mac_moved\ndata: {\"from\":\"rack1-a\",\"mac\":\"02:00:00:00:00:01\",\"time\":\"t2\",\"to\":\"rack1-b\",\"type\":\"mac_moved\",\"vni\":42}\n"))
        #expect(text.contains("event: mac_conflict\n"))
        #expect(hub.published.load(ordering: .relaxed) == 3)
    }
}
