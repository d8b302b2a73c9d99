import ArgumentParser
import Foundation
import Herald

struct SkipEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "skip-event",
        abstract: "Mark pending events failed without sending them; a blocked head releases its key.",
        discussion: """
            For ordered triggers (ordering: on_failure: block): the head of a key that failed
            for good holds the key. Skipping it marks it failed (last_error says skipped and
            by whom) and the next event of its key is delivered at once. IDs are payload ids
            or event numbers; `herald stats` shows blocked keys.
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Event ids.")
    var ids: [String]

    @Flag(help: "Skip even events currently leased by a worker (their outcome is then ignored).")
    var force = false

    func run() async throws {
        try await reportingErrors {
            let admins = try options.loadNodeConfigs(logger: options.makeLogger()).map {
                try EventAdmin(connection: PGConnection(url: $0.database.url))
            }
            let user = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
            var problems = 0
            for id in ids {
                // The database whose log has the event (a Citus cluster has one per node).
                let (admin, result) = try firstKnown(admins) { try $0.skip(id, by: "herald skip-event (\(user))", force: force) }
                switch result {
                case .skipped(let number, let key):
                    let released = key.map { "; key \($0) moves on" } ?? ""
                    print("event \(try admin.publicID(number)) skipped (marked failed)\(released)")
                case .unknown(let text):
                    problems += 1
                    printError(EventID.notFoundMessage(text))
                case .notPending(let number, let status):
                    problems += 1
                    printError("event \(try admin.publicID(number)): is \(status), not pending; nothing to skip")
                case .busy(let number, let worker):
                    problems += 1
                    printError("event \(try admin.publicID(number)): being delivered by \(worker); use --force to skip anyway")
                }
            }
            if problems > 0 { throw ExitCode.failure }
        }
    }
}

/// The first database's answer that is not "unknown event", or the last answer.
func firstKnown<Result>(_ admins: [EventAdmin], _ body: (EventAdmin) throws -> Result) throws -> (EventAdmin, Result)
where Result: EventLookupResult {
    var last: (EventAdmin, Result)?
    for admin in admins {
        let result = try body(admin)
        if !result.isUnknown { return (admin, result) }
        last = (admin, result)
    }
    guard let last else { throw CLIFailure(message: "no database to look in") }
    return last
}

/// A lookup's answer that may say the event is not in this database.
protocol EventLookupResult {
    var isUnknown: Bool { get }
}

extension SkipResult: EventLookupResult {
    var isUnknown: Bool {
        if case .unknown = self { return true }
        return false
    }
}

extension RedeliveryResult: EventLookupResult {
    var isUnknown: Bool {
        if case .unknown = self { return true }
        return false
    }
}
