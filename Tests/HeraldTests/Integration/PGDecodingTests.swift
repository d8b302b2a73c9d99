import Foundation
import Testing

@testable import Herald

/// Typed decoding of result columns against real PostgreSQL text output: the right value for
/// every type Herald reads, and an error naming the column and the text when a value is NULL
/// where one is required or does not parse, instead of a silent zero.
@Suite("Typed row decoding", .enabled(if: TestEnvironment.integrationEnabled))
struct PGDecodingTests {
    @Test func everyTypeDecodesFromPostgreSQLsTextForm() throws {
        let database = try TestDatabase()
        let result = try database.connect().query(
            """
            SELECT 9223372036854775807::bigint, -42::int, 1.5::float8, true, false, 'héllo "x"'::text,
                   NULL::bigint, (-9223372036854775807 - 1)::bigint
            """)
        #expect(try result.decode(Int64.self, row: 0, column: 0) == Int64.max)
        #expect(try result.decode(Int.self, row: 0, column: 1) == -42)
        #expect(try result.decode(Double.self, row: 0, column: 2) == 1.5)
        #expect(try result.decode(Bool.self, row: 0, column: 3) == true)
        #expect(try result.decode(Bool.self, row: 0, column: 4) == false)
        #expect(try result.decode(String.self, row: 0, column: 5) == "héllo \"x\"")
        #expect(try result.decodeIfPresent(Int64.self, row: 0, column: 6) == nil)
        #expect(try result.decode(Int64.self, row: 0, column: 7) == Int64.min)
    }

    @Test func aMismatchNamesTheColumnAndTheText() throws {
        let database = try TestDatabase()
        let result = try database.connect().query("SELECT 'abc'::text AS tries, NULL::bigint AS id, 99999999999::bigint AS n")
        var failure: PGError?
        do { _ = try result.decode(Int.self, row: 0, column: 0) } catch { failure = error }
        #expect(failure?.code == .unexpectedResult)
        #expect(failure?.message.contains("column \"tries\"") == true)
        #expect(failure?.message.contains("abc") == true)

        failure = nil
        do { _ = try result.decode(Int64.self, row: 0, column: 1) } catch { failure = error }
        #expect(failure?.message.contains("column \"id\"") == true)
        #expect(failure?.message.contains("NULL") == true)

        failure = nil
        do { _ = try result.decode(Int32.self, row: 0, column: 2) } catch { failure = error }
        #expect(failure?.message.contains("99999999999") == true, "out of range for Int32")

        failure = nil
        do { _ = try result.decode(Int.self, row: 1, column: 0) } catch { failure = error }
        #expect(failure?.message.contains("outside the result") == true)
    }
}
