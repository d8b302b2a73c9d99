import Foundation

/// Files under Tests/HeraldTests/Fixtures, read in place (the folder is excluded from the
/// target, not bundled).
enum Fixtures {
    static func path(_ relative: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/\(relative)").standardized.path
    }

    /// The metadata-directory config and the environment its from_env / {{VAR}} / value_from_env name.
    static let metadataConfig = path("hasura-metadata/herald.yaml")

    /// A metadata directory with ten problems over its files (see its README.md).
    static let problemsConfig = path("hasura-metadata-problems/herald.yaml")

    static func metadataEnvironment(databaseURL: String) -> [String: String] {
        [
            "HASURA_GRAPHQL_DATABASE_URL": databaseURL,
            "ORDERS_BASE_URL": "http://127.0.0.1:9/hooks",
            "ORDERS_API_KEY": "k-123",
            "ORDER_DELETED_WEBHOOK": "http://127.0.0.1:9/deleted",
            "BILLING_WEBHOOK": "http://127.0.0.1:9/billing",
        ]
    }
}
