import Logging

/// A log handler that passes every message and metadata value through the process's
/// ``Redactor`` before the handler it wraps writes it: one place for every log line,
/// whatever code emitted it and whatever that code interpolated.
public struct RedactingLogHandler: LogHandler {
    private var base: any LogHandler
    private let redactor: ProcessRedactor

    public init(_ base: any LogHandler, redactor: ProcessRedactor = .shared) {
        self.base = base
        self.redactor = redactor
    }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        let redact = redactor.redactor
        // The handler's own metadata (set through `logger[metadataKey:]`) is printed too.
        var merged = base.metadata
        if let metadata = event.metadata { merged.merge(metadata) { $1 } }
        if let error = event.error { merged["error"] = "\(error)" }
        var event = event
        event.message = "\(redact(event.message.description))"
        event.metadata = merged.mapValues { Self.redacted($0, redact) }
        event.error = nil
        var inner = base
        inner.metadata = [:]
        inner.log(event: event)
    }

    static func redacted(_ value: Logger.Metadata.Value, _ redact: Redactor) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(redact(text))
        case .stringConvertible(let item): .string(redact(item.description))
        case .array(let items): .array(items.map { redacted($0, redact) })
        case .dictionary(let items): .dictionary(items.mapValues { redacted($0, redact) })
        }
    }
}
