import ArgumentParser
import Foundation
import Herald
import Logging
import Synchronization

@main
struct HeraldCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Delivers PostgreSQL row changes to webhooks, at least once.",
        version: Herald.version,
        subcommands: [
            RunCommand.self, CheckConfigCommand.self, InstallTriggersCommand.self, RedeliverEventCommand.self,
            SkipEventCommand.self, InvokeCommand.self, StatsCommand.self, CleanupCommand.self, TriggersCommand.self,
            DisableTriggerCommand.self, EnableTriggerCommand.self, MigrateFromHasuraCommand.self, ConsoleCommand.self,
            MaintainCommand.self, ScheduleEventCommand.self, ScheduledCommand.self, CancelEventCommand.self,
            PreviewRequestCommand.self, BackfillCommand.self, ConsoleLogoutCommand.self,
        ])
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Configuration file.", discussion: "Default: $HERALD_CONFIG, then ./config/herald.yaml.",
            valueName: "path"))
    var config: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (default: $HERALD_LOG_LEVEL or info).")
    var logLevel: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The source (database) to work on, by its name under sources:.",
            discussion: "Required with several sources, except by commands that cover every source when it is left out (run, check-config, install-triggers, stats).",
            valueName: "name"))
    var source: String?

    var configPath: String { config ?? ConfigLoader.defaultPath() }

    /// Refuses a log level that names none, before any command runs: a typo such as
    /// `verbose` must not quietly log at info. `--log-level` is a usage error (64),
    /// `HERALD_LOG_LEVEL` a configuration error (78).
    func validate() throws {
        do {
            _ = try EnvironmentCheck.logLevel(option: logLevel, environment: ProcessInfo.processInfo.environment)
        } catch {
            guard logLevel == nil else { throw ValidationError(error.description) }
            printError("error: \(error.description)")
            throw ExitCode.configError
        }
    }

    /// Sets up logging once for the process and returns the root logger.
    func makeLogger() -> Logger {
        // validate() has refused a level that names none.
        let level =
            (try? EnvironmentCheck.logLevel(option: logLevel, environment: ProcessInfo.processInfo.environment)) ?? .info
        // A command may ask twice (a helper it calls needs a logger too); swift-log allows
        // one bootstrap per process.
        loggingBootstrapped.withLock { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return RedactingLogHandler(handler)
            }
        }
        return Logger(label: "herald")
    }

    /// Loads the configuration or exits with a message naming what is wrong.
    func loadConfig() throws -> HeraldConfig {
        let config: HeraldConfig
        do {
            config = try ConfigLoader.load(path: configPath)
            ProcessRedactor.shared.set(Redactor(config: config))
        } catch {
            throw CLIFailure(message: error.description, exitCode: .configError)
        }
        config.warnings.forEach { printError("warning: \($0)") }
        LoadedDatabase.origin.withLock { $0 = config.database.urlOrigin }
        return config
    }
}

extension GlobalOptions {
    /// The configuration scoped to `--source`, or to the only source; fails naming the
    /// sources when there are several and none was chosen.
    func loadSourceConfig() throws -> HeraldConfig {
        let config = try loadConfig()
        do {
            return config.scoped(to: try config.source(named: source))
        } catch {
            throw CLIFailure(message: error.message, exitCode: .usage)
        }
    }

    /// The source's databases: the one `--source` names (or the only one), and on a Citus
    /// coordinator each worker node's too, whose logs hold the distributed tables' events.
    /// Commands on events or trigger state act on all of them.
    func loadNodeConfigs(logger: Logger) throws -> [HeraldConfig] {
        let config = try loadSourceConfig()
        // Quiet: a database that cannot be reached is the command's own error to report.
        var quiet = logger
        quiet.logLevel = .critical
        let expanded = CitusSources.expand(config, logger: quiet)
        return expanded.sources.map { expanded.scoped(to: $0) }
    }

    /// One configuration per source to work on: the one `--source` names, or every source.
    func loadSourceConfigs() throws -> [HeraldConfig] {
        let config = try loadConfig()
        guard source != nil else { return config.sources.map { config.scoped(to: $0) } }
        return [try loadSourceConfig()]
    }
}

/// Prints `source NAME:` before each source's part of a command that covers several.
func printSourceHeading(_ config: HeraldConfig, of count: Int) {
    guard count > 1, let source = config.sources.first else { return }
    print("source \(source.name):")
}

/// A failure already described for the user; the root command prints it and exits.
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    var exitCode: ExitCode = .failure
    var description: String { message }
}

extension ExitCode {
    /// sysexits' EX_CONFIG: the unit file stops restarting on it.
    static let configError = ExitCode(78)
    /// sysexits' EX_USAGE: the command line is wrong (an unknown or missing --source).
    static let usage = ExitCode(64)
}

/// Where the loaded configuration's database URL came from, for a failure to connect: the
/// file, `HERALD_DATABASE_URL` and Hasura's metadata can each set it, and the one that won is
/// not always the one the user looked at.
enum LoadedDatabase {
    static let origin = Mutex("")
}

/// Runs a command body, turning Herald's errors into a one-line message and an exit code.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PGError where error.code == .connectionFailed {
        let origin = LoadedDatabase.origin.withLock { $0 }
        let from = origin.isEmpty ? "" : " (the database URL is from \(origin))"
        FileHandle.standardError.write(Data("herald: error: \(redacted("\(error)"))\(from)\n".utf8))
        throw ExitCode.failure
    } catch let failure as CLIFailure {
        FileHandle.standardError.write(Data("herald: error: \(redacted(failure.message))\n".utf8))
        throw failure.exitCode
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("herald: error: \(redacted("\(error)"))\n".utf8))
        throw ExitCode.failure
    }
}

/// `text` without the configuration's secrets, for what a command prints (its log lines are
/// redacted by the log handler).
func redacted(_ text: String) -> String {
    ProcessRedactor.shared.redactor(text)
}

/// Whether ``GlobalOptions/makeLogger()`` has set up logging.
private let loggingBootstrapped = Mutex(false)
