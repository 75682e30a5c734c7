// The one error the lab throws: what it tried and what it saw.
import Foundation

/// A lab step that did not go as planned, with what the lab saw.
package struct LabFailure: Error, CustomStringConvertible {
    package let description: String
    /// Already carries a router's log tail (withLab need not add the logs again).
    package var showsRouterLog = false
    package init(_ description: String, showsRouterLog: Bool = false) {
        self.description = description
        self.showsRouterLog = showsRouterLog
    }
}
