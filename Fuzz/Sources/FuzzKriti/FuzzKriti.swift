import Foundation

@testable import Herald

/// kriti-lang's golden source document, bound to `$` as its own test harness binds it, so
/// paths in the corpus templates reach real values.
let source: KritiValue = {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../Tests/HeraldTests/Fixtures/kriti/eval/source.json").path
    return (try? KritiValue(json: String(contentsOfFile: path, encoding: .utf8))) ?? .null
}()

/// One input is a template, parsed both as written and as an unescaped string template (the
/// two ways request transforms compile it), evaluated against the golden source, and the
/// result serialised and read back; the same bytes are also tried as a JSON document. Errors
/// are expected; a crash, hang or leak is the finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKriti(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let variables: [String: KritiValue] = ["$": source, "$body": source, "$session_variables": ["x-hasura-role": "user"]]
    for template in [try? KritiTemplate(text), try? KritiTemplate(unescaped: text)] {
        guard let template, let value = try? template.evaluate(variables) else { continue }
        let json = value.jsonText
        guard let reread = try? KritiValue(json: json) else {
            fatalError("evaluation produced JSON that does not parse: \(json)")
        }
        precondition(reread.jsonText == json, "JSON text does not survive a round trip: \(json)")
    }
    _ = try? KritiValue(json: Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
