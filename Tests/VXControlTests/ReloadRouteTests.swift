// POST /v1/reload: privileged, takes no parameters, answers the typed list of changes, and
// passes a refusal (409, the key first) or an invalid config (400) through unchanged.
import Foundation
import Testing
import VXControlAPI
import VXRouter

@testable import VXControl

@Suite struct ReloadRouteTests {
    @Test func reloadAnswersTheChanges() async throws {
        let service = FakeRouterService()
        let changes = ReloadResult(changes: [
            ReloadChange(kind: .networkAdded, vni: 43), ReloadChange(kind: .networkRemoved, vni: 44),
            ReloadChange(kind: .floodAdded, vni: 42, remote: "198.18.0.3"),
            ReloadChange(kind: .staticChanged, vni: 42, mac: "02:00:00:00:00:02"),
            ReloadChange(kind: .settingChanged, vni: nil, key: "capture"),
        ])
        service.state.withLock { $0.reload = .success(changes) }
        for body in [nil, "{}"] as [String?] {
            let reply = try await exchange(request("POST", "/v1/reload", body: body), service: service)
            #expect(reply.status == 200 && reply.decoded(ReloadResult.self) == changes, "\(reply)")
        }
        #expect(service.calls == ["reload", "reload"])
        // The wire names, as the spec lists them.
        let text = try await exchange(request("POST", "/v1/reload"), service: service).text
        #expect(text.contains(#""kind":"network_added""#) && text.contains(#""key":"capture""#), "\(text)")
    }

    @Test func reloadNeedsTheToken() async throws {
        let service = FakeRouterService()
        let reply = try await exchange(request("POST", "/v1/reload", token: nil), service: service)
        #expect(reply.status == 401 && reply.headers["www-authenticate"] == "Bearer", "\(reply)")
        #expect(service.calls.isEmpty)
    }

    @Test func reloadTakesNoParameters() async throws {
        let service = FakeRouterService()
        let reply = try await exchange(request("POST", "/v1/reload", body: #"{"file": "/etc/other.yaml"}"#), service: service)
        #expect(reply.status == 400 && reply.errorMessage?.contains("no parameters") == true, "\(reply)")
        #expect(service.calls.isEmpty)
        let get = try await exchange(request("GET", "/v1/reload"), service: service)
        #expect(get.status == 405 && get.errorMessage?.contains("(allowed: POST)") == true, "\(get)")
    }

    @Test func refusalNamesTheKey() async throws {
        let service = FakeRouterService()
        service.state.withLock {
            $0.reload = .failure(ServiceError(.conflict, "underlay.port: cannot change while running; restart the router"))
        }
        let refused = try await exchange(request("POST", "/v1/reload"), service: service)
        #expect(refused.status == 409 && refused.errorMessage?.hasPrefix("underlay.port:") == true, "\(refused)")
        service.state.withLock { $0.reload = .failure(ServiceError(.invalid, "the config does not load, nothing changed: x")) }
        let invalid = try await exchange(request("POST", "/v1/reload"), service: service)
        #expect(invalid.status == 400 && invalid.errorMessage?.contains("does not load") == true, "\(invalid)")
    }
}
