import ArgumentParser
import Foundation
import Herald

struct PreviewRequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview-request",
        abstract: "Print the request a trigger would send (after its request_transform), without sending it.",
        discussion: """
            With --payload FILE the file's JSON is $body, so a template can be tried on a sample
            before a real row exists; with --event ID the stored event is built exactly as the
            next attempt would send it. Secret header values are redacted. Exits 1 when the
            transform fails on the input (the attempt would be recorded as that error).
            """)

    @OptionGroup var options: GlobalOptions

    @Argument(help: "Trigger name.")
    var trigger: String

    @Option(help: "A stored event: payload id, imported Hasura id or event number.")
    var event: String?

    @Option(help: "A JSON file used as $body.", completion: .file())
    var payload: String?

    func validate() throws {
        guard (event == nil) != (payload == nil) else {
            throw ValidationError("give exactly one of --event ID or --payload FILE")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let config = try options.loadSourceConfig()
            guard let trigger = config.trigger(named: self.trigger) else {
                throw CLIFailure(message: "trigger '\(self.trigger)' is not in \(config.file)")
            }
            let now = Int(Date().timeIntervalSince1970)
            let preview: RequestPreview
            if let payload {
                let data: Data
                do {
                    data = try Data(contentsOf: URL(fileURLWithPath: payload))
                } catch {
                    throw CLIFailure(message: "cannot read \(payload): \(error.localizedDescription)")
                }
                guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else {
                    throw CLIFailure(message: "\(payload) is not JSON")
                }
                preview = RequestPreview.forPayload(Array(data), trigger: trigger, timestamp: now)
            } else {
                let id = event ?? ""
                let admin = try EventAdmin(connection: PGConnection(url: config.database.url))
                guard let found = try RequestPreview.forEvent(id, trigger: trigger, admin: admin, timestamp: now) else {
                    throw CLIFailure(message: EventID.notFoundMessage(id))
                }
                preview = found
            }
            // Configured secrets only: the query string a transform builds is what is previewed.
            print(ProcessRedactor.shared.redactor.values(in: preview.text))
            if preview.failure != nil { throw ExitCode(1) }
        }
    }
}
